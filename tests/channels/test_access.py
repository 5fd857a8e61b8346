"""Channels are an organization-wide setting: everyone views them, only Administrators
create, edit, delete or import them."""
from tests.factories import ChannelFactory, USERS
from tests.toolkit import AccessSuite, QueryCountSuite

NON_ADMINS = [name for name in USERS if name != "admin"]


class TestChannelAccess(AccessSuite):
    namespace = "channels"
    factory = ChannelFactory
    searchable = False
    creators = ("admin",)
    hidden_cases = ()
    readonly_cases = tuple((name, None, None) for name in NON_ADMINS)
    editable_cases = (("admin", None, None),)

    def form_data(self, org, user, name):
        return {"name": name, "type": "sales", "status": "active", "entities": ["business_customer"]}


class TestChannelQueries(QueryCountSuite):
    namespace = "channels"
    factory = ChannelFactory
    viewers = ("admin", "west_rep")
