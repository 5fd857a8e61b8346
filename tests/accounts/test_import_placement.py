"""Import by ID of records the user may edit but not assign (shared with him, a colleague's)."""
from accounts.models import Account
from accounts.resources import AccountResource
from crm.services import import_csv, share_record
from tests.factories import AccountFactory


def csv_bytes(*rows):
    return ("ID,Name,Owner,Business Unit,Description\n" + "\n".join(",".join(r) for r in rows) + "\n").encode()


def test_shared_for_editing_updates_without_reassigning(east_manager, west_rep):
    account = AccountFactory(name="Initech", owner=east_manager)
    share_record(account, east_manager, west_rep, "change")
    data = csv_bytes((str(account.pk), "Initech", "east_manager", "East", "Updated by West"))
    report = import_csv(AccountResource, data, west_rep, dry_run=False)
    assert report.ok and report.update == 1, report.errors
    account.refresh_from_db()
    assert account.description == "Updated by West"


def test_changing_owner_by_import_needs_assign(east_manager, east_rep, west_rep):
    account = AccountFactory(name="Initech", owner=east_manager)
    share_record(account, east_manager, west_rep, "change")
    data = csv_bytes((str(account.pk), "Initech", "west_rep", "West", ""))
    report = import_csv(AccountResource, data, west_rep, dry_run=False)
    assert not report.written
    assert [(e.row, e.column) for e in report.errors] == [(2, "Owner")]
    assert "Assign" in report.errors[0].message
    assert Account.objects.get(pk=account.pk).owner == east_manager


def test_manager_reassigns_by_import(east_manager, east_rep, east_rep2):
    account = AccountFactory(name="Initech", owner=east_rep)
    data = csv_bytes((str(account.pk), "Initech", "east_rep2", "East", ""))
    report = import_csv(AccountResource, data, east_manager, dry_run=False)
    assert report.ok and report.update == 1, report.errors
    assert Account.objects.get(pk=account.pk).owner == east_rep2


def test_file_without_id_column_creates(east_rep):
    data = b"Name,Owner,Business Unit,Description\nNew One,east_rep,East,\n"
    report = import_csv(AccountResource, data, east_rep, dry_run=False)
    assert report.ok and report.new == 1, (report.errors, report.file_errors)
