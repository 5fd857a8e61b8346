"""Benchmark (`make bench`): grids, record pages, import and export at a million customers,
each figure beside its reference, measured in the same run on the same data.

    python manage.py bench [--only grids,records,import,export] [--repeat 20] [--passes 4]
                           [--runs 3] [--explain] [--quick]

Data. On PostgreSQL two databases, `<configured name>_bench_<size>` (10k and 1M customers),
are built with crm.bench (migrate, then bench_data) or reused when a marker (a comment on
the database) says they hold that size of the current data version and migrations; the
configured database is never touched. On other engines the databases are throw-away files
(smaller sizes). `--quick` (the tests) builds tiny sizes into the configured database
inside transactions that are rolled back, and measures in-process, once: it proves the
code runs, its figures mean nothing.

Pages (parts `grids` and `records`) run in-process through the Django test Client as three
users (an Administrator as the reference, the Manager of EMEA with its three sub-units, a
Sales Representative of DACH): a warm-up request each, one that counts the SQL queries and
checks the page (status 200; restricted users see some records and fewer than the
Administrator; page 500 shows other rows than page 1), then the median of `--repeat` timed
requests, split into `--passes` that alternate between the two databases. The customers
grid (page 1, page 500, a filter, a quick search) is also measured on a stock
django-tables2 + django-filter view of the same rows and columns (StockGridView below,
mounted at /bench/stock/customers/ on the bench's own URLconf).

Import and export (parts `import` and `export`) run at the large size, as the
Administrator, in a transaction that is rolled back: the import of new customers built from
the benchmark data (crm.bench.import_file) through the product (the background job's steps
when crm.jobs has them, else crm.services.import_csv), beside COPY of the same rows into
the customers table and a stock ModelResource's import_data; the export of every customer
through crm.exports.write_export (CSV and XLSX, to a temporary file), beside COPY (SELECT
...) TO STDOUT of the same columns and a stock Resource.export(). Each run is a fresh
Python process, so its peak memory is its own (the peak resident set size above the
process's size when the work starts); the compared paths alternate in `--runs` rounds and
the table shows medians. Peak memory is measured at two sizes, so whether it grows with
the rows shows.

One table prints it all, with the machine, the data and every target met or missed.
"""
import hashlib
import json
import logging
import os
import pickle
import platform
import re
import resource as rlimits
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from crm import bench as data

# -- targets ---------------------------------------------------------------------------------------

TARGET_VS_ADMIN = 1.5   # a restricted user's page at most 1.5x the Administrator's, at the large size
TARGET_VS_SMALL = 1.5   # a page at the large size at most 1.5x the same page at the small size
TARGET_DEEP = 1.5       # page 500 at most 1.5x page 1 (same user, large size)
TARGET_VS_STOCK_PAGE = 3  # a grid page at least 3x faster than the stock view's
TARGET_VS_COPY = 1 / 3  # import and CSV export at least 1/3 of COPY's rows/s
TARGET_VS_STOCK = 20    # import and export at least 20x the stock resource's rows/s
TARGET_MEMORY_MB = 300  # peak memory of an import or export of 1M rows
MILLION = 1_000_000
EXTRAPOLATE_FROM = 10_000  # rows of the smaller run, at the least, to extrapolate memory to 1M from

ADMIN_ROLE = data.ADMINISTRATOR
DEFAULT_SIZES = {"postgresql": (10_000, 1_000_000)}
OTHER_SIZES = (1_000, 10_000)
QUICK_SIZES = (200, 400)
PARTS = ("grids", "records", "import", "export")
PER_PAGE = 25  # the grids' default page size, as both the product and the stock view use it
DEEP_PAGE = 500
STOCK_GRID = "/bench/stock/customers/"


class BenchError(CommandError):
    """A page or run that failed its check: the figures would measure the wrong thing."""


@dataclass
class Result:
    samples: list               # the measured values, in the measurement's unit
    queries: int | None = None  # SQL queries of one run
    count: int | None = None    # records the page shows, for the restriction check
    sql: list = field(default_factory=list, repr=False)  # the captured queries [{"sql", "time"}]

    @property
    def value(self):
        return statistics.median(self.samples)

    def merge(self, other):
        self.samples += other.samples
        return self


# -- what the pages show -------------------------------------------------------------------------

def grid_total(html):
    """The grid's total badge."""
    found = re.search(r'data-testid="total"[^>]*>\s*(?:about\s*)?([\d,]+)', html)
    return int(found.group(1).replace(",", "")) if found else None


def record_links(*namespaces):
    """How many distinct records of these entities the page links to."""
    pattern = re.compile(r'href="/(%s)/(\d+)/"' % "|".join(namespaces))

    def count(html):
        return len(set(pattern.findall(html)))

    count.__name__ = f"links to {', '.join(namespaces)}"
    return count


def customer_ids(html):
    return set(re.findall(r'href="/customers/(\d+)/"', html))


# -- the stock view: what django-tables2 and django-filter give out of the box ----------------------

STOCK_TEMPLATE = """{% extends "base.html" %}{% load django_tables2 %}{% block content %}
<form method="get">{{ filter.form.as_p }}<button type="submit">Filter</button></form>
{% render_table table %}{% endblock %}"""


@lru_cache(maxsize=None)
def stock_grid():
    """(view class, URLconf module) of a plain SingleTableMixin + FilterView over
    BusinessCustomer.objects.all(): a plain Table and FilterSet of the grid's columns and
    filters, no access restriction (it is measured as the Administrator, who sees every
    row), Django's Paginator, and a quick search as one would write it (icontains over the
    grid's search columns)."""
    import django_filters as df
    import django_tables2 as tables
    from django.db.models import Q
    from django.template import engines
    from django.urls import path
    from django_filters.views import FilterView
    from django_tables2 import SingleTableMixin

    import crm.urls
    from customers.models import BusinessCustomer

    class StockTable(tables.Table):
        class Meta:
            model = BusinessCustomer
            fields = ("name", "channel", "account", "parent", "owner", "business_unit", "primary_email",
                      "primary_phone", "billing_city", "billing_country", "lifetime_value", "created_at")
            order_by = ("-created_at",)  # the product grid's default sort

    class StockFilter(df.FilterSet):
        q = df.CharFilter(method="search", label="Search")

        class Meta:
            model = BusinessCustomer
            fields = {"name": ["icontains"], "channel": ["exact"], "account__name": ["icontains"],
                      "owner": ["exact"], "business_unit": ["exact"], "primary_email": ["icontains"],
                      "primary_phone": ["icontains"], "billing_city": ["icontains"], "billing_country": ["exact"],
                      "lifetime_value": ["gte", "lte"], "currency": ["exact"]}

        def search(self, queryset, name, value):
            return queryset.filter(Q(name__icontains=value) | Q(primary_email__icontains=value)
                                   | Q(primary_phone__icontains=value) | Q(account__name__icontains=value))

    class StockGridView(SingleTableMixin, FilterView):
        queryset = BusinessCustomer.objects.all()
        table_class = StockTable
        filterset_class = StockFilter
        paginate_by = PER_PAGE

        def get_template_names(self):
            return engines["django"].from_string(STOCK_TEMPLATE)

    urlconf = types.ModuleType("crm_bench_urls")
    urlconf.urlpatterns = [path(STOCK_GRID.strip("/") + "/", StockGridView.as_view()), *crm.urls.urlpatterns]
    return StockGridView, urlconf


# -- page measurements ----------------------------------------------------------------------------

class Measurement:
    """One row group of the table: `run(bench)` -> {role: Result} on the database in use."""

    label = ""
    part = "records"
    unit = "ms"
    roles = tuple(role for role, _ in data.BENCH_USERS)
    stock_of = None  # the label of the product page a stock page is the reference of
    deep = None      # (label of page 1, page number) for a deep page

    def run(self, bench):
        raise NotImplementedError

    def check(self, results):
        """{role: Result} of one size -> problems (strings)."""
        return []


class Page(Measurement):
    """GET a page as each user: a warm-up request each, one that counts the queries and is
    checked, then `repeat` timed rounds over the users (interleaved, so a machine that gets
    busier in the meantime burdens every user alike); the median per user, in ms.

    A deep page (`page`) is measured for the users who have that many pages at this size
    (it must then show other records than page 1); the others get no figure at this size."""

    def __init__(self, label, path, count=None, fewer=True, part="records", roles=None, stock_of=None,
                 page=None, first=None):
        self.label, self.path, self.count, self.fewer, self.part = label, path, count, fewer, part
        self.roles = roles or Measurement.roles
        self.stock_of = stock_of
        self.page, self.first = page, first
        self.deep = (first, page) if page else None

    def url(self, bench):
        url = self.path(bench.fixtures)
        if self.page:
            url += ("&" if "?" in url else "?") + f"page={self.page}"
        return url

    def deep_roles(self, bench, clients):
        """{role: ids on page 1} of the users who have `page` pages here."""
        found = {}
        for role, client in clients.items():
            html = client.get(self.path(bench.fixtures)).content.decode()
            total = grid_total(html) if self.stock_of is None else bench.customers
            if total is not None and total >= self.page * PER_PAGE:
                found[role] = customer_ids(html)
        return found

    def run(self, bench):
        url = self.url(bench)
        clients = {role: bench.client(role) for role in self.roles}
        first_ids = {}
        if self.page:
            first_ids = self.deep_roles(bench, clients)
            clients = {role: c for role, c in clients.items() if role in first_ids}
        if bench.warmup:
            for client in clients.values():
                client.get(url)  # caches, compiled templates, the connection
        found = {}
        for role, client in clients.items():
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            sql = list(queries.captured_queries)  # now: the next request empties the log
            if response.status_code != 200:
                raise BenchError(f"{self.label}: {url} answered {response.status_code} to {role}")
            html = response.content.decode()
            count = self.count(html) if self.count else None
            if self.count and count is None:
                raise BenchError(f"{self.label}: cannot read {self.count.__name__} on {url}; update crm bench")
            if self.page and self.stock_of is None:
                ids = customer_ids(html)
                if not ids or ids & first_ids[role]:
                    raise BenchError(f"{self.label}: {url} does not show page {self.page} to {role} "
                                     "(no rows, or the rows of page 1)")
            found[role] = (sql, count)
        times = {role: [] for role in clients}
        for _ in range(bench.repeat):
            for role, client in clients.items():
                start = time.perf_counter()
                client.get(url)
                times[role].append(time.perf_counter() - start)
        return {role: Result([t * 1000 for t in times[role]], len(sql), count, sql)
                for role, (sql, count) in found.items()}

    def check(self, results):
        admin = results.get(ADMIN_ROLE)
        if not (self.fewer and admin and admin.count is not None):
            return []
        problems = []
        for role, result in results.items():
            if role != ADMIN_ROLE and not 0 < result.count < admin.count:
                problems.append(f"{self.label}: {role} sees {result.count} records, the Administrator "
                                f"{admin.count}; a restricted user must see some, and fewer")
        return problems


def grid_pages():
    """The customers grid: each page as the three users, each followed by the same page of the stock view."""
    pages = [
        ("page 1", lambda f: "", {}),
        (f"page {DEEP_PAGE}", lambda f: "", {"page": DEEP_PAGE, "first": "page 1"}),
        ("filter: country DE", lambda f: "?billing_country=DE", {}),
        (f"quick search: {data.COMMON_WORD}", lambda f: f"?q={f['common_word']}", {}),
    ]
    product = [Page(label, lambda f, q=query: "/customers/" + q(f), None if "page" in kw else grid_total,
                    part="grids", **kw) for label, query, kw in pages]
    stock = [Page(f"{label} (stock)", lambda f, q=query: STOCK_GRID + q(f), None, fewer=False, part="grids",
                  roles=(ADMIN_ROLE,), stock_of=label, **({**kw, "first": "page 1 (stock)"} if kw else {}))
             for label, query, kw in pages]
    return [m for pair in zip(product, stock) for m in pair]


GRID_PAGE_1 = "page 1"
MEASUREMENTS = grid_pages() + [
    Page("customer record (50 activities)", lambda f: f"/customers/{f['busy_customer_pk']}/",
         record_links("contacts")),
    Page("account record (20 customers)", lambda f: f"/accounts/{f['big_account_pk']}/", record_links("customers")),
    Page("global search, rare term", lambda f: f"/search/?q={f['rare_term']}",
         record_links("customers", "accounts", "contacts")),
]


def lean_client():
    """Django's test Client minus its recording of every rendered template and context: under
    the test runner that copies each template's context, which would dominate the timings."""
    from django.test import Client

    class LeanClient(Client):
        def request(self, **request):
            response = self.handler(self._base_environ(**request))
            if response.cookies:
                self.cookies.update(response.cookies)
            return response

    return LeanClient()


class Bench:
    """The users, their clients and the fixtures of the database in use."""

    def __init__(self, repeat, warmup=True):
        from accounts.models import Account
        from crm.models import User
        from customers.models import BusinessCustomer

        self.repeat, self.warmup = repeat, warmup
        self.users = {role: User.objects.get(username=username) for role, username in data.BENCH_USERS}
        self.fixtures = dict(data.FIXTURES,
                             busy_customer_pk=BusinessCustomer.objects.get(name=data.BUSY_CUSTOMER).pk,
                             big_account_pk=Account.objects.get(name=data.BIG_ACCOUNT).pk)
        self.customers = BusinessCustomer.objects.count()
        self._clients = {}

    def client(self, role):
        if role not in self._clients:
            self._clients[role] = lean_client()
            self._clients[role].force_login(self.users[role])
        return self._clients[role]


def measure(measurements, repeat, warmup=True):
    """Run every measurement for its roles on the database in use ->
    ({(label, role): Result}, [problems found by the checks])."""
    bench = Bench(repeat, warmup)
    results, problems = {}, []
    for m in measurements:
        mine = m.run(bench)
        for role, result in mine.items():
            results[(m.label, role)] = result
        problems += m.check(mine)
    grid = results.get((GRID_PAGE_1, ADMIN_ROLE))
    # Above CRM_EXACT_COUNT_LIMIT the grid shows PostgreSQL's estimate: near, not equal.
    if grid is not None and abs(grid.count - bench.customers) > 0.1 * bench.customers:
        problems.append(f"the Administrator's grid counts {grid.count} customers of {bench.customers}")
    return results, problems


# -- import and export: runs in child processes ------------------------------------------------------

def _peak_rss_mb():
    """The process's peak resident set size. On Linux from /proc (VmHWM), which
    clear_refs resets: getrusage's ru_maxrss also counts the size of the process that
    started this one (the kernel carries it over exec), so a child of a big parent would
    report the parent's size."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration, ValueError):
        peak = rlimits.getrusage(rlimits.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes there, KiB elsewhere


class Meter:
    """Peak memory of the work since start(): the peak resident set size above the size at
    start(). Linux resets the peak on writing 5 to /proc/self/clear_refs, so the work's peak
    is measured from the size it starts at, not from whatever came before it. In-process
    (`active` false) it measures nothing: the process's earlier peaks would hide the work's."""

    def __init__(self, active):
        self.active, self.base = active, None

    def start(self):
        if not self.active:
            return
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:  # not Linux: the peak so far is the floor, which may hide some of the work
            pass
        self.base = _peak_rss_mb()

    def peak(self):
        return _peak_rss_mb() - self.base if self.active else None


CHILD = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
import django
django.setup()
from crm.management.commands.bench import child_main
child_main(sys.argv[1])
"""


def in_child(task, *args, isolate=True):
    """`task(meter, *args)` -> its return value, run in a fresh Python process on the
    database in use. A fresh interpreter, not a fork: a forked child would fill the free
    memory the parent's heap already holds, and its peak would hide the work's. `task` is
    a module-level function; arguments and result are pickled. In-process when not
    `isolate` (the tests: their data lives in a transaction only their connection sees).
    A failure in the child is raised here."""
    if not isolate:
        return task(Meter(False), *args)
    folder = Path(tempfile.mkdtemp(prefix="crm-bench-run-"))
    try:
        spec, result = folder / "spec.pickle", folder / "result.pickle"
        with open(spec, "wb") as f:
            pickle.dump({"task": (task.__module__, task.__qualname__), "args": args, "result": str(result),
                         "database": connection.settings_dict["NAME"]}, f)
        env = dict(os.environ)
        if getattr(settings, "TESTING", False):  # the same settings as here (the test runner sets them by its presence)
            env["CRM_TESTING"] = "1"
        done = subprocess.run([sys.executable, "-c", CHILD, str(spec)], cwd=settings.BASE_DIR, env=env,
                              capture_output=True, text=True)
        if not result.exists():
            raise BenchError(f"A benchmark child process ended ({done.returncode}) without an answer: "
                             f"{done.stderr[-3000:]}")
        with open(result, "rb") as f:
            kind, value = pickle.load(f)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if kind == "error":
        raise BenchError(f"A benchmark run failed in its child process: {value}")
    return value


def child_main(spec_path):
    """The child's side of in_child()."""
    import importlib

    with open(spec_path, "rb") as f:
        spec = pickle.load(f)
    module, name = spec["task"]
    try:
        task = getattr(importlib.import_module(module), name)
        # As the parent measures: no query log (DEBUG keeps every query, in time and memory).
        with use_database(spec["database"]), override_settings(DEBUG=False):
            payload = ("ok", task(Meter(True), *spec["args"]))
    except BaseException as e:  # noqa: BLE001 - everything goes back to the parent
        payload = ("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
    with open(spec["result"], "wb") as f:
        pickle.dump(payload, f)


@dataclass
class Run:
    rows: int
    seconds: float
    peak_mb: float | None = None

    @property
    def rate(self):
        return self.rows / self.seconds if self.seconds > 0 else None


@dataclass
class Flow:
    """One row of the import or export table: its runs at the large size (medians) and one
    run at the small size (for memory)."""

    label: str
    kind: str                    # "product", "copy" or "stock"
    group: str = ""              # what it is compared with: flows of one group are the same work
    runs: list = field(default_factory=list)
    small: Run | None = None
    missing: str | None = None   # why it has no figures

    @property
    def rows(self):
        return self.runs[0].rows if self.runs else None

    @property
    def rate(self):
        rates = [r.rate for r in self.runs if r.rate]
        return statistics.median(rates) if rates else None

    @property
    def peak(self):
        peaks = [r.peak_mb for r in self.runs if r.peak_mb is not None]
        return statistics.median(peaks) if peaks else None

    def at_million(self):
        """(MB at 1M rows, measured?): the large run's peak, extrapolated from the two sizes
        in a straight line when the large run has fewer rows. Below EXTRAPOLATE_FROM rows the
        memory of one batch or buffer would pass for growth: no figure."""
        if self.peak is None:
            return None, False
        if self.rows >= MILLION:
            return self.peak, True
        if self.small is None or self.small.peak_mb is None or not EXTRAPOLATE_FROM <= self.small.rows < self.rows:
            return None, False
        slope = max(0.0, (self.peak - self.small.peak_mb) / (self.rows - self.small.rows))
        return self.peak + slope * (MILLION - self.rows), False


@dataclass
class Plan:
    """Sizes of the import and export runs."""

    import_rows: int = 100_000
    import_small: int = 20_000
    stock_import_rows: int = 10_000
    export_small_unit: str = "DACH"   # the small export: one unit's customers (a tenth)
    stock_export_rows: int = 20_000
    stock_export_small: int = 5_000
    runs: int = 3
    isolate: bool = True

    @classmethod
    def quick(cls):
        return cls(import_rows=60, import_small=20, stock_import_rows=20, stock_export_rows=40,
                   stock_export_small=20, runs=1, isolate=False)


@contextmanager
def rolled_back():
    """A transaction that is rolled back. Its foreign keys are checked per statement, as the
    commit that never comes would have checked them (the keys are deferred)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        yield
        transaction.set_rollback(True)


def admin_user():
    from crm.models import User

    return User.objects.get(username=data.BENCH_ADMIN)


def customer_entity():
    from customers.views import CustomerEntity

    return CustomerEntity


# - import -

def import_path():
    """(description, run(path, user, meter) -> {"validate": Run, "write": Run}) of the
    product's import: the background job's steps when crm.jobs has them, else
    crm.services.import_csv directly."""
    try:
        from crm import jobs
    except ImportError:
        jobs = None
    if jobs is not None and all(hasattr(jobs, name) for name in ("start_import", "confirm_import", "run")):
        return "the import job (crm.jobs: upload and validation step, then import step)", _import_by_job
    return "crm.services.import_csv", _import_by_service


def _import_by_service(path, rows, user, meter):
    import inspect

    from crm.services import import_csv
    from customers.resources import BusinessCustomerResource

    accepts = inspect.signature(import_csv).parameters
    extra = {k: v for k, v in (("mode", "create_update"), ("change_reason", "bench")) if k in accepts}
    found = {}
    with rolled_back():
        meter.start()
        for step, dry_run in (("validate", True), ("write", False)):
            start = time.perf_counter()
            with open(path, "rb") as f:  # the file, not its bytes: the import streams it
                report = import_csv(BusinessCustomerResource, f, user, dry_run=dry_run, **extra)
            seconds = time.perf_counter() - start
            _check_import(report.new, report.errors[:3] + report.file_errors[:3], rows, step,
                          written=report.written if not dry_run else None)
            found[step] = Run(rows, seconds, meter.peak())
    return found


def _import_by_job(path, rows, user, meter):
    from django.core.files import File
    from django.core.files.storage import default_storage

    from crm import jobs
    from crm.models import Job

    found, job = {}, None
    try:
        with rolled_back():
            meter.start()
            start = time.perf_counter()
            with open(path, "rb") as f:
                job = jobs.start_import(customer_entity(), user, File(f, name="bench-customers.csv"),
                                        "create_update")
            jobs.run(job.pk, "validate")  # a no-op when the tasks backend already ran it
            job.refresh_from_db()
            seconds = time.perf_counter() - start
            _check_job(job, Job.State.READY, rows, "validate")
            found["validate"] = Run(rows, seconds, meter.peak())
            start = time.perf_counter()
            jobs.confirm_import(job, user)
            jobs.run(job.pk, "import")
            job.refresh_from_db()
            seconds = time.perf_counter() - start
            _check_job(job, Job.State.IMPORTED, rows, "write")
            found["write"] = Run(rows, seconds, meter.peak())
    finally:
        if job is not None:  # the rows are rolled back; the job's files are not
            _remove_files(default_storage, [job.source], f"jobs/{job.pk}")
    return found


def _remove_files(storage, names, folder):
    for name in names:
        if name:
            storage.delete(name)
    try:
        subfolders, files = storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        storage.delete(f"{folder}/{name}")
    for sub in subfolders:
        _remove_files(storage, [], f"{folder}/{sub}")
    try:  # a file system storage leaves the folder behind
        os.rmdir(storage.path(folder))
    except (NotImplementedError, OSError):
        pass


def _check_job(job, state, rows, step):
    if job.state != state:
        errors = (job.report or {}).get("errors", [])[:3] + (job.report or {}).get("file_errors", [])[:3]
        raise BenchError(f"import {step}: the job ended {job.state} ({job.message}) {errors}")
    if job.created != rows:
        raise BenchError(f"import {step}: {job.created} of the {rows} rows new")


def _check_import(new, errors, rows, step, written=None):
    if errors or new != rows or written is False:
        raise BenchError(f"import {step}: {new} of {rows} rows new, errors: {errors}")


@lru_cache(maxsize=None)
def stock_resources():
    """Plain ModelResources of the customer model: the import's columns by field name
    (related records by id), and the export's columns (related records by name)."""
    from import_export import resources

    from customers.models import BusinessCustomer

    import_fields = ("id", *[f[:-3] if f.endswith("_id") else f for f in data.IMPORT_FIELDS])

    class StockImport(resources.ModelResource):
        class Meta:
            model = BusinessCustomer
            fields = import_fields

    class StockExport(resources.ModelResource):
        class Meta:
            model = BusinessCustomer
            fields = EXPORT_STOCK_FIELDS
            export_order = EXPORT_STOCK_FIELDS

    return StockImport, StockExport


def _stock_import(path, rows, meter):
    import tablib

    resource_class = stock_resources()[0]
    found = {}
    with rolled_back():
        meter.start()
        for step, dry_run in (("validate", True), ("write", False)):
            start = time.perf_counter()
            with open(path, encoding="utf-8") as f:
                dataset = tablib.Dataset().load(f.read(), format="csv")
            result = resource_class().import_data(dataset, dry_run=dry_run)
            seconds = time.perf_counter() - start
            if result.has_errors() or result.has_validation_errors() or result.totals["new"] != rows:
                raise BenchError(f"stock import {step}: {result.totals} of {rows}, errors "
                                 f"{[e.error for _, errs in result.row_errors()[:3] for e in errs]}"
                                 f"{[r.error_dict for r in result.invalid_rows[:3]]}")
            found[step] = Run(rows, seconds, meter.peak())
    return found


def task_import(meter, path, rows):
    return import_path()[1](path, rows, admin_user(), meter)


def task_stock_import(meter, path, rows):
    return _stock_import(path, rows, meter)


def task_copy_in(meter, rows_path):
    """COPY of the import's rows (pickled in `rows_path`, loaded before the meter starts)."""
    with open(rows_path, "rb") as f:
        table_rows = pickle.load(f)
    return _copy_in(table_rows, meter)


def _copy_in(table_rows, meter):
    from customers.models import BusinessCustomer

    with rolled_back():
        meter.start()
        start = time.perf_counter()
        count = data.Loader()._copy(BusinessCustomer, data.IMPORT_FIELDS + ["created_at", "updated_at"], table_rows)
        return Run(count, time.perf_counter() - start, meter.peak())


def settle(plan):
    """Vacuum the scratch database after a rolled-back run (seconds taken). The rows a run
    wrote stay behind as dead tuples and index entries until a vacuum: the next run's name
    checks and unique indexes would visit them (the same names again), and autovacuum would
    start in the middle of a later run. Every run, product and references, starts from the
    same clean state instead."""
    if not plan.isolate or connection.vendor != "postgresql":
        return 0.0
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM")
    return time.perf_counter() - start


def measure_import(plan, out):
    """The import rows of the table: product (validation, write), COPY, stock (dry run, write)."""
    describe = import_path()[0]
    file = data.import_file(plan.import_rows)
    folder = Path(tempfile.mkdtemp(prefix="crm-bench-import-"))
    small, stock_n = min(plan.import_small, len(file)), min(plan.stock_import_rows, len(file))
    tasks_log = logging.getLogger("django_tasks")
    level = tasks_log.level
    tasks_log.setLevel(logging.WARNING)  # not a line per job step amid the table
    try:
        big_csv, small_csv, stock_csv = folder / "import.csv", folder / "small.csv", folder / "stock.csv"
        big_csv.write_bytes(file.csv_bytes())
        small_csv.write_bytes(file.head(small).csv_bytes())
        stock_csv.write_text(file.head(stock_n).stock_dataset().export("csv"), encoding="utf-8")
        table_rows = folder / "rows.pickle"
        with open(table_rows, "wb") as f:
            pickle.dump(file.table_rows, f)
        validate = Flow("product: validation (dry run)", "product", "validate")
        write = Flow("product: write", "product", "write")
        copy = Flow("COPY FROM STDIN into the customers table", "copy", "write")
        stock_v = Flow("stock ModelResource.import_data, dry run", "stock", "validate")
        stock_w = Flow("stock ModelResource.import_data, write", "stock", "write")
        if connection.vendor != "postgresql":
            copy.missing = "PostgreSQL only"
        def product():
            runs = in_child(task_import, str(big_csv), len(file), isolate=plan.isolate)
            validate.runs.append(runs["validate"])
            write.runs.append(runs["write"])

        def copy_in():
            copy.runs.append(in_child(task_copy_in, str(table_rows), isolate=plan.isolate))

        def stock():
            runs = in_child(task_stock_import, str(stock_csv), stock_n, isolate=plan.isolate)
            stock_v.runs.append(runs["validate"])
            stock_w.runs.append(runs["write"])

        paths = [product, stock] + ([copy_in] if connection.vendor == "postgresql" else [])
        settled = 0.0
        for n in range(plan.runs):
            start = time.perf_counter()
            for path in paths[n % len(paths):] + paths[: n % len(paths)]:  # each goes first once in a while
                path()
                settled += settle(plan)
            out.write(f"Import round {n + 1}/{plan.runs}: {time.perf_counter() - start:.1f} s")
        if settled:
            out.write(f"Vacuumed after each import run: {settled:.1f} s in all.")
        if plan.isolate:
            runs = in_child(task_import, str(small_csv), small, isolate=plan.isolate)
            validate.small, write.small = runs["validate"], runs["write"]
        note = (f"{len(file):,} new business customers from the benchmark data (CSV of {big_csv.stat().st_size / 2**20:.1f} MB, "
                f"no ID column: matched by name and channel, all new), as {data.BENCH_ADMIN}, through {describe}; "
                f"stock on {stock_n:,} of them; in a scratch copy of the database, every run rolled back and vacuumed. "
                "A write's peak includes the validation before it (one process)")
        return note, [validate, write, copy, stock_v, stock_w]
    finally:
        tasks_log.setLevel(level)
        shutil.rmtree(folder, ignore_errors=True)


# - export -

EXPORT_STOCK_FIELDS = (
    "id", "name", "channel__name", "account__name", "owner__username", "business_unit__name", "legal_name",
    "tax_number", "primary_email", "primary_phone", "website", "billing_street", "billing_city",
    "billing_postal_code", "billing_region", "billing_country", "shipping_street", "shipping_city",
    "shipping_postal_code", "shipping_region", "shipping_country", "lifetime_value", "currency", "parent__name",
    "purchase_limit", "monthly_budget", "approval_expiry_days")


def export_path():
    """(description, run(fmt, params, user, path) -> rows, formats it writes) of the
    product's export: crm.exports.write_export, else the export view's CSV."""
    try:
        from crm.exports import write_export
    except ImportError:
        return "GET /customers/export/ (the test client; crm.exports is not there)", _export_by_view, {"csv"}

    def run(fmt, params, user, path):
        from django.http import QueryDict

        with open(path, "wb") as out:
            return write_export(customer_entity(), QueryDict(params), user, fmt, out)

    return "crm.exports.write_export", run, {"csv", "xlsx"}


def _export_by_view(fmt, params, user, path):
    client = lean_client()
    client.force_login(user)
    with override_settings(SECURE_SSL_REDIRECT=False, ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
        response = client.get(f"/customers/export/?{params}&format={fmt}".replace("?&", "?"))
    if response.status_code != 200 or not response.streaming:
        raise BenchError(f"the export view answered {response.status_code} without a file")
    newlines = 0
    with open(path, "wb") as out:
        for chunk in response.streaming_content:
            chunk = chunk.encode() if isinstance(chunk, str) else chunk
            newlines += chunk.count(b"\n")
            out.write(chunk)
    return newlines - 1


def task_export(meter, key, params, unit_id, stock_rows, path):
    """One export run to `path` (removed afterwards): the product's (`key` csv or xlsx, the
    grid's query string `params`), COPY TO's (of unit `unit_id` or all) or the stock one's."""
    try:
        meter.start()
        start = time.perf_counter()
        if key in ("csv", "xlsx"):
            rows = export_path()[1](key, params, admin_user(), path)
        elif key == "copy":
            rows = _copy_out(copy_to_sql(unit_id), path)
        else:
            rows = _stock_export(stock_rows, key.removeprefix("stock_"), path)
        return Run(rows, time.perf_counter() - start, meter.peak())
    finally:
        Path(path).unlink(missing_ok=True)


def copy_to_sql(unit_id=None):
    """COPY (SELECT ...) TO STDOUT of the export's columns, in the grid's default order."""
    from accounts.models import Account
    from channels.models import Channel
    from crm.models import BusinessUnit, User
    from customers.models import BusinessCustomer

    cols = ["c.id", "c.name", "ch.name", "a.name", "u.username", "bu.name", "c.legal_name", "c.tax_number",
            "c.primary_email", "c.primary_phone", "c.website"]
    cols += [f"c.{kind}_{part}" for kind in ("billing", "shipping")
             for part in ("street", "city", "postal_code", "region", "country")]
    cols += ["c.lifetime_value", "c.currency", "p.name", "c.purchase_limit", "c.monthly_budget",
             "c.approval_expiry_days"]
    t = {m: m._meta.db_table for m in (BusinessCustomer, Channel, Account, User, BusinessUnit)}
    where = f"WHERE c.business_unit_id = {int(unit_id)}" if unit_id else ""
    return (f"COPY (SELECT {', '.join(cols)} FROM {t[BusinessCustomer]} c "
            f"JOIN {t[Channel]} ch ON ch.id = c.channel_id JOIN {t[Account]} a ON a.id = c.account_id "
            f"JOIN {t[User]} u ON u.id = c.owner_id JOIN {t[BusinessUnit]} bu ON bu.id = c.business_unit_id "
            f"LEFT JOIN {t[BusinessCustomer]} p ON p.id = c.parent_id {where} ORDER BY c.created_at DESC, c.id DESC) "
            "TO STDOUT (FORMAT csv, HEADER)")


def _copy_out(sql, path):
    with open(path, "wb") as out, connection.cursor() as cursor:
        with cursor.cursor.copy(sql) as copy:
            for chunk in copy:
                out.write(chunk)
        return cursor.cursor.rowcount


def _stock_export(rows, fmt, path):
    from customers.models import BusinessCustomer

    # Related rows by one join, as import-export's documentation advises; without it each
    # row costs five queries and the reference would only be slower.
    queryset = (BusinessCustomer.objects.select_related("channel", "account", "owner", "business_unit", "parent")
                .order_by("-created_at")[:rows])
    dataset = stock_resources()[1]().export(queryset)
    body = dataset.export(fmt)
    with open(path, "wb") as out:
        out.write(body.encode() if isinstance(body, str) else body)
    return len(dataset)


def measure_export(plan, out):
    """The export rows of the table: product CSV and XLSX, COPY TO, stock Resource.export()."""
    from crm.models import BusinessUnit

    describe, _, formats = export_path()
    unit = BusinessUnit.objects.get(name=plan.export_small_unit).pk
    folder = Path(tempfile.mkdtemp(prefix="crm-bench-export-"))
    flows = {
        "csv": Flow("product: CSV", "product", "csv"),
        "xlsx": Flow("product: XLSX", "product", "xlsx"),
        "copy": Flow("COPY (SELECT ...) TO STDOUT, CSV", "copy", "csv"),
        "stock_csv": Flow("stock Resource.export(), CSV", "stock", "csv"),
        "stock_xlsx": Flow("stock Resource.export(), XLSX", "stock", "xlsx"),
    }
    if connection.vendor != "postgresql":
        flows["copy"].missing = "PostgreSQL only"
    for fmt in {"csv", "xlsx"} - formats:
        flows[fmt].missing = f"the product has no {fmt.upper()} export ({describe})"

    def once(key, small):
        return in_child(task_export, key, f"business_unit={unit}" if small else "", unit if small else None,
                        plan.stock_export_small if small else plan.stock_export_rows, str(folder / f"{key}.out"),
                        isolate=plan.isolate)

    try:
        keys = [key for key, flow in flows.items() if not flow.missing]
        for n in range(plan.runs):
            start = time.perf_counter()
            for key in keys[n % len(keys):] + keys[: n % len(keys)]:  # each goes first once in a while
                flows[key].runs.append(once(key, False))
            out.write(f"Export round {n + 1}/{plan.runs}: {time.perf_counter() - start:.1f} s")
        if plan.isolate:
            for key in ("csv", "xlsx", "stock_csv", "stock_xlsx"):
                if not flows[key].missing:
                    flows[key].small = once(key, True)
        rows = flows["csv"].rows or flows["copy"].rows
        note = (f"{rows or 0:,} business customers (all of them; peak memory also of one unit's, "
                f"{plan.export_small_unit}) as {data.BENCH_ADMIN}, through {describe}, to a temporary file; "
                f"stock on {plan.stock_export_rows:,} rows ({plan.stock_export_small:,} for its small size)")
        return note, list(flows.values())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the table -----------------------------------------------------------------------------------

def size_label(n):
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div and n % (div // 10) == 0:
            return f"{n / div:g}{unit}"
    return str(n)


def rows_label(n):
    """About how many rows: 1M, 100k, 60."""
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)


def times(r):
    return f"{r:.{0 if r >= 10 else 1}f}x"


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_ratio(r, missed=False):
    return f"{r:.2f}{'!' if missed else ' '}" if r is not None else "— "


@dataclass
class Target:
    name: str
    checked: list = field(default_factory=list)  # (what, figure, met)

    def add(self, what, figure, met):
        self.checked.append((what, figure, met))

    def line(self):
        if not self.checked:
            return f"  [n/a]    {self.name}: nothing measured."
        missed = [(w, f) for w, f, met in self.checked if not met]
        if not missed:
            return f"  [met]    {self.name} ({len(self.checked)} checked)."
        shown = "; ".join(f"{w} {f}" for w, f in missed[:6]) + ("; ..." if len(missed) > 6 else "")
        return f"  [MISSED] {self.name}: {len(missed)} of {len(self.checked)}: {shown}."


def page_targets(measurements, results, sizes):
    """The page targets, checked at the large size."""
    small, large = sizes[0], sizes[-1]
    big = results[large]
    vs_admin = Target(f"a restricted user's page at most {TARGET_VS_ADMIN}x the Administrator's at {size_label(large)}")
    vs_small = Target(f"a page at {size_label(large)} at most {TARGET_VS_SMALL}x the same page at {size_label(small)}")
    deep = Target(f"page {DEEP_PAGE} at most {TARGET_DEEP}x page 1 at {size_label(large)}")
    stock = Target(f"a grid page at least {TARGET_VS_STOCK_PAGE}x faster than the stock view at {size_label(large)}")
    for m in measurements:
        if m.stock_of:
            continue
        for role in m.roles:
            res = big.get((m.label, role))
            if res is None:
                continue
            admin = big.get((m.label, ADMIN_ROLE))
            if role != ADMIN_ROLE and admin:
                r = ratio(res.value, admin.value)
                vs_admin.add(f"{m.label} / {role}", f"{r:.2f}x", r <= TARGET_VS_ADMIN)
            before = results[small].get((m.label, role)) if small != large else None
            if before:
                r = ratio(res.value, before.value)
                vs_small.add(f"{m.label} / {role}", f"{r:.2f}x", r <= TARGET_VS_SMALL)
            if m.deep and big.get((m.deep[0], role)):
                r = ratio(res.value, big[(m.deep[0], role)].value)
                deep.add(f"{m.label} / {role}", f"{r:.2f}x", r <= TARGET_DEEP)
            ref = big.get((f"{m.label} (stock)", ADMIN_ROLE))
            if m.part == "grids" and ref:
                r = ratio(ref.value, res.value)
                stock.add(f"{m.label} / {role}", f"{r:.1f}x faster", r >= TARGET_VS_STOCK_PAGE)
    targets = [vs_admin]
    if small != large:
        targets.append(vs_small)
    if any(m.deep for m in measurements):
        targets.append(deep)
    if any(m.stock_of for m in measurements):
        targets.append(stock)
    return targets


def render_pages(measurements, results, sizes, part):
    """Rows per page and user: value and SQL queries at each size, then the ratios."""
    small, large = sizes[0], sizes[-1]
    mine = [m for m in measurements if m.part == part]
    if not mine:
        return []
    grids = part == "grids"
    title = ("GRID PAGES: the customers grid, 25 rows a page (ms: median; SQL: queries of one request)" if grids
             else "RECORD PAGES AND GLOBAL SEARCH (ms: median; SQL: queries of one request)")
    head = f"{'page':<34} {'user':<22}" + "".join(f" | {size_label(s) + ' customers':>16}" for s in sizes)
    head += f" | {size_label(large)}/{size_label(small):<4}" if len(sizes) > 1 else ""
    head += f" | {'x admin':>7}"
    if grids:
        head += f" | {'x page 1':>8} | {'stock view ' + size_label(large):>16} | {'faster':>7}"
    lines = ["", title, head, "-" * len(head)]
    label_w = 34
    for m in mine:
        shown_label = "  the same on the stock view" if m.stock_of else m.label  # it follows its page
        for n, role in enumerate(m.roles):
            user = "(all rows)" if m.stock_of else role
            row = f"{shown_label if n == 0 else '':<{label_w}.{label_w}} {user:<22}"
            for s in sizes:
                res = results[s].get((m.label, role))
                row += f" | {'—':>16}" if res is None else f" | {res.value:>8.1f} ms {res.queries:>4}"
            a, b = results[small].get((m.label, role)), results[large].get((m.label, role))
            if len(sizes) > 1:
                r = ratio(b.value, a.value) if a and b else None
                row += f" | {fmt_ratio(r, r is not None and r > TARGET_VS_SMALL):>8}"
            admin = results[large].get((m.label, ADMIN_ROLE))
            r = ratio(b.value, admin.value) if b and admin and role != ADMIN_ROLE else None
            row += f" | {fmt_ratio(r, r is not None and r > TARGET_VS_ADMIN):>7}"
            if grids:
                first = results[large].get((m.deep[0], role)) if m.deep else None
                r = ratio(b.value, first.value) if b and first else None
                row += f" | {fmt_ratio(r, r is not None and r > TARGET_DEEP):>8}"
                ref = None if m.stock_of else results[large].get((f"{m.label} (stock)", ADMIN_ROLE))
                row += f" | {ref.value:>8.1f} ms {ref.queries:>4}" if ref else f" | {'':>16}"
                r = ratio(ref.value, b.value) if ref and b else None
                row += f" | {f'{r:.1f}x' + ('!' if r < TARGET_VS_STOCK_PAGE else ' ') if r else '':>7}"
            lines.append(row)
    return lines


def render_flows(title, note, flows):
    head = (f"{'path':<44} | {'rows':>9} | {'rows/s':>9} | {'x COPY':>6} | {'x stock':>7} | "
            f"{'peak MB (rows)':>22} | {'peak MB at 1M':>17}")
    lines = ["", f"{title}: {note}", head, "-" * len(head)]
    copies = {f.group: f for f in flows if f.kind == "copy" and f.rate}
    stocks = {f.group: f for f in flows if f.kind == "stock" and f.rate}
    for f in flows:
        if f.missing or not f.runs:
            lines.append(f"{f.label:<44} | {'not measured: ' + (f.missing or 'no run'):<}")
            continue
        copy, stock = copies.get(f.group), stocks.get(f.group)
        x_copy = ratio(f.rate, copy.rate) if copy and f.kind == "product" else None
        x_stock = ratio(f.rate, stock.rate) if stock and f.kind == "product" else None
        peaks = [f"{run.peak_mb:.0f} ({rows_label(run.rows)})" for run in (f.small, f.runs and Run(f.rows, 0, f.peak))
                 if run is not None and run.peak_mb is not None]
        at, measured = f.at_million()
        million = "" if at is None or f.kind != "product" else f"{at:.0f} {'measured' if measured else 'extrapol.'}"
        lines.append(f"{f.label:<44} | {f.rows:>9,} | {f.rate:>9,.0f} | "
                     f"{f'{x_copy:.2f}' if x_copy else '':>6} | {times(x_stock) if x_stock else '':>7} | "
                     f"{', '.join(peaks) or '— (in-process)':>22} | {million:>17}")
    return lines


def flow_targets(import_flows, export_flows):
    targets = []
    by = {}
    for kind, flows in (("import", import_flows), ("export", export_flows)):
        for f in flows or ():
            by[(kind, f.group, f.kind)] = f

    def rate(kind, group, what):
        f = by.get((kind, group, what))
        return f.rate if f and not f.missing else None

    if import_flows is not None:
        t = Target(f"import at least {TARGET_VS_COPY:.2f} of COPY's rows/s")
        r = ratio(rate("import", "write", "product"), rate("import", "write", "copy"))
        if r is not None:
            t.add("write", f"{r:.2f}", r >= TARGET_VS_COPY)
        targets.append(t)
        t = Target(f"import at least {TARGET_VS_STOCK}x the stock ModelResource's rows/s")
        for group in ("validate", "write"):
            r = ratio(rate("import", group, "product"), rate("import", group, "stock"))
            if r is not None:
                t.add(group, times(r), r >= TARGET_VS_STOCK)
        targets.append(t)
    if export_flows is not None:
        t = Target(f"CSV export at least {TARGET_VS_COPY:.2f} of COPY TO's rows/s")
        r = ratio(rate("export", "csv", "product"), rate("export", "csv", "copy"))
        if r is not None:
            t.add("CSV", f"{r:.2f}", r >= TARGET_VS_COPY)
        targets.append(t)
        t = Target(f"export at least {TARGET_VS_STOCK}x the stock Resource.export()'s rows/s")
        for group in ("csv", "xlsx"):
            r = ratio(rate("export", group, "product"), rate("export", group, "stock"))
            if r is not None:
                t.add(group.upper(), times(r), r >= TARGET_VS_STOCK)
        targets.append(t)
    t = Target(f"peak memory of the product's import and export flat in rows: under {TARGET_MEMORY_MB} MB at 1M rows")
    for kind, flows in (("import", import_flows), ("export", export_flows)):
        for f in flows or ():
            at, measured = f.at_million()
            if f.kind == "product" and at is not None:
                t.add(f"{kind} {f.label.removeprefix('product: ')}",
                      f"{at:.0f} MB ({'measured' if measured else 'extrapolated'})", at < TARGET_MEMORY_MB)
    if t.checked or import_flows is not None or export_flows is not None:
        targets.append(t)
    return targets


def machine():
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
        memory = f", {kib / 2**20:.0f} GB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    import django

    database = connection.vendor
    if database == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            database = f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
    elif database == "sqlite":
        import sqlite3

        database = f"SQLite {sqlite3.sqlite_version}"
    return (f"{cpu}, {os.cpu_count()} CPUs{memory}; {database}; Python {platform.python_version()}, "
            f"Django {django.get_version()}")


def render(measurements, results, sizes, import_flows=None, export_flows=None, header=()):
    """The one table: pages per size with their ratios, import and export beside their
    references, then every target met or missed. `!` marks a figure that misses its target."""
    lines = list(header)
    lines += render_pages(measurements, results, sizes, "grids")
    lines += render_pages(measurements, results, sizes, "records")
    if import_flows is not None:
        lines += render_flows("IMPORT", *import_flows)
    if export_flows is not None:
        lines += render_flows("EXPORT", *export_flows)
    targets = page_targets(measurements, results, sizes) if measurements else []
    targets += flow_targets(import_flows and import_flows[1], export_flows and export_flows[1])
    lines += ["", "TARGETS"] + [t.line() for t in targets]
    return "\n".join(line.rstrip() for line in lines)


def explain(result, top=3):
    """EXPLAIN ANALYZE of the slowest SELECTs of one captured run (PostgreSQL)."""
    lines = []
    selects = [q for q in result.sql if q["sql"] and q["sql"].lstrip().upper().startswith("SELECT")]
    for q in sorted(selects, key=lambda q: -float(q["time"]))[:top]:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + q["sql"])
            plan = [row[0] for row in cursor.fetchall()]
        lines.append(f"-- {float(q['time']) * 1000:.1f} ms: {q['sql'][:1500]}")
        lines += ["   " + p for p in plan]
    return "\n".join(lines)


def explain_report(measurements, results, sizes):
    """EXPLAIN ANALYZE of the slowest queries of each page and user that misses a page target."""
    missed = set()
    for target in page_targets(measurements, results, sizes):
        for what, _, met in target.checked:
            if not met:
                missed.add(what)
    lines = []
    for m in measurements:
        for role in m.roles:
            result = results[sizes[-1]].get((m.label, role))
            if result and f"{m.label} / {role}" in missed:
                lines.append(f"\n== {m.label} / {role}: the slowest queries at {size_label(sizes[-1])}")
                lines.append(explain(result))
    return "\n".join(lines)


# -- databases -----------------------------------------------------------------------------------

@contextmanager
def use_database(name):
    """Point the default connection at database `name` (the settings dict is shared by the
    connection, connections.settings and settings.DATABASES), and back afterwards."""
    from django.contrib.contenttypes.models import ContentType

    old = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = name
    settings.DATABASES["default"]["NAME"] = name
    ContentType.objects.clear_cache()
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = old
        settings.DATABASES["default"]["NAME"] = old
        ContentType.objects.clear_cache()


def marker(size):
    """What a bench database holds: size, data version and the migrations it was built with."""
    from django.db.migrations.loader import MigrationLoader

    migrations = sorted(f"{app}.{name}" for app, name in MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    digest = hashlib.sha1("\n".join(migrations).encode()).hexdigest()[:16]
    return json.dumps({"customers": size, "data_version": data.DATA_VERSION, "migrations": digest}, sort_keys=True)


def fill(size, out):
    """Migrate the database in use and build the benchmark data into it."""
    start = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    out.write(f"  migrated in {time.perf_counter() - start:.1f} s")
    return data.build(size, out=out)


class PostgresDatabases:
    """`<configured name>_bench_<size>`, built once and kept; a comment on the database says
    what it holds (see marker()), so the next run reuses it."""

    reusable = True

    def __init__(self, out, rebuild=False):
        self.out, self.rebuild, self.names = out, rebuild, {}

    def prepare(self, size):
        name = f"{connection.settings_dict['NAME']}_bench_{size}"
        quoted = connection.ops.quote_name(name)
        want = marker(size)
        with connection._nodb_cursor() as cursor:
            cursor.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name])
            row = cursor.fetchone()
        have = json.loads(row[0]) if row is not None and (row[0] or "").startswith("{") else {}
        same_data = {k: v for k, v in have.items() if k != "migrations"} == {
            k: v for k, v in json.loads(want).items() if k != "migrations"}
        if row is not None and row[0] == want and not self.rebuild:
            self.out.write(f"Reusing database {name} ({size:,} customers).")
        elif same_data and not self.rebuild:
            # The same data under newer migrations (an index, a column): migrate it in place
            # rather than spend minutes rebuilding a million rows.
            self.out.write(f"Migrating database {name} ({size:,} customers) to the current migrations.")
            with use_database(name):
                call_command("migrate", interactive=False, verbosity=0)
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE")
            with connection._nodb_cursor() as cursor:
                cursor.execute(f"COMMENT ON DATABASE {quoted} IS %s", [want])
        else:
            with connection._nodb_cursor() as cursor:
                if row is not None:
                    self.out.write(f"Database {name} holds {row[0] or 'an unfinished build'}; rebuilding it.")
                    cursor.execute(f"DROP DATABASE {quoted} WITH (FORCE)")
                cursor.execute(f"CREATE DATABASE {quoted}")
            with use_database(name):
                fill(size, self.out)
            with connection._nodb_cursor() as cursor:
                cursor.execute(f"COMMENT ON DATABASE {quoted} IS %s", [want])
        self.names[size] = name

    def use(self, size):
        return use_database(self.names[size])

    def describe(self, size):
        return self.names[size]

    @contextmanager
    def scratch(self, size, label="scratch"):
        """A copy of the database of `size`, in use until the block ends and then dropped:
        the import's runs are rolled back, but the rows they wrote stay behind as dead tuples
        and grown indexes until a vacuum, and would slow and skew the next run's pages.
        `label` names the copy, so the load test and the benchmark do not drop each other's."""
        source = self.names[size]
        name = f"{source}_{label}"
        quote = connection.ops.quote_name
        # A file copy: the default (WAL_LOG) strategy writes the whole database to the WAL.
        strategy = " STRATEGY FILE_COPY" if connection.pg_version >= 150000 else ""
        connection.close()  # a template must have no connections
        start = time.perf_counter()
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")
            cursor.execute(f"CREATE DATABASE {quote(name)} TEMPLATE {quote(source)}{strategy}")
        self.out.write(f"Copied {source} to {name} for the import in {time.perf_counter() - start:.1f} s.")
        try:
            with use_database(name):
                with connection.cursor() as cursor:  # its tables in memory, as the original's are by now
                    cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
                    cursor.execute("SELECT pg_prewarm(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                                   "c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')")
                yield
        finally:
            with connection._nodb_cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)")

    def close(self):
        pass


class FileDatabases(PostgresDatabases):
    """Throw-away SQLite files, deleted by close()."""

    def __init__(self, out, rebuild=False):
        super().__init__(out)
        self.folder = Path(tempfile.mkdtemp(prefix="crm-bench-"))

    def prepare(self, size):
        self.names[size] = str(self.folder / f"bench_{size}.sqlite3")
        with use_database(self.names[size]):
            fill(size, self.out)

    def describe(self, size):
        return Path(self.names[size]).name

    @contextmanager
    def scratch(self, size):
        copy = self.folder / f"scratch_{size}.sqlite3"
        shutil.copyfile(self.names[size], copy)
        try:
            with use_database(str(copy)):
                yield
        finally:
            copy.unlink(missing_ok=True)

    def close(self):
        shutil.rmtree(self.folder, ignore_errors=True)


class RolledBack:
    """Tests and --quick: each use builds into the database in use inside a transaction that
    is rolled back afterwards, so the database is left as it was (one pass only). Its data
    is seen by this connection only: import and export run in-process."""

    reusable = False

    def __init__(self, out=None, users_per_unit=data.USERS_PER_UNIT):
        self.out, self.users_per_unit = out, users_per_unit

    def prepare(self, size):
        pass

    @contextmanager
    def use(self, size):
        with transaction.atomic():
            data.build(size, out=self.out, users_per_unit=self.users_per_unit)
            yield
            transaction.set_rollback(True)

    def describe(self, size):
        return f"{size:,} customers built into {connection.settings_dict['NAME']} and rolled back"

    @contextmanager
    def scratch(self, size):
        yield  # the data is rolled back already

    def close(self):
        pass


def run(sizes, repeat, databases, out, passes=1, explain_misses=False, measurements=None, warmup=True,
        parts=PARTS, plan=None):
    """Build or reuse a database per size, measure in each, and return the table.

    The `repeat` timed requests of each page and user are split into `passes` that
    alternate between the databases (each warmed up again), so a machine that gets busier
    during the run burdens both sizes alike. Import and export run at the large size after
    the last pass of pages. Raises BenchError, after writing the table, when a page or a run
    failed its check."""
    from customers.models import BusinessCustomer

    measurements = [m for m in (measurements or MEASUREMENTS) if m.part in parts]
    plan = plan or Plan()
    passes = max(1, min(passes if databases.reusable else 1, repeat))
    results = {size: {} for size in sizes}
    problems = []
    import_flows = export_flows = None
    load_before = os.getloadavg()
    started = datetime.now(dt_timezone.utc)
    overrides = override_settings(DEBUG=False, SECURE_SSL_REDIRECT=False, ROOT_URLCONF=stock_grid()[1],
                                  ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"])
    customers = {}
    try:
        for size in sizes:
            databases.prepare(size)
        with overrides:
            for n in range(passes):
                share = repeat // passes + (1 if n < repeat % passes else 0)
                for size in sizes if measurements else sizes[-1:]:  # import and export need the large one only
                    start = time.perf_counter()
                    with databases.use(size):
                        customers[size] = BusinessCustomer.objects.count()
                        if measurements:
                            found, trouble = measure(measurements, share, warmup)
                            for key, result in found.items():
                                results[size][key] = results[size][key].merge(result) if key in results[size] else result
                            problems += [f"at {size:,} customers: {p}" for p in trouble if p not in problems]
                            out.write(f"Pass {n + 1}/{passes} at {size:,} customers: {share} timed requests per "
                                      f"page and user, {time.perf_counter() - start:.1f} s")
                        if size == sizes[-1] and n == passes - 1:
                            if "import" in parts:
                                with databases.scratch(size):
                                    import_flows = measure_import(plan, out)
                            if "export" in parts:  # it only reads: on the database itself
                                export_flows = measure_export(plan, out)
                            db_line = machine()
            if explain_misses and connection.vendor == "postgresql" and measurements:
                with databases.use(sizes[-1]):
                    out.write(explain_report(measurements, results, sizes))
    finally:
        databases.close()
    load_after = os.getloadavg()
    header = [
        f"CRM benchmark, {started:%Y-%m-%d %H:%M} UTC. Machine: {db_line}; load average "
        f"{load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end.",
        "Data: " + ", ".join(f"{databases.describe(s)} ({customers[s]:,} customers)" for s in sizes if s in customers)
        + (f"; pages: median of {repeat} requests per page and user{' after a warm-up' if warmup else ''}, "
           f"in {passes} pass{'es' if passes > 1 else ''} alternating the databases" if measurements else "")
        + (f"; import and export: median of {plan.runs} runs, each in its own process"
           + ("" if plan.isolate else " (in-process here: no memory figures)")
           if import_flows or export_flows else "") + ".",
    ]
    table = render(measurements, results, sizes, import_flows, export_flows, header)
    if problems:
        out.write("\n" + table)
        raise BenchError("Checks failed:\n  " + "\n  ".join(dict.fromkeys(problems)))
    return table


class Command(BaseCommand):
    help = ("Grid and record pages of three roles at two database sizes, import and export at the large size, each "
            "beside its reference (stock view, COPY, stock resource), with the targets met or missed.")

    def add_arguments(self, parser):
        parser.add_argument("--only", default=",".join(PARTS),
                            help=f"comma-separated parts to run, of: {', '.join(PARTS)} (default: all)")
        parser.add_argument("--small", type=int, help="customers of the small database (PostgreSQL 10000, else 1000)")
        parser.add_argument("--large", type=int, help="customers of the large database (PostgreSQL 1000000, else 10000)")
        parser.add_argument("--repeat", type=int, default=20, help="timed requests per page and user (median)")
        parser.add_argument("--passes", type=int, default=4,
                            help="split the timed requests into passes alternating between the databases")
        parser.add_argument("--runs", type=int, default=3,
                            help="rounds of the import and export runs, alternating product and references (median)")
        parser.add_argument("--import-rows", type=int, default=Plan.import_rows,
                            help="rows of the import file (default 100000); its memory is also measured at a fifth")
        parser.add_argument("--rebuild", action="store_true", help="rebuild the bench databases even if up to date")
        parser.add_argument("--explain", action="store_true",
                            help="PostgreSQL: EXPLAIN ANALYZE the slowest queries of pages that miss a target")
        parser.add_argument("--quick", action="store_true",
                            help="tests: tiny sizes built into the configured database and rolled back, one request "
                                 "and run each, in-process (proves it runs; the figures mean nothing)")

    def handle(self, *args, **opts):
        parts = [p.strip() for p in opts["only"].split(",") if p.strip()]
        unknown = set(parts) - set(PARTS)
        if unknown or not parts:
            raise CommandError(f"--only takes {', '.join(PARTS)}; not {', '.join(sorted(unknown)) or 'nothing'}.")
        vendor = connection.vendor
        if opts["quick"]:
            sizes, repeat, passes, warmup = list(QUICK_SIZES), 1, 1, False
            databases, plan = RolledBack(users_per_unit=3), Plan.quick()
        else:
            small, large = DEFAULT_SIZES.get(vendor, OTHER_SIZES)
            sizes = sorted({opts["small"] or small, opts["large"] or large})
            repeat, passes, warmup = opts["repeat"], opts["passes"], True
            databases = (PostgresDatabases if vendor == "postgresql" else FileDatabases)(self.stdout, opts["rebuild"])
            rows = opts["import_rows"]
            plan = Plan(import_rows=rows, import_small=max(1, rows // 5), stock_import_rows=min(Plan.stock_import_rows, rows),
                        runs=max(1, opts["runs"]))
        self.stdout.write(f"Benchmark on {vendor}, sizes {', '.join(f'{s:,}' for s in sizes)}, parts {', '.join(parts)}.")
        table = run(sizes, repeat, databases, self.stdout, passes=passes, explain_misses=opts["explain"],
                    warmup=warmup, parts=parts, plan=plan)
        self.stdout.write("\n" + table)
