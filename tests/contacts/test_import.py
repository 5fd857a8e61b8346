"""Contact CSV: the columns, round trip, multi-value columns, accounts among the visible
ones, row rules, duplicate notes and bounded queries with child rows."""
import pytest

from contacts.models import Contact
from contacts.resources import ContactResource
from crm.services import import_csv
from tests.factories import AccountFactory
from tests.toolkit import confirm, count_queries, csv_bytes, export_csv, report_of, row_errors, upload

from .factories import ContactFactory, ContactGroupFactory

HEADERS = ["ID", "Name Prefix", "First Name", "Middle Name", "Last Name", "Name Suffix", "Job Title",
           "Primary Email", "Other Emails", "Primary Phone", "Other Phones", "Street", "City", "Postal Code",
           "Region", "Country", "Accounts", "Groups", "Owner", "Business Unit"]


def own(org, username, **kwargs):
    user = org.user(username)
    return ContactFactory(owner=user, business_unit=user.primary_unit, **kwargs)


def account_of(org, username, name):
    user = org.user(username)
    return AccountFactory(name=name, owner=user, business_unit=user.primary_unit)


def state(contact):
    """Everything the CSV columns describe of a contact, from the database."""
    contact = Contact.objects.get(pk=contact.pk)
    address = contact.addresses.filter(is_primary=True).first()
    return {
        "row": Contact.objects.filter(pk=contact.pk).values().get(),
        "emails": list(contact.emails.order_by("pk").values_list("email", "is_primary")),
        "phones": list(contact.phones.order_by("pk").values_list("phone", "is_primary")),
        "address": None if address is None else (address.type, address.street, address.city, address.postal_code,
                                                 address.region, address.country.code),
        "accounts": sorted(contact.accounts.values_list("pk", flat=True)),
        "groups": sorted(contact.groups.values_list("pk", flat=True)),
    }


def rich(org, username, last, accounts=(), groups=()):
    return own(org, username, name_prefix="Dr.", first_name="Ada", middle_name="B.", last_name=last,
               name_suffix="Jr.", job_title="=Head of R&D", emails=[f"{last.lower()}@example.com",
                                                                    f"{last.lower()}@home.example"],
               phones=["+1 555 0100", "+1 555 0101"], accounts=accounts, groups=groups,
               address={"type": "billing", "street": "1 Main St", "city": "Boston", "postal_code": "02110",
                        "region": "MA", "country": "US"})


def test_headers_are_the_contract(org, client_for):
    headers, _ = export_csv(client_for(org.user("admin")), "contacts")
    assert headers == HEADERS
    assert ContactResource(user=org.user("admin")).headers() == HEADERS


def test_round_trip_changes_nothing(org, client_for):
    user = org.user("east_rep")
    client = client_for(user)
    accounts = [account_of(org, "east_rep", "Initech"), account_of(org, "east_rep", "Globex")]
    groups = [ContactGroupFactory(name="VIP"), ContactGroupFactory(name="Newsletter")]
    contacts = [rich(org, "east_rep", "Lovelace", accounts, groups), own(org, "east_rep", last_name="Plain"),
                own(org, "east_rep2", last_name="Colleague", emails=["c@example.com"])]
    before = [state(c) for c in contacts]
    headers, rows = export_csv(client, "contacts", {"sort": "name"})
    row = dict(zip(headers, next(r for r in rows if r[0] == str(contacts[0].pk))))
    assert row == {
        "ID": str(contacts[0].pk), "Name Prefix": "Dr.", "First Name": "Ada", "Middle Name": "B.",
        "Last Name": "Lovelace", "Name Suffix": "Jr.", "Job Title": "'=Head of R&D",
        "Primary Email": "lovelace@example.com", "Other Emails": "lovelace@home.example",
        "Primary Phone": "'+1 555 0100", "Other Phones": "'+1 555 0101", "Street": "1 Main St", "City": "Boston",
        "Postal Code": "02110", "Region": "MA", "Country": "US",
        "Accounts": "Globex; Initech", "Groups": "Newsletter; VIP", "Owner": "east_rep", "Business Unit": "East",
    }
    # east_rep may change only his own contacts: re-import those.
    own_rows = [r for r in rows if r[0] != str(contacts[2].pk)]
    response = upload(client, "contacts", csv_bytes([headers] + own_rows))
    assert report_of(response).ok, row_errors(response)
    report = report_of(response)
    assert (report.new, report.update, report.skip) == (0, 0, 2)
    assert not report.notes
    assert report_of(confirm(client, "contacts", response)).written
    assert [state(c) for c in contacts] == before
    assert export_csv(client, "contacts", {"sort": "name"}) == (headers, rows)


def test_import_creates_with_children_and_links(org, client_for):
    user = org.user("east_rep")
    client = client_for(user)
    account = account_of(org, "east_rep", "Initech")
    ContactGroupFactory(name="VIP")
    data = csv_bytes([
        ["First Name", "Last Name", "Primary Email", "Other Emails", "Primary Phone", "Other Phones", "City",
         "Country", "Accounts", "Groups"],
        ["Peter", "Gibbons", "Peter@Initech.example", "pg@home.example; PETER@initech.example", "+1 555 0100",
         "+1 555 0101;+1 555 0102", "Austin", "us", "initech", "vip"],
        ["", "", "", "only-other@example.com", "", "", "", "Germany", "", ""],
    ])
    response = upload(client, "contacts", data)
    assert report_of(response).ok, row_errors(response)
    assert report_of(response).new == 2
    assert report_of(confirm(client, "contacts", response)).written
    peter = Contact.objects.get(last_name="Gibbons")
    assert (peter.email, peter.phone, peter.owner, peter.business_unit) == (
        "peter@initech.example", "+1 555 0100", user, user.primary_unit)
    assert list(peter.emails.values_list("email", "is_primary")) == [
        ("peter@initech.example", True), ("pg@home.example", False)]
    assert list(peter.phones.order_by("pk").values_list("phone", flat=True)) == [
        "+1 555 0100", "+1 555 0101", "+1 555 0102"]
    address = peter.addresses.get()
    assert (address.is_primary, address.city, address.country.code) == (True, "Austin", "US")
    assert list(peter.accounts.all()) == [account] and [g.name for g in peter.groups.all()] == ["VIP"]
    assert peter.history.get().history_change_reason.startswith("CSV import (job #")
    # No name and no primary email: the first other email becomes the primary.
    other = Contact.objects.get(email="only-other@example.com")
    assert other.emails.get().is_primary and other.addresses.get().country.code == "DE"


def test_row_errors_name_row_and_column(org, client_for):
    client = client_for(org.user("west_rep"))
    account_of(org, "east_rep", "Hidden East")
    account_of(org, "west_rep", "Twin")
    account_of(org, "west_rep", "Twin")
    data = csv_bytes([
        ["First Name", "Last Name", "Job Title", "Primary Email", "Other Emails", "Country", "Accounts", "Groups"],
        ["", "", "Nameless", "", "", "", "", ""],
        ["Ann", "", "", "not-an-email", "also bad", "", "", ""],
        ["Bob", "", "", "", "", "Atlantis", "Hidden East", ""],
        ["Cy", "", "", "", "", "", "Twin", "No Such Group"],
    ])
    response = upload(client, "contacts", data)
    assert not report_of(response).ok
    errors = {(row, column): message for row, column, message in row_errors(response)}
    assert errors[(2, "First Name")] == "A contact needs a first name, a last name or an email."
    assert (3, "Primary Email") in errors
    assert errors[(3, "Other Emails")] == "'also bad' is not a valid email."
    assert "Unknown country 'Atlantis'" in errors[(4, "Country")]
    assert errors[(4, "Accounts")] == "No account named 'Hidden East' that you may see."
    assert "Several accounts you may see are named 'Twin'" in errors[(5, "Accounts")]
    assert errors[(5, "Groups")] == "No contact group named 'No Such Group' that you may see."
    assert not Contact.objects.exists()


def test_partial_columns_leave_the_rest_alone(org, client_for):
    user = org.user("east_rep")
    client = client_for(user)
    group = ContactGroupFactory(name="VIP")
    contact = rich(org, "east_rep", "Partial")
    before = state(contact)
    response = upload(client, "contacts", csv_bytes([["ID", "Groups"], [contact.pk, "VIP"]]))
    assert report_of(response).update == 1, row_errors(response)
    confirm(client, "contacts", response)
    after = state(contact)
    assert after["groups"] == [group.pk]
    assert {k: v for k, v in after.items() if k not in ("groups", "row")} == {
        k: v for k, v in before.items() if k not in ("groups", "row")}

    # Changing only the other emails counts as an update and keeps the primary.
    response = upload(client, "contacts", csv_bytes([["ID", "Other Emails"], [contact.pk, "new@example.com"]]))
    assert report_of(response).update == 1, row_errors(response)
    confirm(client, "contacts", response)
    assert state(contact)["emails"] == [("partial@example.com", True), ("new@example.com", False)]

    # Blank address columns remove the primary address.
    columns = ["ID", "Street", "City", "Postal Code", "Region", "Country"]
    response = upload(client, "contacts", csv_bytes([columns, [contact.pk, "", "", "", "", ""]]))
    confirm(client, "contacts", response)
    assert state(contact)["address"] is None


def test_import_keeps_links_to_accounts_the_user_cannot_see(org, client_for):
    """An East rep's contact linked (by an administrator) to a West account: his export does
    not name it, and his import of the Accounts column keeps it."""
    hidden = account_of(org, "west_rep", "Hidden West")
    visible = account_of(org, "east_rep", "Visible East")
    boss = own(org, "west_rep", last_name="Boss")
    contact = own(org, "east_rep", last_name="Linked", accounts=[hidden], reports_to=boss)
    client = client_for(org.user("east_rep"))
    headers, rows = export_csv(client, "contacts")
    assert rows[0][headers.index("Accounts")] == ""
    response = upload(client, "contacts", csv_bytes([["ID", "Accounts"], [contact.pk, "Visible East"]]))
    assert report_of(response).update == 1, row_errors(response)
    confirm(client, "contacts", response)
    contact.refresh_from_db()
    assert set(contact.accounts.all()) == {hidden, visible}
    assert contact.reports_to == boss  # the file has no reports-to column: the import never changes it


def test_duplicate_emails_are_listed_as_notes_of_visible_contacts_only(org, client_for):
    user = org.user("east_rep")
    client = client_for(user)
    seen = own(org, "east_rep2", last_name="Colleague", emails=["dup@example.com"])
    own(org, "west_rep", last_name="Westerner", emails=["west@example.com"])
    data = csv_bytes([["Last Name", "Primary Email", "Other Emails"],
                      ["New", "DUP@example.com", ""], ["Other", "west@example.com", ""],
                      ["Third", "third@example.com", "dup@example.com"], ["Fourth", "third@example.com", ""]])
    response = upload(client, "contacts", data)
    assert report_of(response).ok and report_of(response).ok
    notes = " ".join(str(n) for n in report_of(response).notes)
    assert "Row 2: dup@example.com already belongs to" in notes and f"/contacts/{seen.pk}/" in notes
    assert "Row 4: dup@example.com" in notes and "Row 5: third@example.com is also on row 4" in notes
    assert "west@example.com" not in notes and "Westerner" not in notes
    page = response.content.decode()
    assert f'<a href="/contacts/{seen.pk}/">' in page
    assert report_of(confirm(client, "contacts", response)).written
    assert Contact.objects.filter(email="dup@example.com").count() == 2


def make_import_rows(count, prefix):
    header = ["ID", "First Name", "Last Name", "Primary Email", "Other Emails", "Primary Phone", "Other Phones",
              "City", "Country", "Accounts", "Groups"]
    return [header] + [
        ["", "Ann", f"{prefix} {i:05d}", f"{prefix.lower()}{i}@example.com", f"{prefix.lower()}{i}@home.example",
         f"+1 555 {i:05d}", "+1 555 99999", "Boston", "US", f"Acc {i % 3}; Acc {(i + 1) % 3}", "VIP; Newsletter"]
        for i in range(count)]


def test_import_with_children_queries_are_bounded(org, django_assert_max_num_queries):
    user = org.user("east_manager")
    for i in range(3):
        account_of(org, "east_rep", f"Acc {i}")
    ContactGroupFactory(name="VIP")
    ContactGroupFactory(name="Newsletter")

    def run(count, prefix):
        report = import_csv(ContactResource, csv_bytes(make_import_rows(count, prefix)), user, dry_run=False)
        assert report.ok and report.new == count, (report.errors[:3], report.file_errors)

    run(3, "Warm")
    few, _ = count_queries(lambda: run(10, "Few"))
    # SQLite's 999-parameter cap splits bulk inserts of 1,000 rows into tens of statements.
    with django_assert_max_num_queries(few + 120):
        run(1000, "Many")
    sample = Contact.objects.get(last_name="Many 00007")
    assert sample.emails.count() == 2 and sample.phones.count() == 2 and sample.accounts.count() == 2
    assert sample.groups.count() == 2 and sample.addresses.get().city == "Boston"

    # Updating the same 1,000 rows by ID: one load of their child rows per batch.
    rows = make_import_rows(1000, "Many")
    ids = dict(Contact.objects.filter(last_name__startswith="Many ").values_list("last_name", "pk"))
    for row in rows[1:]:
        row[0] = ids[row[2]]
        row[4] = row[4].replace("home", "work")
    few_rows = make_import_rows(10, "Few")
    few_ids = dict(Contact.objects.filter(last_name__startswith="Few ").values_list("last_name", "pk"))
    for row in few_rows[1:]:
        row[0] = few_ids[row[2]]
        row[4] = row[4].replace("home", "work")
    few, report = count_queries(lambda: import_csv(ContactResource, csv_bytes(few_rows), user, dry_run=False))
    assert report.update == 10
    with django_assert_max_num_queries(few + 120):
        report = import_csv(ContactResource, csv_bytes(rows), user, dry_run=False)
    assert report.ok and report.update == 1000
    assert Contact.objects.get(last_name="Many 00007").emails.filter(email="many7@work.example").exists()


@pytest.mark.parametrize("viewer", ["east_rep", "west_rep"])
def test_group_import_by_managers_only(org, client_for, viewer):
    response = upload(client_for(org.user(viewer)), "contact_groups", csv_bytes([["Name"], ["Newsletter"]]))
    assert response.status_code == 403
