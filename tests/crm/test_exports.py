"""Exports (crm.exports): the compiled paths write exactly what the Resources' export_row
writes, for every resource with an export; XLSX keeps numbers and dates; the view's formats."""
import csv
import io
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

import accounts.views  # noqa: F401  (the entities declare themselves)
import approvals.views  # noqa: F401
import channels.views  # noqa: F401
import contacts.views  # noqa: F401
import customers.views  # noqa: F401
from accounts.models import Account
from activities.models import Activity
from activities.resources import ActivityResource
from approvals.models import Status
from contacts.models import Contact
from crm import exports
from crm.models import Role
from crm.resources import FORMULA_PREFIXES, neutralise
from crm.services import share_record
from crm.views import ENTITIES
from customers.models import Location
from tests.approvals.factories import ApprovalFactory, PurchaseRequestFactory, b2b_customer, member
from tests.contacts.factories import ContactFactory, ContactGroupFactory
from tests.customers.factories import ActivityFactory, BusinessCustomerFactory, LocationFactory
from tests.factories import AccountFactory, BusinessUnitFactory, ChannelFactory, UserFactory
from tests.toolkit import count_queries

POSTGRES = connection.vendor == "postgresql"

# Cells a CSV writer or a spreadsheet could get wrong: formula prefixes, quotes, separators,
# line breaks, unicode, surrounding whitespace, the import's own quote.
TRICKY = ["=SUM(A1:A9)", "+49 30 1234", "-5 minus", "@cmd", "\tTabbed", "\rReturn", 'Say "hi", then go',
          "Two\nlines", "CR\r\nLF", "Ünïcødé ✓ 日本語", "  padded  ", "'=quoted", "semi;colon"]


def entity(namespace):
    return next(e for e in ENTITIES if e.namespace == namespace)


def exported(resource, queryset, method=None):
    export = exports.Export(resource, queryset, method=method)
    return export.method, b"".join(export.csv_chunks())


def assert_same_bytes(resource, queryset, fast=None):
    """The compiled export of `queryset` gives the bytes of the Resource's export_row path;
    on PostgreSQL both compiled paths (COPY and values) do. Returns the parsed rows."""
    _, expected = exported(resource, queryset, "python")
    method, compiled = exported(resource, queryset)
    assert method == (fast or ("copy" if POSTGRES else "values"))
    assert compiled == expected
    if POSTGRES and method == "copy":
        assert exported(resource, queryset, "values")[1] == expected
    rows = list(csv.reader(io.StringIO(expected.decode("utf-8")[1:], newline="")))
    assert rows[0] == resource.headers() and len(rows) > 1
    return rows


def grid_export(namespace, user, method=None, params=None):
    return exported(entity(namespace).resource_class(user=user),
                    exports.export_queryset(entity(namespace), params or {}, user), method)


# -- the records ------------------------------------------------------------------------------------

@pytest.fixture
def tricky(org, settings):
    """Records of every entity with awkward values, some of them hidden from east_manager
    (west_rep's) where a column depends on what the exporting user may see."""
    settings.TIME_ZONE = "America/New_York"  # moments are written in local time
    timezone.activate("America/New_York")
    rep, west = org.user("east_rep"), org.user("west_rep")
    channel = ChannelFactory(name="Direct Sales")
    ChannelFactory(name="=Web, \"Store\"", type="commerce", entities="")
    ChannelFactory(name="Ünïcødé Märkte", status="inactive", entities="business_customer,unknown_code,")

    hidden_parent = BusinessCustomerFactory(name="=Hidden Parent", owner=west, channel=channel)
    visible_parent = BusinessCustomerFactory(name="+Visible Parent", owner=rep, channel=channel)
    for i, text in enumerate(TRICKY):
        account = AccountFactory(name=f"{text} account", description=TRICKY[-1 - i], owner=rep,
                                 business_unit=rep.primary_unit)
        BusinessCustomerFactory(
            name=text, channel=channel, account=account, owner=rep, legal_name=TRICKY[-1 - i], tax_number="",
            billing_street=text, billing_country="" if i % 2 else "DE", website="https://example.com/?a=1,b=2",
            lifetime_value=Decimal("-12.50") if i % 3 == 0 else Decimal("1234567.05"),
            purchase_limit=None if i % 2 else Decimal("10000.00"), monthly_budget=Decimal("0.00"),
            approval_expiry_days=7 + i, parent=[None, hidden_parent, visible_parent][i % 3],
            primary_email=f"c{i}@example.com")
    AccountFactory(name="Twin", owner=rep, business_unit=rep.primary_unit)

    groups = [ContactGroupFactory(name=n, description=d) for n, d in
              [("Équipe", "=cmd"), ("été", ""), ("beta", "b"), ("Alpha", "a"), ("ALPHA2", "")]]
    twins = [AccountFactory(name="Twin", owner=rep, business_unit=rep.primary_unit) for _ in range(2)]
    hidden_account = AccountFactory(name="-Hidden account", owner=west, business_unit=west.primary_unit)
    ContactFactory(first_name="  Ann  ", middle_name="\t", last_name="=Lee", name_prefix="Dr.", owner=rep,
                   emails=["ann@example.com", "=ann@example.com", "ann2@example.com"], phones=["+1 555", "-2"],
                   accounts=[twins[1], hidden_account, twins[0]], groups=groups,
                   address={"street": "Main St. 1,\n2nd floor", "city": "@City", "postal_code": "0123",
                            "region": "", "country": ""})
    ContactFactory(first_name="", last_name="", email="only@example.com", owner=rep)
    ContactFactory(first_name="Ünï", last_name="Cødé", owner=rep, address={"street": "", "city": "Köln",
                                                                            "postal_code": "", "region": "NRW",
                                                                            "country": "DE"})

    shop = b2b_customer(owner=rep, name="Shop, \"Inc\"", channel=channel, limit=1000)
    web = ChannelFactory(name="Web Store", type="commerce")
    BusinessCustomerFactory(name="shop, \"inc\"", channel=web, owner=rep)         # a namesake he sees
    lonely = b2b_customer(owner=rep, name="Lonely", channel=channel)
    BusinessCustomerFactory(name="LONELY", channel=web, owner=west)                # a namesake hidden from him
    LocationFactory(customer=shop, name="=HQ", type=Location.Type.HEADQUARTERS, tags=["shipping", "billing"],
                    street="Hafen 1\nTor 2", country="")
    LocationFactory(customer=lonely, name="Depot", tags=[], email="-depot@example.com")

    nameless = member(shop, "requester", email="nameless@example.com", first_name=" ", last_name="")
    anonymous = member(shop, "requester", first_name="", last_name="")
    named = member(shop, "admin", first_name="Zoë", last_name="O'Neil, Jr.")
    for i, requester in enumerate([nameless, anonymous, named]):
        PurchaseRequestFactory(customer=shop, requester=requester, title=TRICKY[i], total=Decimal("-1.50") * i,
                               comment=TRICKY[-1 - i])
    now = timezone.now()
    ApprovalFactory(purchase_request=PurchaseRequestFactory(customer=shop, requester=nameless, approved=False,
                                                            title="@approve"),
                    expires_at=now - timedelta(hours=1))  # Pending past its expiry: Expired
    ApprovalFactory(purchase_request=PurchaseRequestFactory(customer=shop, requester=anonymous, approved=False),
                    status=Status.DECLINED, decided_by=named, expires_at=datetime(2031, 1, 2, 3, 4, tzinfo=dt_timezone.utc))

    ActivityFactory(target=shop, kind=Activity.Kind.CALL, subject="=call", direction="in", duration=15,
                    occurred_at=datetime(2030, 6, 30, 23, 30, 59, tzinfo=dt_timezone.utc), body="Line\nbreak")
    ActivityFactory(target=shop, kind=Activity.Kind.TASK, subject="", due_date=date(2030, 1, 2), done=True)
    ActivityFactory(target=visible_parent, kind=Activity.Kind.EMAIL, to_address="x@example.com", duration=None)

    Role.objects.create(name="=Role, \"one\"", description="Two\nlines", administers=True)
    unit = BusinessUnitFactory(name="Ünit ✓")
    UserFactory(username="zoe", first_name="-Zoë", last_name="", role=["Manager", "Sales Representative"],
                units=[unit, org.unit("East")])
    UserFactory(username="nobody", first_name="", last_name="=x", is_active=False)
    yield
    timezone.deactivate()


ENTITY_CASES = ["channels", "accounts", "customers", "contacts", "contact_groups", "locations", "purchase_requests",
                "approvals"]


@pytest.mark.parametrize("namespace", ENTITY_CASES)
@pytest.mark.parametrize("viewer", ["admin", "east_manager", "east_rep"])
def test_compiled_export_is_byte_identical(org, tricky, namespace, viewer):
    user = org.user(viewer)
    ent = entity(namespace)
    queryset = exports.export_queryset(ent, {}, user)
    resource = ent.resource_class(user=user)
    # Channels' Entities are rendered in Python (a list of codes): the values path, never COPY.
    rows = assert_same_bytes(resource, queryset, fast="values" if namespace == "channels" else None)
    for prefix in FORMULA_PREFIXES:  # every cell starting with a formula character got its quote
        assert not any(cell.startswith(prefix) for row in rows[1:] for cell in row), prefix


@pytest.mark.parametrize("viewer", ["admin", "east_manager"])
@pytest.mark.parametrize("sort", ["name", "-name", "owner", "-created_at"])
def test_compiled_export_follows_the_grid_sort(org, tricky, viewer, sort):
    user = org.user(viewer)
    for namespace in ("customers", "accounts"):
        queryset = exports.export_queryset(entity(namespace), {"sort": sort}, user)
        assert_same_bytes(entity(namespace).resource_class(user=user), queryset)


def test_administration_exports_are_byte_identical(org, tricky):
    admin = org.user("admin")
    for namespace in ("roles", "users"):
        ent = entity(namespace)
        rows = assert_same_bytes(ent.resource_class(user=admin), exports.export_queryset(ent, {}, admin))
        assert len(rows) > 2
    users = dict((r[1], r) for r in assert_same_bytes(
        entity("users").resource_class(user=admin), exports.export_queryset(entity("users"), {}, admin))[1:])
    assert users["zoe"][2] == "'-Zoë"
    assert users["zoe"][6] == "East;Ünit ✓" and users["zoe"][7] == "Manager;Sales Representative"


@pytest.mark.parametrize("viewer", ["admin", "east_manager"])
def test_activities_export_is_byte_identical(org, tricky, viewer):
    """Activities export from the admin: the same compiled path over their queryset."""
    rows = assert_same_bytes(ActivityResource(user=org.user(viewer)), Activity.objects.order_by("pk"))
    call = next(r for r in rows if r[2] == "'=call")
    assert call[7] == "2030-06-30 19:30:59"  # in America/New_York
    assert call[5] == "15" and call[1] == "Call" and call[4] == "Inbound" and call[12].isdigit()
    task = next(r for r in rows if r[1] == "Task")
    assert task[8] == "2030-01-02" and task[9] == "1"


def test_what_depends_on_the_user_stays_his(org, tricky):
    """Parent, a location's customer and a contact's accounts in the compiled export: what the
    exporting user may see decides, as in the Python path."""
    def rows(namespace, viewer):
        method, data = grid_export(namespace, org.user(viewer))
        return list(csv.DictReader(io.StringIO(data.decode("utf-8")[1:], newline="")))

    parents = {r["Name"]: r["Parent"] for r in rows("customers", "east_manager")}
    assert parents[neutralise(TRICKY[1])] == "" and parents[neutralise(TRICKY[2])] == "'+Visible Parent"
    assert {r["Name"]: r["Parent"] for r in rows("customers", "admin")}[neutralise(TRICKY[1])] == "'=Hidden Parent"

    located = {r["Name"]: r["Customer"] for r in rows("locations", "east_manager")}
    assert located == {"'=HQ": 'Shop, "Inc" (Direct Sales)', "Depot": "Lonely"}
    assert {r["Name"]: r["Customer"] for r in rows("locations", "admin")}["Depot"] == "Lonely (Direct Sales)"
    hq = next(r for r in rows("locations", "east_manager") if r["Name"] == "'=HQ")
    assert hq["Tags"] == "billing; shipping" and hq["Type"] == "Headquarters" and hq["Street"] == "Hafen 1\nTor 2"

    ann = next(r for r in rows("contacts", "east_manager") if r["Last Name"] == "'=Lee")
    assert ann["Accounts"] == "Twin; Twin" and ann["Groups"] == "Alpha; ALPHA2; beta; Équipe; été"
    assert ann["Other Emails"] == "'=ann@example.com; ann2@example.com" and ann["Other Phones"] == "'-2"
    assert ann["Street"] == "Main St. 1,\n2nd floor" and ann["City"] == "'@City" and ann["Country"] == ""
    admin_ann = next(r for r in rows("contacts", "admin") if r["Last Name"] == "'=Lee")
    assert admin_ann["Accounts"] == "'-Hidden account; Twin; Twin"


def test_requesters_are_named_as_on_their_page(org, tricky):
    admin = org.user("admin")
    _, data = grid_export("purchase_requests", admin)
    requesters = {r["Title"]: r["Requester"] for r in csv.DictReader(io.StringIO(data.decode()[1:], newline=""))}
    anonymous = Contact.objects.get(first_name="", last_name="", email="")
    assert requesters["'=SUM(A1:A9)"] == "nameless@example.com"
    assert requesters["'+49 30 1234"] == f"Contact #{anonymous.pk}"
    assert requesters["'-5 minus"] == "Zoë O'Neil, Jr."
    _, data = grid_export("approvals", admin)
    decisions = list(csv.DictReader(io.StringIO(data.decode()[1:], newline="")))
    assert sorted(a["Status"] for a in decisions) == ["Declined", "Expired"]
    declined = next(a for a in decisions if a["Status"] == "Declined")
    assert declined["Decided By"] == "Zoë O'Neil, Jr." and declined["Expires"] == "2031-01-01 22:04"
    assert next(a for a in decisions if a["Status"] == "Expired")["Decided By"] == ""


def test_an_export_without_rows_has_its_header(org):
    user = org.user("east_rep")
    for method in ["python", "values"] + (["copy"] if POSTGRES else []):
        _, data = grid_export("accounts", user, method, {"q": "nothing-matches-this"})
        assert data == "\ufeffID,Name,Owner,Business Unit,Description\r\n".encode()


def test_a_resource_with_an_uncompilable_column_takes_the_python_path(org):
    from crm.resources import CRMResource

    class Odd(type(entity("accounts").resource_class(user=None))):
        def dehydrate_description(self, obj):
            return obj.description.upper()

    AccountFactory(name="odd", description="quiet", owner=org.user("east_rep"))
    assert exports.compile_columns(Odd(user=None)) is None
    method, data = exported(Odd(user=None), Account.objects.order_by("pk"))
    assert method == "python" and b",QUIET\r\n" in data
    assert isinstance(Odd(user=None), CRMResource)


def test_whitespace_is_pythons():
    assert exports.WHITESPACE == "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


def test_strftime_formats_that_sql_cannot_write_are_left_to_python():
    assert exports.to_char_format("%Y-%m-%d %H:%M") == "YYYY-MM-DD HH24:MI"
    assert exports.to_char_format("%d.%m.%Y") == "DD.MM.YYYY"
    assert exports.to_char_format("%b %d") is None and exports.to_char_format("at %H") is None


# -- write_export, the view and XLSX ---------------------------------------------------------------

def test_write_export_writes_the_grids_rows_and_reports_progress(org, settings):
    rep = org.user("east_rep")
    Account.objects.bulk_create([Account(name=f"Many {i:05d}", owner=rep, business_unit=rep.primary_unit)
                                 for i in range(12_000)])
    AccountFactory(name="Other", owner=rep)
    seen = []
    out = io.BytesIO()
    written = exports.write_export(entity("accounts"), {"q": "Many", "sort": "-name"}, rep, "csv", out,
                                   progress=lambda done, total: seen.append((done, total)))
    assert written == 12_000
    lines = out.getvalue().decode("utf-8").splitlines()
    assert len(lines) == 12_001 and lines[1].split(",")[1] == "Many 11999" and lines[-1].split(",")[1] == "Many 00000"
    # Every few thousand rows (a batch at a time), and once at the end.
    assert len(seen) >= 2 and seen[0][0] <= exports.PROGRESS_EVERY + exports.CHUNK_ROWS
    assert {t for _, t in seen} == {12_000} and seen[-1] == (12_000, 12_000)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    with pytest.raises(ValueError):
        exports.write_export(entity("accounts"), {}, rep, "pdf", io.BytesIO())


def test_an_abandoned_download_leaves_the_connection_usable(org):
    rep = org.user("east_rep")
    Account.objects.bulk_create([Account(name=f"Row {i}", owner=rep, business_unit=rep.primary_unit)
                                 for i in range(3 * exports.CHUNK_ROWS)])
    chunks = exports.csv_stream(entity("accounts"), {}, rep)
    next(chunks), next(chunks)  # the header, then the first rows: the query is running
    chunks.close()  # the client went away
    assert Account.objects.filter(name="Row 1").count() == 1


def test_export_count(org):
    rep = org.user("east_rep")
    for i in range(5):
        AccountFactory(name=f"Counted {i}", owner=rep)
    AccountFactory(name="Counted hidden", owner=org.user("west_rep"))
    assert exports.export_count(entity("accounts"), {"q": "Counted"}, rep) == 5
    assert exports.export_count(entity("accounts"), {"q": "Counted"}, rep, limit=2) == 3


def xlsx_rows(response):
    assert response.status_code == 200
    assert response["Content-Type"] == exports.CONTENT_TYPES["xlsx"]
    assert 'filename="' in response["Content-Disposition"] and ".xlsx" in response["Content-Disposition"]
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    return [list(row) for sheet in workbook.worksheets for row in sheet.iter_rows(values_only=True)]


def test_view_exports_xlsx_with_numbers_dates_and_neutralised_text(org, client_for, tricky):
    client = client_for(org.user("east_manager"))
    rows = xlsx_rows(client.get(reverse("customers:export"), {"format": "xlsx", "sort": "name"}))
    headers, body = rows[0], rows[1:]
    _, csv_data = grid_export("customers", org.user("east_manager"), params={"sort": "name"})
    csv_rows = list(csv.reader(io.StringIO(csv_data.decode()[1:], newline="")))
    assert headers == csv_rows[0]
    assert [r[0] for r in body] == [int(r[0]) for r in csv_rows[1:]], "the same rows in the same order"
    by_name = {r[1]: dict(zip(headers, r)) for r in body}
    formula = by_name["'=SUM(A1:A9)"]
    assert formula["Lifetime Value"] == Decimal("-12.50") or formula["Lifetime Value"] == -12.5
    assert isinstance(formula["ID"], int) and formula["Approval Expiry Days"] == 7
    assert formula["Purchase Limit"] == 10000 and formula["Parent"] is None
    assert by_name["'+49 30 1234"]["Parent"] is None and by_name["'-5 minus"]["Parent"] == "'+Visible Parent"
    assert by_name["Two\nlines"]["Billing Street"] == "Two\nlines"
    assert not any(isinstance(v, str) and v.startswith(FORMULA_PREFIXES) for r in body for v in r)

    rows = xlsx_rows(client.get(reverse("approvals:export"), {"format": "xlsx"}))
    approval = dict(zip(rows[0], rows[1]))
    assert isinstance(approval["Expires"], datetime) and approval["Expires"].tzinfo is None


def test_xlsx_of_a_restricted_user_leaves_hidden_records_out(org, client_for):
    rep, west = org.user("east_rep"), org.user("west_rep")
    AccountFactory(name="Mine", owner=rep)
    hidden = AccountFactory(name="Hidden", owner=west)
    shared = AccountFactory(name="Shared", owner=west)
    share_record(shared, west, rep, "view")
    rows = xlsx_rows(client_for(rep).get(reverse("accounts:export"), {"format": "xlsx", "sort": "name"}))
    assert [r[1] for r in rows[1:]] == ["Mine", "Shared"] and hidden.pk not in [r[0] for r in rows]


def test_xlsx_drops_what_a_worksheet_cannot_hold_then_neutralises(org, client_for):
    rep = org.user("east_rep")
    AccountFactory(name="\x01=cmd", description="bell\x07 ok", owner=rep)
    rows = xlsx_rows(client_for(rep).get(reverse("accounts:export"), {"format": "xlsx"}))
    assert rows[1][1] == "'=cmd" and rows[1][4] == "bell ok"


def test_view_formats(org, client_for):
    client = client_for(org.user("east_rep"))
    AccountFactory(name="Acme", owner=org.user("east_rep"))
    default = client.get(reverse("accounts:export"))
    explicit = client.get(reverse("accounts:export"), {"format": "csv"})
    assert default["Content-Type"] == explicit["Content-Type"] == "text/csv; charset=utf-8"
    assert b"".join(default.streaming_content) == b"".join(explicit.streaming_content)
    refused = client.get(reverse("accounts:export"), {"format": "pdf"})
    assert refused.status_code == 400 and "pdf" in refused.content.decode() and "xlsx" in refused.content.decode()
    empty = xlsx_rows(client.get(reverse("accounts:export"), {"format": "xlsx", "q": "no-such-account"}))
    assert empty == [["ID", "Name", "Owner", "Business Unit", "Description"]]


def test_grid_offers_both_exports_with_its_query(org, client_for):
    page = client_for(org.user("east_rep")).get(reverse("accounts:list"), {"q": "x", "sort": "name"}).content.decode()
    assert 'data-testid="export-xlsx"' in page
    assert "/accounts/export/?q=x&amp;sort=name&amp;format=xlsx" in page or \
        "/accounts/export/?sort=name&amp;q=x&amp;format=xlsx" in page


def test_xlsx_continues_on_a_new_sheet_past_a_sheets_rows(org, monkeypatch):
    rep = org.user("east_rep")
    for i in range(5):
        AccountFactory(name=f"Row {i}", owner=rep)
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 2)
    out = io.BytesIO()
    assert exports.write_export(entity("accounts"), {"sort": "name"}, rep, "xlsx", out) == 5
    workbook = load_workbook(io.BytesIO(out.getvalue()))
    sheets = [[r[1] for r in s.iter_rows(values_only=True)] for s in workbook.worksheets]
    assert sheets == [["Name", "Row 0", "Row 1"], ["Name", "Row 2", "Row 3"], ["Name", "Row 4"]]


def test_xlsx_queries_do_not_grow_with_rows(org, django_assert_num_queries):
    manager, rep = org.user("east_manager"), org.user("east_rep")

    def run():
        return exports.write_export(entity("contacts"), {}, manager, "xlsx", io.BytesIO())

    for i in range(3):
        ContactFactory(owner=rep, emails=[f"a{i}@example.com", f"b{i}@example.com"], accounts=[AccountFactory(owner=rep)])
    run()
    few, _ = count_queries(run)
    for i in range(60):
        ContactFactory(owner=rep, emails=[f"c{i}@example.com"], accounts=[AccountFactory(owner=rep)])
    with django_assert_num_queries(few):
        assert run() == 63


def xlsx_of(resource, queryset, method=None):
    """(the Export, the workbook's rows as openpyxl reads them, moments to the millisecond)."""
    export, out = exports.Export(resource, queryset, method=method), io.BytesIO()
    export.write_xlsx(out, "Sheet")
    rows = [[v.replace(microsecond=v.microsecond // 1000 * 1000) if isinstance(v, datetime) else v for v in row]
            for sheet in load_workbook(io.BytesIO(out.getvalue())).worksheets
            for row in sheet.iter_rows(values_only=True)]
    return export, rows


@pytest.mark.skipif(not POSTGRES, reason="the database writes the worksheet XML on PostgreSQL only")
@pytest.mark.parametrize("namespace", ENTITY_CASES + ["roles", "users", "activities"])
def test_xlsx_written_by_the_database_reads_as_the_python_cells(org, tricky, namespace):
    """The COPY path renders each row's XML in SQL: what a spreadsheet reads is what the
    values path's Python cells give, tricky text, numbers, dates and moments included."""
    admin = org.user("admin")
    if namespace == "activities":
        resource, queryset = ActivityResource(user=admin), Activity.objects.order_by("pk")
    else:
        resource, queryset = entity(namespace).resource_class(user=admin), exports.export_queryset(entity(namespace), {}, admin)
    _, expected = xlsx_of(resource, queryset, "values")
    export, rows = xlsx_of(resource, queryset)
    assert export.method == ("values" if namespace == "channels" else "copy")
    assert namespace == "channels" or all(c.xlsx_sql for c in export.columns), "every cell rendered in SQL"
    assert len(rows) > 1 and rows == expected


@pytest.mark.skipif(not POSTGRES, reason="the database writes the worksheet XML on PostgreSQL only")
def test_xlsx_written_by_the_database_keeps_types_and_neutralises(org, tricky):
    rows = xlsx_of(entity("customers").resource_class(user=org.user("admin")),
                   exports.export_queryset(entity("customers"), {"sort": "name"}, org.user("admin")))[1]
    by_name = {r[1]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert by_name["'=SUM(A1:A9)"]["Lifetime Value"] == -12.5 and isinstance(by_name["'=SUM(A1:A9)"]["ID"], int)
    assert by_name["Two\nlines"]["Billing Street"] == "Two\nlines" and by_name["'\rReturn"]["Name"] == "'\rReturn"
    assert by_name["CR\r\nLF"]["Billing Street"] == "CR\r\nLF" and "Ünïcødé ✓ 日本語" in by_name
