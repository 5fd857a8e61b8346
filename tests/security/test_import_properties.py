"""Generated CSV files (headers of the entity in any subset, order and case plus unknown
ones, any quoting, encoding, cell contents and row count) fed to every entity's import
page: never a 500, and after preview and confirm either the whole file is written or
nothing is (every table's rows and checksum as before)."""
import csv
import io

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Job
from tests.security.test_uploads import headers_of, import_namespaces
from tests.security.world import changed_tables, snapshot
from tests.toolkit import job_of, upload

JOB_TABLES = {"crm_job", "django_tasks_database_dbtaskresult"}

# Function-scoped fixtures (the organization, its clients) are shared by the examples of a
# test on purpose: each example compares the database with itself before the upload.
settings.register_profile("imports", max_examples=6, deadline=None, derandomize=False,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
IMPORTS = settings.get_profile("imports")

HOSTILE_IDS = ["abc", "1.5", "-1", "0", "9" * 40, str(2**63), "1" * 5000, "١", " 7 ", "1e3"]
UNKNOWN_HEADERS = ["Colour", "", "  ", "ID ID", "=cmd()", "Ñame", "x" * 300]

cell = st.one_of(
    st.just(""),
    st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs", "S")), max_size=30),
    st.text(alphabet="\x00\r\n\"', ;=+-@\tAé€", max_size=12),
    st.sampled_from(["=1+2", "+SUM(A1)", "-3", "@x", "'=quoted", "\t=tab", "\r=cr"]),
    st.sampled_from(HOSTILE_IDS),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.decimals(allow_nan=True, allow_infinity=True, places=3).map(str),
    st.integers(min_value=1, max_value=5000).map(lambda n: "L" * n),
)


@st.composite
def csv_files(draw, headers):
    chosen = draw(st.lists(st.sampled_from(headers), unique=True, min_size=1, max_size=len(headers)))
    chosen += draw(st.lists(st.sampled_from(UNKNOWN_HEADERS), unique=True, max_size=2))
    chosen = draw(st.permutations(chosen))
    styled = [draw(st.sampled_from([h, h.upper(), h.lower(), f"  {h} ", h.replace(" ", "   ")])) for h in chosen]
    rows = draw(st.lists(st.lists(cell, min_size=len(styled), max_size=len(styled)), max_size=30))
    if rows and draw(st.booleans()):  # a ragged row now and then
        rows[draw(st.integers(0, len(rows) - 1))].append("extra")
    out = io.StringIO(newline="")
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    csv.writer(out, quoting=quoting, lineterminator=draw(st.sampled_from(["\r\n", "\n", "\r"]))).writerows(
        [styled] + rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return out.getvalue().encode(encoding, errors="replace")


def business_state():
    return {table: value for table, value in snapshot().items() if table not in JOB_TABLES}


def check_file(client, namespace, data):
    before = business_state()
    response = upload(client, namespace, data)
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 400 or job_of(response).state != Job.State.READY:
        assert changed_tables(before, business_state()) == []
        return
    job = job_of(response)
    page = client.post(reverse("jobs:action", args=[job.pk, "confirm"]), follow=True)
    assert page.status_code == 200
    job.refresh_from_db()
    if job.state == Job.State.IMPORTED:
        assert job.created + job.updated + job.unchanged == job.total, "every row of the file is written"
        assert not job.rejected
    else:
        assert job.state in (Job.State.INVALID, Job.State.FAILED), job.state
        assert changed_tables(before, business_state()) == []


@pytest.mark.parametrize("namespace", import_namespaces())
def test_generated_files_are_written_whole_or_not_at_all(org, admin, client_for, namespace):
    client = client_for(admin)
    headers = headers_of(namespace, admin)

    @IMPORTS
    @given(data=csv_files(headers))
    def run(data):
        check_file(client, namespace, data)

    run()
