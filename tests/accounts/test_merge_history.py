"""A merge keeps history: every record it moves gets a history row naming the merge, written
in bulk; and it locks every account of the merge and every row it moves."""
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from accounts.services import merge_accounts
from activities.models import Activity
from contacts.models import Contact
from customers.models import BusinessCustomer
from tests.contacts.factories import AssignmentFactory, ContactFactory
from tests.customers.factories import ActivityFactory, BusinessCustomerFactory
from tests.factories import AccountFactory


def moved_text(source, master):
    return f"Moved from account “{source}” (#{source.pk}) by the merge into “{master}” (#{master.pk})"


def merge(master, accounts, user, **choices):
    return merge_accounts(master, accounts, {k: v.pk for k, v in choices.items()}, user)


def test_every_moved_record_has_a_history_row_naming_the_merge(east_manager, east_rep):
    master = AccountFactory(name="Globex", owner=east_rep)
    other = AccountFactory(name="Globex Corp.", owner=east_rep)
    third = AccountFactory(name="GLOBEX", owner=east_rep)
    customer = BusinessCustomerFactory(name="Globex Shop", account=other, owner=east_rep)
    assignment = AssignmentFactory(contact=ContactFactory(owner=east_rep, accounts=[master]), customer=customer)
    contact = ContactFactory(last_name="Moved", owner=east_rep, accounts=[other])
    both = ContactFactory(last_name="Both", owner=east_rep, accounts=[other, third])  # two links become one
    kept = ContactFactory(last_name="Kept", owner=east_rep, accounts=[master])
    activity = ActivityFactory(target=other, subject="Call")
    referral = AccountFactory(name="Referred", owner=east_rep, referred_by=third)

    merged = merge(master, [master, other, third], east_manager, name=other)
    assert merged.name == "Globex Corp."

    record = BusinessCustomer.history.filter(id=customer.pk).latest("history_id")
    assert (record.history_type, record.account_id) == ("~", master.pk)
    assert record.history_change_reason == moved_text(other, merged)
    assert record.history_user == east_manager
    for contact_, reason in ((contact, moved_text(other, merged)),
                             (both, f"Moved from accounts “{other}” (#{other.pk}), “{third}” (#{third.pk}) "
                                    f"by the merge into “{merged}” (#{master.pk})")):
        record = Contact.history.filter(id=contact_.pk).latest("history_id")
        assert record.history_change_reason == reason and record.history_user == east_manager
        assert list(contact_.accounts.all()) == [master]
    assert Contact.history.filter(id=kept.pk).count() == 1, "a contact whose links did not move has no new row"
    record = Activity.history.filter(id=activity.pk).latest("history_id")
    assert (record.object_id, record.history_change_reason) == (master.pk, moved_text(other, merged))
    record = Account.history.filter(id=referral.pk).latest("history_id")
    assert (record.referred_by_id, record.history_change_reason) == (master.pk, moved_text(third, merged))
    # Assignments follow their customer, which kept its id: nothing to move, nothing lost.
    assignment.refresh_from_db()
    assert assignment.customer == customer
    # The merged accounts' history says where they went; the master's says what came in.
    for gone in (other, third):
        last = Account.history.filter(id=gone.pk).latest("history_id")
        assert last.history_type == "-" and last.history_change_reason == f"Merged into “{merged}” (#{master.pk})"
    reason = master.history.latest("history_id").history_change_reason
    assert f"“{other}” (#{other.pk})" in reason and "1 business customers" in reason


def test_the_record_pages_history_shows_the_move(client_for, east_manager, east_rep):
    master = AccountFactory(name="Initech", owner=east_rep)
    other = AccountFactory(name="Initech Ltd", owner=east_rep)
    customer = BusinessCustomerFactory(name="Initech Web", account=other, owner=east_rep)
    merge(master, [master, other], east_manager)
    page = client_for(east_rep).get(customer.get_absolute_url()).content.decode()
    assert moved_text(other, master) in page


def build(owner, per_kind):
    """Two accounts, the second with `per_kind` customers, contacts, activities and referrals."""
    master = AccountFactory(owner=owner)
    other = AccountFactory(owner=owner)
    for _ in range(per_kind):
        ActivityFactory(target=BusinessCustomerFactory(account=other, owner=owner))
        ContactFactory(owner=owner, accounts=[other])
        ActivityFactory(target=other)
        AccountFactory(owner=owner, referred_by=other)
    return master, other


def test_merge_costs_no_query_per_moved_record(east_manager, east_rep):
    counts = []
    for per_kind in (1, 2, 8):  # the first one warms the caches (content types, grants)
        master, other = build(east_rep, per_kind)
        with CaptureQueriesContext(connection) as ctx:
            merge(master, [master, other], east_manager)
        counts.append(len(ctx.captured_queries))
        assert BusinessCustomer.objects.filter(account=master).count() == per_kind
        assert Contact.objects.filter(accounts=master).count() == per_kind
        assert master.activities.count() == per_kind
    assert counts[1] == counts[2], f"{counts[1]} queries for 2 records of each kind, {counts[2]} for 8"


def test_merge_locks_every_account_and_the_rows_it_moves(east_manager, east_rep):
    accounts = [AccountFactory(owner=east_rep) for _ in range(3)]
    customer = BusinessCustomerFactory(account=accounts[1], owner=east_rep)
    ContactFactory(owner=east_rep, accounts=[accounts[2]])
    ActivityFactory(target=customer)
    with CaptureQueriesContext(connection) as ctx:
        merge(accounts[0], accounts, east_manager)
    selects = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT")]
    lock = next(sql for sql in selects if 'FROM "accounts_account"' in sql)
    assert "LIMIT" not in lock and all(str(a.pk) in lock for a in accounts), "all accounts, evaluated"
    if connection.features.has_select_for_update:
        assert lock.endswith("FOR UPDATE")
        locked = [sql for sql in selects if sql.endswith("FOR UPDATE")]
        for table in ("customers_businesscustomer", "contacts_contact_accounts", "contacts_contact",
                      "activities_activity"):
            assert any(f'FROM "{table}"' in sql for sql in locked), f"{table} rows are not locked"
