"""A 10,000-row import the way a user runs it: upload, watch the progress bar, leave and
come back, import, undo, and find the grid as it was."""
import csv
import io
import re
import threading

import pytest
from playwright.sync_api import expect

ROWS = 10_000


@pytest.fixture
def worker(settings):
    """The database task backend with its worker running beside the live server, as in
    `make run` (the suite otherwise runs tasks at once, inside the request). SQLite's
    in-memory test database locks whole tables between threads, so there the jobs run in
    the request, as in the rest of the suite; the page then shows each step finished."""
    from django.db import connection, connections
    from django_tasks_db.management.commands.db_worker import Worker

    if connection.vendor == "sqlite":
        yield None
        return

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    loop = Worker(queue_names=["default"], interval=0.2, batch=False, backend_name="default", startup_delay=False,
                  max_tasks=None, worker_id="browser-test", excluded_queue_names=[])
    def run():
        try:
            loop.run()
        finally:
            connections.close_all()  # this thread's connection, or the test database cannot be dropped

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield loop
    loop.running = False
    thread.join(timeout=30)


def accounts_file(tmp_path):
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["ID", "Name", "Owner", "Business Unit", "Description"])
    for i in range(ROWS):
        writer.writerow(["", f"Bulk Import {i:05d}", "east_rep", "East", f"Row {i}"])
    path = tmp_path / "accounts-10k.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def grid_summary(page, base):
    page.goto(f"{base}/accounts/?sort=name&per_page=25")
    return page.locator("table tbody").inner_text()


def test_import_10k_rows_leave_come_back_and_undo(page, live_server, login, worker, tmp_path):
    from accounts.models import Account

    base = live_server.url
    login("east_rep")
    before = grid_summary(page, base)
    count_before = Account.objects.count()

    page.goto(f"{base}/accounts/import/")
    page.set_input_files("input[type=file]", str(accounts_file(tmp_path)))
    page.select_option("select[name=mode]", "create")
    page.click("button:has-text('Validate')")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job_url = page.url
    expect(page.get_by_test_id("job-state")).to_have_text("Ready to import", timeout=120_000)
    expect(page.get_by_test_id("job-counts")).to_contain_text("10,000")

    page.get_by_test_id("job-confirm").click()
    page.wait_for_url(job_url)
    if worker is not None:
        # The bar moves while the worker writes; the page polls by itself. A fast worker may
        # finish between two polls: then the page shows the finished import instead.
        progress = page.get_by_test_id("job-progress-text").filter(has_text="of 10,000 rows")
        expect(progress.or_(page.get_by_test_id("job-state").filter(has_text="Imported"))).to_be_visible(
            timeout=60_000)
        page.screenshot(path=str(tmp_path / "progress.png"))
    page.goto(f"{base}/accounts/")  # leave ...
    page.goto(f"{base}/jobs/")      # ... and come back through the job list
    page.click(f"a[href='{job_url.removeprefix(base)}'] >> nth=0")
    expect(page.get_by_test_id("job-state")).to_have_text("Imported", timeout=180_000)
    assert Account.objects.count() == count_before + ROWS
    assert "Bulk Import 00000" in grid_summary(page, base)

    page.goto(job_url)
    page.get_by_test_id("job-undo").click()
    expect(page.get_by_test_id("job-state")).to_have_text("Undone", timeout=180_000)
    expect(page.get_by_test_id("undo-report")).to_contain_text("10,000 created records deleted")
    assert Account.objects.count() == count_before
    assert grid_summary(page, base) == before
