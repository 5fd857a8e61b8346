"""Background jobs: an import from upload to undo, exports' files, whose job is whose, and
what a dead worker or a broken connection leaves behind."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import OperationalError, connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from crm import jobs
from crm.models import Job
from tests.factories import AccountFactory
from tests.toolkit import confirm, csv_bytes, job_of, report_of, upload

ROOT = Path(__file__).resolve().parents[2]


def account_rows(count, prefix="Job Co", owner="east_rep", unit="East"):
    return [["ID", "Name", "Owner", "Business Unit"]] + [["", f"{prefix} {i:03d}", owner, unit] for i in range(count)]


def action(client, job, name, **data):
    return client.post(reverse("jobs:action", args=[job.pk, name]), data)


@pytest.fixture
def rep(client_for, east_rep):
    return client_for(east_rep)


def test_import_from_upload_to_undo(rep, east_rep):
    keep = AccountFactory(name="Kept Co", owner=east_rep, business_unit=east_rep.primary_unit)
    rows = account_rows(3) + [[keep.pk, "Kept Co renamed", "east_rep", "East"]]
    page = upload(rep, "accounts", csv_bytes(rows), filename="accounts.csv")
    job = job_of(page)
    assert (job.state, job.created, job.updated, job.filename) == ("ready", 3, 1, "accounts.csv")
    assert not Account.objects.filter(name__startswith="Job Co").exists(), "validation writes nothing"
    html = page.content.decode()
    assert "Import 4 rows" in html and 'hx-trigger="every 1s"' not in html

    assert report_of(confirm(rep, "accounts", page)).written
    job.refresh_from_db()
    assert job.state == "imported"
    assert Account.objects.filter(name__startswith="Job Co").count() == 3
    keep.refresh_from_db()
    assert keep.name == "Kept Co renamed"
    assert keep.history.first().history_change_reason == job.change_reason

    listing = rep.get("/jobs/").content.decode()
    assert f'href="/jobs/{job.pk}/"' in listing and "accounts.csv" in listing

    assert action(rep, job, "undo").status_code == 302
    job.refresh_from_db()
    assert job.state == "undone" and job.report["undo"] == {"deleted": 3, "restored": 1, "refused": [],
                                                            "refused_count": 0}
    assert not Account.objects.filter(name__startswith="Job Co").exists()
    keep.refresh_from_db()
    assert keep.name == "Kept Co"
    assert keep.history.first().history_change_reason == f"Undo of CSV import (job #{job.pk})"
    # A second click changes nothing and says why.
    response = rep.post(reverse("jobs:action", args=[job.pk, "undo"]), follow=True)
    assert "Only a finished import can be undone." in response.content.decode()


def test_undo_leaves_records_changed_since_and_says_by_whom(rep, east_rep, client_for, east_manager):
    page = upload(rep, "accounts", csv_bytes(account_rows(2)))
    confirm(rep, "accounts", page)
    job = job_of(page)
    changed = Account.objects.get(name="Job Co 001")
    changed.description = "Edited after the import"
    changed._history_user = east_manager
    changed.save()

    action(rep, job, "undo")
    job.refresh_from_db()
    assert job.state == "undone"
    assert list(Account.objects.filter(name__startswith="Job Co").values_list("name", flat=True)) == ["Job Co 001"]
    (reason,) = job.report["undo"]["refused"]
    assert "Job Co 001" in reason and f"changed by {east_manager.username}" in reason
    assert "1 record was changed since the import" in job.message
    assert "Edited after the import" not in rep.get(job.get_absolute_url()).content.decode()


def test_a_file_with_errors_offers_its_error_report_and_no_import(rep):
    rows = account_rows(2) + [["", "", "east_rep", "East"], ["", "Nobody's", "no_such_user", "East"]]
    page = upload(rep, "accounts", csv_bytes(rows), filename="bad.csv")
    job = job_of(page)
    assert job.state == "invalid" and job.rejected == 2
    html = page.content.decode()
    assert reverse("jobs:action", args=[job.pk, "confirm"]) not in html
    report = rep.get(reverse("jobs:file", args=[job.pk]))
    assert report["Content-Disposition"] == 'attachment; filename="bad-errors.csv"'
    text = b"".join(report.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[0] == "ID,Name,Owner,Business Unit,Error"
    assert "no_such_user" in text and "Job Co 000" not in text
    # Starting it anyway is refused and writes nothing.
    action(rep, job, "confirm")
    job.refresh_from_db()
    assert job.state == "invalid" and not Account.objects.filter(name__startswith="Job Co").exists()


def test_another_users_job_is_a_404_and_administrators_only_look(rep, client_for, west_rep, admin):
    page = upload(rep, "accounts", csv_bytes(account_rows(1)))
    job = job_of(page)
    other = client_for(west_rep)
    for path in (job.get_absolute_url(), reverse("jobs:file", args=[job.pk])):
        assert other.get(path).status_code == 404
    for step in ("confirm", "undo", "remap"):
        assert action(other, job, step).status_code == 404
    assert f"/jobs/{job.pk}/" not in other.get("/jobs/").content.decode()
    job.refresh_from_db()
    assert job.state == "ready"

    boss = client_for(admin)
    assert f"/jobs/{job.pk}/" in boss.get("/jobs/").content.decode()
    assert boss.get(job.get_absolute_url()).status_code == 200
    assert action(boss, job, "confirm").status_code == 403
    job.refresh_from_db()
    assert job.state == "ready"


def test_running_job_page_polls_and_shows_progress(rep, east_rep):
    job = Job.objects.create(user=east_rep, kind="import", entity="accounts", state="importing",
                             filename="big.csv", started_at=timezone.now())
    jobs.write_progress(job, 2500, 10000)
    html = rep.get(job.get_absolute_url()).content.decode()
    assert f'hx-get="/jobs/{job.pk}/" hx-trigger="every 1s"' in html
    assert "2,500 of 10,000 rows" in html and 'crm-w-25' in html
    partial = rep.get(job.get_absolute_url(), HTTP_HX_REQUEST="true")
    assert partial.templates[0].name == "crm/_job.html"
    assert "<html" not in partial.content.decode()


def test_a_job_whose_worker_died_is_marked_failed(rep, east_rep, settings):
    settings.CRM_JOB_STALE_SECONDS = 60
    started = timezone.now() - timezone.timedelta(minutes=5)
    job = Job.objects.create(user=east_rep, kind="import", entity="accounts", state="importing",
                             filename="big.csv", started_at=started)
    queued = Job.objects.create(user=east_rep, kind="import", entity="accounts", state="validating")
    rep.get("/jobs/")
    job.refresh_from_db()
    queued.refresh_from_db()
    assert job.state == "failed" and "worker stopped" in job.message
    assert queued.state == "validating", "a job no worker has picked up yet is waiting, not dead"


def test_pruning_fails_a_dead_job_nobody_opens(east_rep, settings):
    from django.core.management import call_command

    settings.CRM_JOB_STALE_SECONDS = 60
    started = timezone.now() - timezone.timedelta(minutes=5)
    job = Job.objects.create(user=east_rep, kind="import", entity="accounts", state="importing", started_at=started)
    call_command("prune_jobs", "--days", "30")
    job.refresh_from_db()
    assert job.state == "failed" and "worker stopped" in job.message


def test_a_dropped_connection_fails_the_job_and_writes_nothing(rep, monkeypatch):
    from crm import services

    real = services.import_csv

    def drop(*args, **kwargs):
        if not kwargs.get("dry_run", True):
            Account.objects.create(name="Half written", owner_id=args[2].pk, business_unit_id=args[2].primary_unit_id)
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    page = upload(rep, "accounts", csv_bytes(account_rows(2)))
    monkeypatch.setattr(services, "import_csv", drop)
    confirm(rep, "accounts", page)
    job = job_of(page)
    assert job.state == "failed" and "database connection failed" in job.message
    # The job ran in its own transaction: what it wrote before the failure is gone.
    assert not Account.objects.filter(name__in=["Half written", "Job Co 000"]).exists()


def test_export_job_offers_its_file(rep, east_rep, settings):
    for i in range(3):
        AccountFactory(name=f"Exported {i}", owner=east_rep, business_unit=east_rep.primary_unit)
    settings.CRM_EXPORT_JOB_ROWS = 2
    response = rep.get("/accounts/export/", {"q": "Exported", "sort": "name"})
    assert response.status_code == 302
    job = Job.objects.get(kind="export")
    assert response["Location"] == job.get_absolute_url()
    assert (job.state, job.total, job.user) == ("exported", 3, east_rep)
    page = rep.get(job.get_absolute_url()).content.decode()
    assert "Download accounts.csv" in page
    body = b"".join(rep.get(reverse("jobs:file", args=[job.pk])).streaming_content).decode("utf-8-sig")
    assert [line.split(",")[1] for line in body.splitlines()[1:]] == ["Exported 0", "Exported 1", "Exported 2"]


@pytest.mark.django_db(transaction=True)
def test_the_real_worker_runs_an_import(settings, tmp_path):
    """The database backend and `manage.py db_worker`, as `make run` starts them."""
    from tests.factories import build_org

    org = build_org()
    user = org.user("east_rep")
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.views import AccountEntity

    job = jobs.start_import(AccountEntity, user, SimpleUploadedFile("w.csv", csv_bytes(account_rows(3, "Worker Co"))))
    assert Job.objects.get(pk=job.pk).started_at is None, "queued, not run in the request"
    run_worker(settings)
    job.refresh_from_db()
    assert job.state == "ready", job.message
    jobs.confirm_import(job, user)
    run_worker(settings)
    job.refresh_from_db()
    assert job.state == "imported", job.message
    assert Account.objects.filter(name__startswith="Worker Co").count() == 3


def run_worker(settings):
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    elif db["NAME"] and not str(db["NAME"]).startswith(("file:", ":memory:")) and "mode=memory" not in str(db["NAME"]):
        url = f"sqlite:///{db['NAME']}"
    else:
        # An in-memory test database is not reachable from another process: run the same
        # worker loop in this one.
        from django_tasks_db.management.commands.db_worker import Worker

        Worker(queue_names=["default"], interval=0, batch=True, backend_name="default", startup_delay=False,
               max_tasks=None, worker_id="test", excluded_queue_names=[]).run()
        return
    env = {**os.environ, "DATABASE_URL": url, "MEDIA_ROOT": str(settings.MEDIA_ROOT), "DEBUG": "1",
           "CRM_TASKS_BACKEND": "django_tasks_db.DatabaseBackend"}
    env.pop("CRM_TESTING", None)
    done = subprocess.run([sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "--no-reload"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_an_unmatched_column_is_ignored_or_mapped_on_the_preview(rep):
    rows = [["ID", "Company", "owner", "Business  Unit", "Notes"], ["", "Mapped Co", "east_rep", "East", "From notes"]]
    page = upload(rep, "accounts", csv_bytes(rows))
    job = job_of(page)
    assert job.state == "ready" and job.report["unmatched"] == ["Notes"]
    html = page.content.decode()
    assert "“Notes”" in html and '<option value="Description">Description</option>' in html

    action(rep, job, "remap", **{"map-0": "Description", "mode": "create"})
    job.refresh_from_db()
    assert (job.state, job.mode, job.report["unmatched"]) == ("ready", "create", []), job.report
    action(rep, job, "confirm")
    job.refresh_from_db()
    assert job.state == "imported"
    assert Account.objects.get(name="Mapped Co").description == "From notes"


def test_old_finished_jobs_are_pruned_with_their_files(rep, east_rep):
    from django.core.management import call_command

    page = upload(rep, "accounts", csv_bytes(account_rows(1)))
    job = job_of(page)
    running = Job.objects.create(user=east_rep, kind="import", entity="accounts", state="importing")
    Job.objects.filter(pk__in=[job.pk, running.pk]).update(created_at=timezone.now() - timezone.timedelta(days=40))
    assert default_storage.exists(job.source)
    call_command("prune_jobs", "--days", "30")
    assert not Job.objects.filter(pk=job.pk).exists() and not default_storage.exists(job.source)
    assert Job.objects.filter(pk=running.pk).exists(), "a running job is never pruned"
