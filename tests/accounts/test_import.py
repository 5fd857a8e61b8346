"""Account CSV import: validate, preview, confirm; all rows or none; round trip with export."""
import pytest

from accounts.models import Account
from accounts.resources import AccountResource
from crm.services import import_csv
from tests.factories import AccountFactory
from tests.toolkit import confirm, csv_bytes, export_csv, job_of, report_of, row_errors, upload

HEADER = ["ID", "Name", "Owner", "Business Unit", "Description"]


def rows(count, owner="east_rep", unit="East", prefix="Imported"):
    return [["", f"{prefix} {i:03d}", owner, unit, f"Row {i}"] for i in range(count)]


def test_one_bad_row_in_a_hundred_writes_nothing_and_names_row_and_column(client_for, admin):
    body = rows(100)
    body[55][2] = "nobody"  # file line 57: the header is line 1
    response = upload(client_for(admin), "accounts", csv_bytes([HEADER] + body))
    assert not report_of(response).ok
    assert row_errors(response) == [(57, "Owner", "Unknown owner 'nobody'.")]
    html = response.content.decode()
    assert "<td>57</td><td>Owner</td><td>Unknown owner &#x27;nobody&#x27;.</td>" in html
    assert "nothing was written" in html
    assert not report_of(response).ok
    assert not Account.objects.exists()


@pytest.mark.parametrize("batch_size", [1000, 50, 1])
def test_a_bad_row_in_a_later_batch_rolls_back_the_earlier_batches(admin, settings, batch_size):
    settings.CRM_IMPORT_BATCH_SIZE = batch_size
    body = rows(100)
    body[55][3] = "Atlantis"
    report = import_csv(AccountResource, csv_bytes([HEADER] + body), admin, dry_run=False)
    assert not report.written
    assert [(e.row, e.column) for e in report.errors] == [(57, "Business Unit")]
    assert not Account.objects.exists()


def test_valid_file_previews_counts_then_confirm_writes_all(client_for, admin, east_rep):
    client = client_for(admin)
    response = upload(client, "accounts", csv_bytes([HEADER] + rows(100)))
    assert report_of(response).ok, row_errors(response)
    report = report_of(response)
    assert (report.total, report.new, report.update, report.skip, report.errors) == (100, 100, 0, 0, [])
    html = response.content.decode()
    assert "Import 100 rows" in html and "to create" in html
    assert not Account.objects.exists(), "validation must not write"

    validated = response
    response = confirm(client, "accounts", validated)
    assert report_of(response).written and response.redirect_chain[-1][0] == job_of(validated).get_absolute_url()
    assert Account.objects.filter(owner=east_rep, business_unit__name="East").count() == 100
    # The import is done: starting it again does nothing and says so.
    response = confirm(client, "accounts", validated)
    assert "This import is not waiting to be started." in response.content.decode()
    assert Account.objects.count() == 100


def test_id_updates_blank_id_creates_unknown_id_is_an_error(client_for, admin, east_rep):
    client = client_for(admin)
    existing = AccountFactory(name="Old name", owner=east_rep, description="old")
    data = csv_bytes([HEADER, [existing.pk, "New name", "east_rep", "East", "new"], ["", "Brand new", "", "", ""]])
    response = upload(client, "accounts", data)
    report = report_of(response)
    assert (report.new, report.update) == (1, 1), row_errors(response)
    confirm(client, "accounts", response)
    existing.refresh_from_db()
    assert (existing.name, existing.description) == ("New name", "new")
    created = Account.objects.get(name="Brand new")
    # Blank owner and unit: the importing user and his primary unit.
    assert (created.owner, created.business_unit.name) == (admin, "Acme Corp")

    response = upload(client, "accounts", csv_bytes([HEADER, [999999, "Ghost", "", "", ""]]))
    assert not report_of(response).ok
    assert row_errors(response) == [(2, "ID", "No record with ID 999999 that you may edit.")]
    assert not Account.objects.filter(name="Ghost").exists()


def test_only_the_columns_given_are_changed(client_for, admin, east_rep):
    account = AccountFactory(name="Keep", owner=east_rep, description="keep me")
    response = upload(client_for(admin), "accounts", csv_bytes([["ID", "Name"], [account.pk, "Renamed"]]))
    confirm(client_for(admin), "accounts", response)
    account.refresh_from_db()
    assert (account.name, account.description, account.owner) == ("Renamed", "keep me", east_rep)


def test_names_of_owner_and_unit_are_case_insensitive(client_for, admin, east_rep):
    response = upload(client_for(admin), "accounts", csv_bytes([HEADER, ["", "Casey", "EAST_REP", "east", ""]]))
    assert report_of(response).ok, row_errors(response)
    confirm(client_for(admin), "accounts", response)
    account = Account.objects.get(name="Casey")
    assert (account.owner, account.business_unit.name) == (east_rep, "East")


def test_a_rep_may_not_import_records_for_others_or_other_units(client_for, east_rep):
    data = csv_bytes([HEADER, ["", "Mine", "east_rep", "East", ""], ["", "For a colleague", "east_rep2", "East", ""],
                      ["", "Into the West", "east_rep", "West", ""], ["", "Unknown unit", "east_rep", "North Pole", ""]])
    response = upload(client_for(east_rep), "accounts", data)
    assert not report_of(response).ok
    errors = row_errors(response)
    assert [(row, column) for row, column, _ in errors] == [(3, "Owner"), (4, "Owner"), (5, "Business Unit")]
    assert "You may not place records owned by east_rep2 in East." in errors[0][2]
    assert not Account.objects.exists()


def test_a_manager_may_import_for_his_units_members(client_for, east_manager, north_rep):
    data = csv_bytes([HEADER, ["", "For north", "north_rep", "East-North", ""]])
    response = upload(client_for(east_manager), "accounts", data)
    assert report_of(response).ok, row_errors(response)
    confirm(client_for(east_manager), "accounts", response)
    assert Account.objects.get(name="For north").owner == north_rep


def test_required_name_and_field_lengths_are_row_errors(client_for, admin):
    data = csv_bytes([HEADER, ["", "", "east_rep", "East", "no name"], ["", "x" * 201, "east_rep", "East", ""]])
    response = upload(client_for(admin), "accounts", data)
    assert not report_of(response).ok
    assert [(row, column) for row, column, _ in row_errors(response)] == [(2, "Name"), (3, "Name")]


def test_template_has_the_headers(client_for, east_rep):
    response = client_for(east_rep).get("/accounts/import/template.csv")
    assert response.status_code == 200
    assert response.content.decode("utf-8-sig").strip() == ",".join(HEADER)


# -- round trip and formula injection -------------------------------------------------------------

def test_export_then_reimport_changes_nothing(client_for, admin, org):
    for name in ("east_rep", "west_rep", "north_rep"):
        for i in range(5):
            AccountFactory(name=f"{name} {i}", owner=org.user(name), description=f"Line one\nline two, \"quoted\" {i}")
    AccountFactory(name="Ünïcödé Straße GmbH", owner=org.user("east_rep"), description="€ — 中文")
    client = client_for(admin)
    before = list(Account.objects.order_by("pk").values())
    headers, exported = export_csv(client, "accounts")
    assert headers == HEADER and len(exported) == 16
    content = b"".join(client.get("/accounts/export/").streaming_content)

    response = upload(client, "accounts", content)
    assert report_of(response).ok, row_errors(response)
    report = report_of(response)
    assert (report.new, report.update, report.skip) == (0, 0, 16)
    confirm(client, "accounts", response)
    assert list(Account.objects.order_by("pk").values()) == before


def test_formula_cells_are_neutralised_on_export_and_restored_on_import(client_for, admin, east_rep):
    formula = '=HYPERLINK("http://evil.example","click")'
    account = AccountFactory(name=formula, owner=east_rep, description="+1 555 0100")
    plain = AccountFactory(name="'quoted already", owner=east_rep, description="-")
    client = client_for(admin)
    headers, exported = export_csv(client, "accounts")
    by_id = {row[0]: row for row in exported}
    assert by_id[str(account.pk)][1] == "'" + formula
    assert by_id[str(account.pk)][4] == "'+1 555 0100"
    assert by_id[str(plain.pk)][1] == "'quoted already"  # not a formula: left alone
    assert by_id[str(plain.pk)][4] == "'-"

    content = b"".join(client.get("/accounts/export/").streaming_content)
    response = upload(client, "accounts", content)
    assert (report_of(response).update, report_of(response).skip) == (0, 2), row_errors(response)
    confirm(client, "accounts", response)
    account.refresh_from_db()
    plain.refresh_from_db()
    assert (account.name, account.description) == (formula, "+1 555 0100")
    assert (plain.name, plain.description) == ("'quoted already", "-")


# -- history -----------------------------------------------------------------------------------------

def test_import_writes_history_rows_by_the_importing_user(client_for, east_manager, east_rep):
    existing = AccountFactory(name="Before", owner=east_rep)
    client = client_for(east_manager)
    data = csv_bytes([HEADER, [existing.pk, "After", "east_rep", "East", ""], ["", "Created", "east_rep", "East", ""]])
    job = job_of(confirm(client, "accounts", upload(client, "accounts", data)))
    created = Account.objects.get(name="Created")
    change = existing.history.order_by("-history_id").first()
    assert (change.history_type, change.name, change.history_user, change.history_change_reason) == (
        "~", "After", east_manager, f"CSV import (job #{job.pk})")
    creation = created.history.get()
    assert (creation.history_type, creation.history_user) == ("+", east_manager)
    page = client.get(f"/accounts/{existing.pk}/").content.decode()
    assert "CSV import" in page and "<del>Before</del> → After" in page
