"""A worker killed, or its database connection cut, in the middle of an import: the data
stays as before, the job ends Failed with a reason in words, and the same file imports
cleanly afterwards. Real `manage.py db_worker` processes on PostgreSQL, since what is under
test is what the database does with a transaction whose client vanished."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse

from crm import jobs
from crm.models import Job
from customers.models import BusinessCustomer
from tests.factories import ChannelFactory, build_org
from tests.toolkit import csv_bytes

ROOT = Path(__file__).resolve().parents[2]
# Three batches (CRM_IMPORT_BATCH_SIZE): the fault lands after the first, seconds before the end.
ROWS = 3_000
WORKER_APP = "crm-fault-worker"  # the worker's application_name, to find its backend

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="needs PostgreSQL: a worker process must reach the test database, and what is "
                              "checked is how the server rolls back a transaction whose client vanished"),
]

DATA_APPS = ("accounts", "customers", "contacts", "channels", "activities", "approvals")


def snapshot():
    """Row count and checksum of every table of the business data, history included."""
    state = {}
    with connection.cursor() as cursor:
        for label in DATA_APPS:
            for model in apps.get_app_config(label).get_models(include_auto_created=True):
                table = connection.ops.quote_name(model._meta.db_table)
                cursor.execute(f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                               f"FROM {table} t")
                state[model._meta.db_table] = cursor.fetchone()
    return state


def wait_for(what, check, timeout=60, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if worker is not None and worker.poll() is not None:
            pytest.fail(f"the worker exited ({worker.returncode}) while waiting for {what}:\n{worker.log()}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}" + (f":\n{worker.log()}" if worker is not None else ""))


class Worker:
    def __init__(self, settings, log_path):
        db = connection.settings_dict
        env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
               "MEDIA_ROOT": str(settings.MEDIA_ROOT), "DEBUG": "1", "PGAPPNAME": WORKER_APP,
               "CRM_TASKS_BACKEND": "django_tasks_db.DatabaseBackend", "CONN_MAX_AGE": "60"}
        if db.get("PASSWORD"):
            env["PGPASSWORD"] = db["PASSWORD"]
        env.pop("CRM_TESTING", None)
        self.log_path = log_path
        self.out = open(log_path, "ab")
        # A session of its own: SIGKILL goes to the whole process group, as a container stop would.
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.1"],
            cwd=ROOT, env=env, stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)

    def poll(self):
        return self.process.poll()

    @property
    def returncode(self):
        return self.process.returncode

    def log(self):
        return Path(self.log_path).read_text(errors="replace")[-3000:]

    def kill(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.out.close()


@pytest.fixture
def workers(settings, tmp_path):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    started = []

    def start():
        worker = Worker(settings, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:  # before the database is flushed: a worker would hold its connection
        worker.kill()


@pytest.fixture
def setup(client_for):
    org = build_org()
    user = org.user("east_rep")
    ChannelFactory(name="Fault Channel")
    rows = [["ID", "Name", "Channel", "Account"]] + [
        ["", f"Fault Customer {i:05d}", "Fault Channel", f"Fault Account {i % 100:03d}"] for i in range(ROWS)]
    return client_for(user), csv_bytes(rows)


def upload_and_preview(client, data, worker):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(reverse("customers:import"), {"file": SimpleUploadedFile("faults.csv", data, "text/csv")})
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.filter(kind="import").order_by("-pk").first()
    wait_for("the preview", lambda: Job.objects.filter(pk=job.pk).exclude(state__in=Job.RUNNING).exists(),
             worker=worker)
    job.refresh_from_db()
    assert (job.state, job.created) == ("ready", ROWS), (job.state, job.message, job.report.get("errors"))
    return job


def confirm_and_wait_for_progress(client, job, worker):
    assert client.post(reverse("jobs:action", args=[job.pk, "confirm"])).status_code == 302

    def halfway():
        job.refresh_from_db()
        progress = jobs.read_progress(job) if job.state == "importing" and job.started_at else None
        return progress if progress and 0 < progress["done"] < progress["total"] else None

    progress = wait_for("the import to report progress", halfway, worker=worker)
    assert job.state == "importing", "the fault must land while the import runs"
    return progress


def cut_the_workers_connection():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()",
                       [WORKER_APP])
        assert cursor.fetchone()[0] >= 1, "the worker's connection was found"


def assert_in_words(message):
    assert message and message[0].isupper() and message.endswith("."), message
    for internal in ("Error", "Traceback", "psycopg", "terminat", "SQL", "backend", "<class"):
        assert internal not in message, message


def import_again_succeeds(client, data, worker, before):
    job = upload_and_preview(client, data, worker)
    assert client.post(reverse("jobs:action", args=[job.pk, "confirm"])).status_code == 302
    wait_for("the import", lambda: Job.objects.filter(pk=job.pk, state__in=["imported", "failed", "ready"]).exists(),
             worker=worker)
    job.refresh_from_db()
    assert (job.state, job.created) == ("imported", ROWS), job.message
    customers = BusinessCustomer.objects.filter(name__startswith="Fault Customer ")
    assert customers.count() == customers.values("name").distinct().count() == ROWS, "every row, once"
    assert BusinessCustomer.objects.count() == before[BusinessCustomer._meta.db_table][0] + ROWS


def test_a_killed_worker_leaves_the_data_as_before_and_the_job_failed(setup, workers, settings):
    client, data = setup
    worker = workers()
    job = upload_and_preview(client, data, worker)
    before = snapshot()

    confirm_and_wait_for_progress(client, job, worker)
    worker.kill()

    assert snapshot() == before, "nothing of the killed import is in the database"
    job.refresh_from_db()
    assert job.state == "importing", "nobody has noticed yet"
    # The job page notices that the heartbeat stopped (the limit shortened from minutes).
    settings.CRM_JOB_STALE_SECONDS = 1
    time.sleep(1.5)
    page = client.get(job.get_absolute_url())
    job.refresh_from_db()
    assert job.state == "failed", job.message
    assert "worker stopped" in job.message and job.message in page.content.decode()
    assert_in_words(job.message)
    settings.CRM_JOB_STALE_SECONDS = 300

    import_again_succeeds(client, data, workers(), before)


def test_a_dropped_connection_fails_the_job_and_the_worker_goes_on(setup, workers):
    client, data = setup
    worker = workers()
    job = upload_and_preview(client, data, worker)
    before = snapshot()

    confirm_and_wait_for_progress(client, job, worker)
    cut_the_workers_connection()

    wait_for("the job to end", lambda: Job.objects.filter(pk=job.pk).exclude(state="importing").exists(),
             worker=worker)
    job.refresh_from_db()
    assert job.state == "failed", (job.state, job.message, job.report.get("file_errors"))
    assert "database connection" in job.message
    assert_in_words(job.message)
    assert job.message in client.get(job.get_absolute_url()).content.decode()
    assert snapshot() == before, "nothing of the interrupted import is in the database"

    # Cut again while the worker waits for work: the next poll must not end the worker.
    time.sleep(0.5)
    cut_the_workers_connection()
    time.sleep(0.5)
    # The same worker, its connection re-opened, runs the next import.
    import_again_succeeds(client, data, worker, before)
    assert worker.poll() is None, "the worker keeps serving"
