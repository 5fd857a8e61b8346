"""Contacts are owned records: the access toolkit's full matrix applies. Contact groups
are organization-wide: everyone views them, Managers and Administrators manage them."""
from tests.factories import USERS
from tests.toolkit import AccessSuite, QueryCountSuite

from .factories import ContactFactory, ContactGroupFactory

FORMSETS = ("emails", "phones", "addresses")
MANAGERS = ("admin", "east_manager")


def management(**initial):
    """The management forms of the contact form's formsets (no rows unless given)."""
    data = {}
    for prefix in FORMSETS:
        count = str(initial.get(prefix, 0))
        data.update({f"{prefix}-TOTAL_FORMS": count, f"{prefix}-INITIAL_FORMS": count,
                     f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"})
    return data


class TestContactAccess(AccessSuite):
    namespace = "contacts"
    factory = ContactFactory
    name_field = "last_name"
    name_column = "Last Name"

    def form_data(self, org, user, name):
        return {"first_name": "Ann", "last_name": name, "owner": user.pk, "business_unit": user.primary_unit_id,
                **management()}

    def edit_data(self, org, user, obj, name):
        return {"first_name": obj.first_name, "last_name": name, **management()}


class TestContactQueries(QueryCountSuite):
    namespace = "contacts"
    factory = ContactFactory
    name_field = "last_name"
    name_column = "Last Name"
    # SQLite takes at most 999 parameters a statement, so 1,000 contacts of 21 columns (and
    # their history rows) are inserted ~47 at a time: ~44 statements for the batch, where
    # PostgreSQL sends 2. Still a bounded number per batch, never one per row.
    import_slack = 60


class TestContactGroupAccess(AccessSuite):
    namespace = "contact_groups"
    factory = ContactGroupFactory
    searchable = False
    creators = MANAGERS
    hidden_cases = ()
    readonly_cases = tuple((name, None, None) for name in USERS if name not in MANAGERS)
    editable_cases = tuple((name, None, None) for name in MANAGERS)

    def form_data(self, org, user, name):
        return {"name": name, "description": "Made by the access suite."}


class TestContactGroupQueries(QueryCountSuite):
    namespace = "contact_groups"
    factory = ContactGroupFactory
    viewers = ("admin", "west_rep")
