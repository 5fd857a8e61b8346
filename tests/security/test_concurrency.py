"""Concurrent edits and locking (issue 10): optimistic locking of every edit form (the app's
and the admin's), versions raised by every write that bypasses the form (import, mass assign,
merge), and merges of overlapping accounts at the same time (PostgreSQL, two threads)."""
import threading
from html.parser import HTMLParser

import pytest
from django.contrib.messages import get_messages
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

import accounts.views  # noqa: F401  (declare the entities)
import contacts.views  # noqa: F401
import customers.views  # noqa: F401
from accounts.models import Account
from accounts.services import merge_accounts
from activities.models import Activity
from contacts.models import Contact
from customers.models import BusinessCustomer
from tests.contacts.factories import ContactFactory
from tests.customers.factories import BusinessCustomerFactory
from tests.factories import AccountFactory
from tests.toolkit import confirm, csv_bytes, upload, url


class FormReader(HTMLParser):
    """What a browser submits from a page's POST forms: {field: [values]} per form, for the
    form holding a `version` input (the record's edit form)."""

    def __init__(self):
        super().__init__()
        self.forms, self.current, self.select, self.textarea = [], None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("method", "").lower() == "post":
            self.current = {}
            self.forms.append(self.current)
        if self.current is None or "name" not in a and tag not in ("option",):
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind in ("submit", "button", "file"):
                return
            self.current.setdefault(a["name"], []).append(a.get("value", "on" if kind == "checkbox" else ""))
        elif tag == "select":
            self.select = a["name"]
            self.current.setdefault(self.select, [])
        elif tag == "option" and self.select and "selected" in a:
            self.current[self.select].append(a.get("value", ""))
        elif tag == "textarea":
            self.textarea = a["name"]
            self.current[self.textarea] = [""]

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data):
        if self.textarea and self.current is not None:
            self.current[self.textarea][0] += data.lstrip("\n") if not self.current[self.textarea][0] else data


def edit_form(response):
    """The record form of a page as a browser would post it."""
    reader = FormReader()
    reader.feed(response.content.decode())
    [form] = [f for f in reader.forms if "version" in f]
    return {k: v if len(v) != 1 else v[0] for k, v in form.items() if k != "csrfmiddlewaretoken"}


def message_texts(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


CASES = {
    # namespace: (make the record as owned by east_rep, the field both edit)
    "accounts": (lambda owner: AccountFactory(name="Initech", owner=owner), "name"),
    "customers": (lambda owner: BusinessCustomerFactory(name="Initech Ltd", owner=owner), "name"),
    "contacts": (lambda owner: ContactFactory(first_name="Peter", last_name="Gibbons", owner=owner), "last_name"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("namespace", list(CASES))
def test_second_save_is_refused_then_reapplied(org, client_for, namespace):
    make, field = CASES[namespace]
    record = make(org.user("east_rep"))
    first, second = client_for(org.user("east_manager")), client_for(org.user("admin"))
    edit = url(namespace, "update", record.pk)
    mine, theirs = edit_form(first.get(edit)), edit_form(second.get(edit))
    assert mine["version"] == theirs["version"] == str(record.version)

    assert first.post(edit, {**mine, field: "First"}).status_code == 302
    response = second.post(edit, {**theirs, field: "Second"})

    assert response.status_code == 409
    record.refresh_from_db()
    assert getattr(record, field) == "First"  # the first person's value is kept
    assert any("changed by someone else" in m for m in message_texts(response))
    [change] = [c for c in response.context["conflict"] if c.theirs == "First"]
    assert (change.yours, change.differs) == ("Second", True)
    assert "east_manager" in change.who and change.when is not None
    html = response.content.decode()
    assert "Apply my changes again" in html and "east_manager" in html

    # The form came back with his values and the current version: saving again applies them.
    again = edit_form(response)
    assert again[field] == "Second" and again["version"] == str(record.version)
    assert second.post(edit, again).status_code == 302
    record.refresh_from_db()
    assert getattr(record, field) == "Second"


@pytest.mark.django_db
def test_tampered_or_missing_version(org, client_for):
    account = AccountFactory(name="Initech", owner=org.user("east_rep"))
    client = client_for(org.user("admin"))
    edit = url("accounts", "update", account.pk)
    data = edit_form(client.get(edit))
    for bogus in ("abc", "-1", str(account.version + 5), "9" * 40):
        assert client.post(edit, {**data, "name": "Bogus", "version": bogus}).status_code == 409
    account.refresh_from_db()
    assert account.name == "Initech"
    # The edit form is what carries the version; a post without it (a script) is not checked.
    assert client.post(edit, {k: v for k, v in data.items() if k != "version"}).status_code == 302


@pytest.mark.django_db
def test_edit_of_a_record_deleted_meanwhile_writes_nothing(org, client_for):
    account = AccountFactory(name="Initech", owner=org.user("east_rep"))
    client = client_for(org.user("admin"))
    edit = url("accounts", "update", account.pk)
    data = edit_form(client.get(edit))
    Account.objects.filter(pk=account.pk).delete()
    assert client.post(edit, {**data, "name": "Back"}).status_code == 404
    assert not Account.objects.filter(name="Back").exists()


@pytest.mark.django_db
def test_admin_change_form_refuses_a_stale_save(org):
    account = AccountFactory(name="Initech", owner=org.user("east_rep"))
    first, second = Client(), Client()
    first.force_login(org.user("admin"))
    manager = org.user("east_manager")
    manager.is_staff = True
    manager.save()
    second.force_login(manager)
    change = reverse("admin:accounts_account_change", args=[account.pk])
    theirs = edit_form(second.get(change))
    mine = edit_form(first.get(change))
    assert mine["version"] == str(account.version)

    assert first.post(change, {**mine, "name": "First", "_save": "Save"}).status_code == 302
    response = second.post(change, {**theirs, "name": "Second", "_save": "Save"})

    assert response.status_code == 200  # the form again, with the refusal
    account.refresh_from_db()
    assert account.name == "First"
    errors = " ".join(response.context["adminform"].form.non_field_errors())
    assert "changed by someone else" in errors and "“First”" in errors and "“Second”" in errors
    again = edit_form(response)
    assert again["name"] == "Second" and again["version"] == str(account.version)
    assert second.post(change, {**again, "_save": "Save"}).status_code == 302
    account.refresh_from_db()
    assert account.name == "Second"


@pytest.mark.django_db
def test_admin_revert_goes_on_from_the_current_version(org):
    account = AccountFactory(name="Initech", owner=org.user("east_rep"))
    admin = Client()
    admin.force_login(org.user("admin"))
    old = account.history.earliest("history_date")
    account.name = "Renamed"
    account.save()
    revert = reverse("admin:accounts_account_simple_history", args=[account.pk, old.history_id])
    data = edit_form(admin.get(revert))
    assert data["version"] == str(account.version)
    assert admin.post(revert, {**data, "_save": "Save"}).status_code == 302
    account.refresh_from_db()
    assert (account.name, account.version) == ("Initech", old.version + 2)


@pytest.mark.django_db
def test_writes_beside_the_form_make_open_forms_stale(org, client_for):
    """Import updates, mass assign and merge raise the version: a form opened before them is refused."""
    admin = org.user("admin")
    client = client_for(admin)
    account = AccountFactory(name="Initech", owner=org.user("east_rep"))
    other = AccountFactory(name="Initrode", owner=org.user("east_rep"))
    customer = BusinessCustomerFactory(name="Initech Ltd", owner=org.user("east_rep"), account=other)
    edit = url("accounts", "update", account.pk)
    customer_edit = url("customers", "update", customer.pk)
    opened, customer_opened = edit_form(client.get(edit)), edit_form(client.get(customer_edit))

    validated = upload(client, "accounts", csv_bytes([["ID", "Name"], [account.pk, "Initech Imported"]]))
    confirm(client, "accounts", validated)
    account.refresh_from_db()
    assert (account.name, account.version) == ("Initech Imported", int(opened["version"]) + 1)
    assert client.post(edit, {**opened, "name": "Mine"}).status_code == 409

    opened = edit_form(client.get(edit))
    client.post(url("accounts", "assign"), {"pk": [account.pk], "owner": org.user("east_rep2").pk,
                                           "business_unit": org.unit("East").pk})
    account.refresh_from_db()
    assert account.owner == org.user("east_rep2") and account.version == int(opened["version"]) + 1
    assert client.post(edit, {**opened, "name": "Mine"}).status_code == 409

    merge_accounts(account, [account, other], {}, admin)  # moves the customer to the master
    customer.refresh_from_db()
    assert customer.account_id == account.pk and customer.version == int(customer_opened["version"]) + 1
    # (with the master picked: the form's old account is gone, which alone would be a field error)
    assert client.post(customer_edit, {**customer_opened, "name": "Mine", "account": account.pk}).status_code == 409
    assert BusinessCustomer.objects.get(pk=customer.pk).name == "Initech Ltd"


# -- merges of overlapping accounts ----------------------------------------------------------------

def accounts_with_records(org, names):
    owner = org.user("east_rep")
    made = []
    for name in names:
        account = AccountFactory(name=name, owner=owner)
        BusinessCustomerFactory(name=f"{name} Ltd", owner=owner, account=account)
        contact = ContactFactory(last_name=f"{name} Person", owner=owner)
        contact.accounts.add(account)
        Activity.objects.create(target=account, kind="note", subject=f"About {name}", created_by=owner)
        made.append(account)
    return made


def totals(ids):
    return (BusinessCustomer.objects.filter(name__in=[f"{n} Ltd" for n in ids]).values("account").distinct().count(),
            BusinessCustomer.objects.filter(name__in=[f"{n} Ltd" for n in ids]).count(),
            Contact.objects.filter(last_name__in=[f"{n} Person" for n in ids]).count(),
            Activity.objects.filter(subject__in=[f"About {n}" for n in ids]).count())


def assert_nothing_lost(names):
    """Every customer, contact and activity still there, each on an account that still exists."""
    surviving = set(Account.objects.filter(name__in=names).values_list("pk", flat=True))
    customers = BusinessCustomer.objects.filter(name__in=[f"{n} Ltd" for n in names])
    assert customers.count() == len(names) and set(customers.values_list("account", flat=True)) <= surviving
    contacts = Contact.objects.filter(last_name__in=[f"{n} Person" for n in names])
    assert contacts.count() == len(names)
    for contact in contacts:
        assert set(contact.accounts.values_list("pk", flat=True)) & surviving
    activities = Activity.objects.filter(subject__in=[f"About {n}" for n in names])
    assert activities.count() == len(names) and set(activities.values_list("object_id", flat=True)) <= surviving
    return surviving


@pytest.mark.django_db
def test_merge_of_an_account_merged_away_is_refused_cleanly(org):
    """The sequential case (both databases): the second merge names an account the first deleted."""
    from django.core.exceptions import ValidationError

    admin = org.user("admin")
    a, b, c = accounts_with_records(org, ["Alpha", "Beta", "Gamma"])
    merge_accounts(a, [a, b], {}, admin)
    with pytest.raises(ValidationError, match="no longer exists"):
        merge_accounts(c, [b, c], {}, admin)
    assert assert_nothing_lost(["Alpha", "Beta", "Gamma"]) == {a.pk, c.pk}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs row locks and one connection per thread")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("masters", [("first", "last"), ("last", "first"), ("shared", "shared")])
def test_two_merges_of_overlapping_accounts_at_once(org, masters):
    """Merges {A, B} and {B, C} run at once, each in its own thread and connection: one wins, the
    other waits for its locks, then is refused or merges what is left; whichever thread locks first,
    nothing is lost and no deadlock (both lock in pk order)."""
    from django.core.exceptions import ValidationError

    admin = org.user("admin")
    a, b, c = accounts_with_records(org, ["Alpha", "Beta", "Gamma"])
    sets = [[a, b], [b, c]]
    pick = {"first": 0, "last": -1}
    chosen = [b if m == "shared" else group[pick[m]] for m, group in zip(masters, sets)]
    barrier = threading.Barrier(2)
    outcome = [None, None]

    def run(i):
        try:
            barrier.wait(timeout=10)
            outcome[i] = ("merged", merge_accounts(chosen[i], sets[i], {}, admin).pk)
        except ValidationError as e:
            outcome[i] = ("refused", " ".join(e.messages))
        except Exception as e:  # a deadlock or anything else fails the test below
            outcome[i] = ("error", repr(e))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert all(o[0] in ("merged", "refused") for o in outcome), outcome
    assert any(o[0] == "merged" for o in outcome), outcome
    for kind, detail in outcome:
        if kind == "refused":
            assert "no longer exists" in detail
    surviving = assert_nothing_lost(["Alpha", "Beta", "Gamma"])
    merged = [pk for kind, pk in outcome if kind == "merged"]
    assert set(merged) <= surviving and len(surviving) == 3 - sum(len(s) - 1 for s, o in zip(sets, outcome)
                                                                  if o[0] == "merged")
