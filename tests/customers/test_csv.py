"""Customer CSV: the exact columns, the round trip, account creation and the row rules."""
from decimal import Decimal

import pytest

import customers.views  # noqa: F401  (declares the entity)
from accounts.models import Account
from channels.models import Channel
from crm.services import import_csv
from customers.models import BusinessCustomer, CustomerEmail, CustomerPhone
from customers.resources import BusinessCustomerResource
from tests.factories import AccountFactory, ChannelFactory
from tests.toolkit import confirm, csv_bytes, export_csv, report_of, row_errors, upload

from .factories import BusinessCustomerFactory, CustomerEmailFactory, CustomerPhoneFactory

COLUMNS = ["ID", "Name", "Channel", "Account", "Owner", "Business Unit", "Legal Name", "Tax Number", "Email", "Phone",
           "Website", "Billing Street", "Billing City", "Billing Postal Code", "Billing Region", "Billing Country",
           "Shipping Street", "Shipping City", "Shipping Postal Code", "Shipping Region", "Shipping Country",
           "Lifetime Value", "Currency", "Parent", "Purchase Limit", "Monthly Budget", "Approval Expiry Days"]


@pytest.fixture
def direct(db):
    return ChannelFactory(name="Direct Sales")


def run(user, rows, dry_run=True, mode="create_update"):
    return import_csv(BusinessCustomerResource, csv_bytes(rows), user, dry_run=dry_run, mode=mode)


def errors_of(report):
    return [(e.row, e.column, e.message) for e in report.errors]


def test_columns_of_export_and_template(org, client_for, direct):
    client = client_for(org.user("east_rep"))
    headers, _ = export_csv(client, "customers")
    assert headers == COLUMNS
    template = client.get("/customers/import/template.csv").content.decode("utf-8-sig").strip()
    assert template.split(",") == COLUMNS


def test_round_trip_changes_nothing(org, client_for, direct):
    manager = org.user("east_manager")
    web = ChannelFactory(name="Web Store", type="commerce")
    for i, owner in enumerate(["east_manager", "east_rep", "east_rep2", "north_rep"]):
        user = org.user(owner)
        customer = BusinessCustomerFactory(
            name=f"Round {i}", owner=user, business_unit=user.primary_unit, channel=[direct, web][i % 2],
            legal_name=f"Round {i} GmbH", tax_number=f"DE{i}123", website="https://round.example",
            billing_street="Unter den Linden 1", billing_city="Berlin", billing_postal_code="10117",
            billing_region="Berlin", billing_country="DE", shipping_country="AT", shipping_city="Wien",
            lifetime_value=Decimal("1234.50") * i, currency="EUR",
            primary_email=f"r{i}@round.example", primary_phone=f"+49 30 {i}000",
        )
        CustomerEmailFactory(customer=customer, email=f"r{i}@round.example", is_primary=True)
        CustomerEmailFactory(customer=customer, email=f"other{i}@round.example")
        CustomerPhoneFactory(customer=customer, phone=f"+49 30 {i}000", is_primary=True)
    BusinessCustomerFactory(name="=HYPERLINK(\"x\")", owner=manager, business_unit=manager.primary_unit,
                            channel=direct)  # formula-neutralised on export, restored on import
    Channel.objects.filter(pk=web.pk).update(status="inactive")  # its customers still round-trip

    client = client_for(manager)
    headers, rows = export_csv(client, "customers")
    assert len(rows) == 5
    row = dict(zip(headers, next(r for r in rows if r[1] == "Round 1")))
    assert row["Billing Country"] == "DE" and row["Shipping Country"] == "AT"
    assert row["Lifetime Value"] == "1234.50" and row["Currency"] == "EUR"
    assert row["Email"] == "r1@round.example" and row["Phone"] == "'+49 30 1000"  # neutralised
    assert row["Owner"] == "east_rep" and row["Business Unit"] == "East" and row["Account"] == "Round 1"

    data = csv_bytes([headers] + rows)
    response = upload(client, "customers", data)
    report = report_of(response)
    assert report_of(response).ok, row_errors(response)
    assert (report.new, report.update, report.skip) == (0, 0, 5)
    assert report.notes == []
    confirm(client, "customers", response)
    assert CustomerEmail.objects.count() == 8 and CustomerPhone.objects.count() == 4


def test_unknown_accounts_are_created_and_announced(org, client_for, direct):
    rep = org.user("east_rep")
    west_account = AccountFactory(name="Westwind", owner=org.user("west_rep"), business_unit=org.unit("West"))
    mine = AccountFactory(name="Known Ltd", owner=rep, business_unit=org.unit("East"))
    rows = [["ID", "Name", "Channel", "Account"],
            ["", "Alpha", "Direct Sales", "Fresh Start"], ["", "Beta", "direct sales", "fresh start"],
            ["", "Gamma", "Direct Sales", "Westwind"],   # a name the rep may not see: not matched, a new one
            ["", "Delta", "Direct Sales", "known ltd"]]
    client = client_for(rep)
    response = upload(client, "customers", csv_bytes(rows))
    report = report_of(response)
    assert report_of(response).ok, row_errors(response)
    assert report.new == 4
    assert report.notes == ["2 accounts will be created: Fresh Start, Westwind."]
    assert not Account.objects.filter(name="Fresh Start").exists(), "validation writes nothing"

    assert report_of(confirm(client, "customers", response)).written
    fresh = Account.objects.get(name="Fresh Start")
    assert (fresh.owner, fresh.business_unit) == (rep, org.unit("East"))
    assert set(fresh.customers.values_list("name", flat=True)) == {"Alpha", "Beta"}
    gamma = BusinessCustomer.objects.get(name="Gamma")
    assert gamma.account != west_account and gamma.account.owner == rep
    assert not west_account.customers.exists()
    assert BusinessCustomer.objects.get(name="Delta").account == mine


def test_row_errors(org, direct):
    rep = org.user("east_rep")
    ChannelFactory(name="Old Fair", status="inactive")
    ChannelFactory(name="Support Desk", entities="")
    BusinessCustomerFactory(name="Taken", owner=rep, business_unit=org.unit("East"), channel=direct)
    rows = [["ID", "Name", "Channel", "Account", "Owner", "Business Unit", "Email", "Phone", "Billing Country",
             "Lifetime Value", "Currency"],
            ["", "Ok", "Direct Sales", "Acc", "", "", "", "", "Germany", "1,234.50", ""],
            ["", "No channel", "Nowhere", "Acc", "", "", "", "", "", "", ""],
            ["", "Inactive", "Old Fair", "Acc", "", "", "", "", "", "", ""],
            ["", "Not enabled", "Support Desk", "Acc", "", "", "", "", "", "", ""],
            ["", "Nobody", "Direct Sales", "Acc", "ghost", "", "", "", "", "", ""],
            ["", "No unit", "Direct Sales", "Acc", "", "Atlantis", "", "", "", "", ""],
            ["", "taken", "Direct Sales", "Acc", "", "", "", "", "", "", ""],
            ["", "Ok", "Direct Sales", "Acc", "", "", "", "", "", "", ""],
            ["", "Bad", "Direct Sales", "Acc", "", "", "not-an-email", "call me", "Narnia", "1234,50", "XYZ"],
            ["", "Placed", "Direct Sales", "Acc", "west_rep", "West", "", "", "", "", ""]]
    report = run(rep, rows, mode="create")  # add only: "taken" would otherwise update Taken
    by_row = {}
    for row, column, message in errors_of(report):
        by_row.setdefault(row, {})[column] = message
    assert 2 not in by_row
    assert "Unknown channel 'Nowhere'" in by_row[3]["Channel"]
    assert "inactive or does not enable" in by_row[4]["Channel"]
    assert "inactive or does not enable" in by_row[5]["Channel"]
    assert "Unknown owner 'ghost'" in by_row[6]["Owner"]
    assert "Unknown business unit 'Atlantis'" in by_row[7]["Business Unit"]
    assert "Taken" in by_row[8]["Name"] and "ID" in by_row[8]["Name"]
    assert "appears twice" in by_row[9]["Name"]
    assert set(by_row[10]) == {"Email", "Phone", "Billing Country", "Lifetime Value", "Currency"}
    assert "Owner" in by_row[11]
    assert not report.written and not BusinessCustomer.objects.exclude(name="Taken").exists()


def test_email_and_phone_columns_set_the_primary_rows(org, direct):
    rep = org.user("east_rep")
    a = BusinessCustomerFactory(name="A", owner=rep, business_unit=org.unit("East"), channel=direct,
                                primary_email="a1@x.example")
    CustomerEmailFactory(customer=a, email="a1@x.example", is_primary=True)
    CustomerEmailFactory(customer=a, email="a2@x.example")
    b = BusinessCustomerFactory(name="B", owner=rep, business_unit=org.unit("East"), channel=direct,
                                primary_email="b1@x.example", primary_phone="+1 555 0001")
    CustomerEmailFactory(customer=b, email="b1@x.example", is_primary=True)
    CustomerPhoneFactory(customer=b, phone="+1 555 0001", is_primary=True)
    rows = [["ID", "Name", "Channel", "Account", "Email", "Phone"],
            [a.pk, "A", "Direct Sales", a.account.name, "A2@x.example", "+1 555 0100"],  # promote; add phone
            [b.pk, "B", "Direct Sales", b.account.name, "b9@x.example", ""],              # replace; remove phone
            ["", "C", "Direct Sales", "C account", "c@x.example", "+1 555 0300"]]         # new customer
    report = run(rep, rows, dry_run=False)
    assert report.ok and (report.new, report.update) == (1, 2), errors_of(report)
    assert sorted(a.emails.values_list("email", "is_primary")) == [("a1@x.example", False), ("a2@x.example", True)]
    assert list(a.phones.values_list("phone", "is_primary")) == [("+1 555 0100", True)]
    assert list(b.emails.values_list("email", "is_primary")) == [("b9@x.example", True)]
    assert not b.phones.exists()
    c = BusinessCustomer.objects.get(name="C")
    assert (c.primary_email, c.primary_phone) == ("c@x.example", "+1 555 0300")
    assert list(c.emails.values_list("email", "is_primary")) == [("c@x.example", True)]


def test_import_of_another_units_account_name_by_id_keeps_the_customers_account(org, direct):
    """A customer shared for editing with a user who cannot see its account round-trips unchanged."""
    from crm.services import share_record

    owner = org.user("west_rep")
    customer = BusinessCustomerFactory(name="Shared", owner=owner, business_unit=org.unit("West"), channel=direct)
    share_record(customer, owner, org.user("admin"), "change")
    report = run(org.user("admin"), [["ID", "Name", "Channel", "Account"],
                                     [customer.pk, "Shared", "Direct Sales", customer.account.name]])
    assert report.ok and report.skip == 1


# -- company structure and purchasing columns ---------------------------------------------------

OLD_COLUMNS = COLUMNS[:23]


def test_parent_and_purchasing_round_trip(org, client_for, direct):
    rep = org.user("east_rep")
    parent = BusinessCustomerFactory(name="Round Holding", owner=rep, business_unit=rep.primary_unit, channel=direct)
    BusinessCustomerFactory(name="Round Daughter", owner=rep, business_unit=rep.primary_unit, channel=direct,
                            parent=parent, purchase_limit=Decimal("2500.00"), monthly_budget=None,
                            approval_expiry_days=3)
    west = org.user("west_rep")
    hidden = BusinessCustomerFactory(name="Hidden Holding", owner=west, business_unit=west.primary_unit,
                                     channel=direct)
    kept = BusinessCustomerFactory(name="Under Hidden", owner=rep, business_unit=rep.primary_unit, channel=direct,
                                   parent=hidden)
    client = client_for(rep)
    headers, rows = export_csv(client, "customers")
    by_name = {r[1]: dict(zip(headers, r)) for r in rows}
    daughter = by_name["Round Daughter"]
    assert (daughter["Parent"], daughter["Purchase Limit"], daughter["Monthly Budget"],
            daughter["Approval Expiry Days"]) == ("Round Holding", "2500.00", "", "3")
    assert by_name["Under Hidden"]["Parent"] == ""  # not his to see
    assert "Hidden Holding" not in by_name
    response = upload(client, "customers", csv_bytes([headers] + rows))
    report = report_of(response)
    assert report_of(response).ok, row_errors(response)
    assert (report.new, report.update, report.skip) == (0, 0, 3)
    confirm(client, "customers", response)
    kept.refresh_from_db()
    assert kept.parent == hidden  # a blank cell keeps a parent he may not view


def test_file_without_the_new_columns_leaves_them_unchanged(org, direct):
    rep = org.user("east_rep")
    parent = BusinessCustomerFactory(name="Old Holding", owner=rep, business_unit=rep.primary_unit, channel=direct)
    child = BusinessCustomerFactory(name="Old Daughter", owner=rep, business_unit=rep.primary_unit, channel=direct,
                                    parent=parent, purchase_limit=Decimal("10.00"), monthly_budget=Decimal("99.00"),
                                    approval_expiry_days=21)
    row = dict.fromkeys(OLD_COLUMNS, "")
    row.update({"ID": child.pk, "Name": "Old Daughter Renamed", "Channel": "Direct Sales",
                "Account": child.account.name, "Currency": "USD", "Lifetime Value": "1000"})
    report = run(rep, [OLD_COLUMNS, [row[c] for c in OLD_COLUMNS]], dry_run=False)
    assert report.ok and report.update == 1, errors_of(report)
    child.refresh_from_db()
    assert child.name == "Old Daughter Renamed"
    assert (child.parent_id, child.purchase_limit, child.monthly_budget, child.approval_expiry_days) == (
        parent.pk, Decimal("10.00"), Decimal("99.00"), 21)


def test_parents_created_earlier_in_the_file_and_groups(org, direct, settings):
    settings.CRM_IMPORT_BATCH_SIZE = 2  # parents in this batch and in earlier ones
    rep = org.user("east_rep")
    header = ["ID", "Name", "Channel", "Account", "Parent", "Purchase Limit", "Approval Expiry Days"]
    rows = [header, ["", "Top", "Direct Sales", "Tree Group", "", "100", ""],
            ["", "Mid", "Direct Sales", "Tree Group", "top", "", "9"],
            ["", "Leaf", "Direct Sales", "Tree Group", "Mid", "", ""],
            ["", "Leaf Sibling", "Direct Sales", "Tree Group", "Mid", "", ""],
            ["", "Leaf Child", "Direct Sales", "Tree Group", "Leaf Sibling", "", ""]]
    report = run(rep, rows, dry_run=False)
    assert report.ok and report.new == 5, errors_of(report)
    got = {c.name: c for c in BusinessCustomer.objects.select_related("parent")}
    assert got["Top"].parent is None and got["Mid"].parent == got["Top"] and got["Leaf"].parent == got["Mid"]
    assert got["Leaf Child"].parent == got["Leaf Sibling"]
    assert (got["Top"].purchase_limit, got["Top"].approval_expiry_days, got["Mid"].approval_expiry_days) == (
        Decimal("100.00"), 7, 9)
    from customers.models import CustomerGroup

    assert not CustomerGroup.objects.filter(customer__in=got.values()).exists()  # made with a first member
    assert got["Leaf Child"].history.first().parent_id == got["Leaf Sibling"].pk


def test_parent_errors_are_row_errors_and_nothing_is_written(org, direct, settings):
    settings.CRM_MAX_TREE_DEPTH = 3
    rep = org.user("east_rep")
    a = BusinessCustomerFactory(name="Alpha", owner=rep, business_unit=rep.primary_unit, channel=direct)
    b = BusinessCustomerFactory(name="Beta", owner=rep, business_unit=rep.primary_unit, channel=direct, parent=a)
    west = org.user("west_rep")
    BusinessCustomerFactory(name="West Only", owner=west, business_unit=west.primary_unit, channel=direct)
    web = ChannelFactory(name="Web Store", type="commerce")
    BusinessCustomerFactory(name="Web Holding", owner=rep, business_unit=rep.primary_unit, channel=web)
    header = ["ID", "Name", "Channel", "Account", "Parent"]
    rows = [header,
            [a.pk, "Alpha", "Direct Sales", a.account.name, "Beta"],          # 2: cycle with the database
            ["", "Gamma", "Direct Sales", "G", "Nobody"],                    # 3: unknown
            ["", "Delta", "Direct Sales", "G", "West Only"],                 # 4: hidden = unknown
            ["", "Epsilon", "Direct Sales", "G", "Web Holding"],             # 5: another channel
            ["", "Zeta", "Direct Sales", "G", "Later Row"],                  # 6: a later row is not earlier
            ["", "Later Row", "Direct Sales", "G", ""],
            ["", "Eta", "Direct Sales", "G", "Beta"],                        # 8: fine (3 levels)
            ["", "Theta", "Direct Sales", "G", "Eta"],                       # 9: 4 levels across rows
            ["", "Iota", "Direct Sales", "G", "Iota"]]                       # 10: its own parent
    report = run(rep, rows, dry_run=False)
    errors = {row: message for row, column, message in errors_of(report) if column == "Parent"}
    assert set(errors) == {2, 3, 4, 5, 6, 9, 10}, errors_of(report)
    assert "cycle" in errors[2] and "cycle" in errors[10]
    assert "Unknown parent company 'Nobody'" in errors[3] and "West Only" in errors[4]
    assert "4 levels deep; at most 3" in errors[9]
    assert not report.written and BusinessCustomer.objects.count() == 4
    a.refresh_from_db()
    assert a.parent_id is None


def test_cycle_across_rows_of_one_file(org, direct):
    rep = org.user("east_rep")
    x = BusinessCustomerFactory(name="Ex", owner=rep, business_unit=rep.primary_unit, channel=direct)
    y = BusinessCustomerFactory(name="Why", owner=rep, business_unit=rep.primary_unit, channel=direct)
    header = ["ID", "Name", "Channel", "Account", "Parent"]
    rows = [header, [x.pk, "Ex", "Direct Sales", x.account.name, "Why"],
            [y.pk, "Why", "Direct Sales", y.account.name, "Ex"]]
    report = run(rep, rows, dry_run=False)
    # Applied in order: the row that closes the cycle is the one refused.
    assert {(row, column) for row, column, _ in errors_of(report)} == {(3, "Parent")}
    assert all("cycle" in message for _, _, message in errors_of(report))
    assert not BusinessCustomer.objects.filter(parent__isnull=False).exists()


def test_purchasing_values_are_checked(org, direct):
    rep = org.user("east_rep")
    header = ["ID", "Name", "Channel", "Account", "Purchase Limit", "Monthly Budget", "Approval Expiry Days"]
    rows = [header, ["", "Neg", "Direct Sales", "P", "-5", "", ""],
            ["", "Comma", "Direct Sales", "P", "", "12,5", ""],
            ["", "Days", "Direct Sales", "P", "", "", "0"],
            ["", "Text", "Direct Sales", "P", "", "", "soon"]]
    report = run(rep, rows)
    got = {(row, column) for row, column, _ in errors_of(report)}
    assert got == {(2, "Purchase Limit"), (3, "Monthly Budget"), (4, "Approval Expiry Days"),
                   (5, "Approval Expiry Days")}, errors_of(report)
