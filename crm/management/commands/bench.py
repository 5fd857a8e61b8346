"""Benchmark: are restricted users' pages as cheap as an Administrator's, at a million customers?

    python manage.py bench [--small 10000] [--large 1000000] [--repeat 20] [--passes 4] [--explain]

On PostgreSQL two databases, `<configured name>_bench_<size>`, are built with crm.bench
(migrate, then bench_data) or reused when a marker (a comment on the database) says they
hold that size of the current data version and migrations; the configured database is
never touched. On other engines the databases are throw-away files (smaller defaults).

Every measurement runs in-process through the Django test Client for three users (an
Administrator as the reference, the Manager of EMEA, a Sales Representative of DACH):
one warm-up request, one that counts the SQL queries and checks the page (status 200,
the restricted users see fewer records than the Administrator), then the median of
`--repeat` timed requests, taken in `--passes` that alternate between the two databases.
One table prints them all, with the ratios "large / small" and "user / Administrator"
and whether the targets are met.

A measurement is an object with a label, its roles and `run(bench) -> {role: Result}`;
add one to MEASUREMENTS and the table shows it.
"""
import hashlib
import json
import re
import shutil
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from crm import bench as data

TARGET_VS_ADMIN = 1.5  # a restricted user's page at most 1.5x the Administrator's, at the large size
TARGET_VS_SMALL = 1.5  # a page at the large size at most 1.5x the same page at the small size
ADMIN_ROLE = data.ADMINISTRATOR
DEFAULT_SIZES = {"postgresql": (10_000, 1_000_000)}
OTHER_SIZES = (1_000, 10_000)


class BenchError(CommandError):
    """A page that failed its check: the figures would measure the wrong thing."""


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


# -- measurements --------------------------------------------------------------------------------

class Measurement:
    """One row group of the table: `run(bench)` -> {role: Result} on the database in use."""

    label = ""
    unit = "ms"
    lower_is_better = True
    roles = tuple(role for role, _ in data.BENCH_USERS)

    def run(self, bench):
        raise NotImplementedError

    def check(self, results):
        """{role: Result} of one size -> problems (strings)."""
        return []


class Page(Measurement):
    """GET a page as each user: a warm-up request each, one that counts the queries and is
    checked, then `repeat` timed rounds over the users (interleaved, so a machine that gets
    busier in the meantime burdens every user alike); the median per user, in ms."""

    def __init__(self, label, path, count=None, fewer=True):
        self.label, self.path, self.count, self.fewer = label, path, count, fewer

    def run(self, bench):
        url = self.path(bench.fixtures)
        clients = {role: bench.client(role) for role in self.roles}
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
            count = self.count(response.content.decode()) if self.count else None
            if self.count and count is None:
                raise BenchError(f"{self.label}: cannot read {self.count.__name__} on {url}; update crm bench")
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


MEASUREMENTS = [
    Page("customers grid, page 1", lambda f: "/customers/", grid_total),
    Page("customers grid, quick search", lambda f: f"/customers/?q={f['common_word']}", grid_total),
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
    grid = results.get((MEASUREMENTS[0].label, ADMIN_ROLE))
    # Above CRM_EXACT_COUNT_LIMIT the grid shows PostgreSQL's estimate: near, not equal.
    if grid is not None and abs(grid.count - bench.customers) > 0.1 * bench.customers:
        problems.append(f"the Administrator's grid counts {grid.count} customers of {bench.customers}")
    return results, problems


# -- the table -----------------------------------------------------------------------------------

def size_label(n):
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div and n % (div // 10) == 0:
            return f"{n / div:g}{unit}"
    return str(n)


def ratio(a, b):
    return a / b if a is not None and b else None


def misses(measurements, results, sizes):
    """(target name, [(label, role, ratio)]) for the two targets, at the large size."""
    small, large = sizes[0], sizes[-1]
    vs_admin, vs_small = [], []
    for m in measurements:
        for role in m.roles:
            big = results[large].get((m.label, role))
            if big is None:
                continue
            admin = results[large].get((m.label, ADMIN_ROLE))
            r = ratio(big.value, admin.value) if admin and role != ADMIN_ROLE else None
            if not m.lower_is_better and r:
                r = 1 / r
            if r is not None and r > TARGET_VS_ADMIN:
                vs_admin.append((m.label, role, r))
            before = results[small].get((m.label, role)) if small != large else None
            r = ratio(big.value, before.value) if before else None
            if not m.lower_is_better and r:
                r = 1 / r
            if r is not None and r > TARGET_VS_SMALL:
                vs_small.append((m.label, role, r))
    return vs_admin, vs_small


def render(measurements, results, sizes):
    """One table: each measurement x user at each size, value, SQL queries and "x admin",
    then "large / small"; a "!" marks a figure that misses its target; then the targets."""
    small, large = sizes[0], sizes[-1]
    head = f"{'':<34} {'':<22}" + "".join(f" | {size_label(s) + ' customers':^27}" for s in sizes)
    head += f" | {size_label(large) + ' / ' + size_label(small):>9}" if len(sizes) > 1 else ""
    sub = f"{'measurement':<34} {'user':<22}" + "".join(f" | {'value':>10} {'SQL':>5} {'x admin':>9}" for _ in sizes)
    sub += f" | {'':>9}" if len(sizes) > 1 else ""
    lines = [head, sub, "-" * len(sub)]
    for m in measurements:
        for n, role in enumerate(m.roles):
            row = f"{m.label if n == 0 else '':<34} {role:<22}"
            for s in sizes:
                res = results[s].get((m.label, role))
                admin = results[s].get((m.label, ADMIN_ROLE))
                if res is None:
                    row += f" | {'—':>27}"
                    continue
                r = ratio(res.value, admin.value) if admin and role != ADMIN_ROLE else None
                flag = "!" if r and s == large and (r if m.lower_is_better else 1 / r) > TARGET_VS_ADMIN else " "
                value = f"{res.value:.1f} {m.unit}"
                row += f" | {value:>10} {res.queries if res.queries is not None else '':>5} " \
                       f"{f'{r:.2f}' if r else '—':>8}{flag}"
            if len(sizes) > 1:
                a, b = results[small].get((m.label, role)), results[large].get((m.label, role))
                r = ratio(b.value, a.value) if a and b else None
                flag = "!" if r and (r if m.lower_is_better else 1 / r) > TARGET_VS_SMALL else " "
                row += f" | {f'{r:.2f}' if r else '—':>8}{flag}"
            lines.append(row)
    vs_admin, vs_small = misses(measurements, results, sizes)

    def verdict(name, missed):
        if not missed:
            return f"{name}: met."
        worst = ", ".join(f"{label} / {role} {r:.2f}x" for label, role, r in sorted(missed, key=lambda x: -x[2]))
        return f"{name}: NOT met ({len(missed)}): {worst}."

    lines.append("")
    lines.append(verdict(f"Target: a restricted user's page at most {TARGET_VS_ADMIN}x the Administrator's at "
                         f"{size_label(large)}", vs_admin))
    if len(sizes) > 1:
        lines.append(verdict(f"Target: each page at {size_label(large)} at most {TARGET_VS_SMALL}x the same page at "
                             f"{size_label(small)}", vs_small))
    return "\n".join(lines)


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

    def close(self):
        shutil.rmtree(self.folder, ignore_errors=True)


class RolledBack:
    """Tests: each use builds into the database in use inside a transaction that is rolled
    back afterwards, so the test database is left as it was (one pass only)."""

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

    def close(self):
        pass


def run(sizes, repeat, databases, out, passes=1, explain_misses=False, measurements=None, warmup=True):
    """Build or reuse a database per size, measure in each, and return the table.

    The `repeat` timed requests of each page and user are split into `passes` that
    alternate between the databases (each warmed up again), so a machine that gets busier
    during the run burdens both sizes alike. Raises BenchError, after writing the table,
    when a page failed its check."""
    measurements = measurements or MEASUREMENTS
    passes = max(1, min(passes if databases.reusable else 1, repeat))
    results = {size: {} for size in sizes}
    problems = []
    overrides = override_settings(DEBUG=False, SECURE_SSL_REDIRECT=False,
                                  ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"])
    try:
        for size in sizes:
            databases.prepare(size)
        with overrides:
            for n in range(passes):
                share = repeat // passes + (1 if n < repeat % passes else 0)
                for size in sizes:
                    start = time.perf_counter()
                    with databases.use(size):
                        found, trouble = measure(measurements, share, warmup)
                    for key, result in found.items():
                        results[size][key] = results[size][key].merge(result) if key in results[size] else result
                    problems += [f"at {size:,} customers: {p}" for p in trouble if p not in problems]
                    out.write(f"Pass {n + 1}/{passes} at {size:,} customers: {share} timed requests per page and "
                              f"user, {time.perf_counter() - start:.1f} s")
            if explain_misses and connection.vendor == "postgresql":
                with databases.use(sizes[-1]):
                    out.write(explain_report(measurements, results, sizes))
    finally:
        databases.close()
    table = render(measurements, results, sizes)
    if problems:
        out.write("\n" + table)
        raise BenchError("Checks failed:\n  " + "\n  ".join(dict.fromkeys(problems)))
    return table


def explain_report(measurements, results, sizes):
    vs_admin, vs_small = misses(measurements, results, sizes)
    lines = []
    for label, role in sorted({(label, role) for label, role, _ in vs_admin + vs_small}):
        lines.append(f"\n== {label} / {role}: the slowest queries at {size_label(sizes[-1])}")
        lines.append(explain(results[sizes[-1]][(label, role)]))
    return "\n".join(lines)


class Command(BaseCommand):
    help = "Page costs of restricted users against an Administrator's, at two database sizes."

    def add_arguments(self, parser):
        parser.add_argument("--small", type=int, help="customers of the small database (PostgreSQL 10000, else 1000)")
        parser.add_argument("--large", type=int, help="customers of the large database (PostgreSQL 1000000, else 10000)")
        parser.add_argument("--repeat", type=int, default=20, help="timed requests per page and user (median)")
        parser.add_argument("--passes", type=int, default=4,
                            help="split the timed requests into passes alternating between the databases")
        parser.add_argument("--rebuild", action="store_true", help="rebuild the bench databases even if up to date")
        parser.add_argument("--explain", action="store_true",
                            help="PostgreSQL: EXPLAIN ANALYZE the slowest queries of pages that miss a target")

    def handle(self, *args, **opts):
        vendor = connection.vendor
        small, large = DEFAULT_SIZES.get(vendor, OTHER_SIZES)
        sizes = sorted({opts["small"] or small, opts["large"] or large})
        databases = (PostgresDatabases if vendor == "postgresql" else FileDatabases)(self.stdout, opts["rebuild"])
        self.stdout.write(f"Benchmark on {vendor}, sizes {', '.join(f'{s:,}' for s in sizes)}.")
        table = run(sizes, opts["repeat"], databases, self.stdout, passes=opts["passes"],
                    explain_misses=opts["explain"])
        self.stdout.write("\n" + table)
