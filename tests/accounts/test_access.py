"""Accounts are owned records: the access toolkit's full matrix applies."""
from tests.factories import AccountFactory
from tests.toolkit import AccessSuite, QueryCountSuite


class TestAccountAccess(AccessSuite):
    namespace = "accounts"
    factory = AccountFactory

    def form_data(self, org, user, name):
        return {"name": name, "owner": user.pk, "business_unit": user.primary_unit_id,
                "description": "Created by the access suite."}


class TestAccountQueries(QueryCountSuite):
    namespace = "accounts"
    factory = AccountFactory
