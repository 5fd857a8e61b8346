"""The import engine at the service level (crm.services.import_csv): streamed files, header
matching and mapping, modes, natural keys, history for Undo, the error report."""
import csv
import io

import pytest

from accounts.models import Account
from accounts.resources import AccountResource
from channels.resources import ChannelResource
from contacts.models import Contact
from contacts.resources import ContactResource
from crm import services
from crm.services import error_report_csv, import_csv
from customers.models import BusinessCustomer, CustomerEmail, CustomerGroup, CustomerPhone, Location
from customers.resources import BusinessCustomerResource, LocationResource
from tests.contacts.factories import ContactFactory
from tests.customers.factories import BusinessCustomerFactory, CustomerEmailFactory, LocationFactory
from tests.factories import AccountFactory, ChannelFactory
from tests.toolkit import count_queries, csv_bytes


@pytest.fixture
def direct(db):
    return ChannelFactory(name="Direct Sales")


def errors_of(report):
    return [(e.row, e.column, e.message) for e in report.errors]


def own_account(org, username, name, **kwargs):
    user = org.user(username)
    return AccountFactory(name=name, owner=user, business_unit=user.primary_unit, **kwargs)


def own_customer(org, username, name, channel, **kwargs):
    user = org.user(username)
    return BusinessCustomerFactory(name=name, owner=user, business_unit=user.primary_unit, channel=channel, **kwargs)


class ReadRecorder(io.BytesIO):
    """A binary upload that records how much each read asked for."""

    def __init__(self, data):
        super().__init__(data)
        self.sizes = []

    def read(self, size=-1):
        self.sizes.append(size)
        return super().read(size)


# -- the file -------------------------------------------------------------------------------------

def test_a_file_object_is_read_in_chunks_and_progress_follows_the_batches(admin, settings):
    settings.CRM_IMPORT_BATCH_SIZE = 40
    data = csv_bytes([["ID", "Name"]] + [["", f"Streamed {i:03d}"] for i in range(100)])
    upload = ReadRecorder(data)
    calls = []
    report = import_csv(AccountResource, upload, admin, dry_run=False, progress=lambda done, total: calls.append(
        (done, total)))
    assert report.ok and report.written and report.new == 100, (errors_of(report), report.file_errors)
    assert calls == [(40, 100), (80, 100), (100, 100)]
    assert upload.sizes and all(0 < size <= services.READ_CHUNK for size in upload.sizes), "never read whole"
    assert Account.objects.filter(name__startswith="Streamed ").count() == 100


@pytest.mark.parametrize("data, message", [
    (b"", "The file is empty."),
    (b" \r\n\r\n", "The file is empty."),
    (b"ID,Name\r\n", "The file has a header but no rows."),
    (b"ID,Name\n,\x00\x01\n", "This is not a CSV text file."),
    ("ID,Name\n,Ok\n,Café\n".encode("latin-1"),
     "The file is not UTF-8 encoded (line 3, byte 17). Save it as 'CSV UTF-8' and upload it again."),
    (b'ID,Name\n,Ok\n,"Unterminated\n', "The file is not valid CSV (line 3): unexpected end of data."),
])
def test_unreadable_files_from_a_file_object(admin, data, message):
    report = import_csv(AccountResource, io.BytesIO(data), admin, dry_run=False)
    assert report.file_errors == [message] and not report.written
    assert not Account.objects.exists()


def test_size_limit_applies_to_a_file_object(admin, settings):
    data = csv_bytes([["ID", "Name"]] + [["", f"Row {i:03d}"] for i in range(20)])
    settings.CRM_IMPORT_MAX_BYTES = len(data) - 1
    report = import_csv(AccountResource, io.BytesIO(data), admin)
    assert report.file_errors == [f"The file is {len(data)} bytes; the limit is {len(data) - 1} bytes. "
                                  "Split it into smaller files."]


def test_old_mac_line_ends_and_blank_lines(admin):
    report = import_csv(AccountResource, b"Name\r\rOne\r,\rTwo\r", admin, dry_run=False)
    assert (report.ok, report.total, report.new) == (True, 2, 2), (errors_of(report), report.file_errors)
    assert set(Account.objects.values_list("name", flat=True)) == {"One", "Two"}


def test_unknown_mode_is_a_file_error(admin):
    report = import_csv(AccountResource, csv_bytes([["Name"], ["X"]]), admin, mode="replace")
    assert report.file_errors == ["Unknown import mode 'replace': use one of create, create_update, update."]


# -- headers ----------------------------------------------------------------------------------------

def test_headers_match_ignoring_case_spaces_and_through_aliases(org, direct):
    rows = [["  customer   NAME ", "channel", "Account Name", "E-mail", "Phone Number", "Billing Zip", "Colour"],
            ["Acme", "Direct Sales", "Acme Group", "info@acme.example", "+1 555 0100", "10115", "red"]]
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), org.user("east_rep"), dry_run=False)
    assert report.ok, (errors_of(report), report.file_errors)
    assert report.columns == {"  customer   NAME ".strip(): "Name", "channel": "Channel", "Account Name": "Account",
                              "E-mail": "Email", "Phone Number": "Phone", "Billing Zip": "Billing Postal Code"}
    assert report.unmatched == ["Colour"]
    customer = BusinessCustomer.objects.get(name="Acme")
    assert (customer.primary_email, customer.primary_phone, customer.billing_postal_code) == (
        "info@acme.example", "+1 555 0100", "10115")
    assert customer.emails.get().email == "info@acme.example"


def test_a_mapping_maps_or_ignores_unmatched_headers(org):
    rows = [["Firma", "Notiz", "Farbe"], ["Initech", "Printers", "red"]]
    rep = org.user("east_rep")
    report = import_csv(AccountResource, csv_bytes(rows), rep, dry_run=False,
                        mapping={"Firma": "name", "Notiz": "Description", "Farbe": ""})
    assert report.ok, (errors_of(report), report.file_errors)
    assert report.columns == {"Firma": "Name", "Notiz": "Description"} and report.unmatched == ["Farbe"]
    assert Account.objects.get(name="Initech").description == "Printers"


@pytest.mark.parametrize("headers, mapping, message", [
    (["Name", "name "], None, "Column(s) given twice: Name."),
    (["Name", "Company"], None, "The columns 'Name' and 'Company' both mean Name: keep one, or map the other to "
                                "another column or to none."),
    (["Name", "Firma"], {"Firma": "Name"}, "The columns 'Name' and 'Firma' both mean Name: keep one, or map the other "
                                           "to another column or to none."),
    (["Name", "Firma"], {"Firma": "Colour"}, "The column 'Firma' cannot be mapped to 'Colour': the columns are ID, "
                                             "Name, Owner, Business Unit, Description."),
    (["Firma", "Notiz"], {"Notiz": "Description"}, "Missing required column(s): Name."),
])
def test_header_errors_refuse_the_file(admin, headers, mapping, message):
    report = import_csv(AccountResource, csv_bytes([headers, ["a", "b"]]), admin, dry_run=False, mapping=mapping)
    assert report.file_errors == [message]
    assert not Account.objects.exists()


def test_errors_name_the_header_as_the_file_writes_it(admin):
    report = import_csv(AccountResource, csv_bytes([["company", "Owner Username"], ["Acme", "nobody"]]), admin)
    assert errors_of(report) == [(2, "Owner Username", "Unknown owner 'nobody'.")]


# -- modes and natural keys -------------------------------------------------------------------------

def test_modes_with_ids(org):
    rep = org.user("east_rep")
    account = own_account(org, "east_rep", "Old name")
    rows = [["ID", "Name"], [account.pk, "New name"], ["", "Brand new"]]
    report = import_csv(AccountResource, csv_bytes(rows), rep, mode="create")
    assert errors_of(report) == [(2, "ID", f"ID {account.pk} is the existing account “Old name”; the mode Add new "
                                           "only does not change records.")]
    report = import_csv(AccountResource, csv_bytes(rows), rep, mode="update")
    assert errors_of(report) == [(3, "Name", "No account you may edit has this Name; the mode Update existing only "
                                             "does not create records.")]
    assert report.mode == "update" and report.rejected == 1 and report.error_rows() == 1
    report = import_csv(AccountResource, csv_bytes([["ID", "Name"], [account.pk, "New name"]]), rep, mode="update",
                        dry_run=False)
    assert report.ok and report.update == 1
    account.refresh_from_db()
    assert account.name == "New name"


def test_customers_match_by_name_in_their_channel(org, direct):
    rep = org.user("east_rep")
    web = ChannelFactory(name="Web Store")
    mine = own_customer(org, "east_rep", "Globex", direct, legal_name="old")
    other_channel = own_customer(org, "east_rep", "Globex", web, legal_name="web")
    rows = [["Name", "Channel", "Account", "Legal Name"],
            ["GLOBEX ", "direct sales", mine.account.name, "Globex Ltd"],
            ["Initech", "Direct Sales", "Initech Group", "Initech Inc"]]
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), rep, dry_run=False)
    assert report.ok and (report.new, report.update) == (1, 1), errors_of(report)
    mine.refresh_from_db()
    other_channel.refresh_from_db()
    assert (mine.name, mine.legal_name, other_channel.legal_name) == ("GLOBEX", "Globex Ltd", "web")

    report = import_csv(BusinessCustomerResource, csv_bytes(rows), rep, mode="create")
    assert errors_of(report)[0] == (2, "Name", f"“GLOBEX” (ID {mine.pk}) already exists in Direct Sales: a name is "
                                               "unique per channel.")


def test_a_natural_key_match_never_reaches_a_record_he_may_not_edit(org, direct):
    west = org.user("west_rep")
    hidden = own_customer(org, "east_rep", "Hidden Co", direct)
    colleague = own_customer(org, "east_rep2", "Colleague Co", direct)  # a rep of East views it, may not edit it
    rows = [["Name", "Channel", "Account"], ["hidden co", "Direct Sales", "Whatever"]]
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), west)
    assert errors_of(report) == [(2, "Name", "A business customer of another unit is already named “Hidden Co” in "
                                             "Direct Sales.")]
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), west, mode="update")
    assert errors_of(report) == [(2, "Name", "No business customer you may edit has this Name + Channel; the mode "
                                             "Update existing only does not create records.")]
    rows = [["Name", "Channel", "Account"], ["Colleague Co", "Direct Sales", "Whatever"]]
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), org.user("east_rep"))
    assert errors_of(report) == [(2, "Name", f"“Colleague Co” (ID {colleague.pk}) already exists in Direct Sales: a "
                                             "name is unique per channel.")]
    hidden.refresh_from_db()
    assert hidden.account.name != "Whatever"


def test_an_ambiguous_account_name_needs_the_id(org):
    rep = org.user("east_rep")
    first, second = own_account(org, "east_rep", "Twin"), own_account(org, "east_rep", "Twin")
    own_account(org, "east_rep", "Single", description="old")
    rows = [["Name", "Description"], ["twin", "which?"], ["Single", "new"]]
    report = import_csv(AccountResource, csv_bytes(rows), rep)
    assert errors_of(report) == [(2, "Name", f"Several accounts you may edit have this Name (IDs {first.pk}, "
                                             f"{second.pk}): give the row an ID to say which.")]
    report = import_csv(AccountResource, csv_bytes(rows[:1] + rows[2:]), rep, dry_run=False)
    assert (report.update, report.new) == (1, 0)
    assert Account.objects.get(name="Single").description == "new"


def test_contacts_match_by_primary_email_and_locations_by_customer_and_name(org, direct):
    rep = org.user("east_rep")
    contact = ContactFactory(owner=rep, business_unit=rep.primary_unit, last_name="Old", emails=["ann@x.example"])
    report = import_csv(ContactResource, csv_bytes([["Last Name", "Email"], ["New", "ANN@x.example"]]), rep,
                        dry_run=False)
    assert report.ok and (report.new, report.update) == (0, 1), errors_of(report)
    contact.refresh_from_db()
    assert contact.last_name == "New" and Contact.objects.count() == 1

    customer = own_customer(org, "east_rep", "Dock Owner", direct)
    location = LocationFactory(customer=customer, name="North Dock", city="Kiel")
    rows = [["Customer", "Name", "City"], ["dock owner", "north dock", "Hamburg"], ["Dock Owner", "South Dock", "Bonn"]]
    report = import_csv(LocationResource, csv_bytes(rows), rep, dry_run=False)
    assert report.ok and (report.new, report.update) == (1, 1), errors_of(report)
    location.refresh_from_db()
    assert (location.name, location.city) == ("north dock", "Hamburg")
    assert Location.objects.filter(customer=customer).count() == 2


def test_a_record_changes_once_per_file(org, settings):
    settings.CRM_IMPORT_BATCH_SIZE = 2
    rep = org.user("east_rep")
    account = own_account(org, "east_rep", "Once")
    rows = [["ID", "Name", "Description"], [account.pk, "Once", "first"], ["", "Filler", ""],
            [account.pk, "Once", "second"], ["", "Once", "a new one: the record it names is taken"]]
    report = import_csv(AccountResource, csv_bytes(rows), rep, dry_run=False)
    assert errors_of(report) == [(4, "ID", f"Another row of this file (row 2) already changes the record with ID "
                                           f"{account.pk}.")]
    report = import_csv(AccountResource, csv_bytes(rows[:3] + rows[4:]), rep, dry_run=False)
    assert report.ok and (report.update, report.new) == (1, 2), errors_of(report)
    assert Account.objects.filter(name="Once").count() == 2


def test_twice_in_the_file_is_found_across_batches(org, direct, settings):
    settings.CRM_IMPORT_BATCH_SIZE = 2
    rows = [["Name", "Channel", "Account"], ["Alpha", "Direct Sales", "A"], ["Beta", "Direct Sales", "A"],
            ["Gamma", "Direct Sales", "A"], ["ALPHA", "direct sales", "A"]]
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), org.user("east_rep"))
    assert errors_of(report) == [(5, "Name", "“ALPHA” appears twice in the file for channel Direct Sales.")]
    rows = [["Name"], ["Web"], ["Fairs"], ["Shop"], ["web"]]
    report = import_csv(ChannelResource, csv_bytes(rows), org.user("admin"))
    assert errors_of(report) == [(5, "Name", "The name 'web' appears twice in the file.")]


def test_matching_rows_by_natural_key_costs_the_same_for_ten_rows_or_a_thousand(org, direct,
                                                                               django_assert_max_num_queries):
    rep = org.user("east_manager")
    account = own_account(org, "east_manager", "Big Account")
    BusinessCustomer.objects.bulk_create([
        BusinessCustomer(name=f"Keyed {i:04d}", channel=direct, account=account, owner=rep,
                         business_unit=rep.primary_unit) for i in range(1010)])

    def run(names):
        rows = [["Name", "Channel", "Account", "Legal Name"]] + [[n, "Direct Sales", "Big Account", "changed"]
                                                                for n in names]
        report = import_csv(BusinessCustomerResource, csv_bytes(rows), rep, dry_run=False)
        assert report.ok and report.update == len(names), errors_of(report)[:3]

    few, _ = count_queries(lambda: run([f"keyed {i:04d}" for i in range(10)]))
    with django_assert_max_num_queries(few + 30):  # SQLite's parameter cap chunks some reads and writes
        run([f"KEYED {i:04d}" for i in range(10, 1010)])
    assert BusinessCustomer.objects.filter(legal_name="changed").count() == 1010


# -- history for Undo --------------------------------------------------------------------------------

def test_every_written_record_has_one_history_row_with_the_reason(org, direct):
    rep = org.user("east_rep")
    reason = "CSV import (job #7)"
    existing = own_customer(org, "east_rep", "Existing", direct, legal_name="before")
    BusinessCustomer.history.filter(id=existing.pk).delete()  # e.g. loaded in bulk: no history yet
    rows = [["Name", "Channel", "Account", "Legal Name", "Email"],
            ["Existing", "Direct Sales", existing.account.name, "after", "x@existing.example"],
            ["Fresh", "Direct Sales", "Fresh Account", "", "f@fresh.example"]]
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), rep, dry_run=False, change_reason=reason)
    assert report.ok and (report.new, report.update) == (1, 1), errors_of(report)
    fresh = BusinessCustomer.objects.get(name="Fresh")
    for model, pk in ((BusinessCustomer, existing.pk), (BusinessCustomer, fresh.pk), (Account, fresh.account_id)):
        ours = model.history.filter(id=pk, history_change_reason=reason)
        assert ours.count() == 1, (model, pk)
        assert ours.get().history_user == rep
    # The updated record's state before the import is its previous history row.
    rows = list(BusinessCustomer.history.filter(id=existing.pk).order_by("history_id"))
    assert [(r.history_change_reason, r.legal_name) for r in rows] == [
        (services.BulkWriter.BEFORE, "before"), (reason, "after")]
    assert fresh.history.get().history_type == "+" and rows[-1].history_type == "~"
    # A record whose newest history row holds its state gets no second baseline.
    rows = [["ID", "Name", "Channel", "Account", "Legal Name"],
            [existing.pk, "Existing", "Direct Sales", existing.account.name, "again"]]
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), rep, dry_run=False,
                        change_reason="CSV import (job #8)")
    assert report.ok and BusinessCustomer.history.filter(id=existing.pk).count() == 3


def test_restore_children_puts_email_and_phone_rows_back_in_step(org, direct):
    rep = org.user("east_rep")
    customer = own_customer(org, "east_rep", "Restored", direct, primary_email="new@x.example")
    CustomerEmailFactory(customer=customer, email="new@x.example", is_primary=True)
    customer.primary_email, customer.primary_phone = "old@x.example", "+1 555 0100"  # as Undo restored them
    BusinessCustomerResource().restore_children([customer])
    assert list(customer.emails.values_list("email", "is_primary")) == [("old@x.example", True)]
    assert list(customer.phones.values_list("phone", "is_primary")) == [("+1 555 0100", True)]

    contact = ContactFactory(owner=rep, business_unit=rep.primary_unit, emails=["now@x.example", "other@x.example"],
                             phones=["+1 555 0199"])
    contact.email, contact.phone = "then@x.example", ""
    ContactResource().restore_children([contact])
    assert list(contact.emails.order_by("-is_primary", "pk").values_list("email", "is_primary")) == [
        ("then@x.example", True), ("now@x.example", False), ("other@x.example", False)]
    assert not contact.phones.exists()


def test_new_customers_get_their_email_and_phone_rows_and_no_empty_groups(org, direct):
    rows = [["Name", "Channel", "Account", "Email", "Phone"], ["Rowed", "Direct Sales", "R", "r@x.example", ""]]
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), org.user("east_rep"), dry_run=False)
    assert report.ok, errors_of(report)
    customer = BusinessCustomer.objects.get(name="Rowed")
    assert list(CustomerEmail.objects.filter(customer=customer).values_list("email", "is_primary")) == [
        ("r@x.example", True)]
    assert not CustomerPhone.objects.filter(customer=customer).exists()
    assert not CustomerGroup.objects.filter(customer=customer).exists()  # they come with a first member


# -- the error report ---------------------------------------------------------------------------------

def test_error_report_has_the_rejected_rows_as_in_the_file(admin, monkeypatch):
    monkeypatch.setattr(services, "KEEP_ERRORS", 3)  # the rest of the errors wait on disk
    body = [["", f"Good {i}", "", "", ""] for i in range(6)]
    for i in (1, 3, 4, 5):
        body[i][2] = f"ghost{i}"
    body[5][3] = "Atlantis"
    data = csv_bytes([["ID", "Name", "Owner", "Business Unit", "Description"]] + body
                     + [["", "Ragged", "", "", "", "extra"]])
    report = import_csv(AccountResource, data, admin)
    assert report.rejected == 5 and len(report.errors) == 6
    assert [e.row for e in report.errors] == [3, 5, 6, 7, 7, 8]
    assert report.errors[4].column == "Business Unit" and report.errors[-1].row == 8
    out = io.BytesIO()
    error_report_csv(io.BytesIO(data), report, out)
    content = out.getvalue()
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0] == ["ID", "Name", "Owner", "Business Unit", "Description", "Error"]
    assert rows[1] == ["", "Good 1", "ghost1", "", "", "Owner: Unknown owner 'ghost1'."]
    assert rows[4] == ["", "Good 5", "ghost5", "Atlantis", "",
                       "Owner: Unknown owner 'ghost5'.; Business Unit: Unknown business unit 'Atlantis'."]
    assert rows[5] == ["", "Ragged", "", "", "", "extra", "Has 6 cells; the header has 5."]
    assert len(rows) == 6


def test_report_counts(org):
    rep = org.user("east_rep")
    kept = own_account(org, "east_rep", "Kept")
    rows = [["ID", "Name", "Owner"], [kept.pk, "Kept", "east_rep"], ["", "New one", ""], ["", "Bad", "ghost"]]
    report = import_csv(AccountResource, csv_bytes(rows), rep)
    assert (report.total, report.new, report.update, report.skip, report.rejected) == (3, 1, 0, 1, 1)
    assert report.mode == "create_update" and not report.written and not report.ok
    assert not Account.objects.filter(name="New one").exists()


def test_a_row_under_a_refused_new_parent_is_refused_too(org, direct, settings):
    settings.CRM_MAX_TREE_DEPTH = 2
    rep = org.user("east_rep")
    top = own_customer(org, "east_rep", "Top", direct)
    own_customer(org, "east_rep", "Middle", direct, parent=top)
    rows = [["Name", "Channel", "Account", "Parent"], ["Deep", "Direct Sales", "T", "Middle"],
            ["Deeper", "Direct Sales", "T", "Deep"]]
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), rep)
    assert [(row, column) for row, column, _ in errors_of(report)] == [(2, "Parent"), (3, "Parent")]
    assert "3 levels deep; at most 2" in report.errors[0].message
    assert report.errors[1].message == "The parent company's row of this file is invalid; correct that row first."


@pytest.mark.parametrize("field_name, texts", [
    ("primary_email", ["a@b.co", "first.last+tag@mail.example.com", "x-y_z@sub-domain.example.org", "A@B.DE",
                       "a..b@x.com", ".a@x.com", "a.@x.com", "a@x", "a@-x.com", "a@x-.com", "a@x.c", "a@x.123",
                       "a b@x.com", "a@x.com\n", "ä@x.com", "a@xn--80ak6aa92e.com", "a@localhost", "@x.com",
                       "a@" + "x" * 64 + ".com", "a@x..com", "a\"b@x.com"]),
    ("website", ["https://example.com", "http://a.b.example.org/path/to-it_~.html", "HTTPS://EXAMPLE.COM/X",
                 "https://example", "https://-example.com", "https://example-.com", "https://exa mple.com",
                 "ftp://example.com", "https://1.2.3.4", "https://example.com:8080/", "https://example.com/a b",
                 "https://" + "a" * 64 + ".com", "https://example.com/?q=1", "https://example.c0m", "https:/x.com",
                 "https://user@example.com", "https://example.com/\n"]),
    ("primary_phone", ["+49 30 1234567", "+1 (555) 010-0100 ext. 12", "call me", "+", "+1 555 0100\n"]),
])
def test_quick_checks_vouch_only_for_what_the_validators_accept(field_name, texts):
    from django.core.exceptions import ValidationError

    from crm.resources import quick_check

    field = BusinessCustomer._meta.get_field(field_name)
    quick = quick_check(field)
    assert quick is not None
    vouched = 0
    for text in texts:
        if quick(text):
            vouched += 1
            field.clean(text, BusinessCustomer())  # must not raise
        else:
            try:
                field.clean(text, BusinessCustomer())
            except ValidationError:
                pass  # the validator says why, as the import reports it
    assert vouched >= 3


def test_a_database_refusal_while_writing_is_a_file_error_and_writes_nothing(org, direct, monkeypatch):
    """A customer of that name committed by someone else after the batch's checks: the
    database's unique constraint refuses the write (COPY on PostgreSQL)."""
    import customers.resources

    own_customer(org, "west_rep", "Raced", direct)
    monkeypatch.setattr(customers.resources, "name_clashes", lambda keys: {})
    rows = [["Name", "Channel", "Account"], ["Fine", "Direct Sales", "A"], ["raced", "Direct Sales", "A"]]
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), org.user("east_rep"), dry_run=False)
    assert not report.written and len(report.file_errors) == 1
    assert report.file_errors[0].startswith("Rows 2-3: ")
    assert not BusinessCustomer.objects.filter(name="Fine").exists()


def test_every_header_error_is_told_at_once(admin):
    report = import_csv(AccountResource, csv_bytes([["Owner", "owner", "Firma"], ["a", "b", "c"]]), admin,
                        mapping={"Firma": "Colour"})
    assert report.file_errors == [
        "The column 'Firma' cannot be mapped to 'Colour': the columns are ID, Name, Owner, Business Unit, Description.",
        "Column(s) given twice: Owner.", "Missing required column(s): Name."]


def test_the_note_of_created_accounts_counts_them_all_and_names_ten(org, direct, settings):
    settings.CRM_IMPORT_BATCH_SIZE = 4
    rows = [["Name", "Channel", "Account"]] + [[f"C {i}", "Direct Sales", f"New Account {i:02d}"] for i in range(25)]
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), org.user("east_rep"))
    assert report.ok, errors_of(report)
    assert report.notes == ["25 accounts will be created: " + ", ".join(f"New Account {i:02d}" for i in range(10))
                            + ", …."]


# -- locks and the preview ---------------------------------------------------------------------------

@pytest.mark.parametrize("by", ["ID", "Name"])
def test_the_write_locks_the_records_it_changes_and_the_preview_locks_nothing(org, direct, by):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    user = org.user("east_rep")
    accounts = [own_account(org, "east_rep", f"Locked {i}") for i in range(3)]
    data = csv_bytes([["ID", "Name", "Description"]]
                     + [[str(a.pk) if by == "ID" else "", a.name, "changed"] for a in accounts])
    statements = {}
    for dry_run in (True, False):
        with CaptureQueriesContext(connection) as ctx:
            report = import_csv(AccountResource, data, user, dry_run=dry_run)
        assert report.ok and report.update == 3, report.errors
        statements[dry_run] = [q["sql"] for q in ctx.captured_queries if 'FROM "accounts_account"' in q["sql"]]
    assert not any("FOR UPDATE" in sql for sql in statements[True])
    locking = [sql for sql in statements[False] if "FOR UPDATE" in sql]
    assert bool(locking) == connection.features.has_select_for_update
    assert all('ORDER BY "accounts_account"."id" ASC' in sql for sql in locking)
    assert set(Account.objects.filter(pk__in=[a.pk for a in accounts]).values_list("description", flat=True)) == \
        {"changed"}


def test_a_preview_writes_no_history_nor_derived_rows(org, direct):
    history_model = BusinessCustomer.history.model
    rep = org.user("east_rep")
    own_account(org, "east_rep", "Acme")
    data = csv_bytes([["Name", "Channel", "Account", "Email", "Phone"],
                      ["Previewed GmbH", "Direct Sales", "Acme", "p@example.com", "+49 30 1234567"]])
    history, emails = history_model.objects.count(), CustomerEmail.objects.count()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        report = import_csv(BusinessCustomerResource, data, rep, dry_run=True)
    assert report.ok and report.new == 1
    written = " ".join(q["sql"] for q in ctx.captured_queries)
    for table in ("customers_historicalbusinesscustomer", "customers_customeremail", "customers_customerphone",
                  "customers_customergroup"):
        assert f'INSERT INTO "{table}"' not in written, table
    report = import_csv(BusinessCustomerResource, data, rep, dry_run=False)
    assert report.ok and report.written
    customer = BusinessCustomer.objects.get(name="Previewed GmbH")
    assert history_model.objects.count() == history + 1 and CustomerEmail.objects.count() == emails + 1
    assert CustomerPhone.objects.filter(customer=customer, is_primary=True).exists()
    assert not CustomerGroup.objects.filter(customer=customer).exists()


def test_the_quick_number_checks_agree_with_the_fields_own():
    """number_check vouches for exactly the values Field.clean accepts (Decimal and int)."""
    from decimal import Decimal

    from django.core.exceptions import ValidationError
    from hypothesis import given, settings as hypothesis_settings, strategies as st

    from crm.resources import quick_check

    fields = [BusinessCustomer._meta.get_field(name) for name in
              ("lifetime_value", "purchase_limit", "approval_expiry_days", "employees")]
    checks = [(f, quick_check(f)) for f in fields]
    assert all(check is not None for _, check in checks)
    decimals = st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e18"), max_value=Decimal("1e18"),
                           places=None) | st.sampled_from([Decimal("0"), Decimal("0E+3"), Decimal("1E+14"),
                                                           Decimal("99999999999999.99"), Decimal("0.001"),
                                                           Decimal("100000000000000"), Decimal("-0.00")])
    values = decimals | st.integers(min_value=-10, max_value=2**33)

    @hypothesis_settings(max_examples=400, deadline=None)
    @given(values)
    def agree(value):
        for field, check in checks:
            if type(value) is not (Decimal if field.get_internal_type() == "DecimalField" else int):
                continue
            try:
                field.clean(value, None)
                valid = True
            except ValidationError:
                valid = False
            assert check(value) == valid, (field.name, value)

    agree()


AWKWARD_NAMES = ['Quote "Q" AG', "Back\\slash KG", "O'Brien Ltd", "NULL", "Comma, Inc", "{Braces}", "Ünïcode ß GmbH",
                 "Tab\tInside", "Semi;colon", "Percent %s SA"]


@pytest.mark.django_db
def test_the_any_lookup_finds_what_in_finds():
    """`__any` (one array parameter on PostgreSQL) answers as `__in` for every kind of text,
    for ids, through Lower() and through a relation's id; None is ignored and none is nothing."""
    from django.db.models.functions import Lower

    accounts = [AccountFactory(name=name) for name in AWKWARD_NAMES + ["Plain"]]
    wanted = AWKWARD_NAMES + ["missing"]
    assert set(Account.objects.filter(name__any=wanted)) == set(Account.objects.filter(name__in=wanted)) == set(
        accounts[:-1])
    lower = [name.lower() for name in wanted]
    lowered = Account.objects.annotate(k=Lower("name"))
    assert set(lowered.filter(k__any=lower)) == set(lowered.filter(k__in=lower)) >= {
        a for a in accounts[:-1] if a.name.isascii()}  # SQLite lowers ASCII only
    pks = [a.pk for a in accounts[:3]]
    assert set(Account.objects.filter(pk__any=pks + [None])) == set(accounts[:3])
    assert not Account.objects.filter(pk__any=[]).exists()
    assert set(Account.objects.filter(owner_id__any=[accounts[0].owner_id])) == set(
        Account.objects.filter(owner_id=accounts[0].owner_id))


def test_awkward_names_match_their_records_by_natural_key(org, direct):
    """Names with quotes, backslashes, commas, braces or the word NULL find their customer."""
    rep = org.user("east_rep")
    # ASCII: SQLite's LOWER() knows no other letters, so there "Ü" never matches "ü".
    existing = [own_customer(org, "east_rep", name, direct) for name in AWKWARD_NAMES if name.isascii()]
    rows = [["Name", "Channel", "Account", "Legal Name"]] + [
        [c.name.upper(), "Direct Sales", c.account.name, f"Legal {i}"] for i, c in enumerate(existing)]
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), rep, dry_run=False)
    assert report.ok and (report.new, report.update) == (0, len(existing)), errors_of(report)
    assert [c.legal_name for c in BusinessCustomer.objects.filter(pk__in=[c.pk for c in existing]).order_by("pk")] == [
        f"Legal {i}" for i in range(len(existing))]
