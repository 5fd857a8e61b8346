"""The load test's short form, so `make loadtest` cannot rot: a bench database of 2,000
customers, 3 simulated users for 10 seconds a phase (thinking 0.2 to 1 s, so a few requests
fall in the seconds the import takes), a 1,000-row import (several read chunks), run for real
(gunicorn, db_worker, locust) in a subprocess. Its figures mean nothing; what it proves is
that every simulated request succeeds and the table comes out. The figures come from
`make loadtest`."""
import os
import subprocess
import sys

import pytest
from django.conf import settings

pytestmark = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="the load test runs on PostgreSQL only: it copies the bench database as a template, and on SQLite "
           "the import's write lock would block every page, a measure of SQLite rather than of the CRM",
)


def test_short_load_test_has_no_failures_and_prints_the_table():
    # The subprocess sees the configured DATABASE_URL, not the suite's test database: the
    # load test builds <name>_bench_2000 beside it (reused by later runs) and works on a copy.
    env = {**os.environ, "CRM_TESTING": "1"}
    done = subprocess.run(
        [sys.executable, "manage.py", "loadtest", "--users", "3", "--seconds", "10", "--customers", "2000",
         "--import-rows", "1000", "--think", "0.2,1"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "CRM load test" in output and "ALL PAGES" in output, output[-6000:]
    assert "without the import" in output and "with the import" in output
    assert "failed requests: 0 in both phases" in output, output[-6000:]
    assert "imported" in output.split("Import:", 1)[1].splitlines()[0]
