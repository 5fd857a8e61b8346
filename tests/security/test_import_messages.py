"""Hostile values in an import file get a row error in words (never a 500, never the text of
an exception), and refused steps of the import flow write nothing."""
import pytest
from django.urls import reverse

from accounts.models import Account
from crm import jobs
from crm.models import Job
from customers.models import BusinessCustomer
from tests.factories import AccountFactory, ChannelFactory
from tests.security.world import changed_tables, snapshot
from tests.toolkit import confirm, csv_bytes, job_of, report_of, row_errors, upload

# Written by every upload by design: the job row and the task that ran it.
JOB_TABLES = {"crm_job", "django_tasks_database_dbtaskresult"}

# Words an exception's own text carries, never a sentence for a user.
EXCEPTION_WORDS = ("Traceback", "InvalidOperation", "OverflowError", "ValueError", "DataError", "<class",
                   "Exceeds the limit", "integer string conversion")


@pytest.fixture
def rep(org):
    return org.user("east_rep")


@pytest.fixture
def client(client_for, rep):
    return client_for(rep)


@pytest.fixture
def account(rep):
    return AccountFactory(name="Kept Account", description="kept", owner=rep, business_unit=rep.primary_unit)


def page_of(response):
    text = response.content.decode()
    for word in EXCEPTION_WORDS:
        assert word not in text, f"the page shows an exception's text: {word!r}"
    return text


def refused(client, namespace, rows, column):
    """The one row error at `column` of uploading `rows`; asserts the preview refuses the file,
    shows the error on the page and nothing is written."""
    before = snapshot()
    response = upload(client, namespace, csv_bytes(rows))
    assert response.status_code == 200
    page = page_of(response)
    assert not report_of(response).ok
    errors = [(column_, message) for _, column_, message in row_errors(response)]
    assert [c for c, _ in errors] == [column], errors
    assert "The file cannot be imported; nothing was written." in page
    assert set(changed_tables(before, snapshot())) <= JOB_TABLES
    return errors[0][1]


@pytest.mark.parametrize("value", ["abc", "1.5", "-1", "1e3", "١٢", "²", " 0x10 "])
def test_an_id_that_is_no_whole_number_is_a_row_error(client, account, value):
    message = refused(client, "accounts", [["ID", "Name"], [value, "Hijacked"]], "ID")
    assert message == f"'{value.strip()}' is not a record ID: IDs are whole numbers."
    account.refresh_from_db()
    assert account.name == "Kept Account"


def test_an_id_of_one_point_five_does_not_update_record_one(client, account):
    message = refused(client, "accounts", [["ID", "Name"], [f"{account.pk}.5", "Hijacked"]], "ID")
    assert "is not a record ID" in message
    account.refresh_from_db()
    assert account.name == "Kept Account"


@pytest.mark.parametrize("value", [str(2**63), str(2**64 + 1), "9" * 40, "1" * 5000])
def test_an_id_beyond_any_record_is_a_row_error(client, account, value):
    message = refused(client, "accounts", [["ID", "Name"], [value, "Hijacked"]], "ID")
    assert "is not a record ID" in message and len(message) <= 300


def test_the_same_id_on_two_rows_is_refused_naming_the_other_row(client, account):
    rows = [["ID", "Name"], ["", "Fresh"], [account.pk, "First"], [account.pk, "Second"]]
    message = refused(client, "accounts", rows, "ID")
    assert message == f"Another row of this file (row 3) already changes the record with ID {account.pk}."
    assert not Account.objects.filter(name="Fresh").exists()


@pytest.mark.parametrize("value", ["1" * 40, "1" * 40 + ".50", "1e400", "NaN", "Infinity", "12,34,56.7"])
def test_a_lifetime_value_out_of_range_is_a_row_error(client, rep, value):
    ChannelFactory(name="Direct Sales")
    AccountFactory(name="Money Group", owner=rep, business_unit=rep.primary_unit)
    rows = [["Name", "Channel", "Account", "Lifetime Value"], ["Money Co", "Direct Sales", "Money Group", value]]
    message = refused(client, "customers", rows, "Lifetime Value")
    assert message.endswith(".")
    assert not BusinessCustomer.objects.filter(name="Money Co").exists()


def test_a_new_account_name_of_100000_characters_is_a_row_error(client):
    ChannelFactory(name="Direct Sales")
    rows = [["Name", "Channel", "Account"], ["Long Co", "Direct Sales", "A" * 100_000]]
    message = refused(client, "customers", rows, "Account")
    assert len(message) <= 300 and "A" * 300 not in message
    assert not BusinessCustomer.objects.filter(name="Long Co").exists()
    assert not Account.objects.filter(name__startswith="AAAA").exists()


def test_two_confirms_of_one_preview_import_once(client, rep):
    response = upload(client, "accounts", csv_bytes([["Name"], ["Once Only"]]))
    assert report_of(response).ok
    stale = job_of(response)  # a second tab's view of the job, still ready
    assert report_of(confirm(client, "accounts", response)).written
    with pytest.raises(jobs.JobStateError):
        jobs.confirm_import(stale, rep)
    second = client.post(reverse("jobs:action", args=[stale.pk, "confirm"]), follow=True)
    assert second.status_code == 200
    assert "This import is not waiting to be started." in page_of(second)
    assert Account.objects.filter(name="Once Only").count() == 1
    assert Job.objects.get(pk=stale.pk).state == Job.State.IMPORTED


def import_namespaces():
    from tests.security.test_uploads import import_namespaces as discovered

    return discovered()


@pytest.mark.parametrize("namespace", [n for n in import_namespaces() if n != "accounts"])
def test_an_accounts_preview_confirmed_on_another_import_page_is_refused(client, rep, namespace):
    response = upload(client, "accounts", csv_bytes([["Name"], ["Elsewhere Co"]]))
    job = job_of(response)
    assert job.state == Job.State.READY
    before = snapshot()
    for data in ({"job": job.pk, "confirm": "1"}, {"pk": job.pk, "action": "confirm", "mode": "create"}):
        refused_page = client.post(reverse(f"{namespace}:import"), data)
        assert refused_page.status_code in (400, 403)
        if refused_page.status_code == 400:
            assert "This field is required." in page_of(refused_page)  # the page wants a file, nothing else
    assert set(changed_tables(before, snapshot())) <= JOB_TABLES
    job.refresh_from_db()
    assert job.state == Job.State.READY and job.entity == "accounts"
    assert not Account.objects.filter(name="Elsewhere Co").exists()


def test_a_preview_of_another_user_cannot_be_confirmed(client_for, rep, org):
    response = upload(client_for(rep), "accounts", csv_bytes([["Name"], ["Not Yours Co"]]))
    job = job_of(response)
    other = client_for(org.user("east_rep2"))
    assert other.post(reverse("jobs:action", args=[job.pk, "confirm"])).status_code == 404
    job.refresh_from_db()
    assert job.state == Job.State.READY
    assert not Account.objects.filter(name="Not Yours Co").exists()
