"""Load test (`make loadtest`): simulated users against a real server, without and with an import.

    python manage.py loadtest [--users 50] [--seconds 180] [--customers 1000000] [--import-rows 100000]

PostgreSQL only. The data is the benchmark's (`<configured name>_bench_<customers>`, built
with bench_data on first use and reused, see bench.PostgresDatabases); everything runs on a
scratch copy of it (CREATE DATABASE ... TEMPLATE), dropped at the end, so the import leaves
the bench database as it was. On the copy: gunicorn on a free loopback port (DEBUG off,
static files collected and served by whitenoise) and a job worker (`manage.py db_worker`).

Locust (loadtest/locustfile.py, the optional dependency group `load`) runs the same load
twice, each phase bounded by --seconds and --max-requests: first with nothing else running,
then while one import of --import-rows new business customers (crm.bench.import_file, the
benchmark's import) goes through the import page and the worker, as bench.admin. Counted
are the requests started after the ramp-up (logins) and, in the second phase, while the
import ran. The table gives requests, failures, median, p95 and p99 per request type and
for all pages, in both phases, and the ratio of the p95s against the target.
"""
import csv
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timezone as dt_timezone
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from crm import bench as data
from crm.management.commands.bench import PostgresDatabases, machine

TARGET_P95 = 3  # the p95 of all pages with the import at most 3x the p95 without
LOCUSTFILE = Path(settings.BASE_DIR) / "loadtest" / "locustfile.py"
# In the table's order; "all pages" leaves out the login and static files (once per user, at the start).
PAGES = ("grid page 1", "grid deeper page", "grid filter", "grid sort", "grid quick search", "record page",
         "global search", "export (small, filtered)")
NOT_PAGES = ("login", "static file")
THINK = "2,8"  # seconds a user thinks between two clicks: least, most
TERMS = [data.RARE_TERM, data.COMMON_WORD, "Harbor", "Robotics", "Schmidt", "Berlin"]
SORTS = {
    "customers": ["name", "-name", "-created_at", "lifetime_value", "billing_city"],
    "accounts": ["name", "-name", "-created_at"],
    "contacts": ["name", "-created_at", "job_title"],
}


class LoadTestError(CommandError):
    pass


def think_time(text):
    import argparse

    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("give the least and the most seconds, e.g. 2,8") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError("the least must be at most the most, neither negative")
    return low, high


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url():
    d = connection.settings_dict
    q = urllib.parse.quote
    auth = q(d["USER"] or "") + (f":{q(d['PASSWORD'])}" if d.get("PASSWORD") else "")
    return f"postgres://{auth}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{q(d['NAME'])}"


def percentile(values, p):
    """Nearest rank: the value that p per cent of the values do not exceed."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


# -- the plan the simulated users follow ----------------------------------------------------------

def entities():
    from accounts.views import AccountEntity
    from contacts.views import ContactEntity
    from customers.views import CustomerEntity

    return {"customers": CustomerEntity, "accounts": AccountEntity, "contacts": ContactEntity}


def count(entity, query, user):
    from django.http import QueryDict

    return entity.filterset_class(QueryDict(query), queryset=entity.restricted(user)).qs.count()


def plan(users, password, think, out):
    """Who logs in, what they filter, sort and search for, and which exports they download:
    exports whose filter holds at most half of CRM_EXPORT_JOB_ROWS for the Administrator
    (who sees most), so every user's is a direct download rather than a job."""
    from channels.models import Channel
    from django.contrib.auth.hashers import make_password

    from crm.models import User

    named = [data.BENCH_ADMIN, data.BENCH_MANAGER, data.BENCH_REP]
    others = list(User.objects.filter(is_active=True).exclude(username__in=named).order_by("pk")
                  .values_list("username", flat=True)[: max(0, users - len(named))])
    accounts = [u for u in named if User.objects.filter(username=u).exists()] + others
    # One hash for all: logins cost what they cost in production, the setup does not.
    User.objects.filter(username__in=accounts).update(password=make_password(password))
    admin = User.objects.get(username=data.BENCH_ADMIN)
    channel = Channel.objects.filter(status="active").order_by("pk").values_list("pk", flat=True).first()
    filters = {
        "customers": ["billing_country=DE", "billing_country=US", "currency=EUR", f"channel={channel}",
                      "billing_city=Berlin", "name=Harbor"],
        "accounts": ["name=Robotics", "name=Harbor", "name=Steel"],
        "contacts": ["name=Schmidt", "name=Jones", "name=Hansen"],
    }
    candidates = [("customers", f"name={noun}&billing_country={cc}") for noun in ("Robotics", "Steel", "Media")
                  for cc in ("DE", "US")]
    candidates += [("customers", f"q={data.RARE_TERM}"), ("accounts", "name=Robotics"), ("accounts", "name=Steel"),
                   ("contacts", "name=Schmidt"), ("contacts", "name=Jones")]
    limit = settings.CRM_EXPORT_JOB_ROWS // 2
    exports, found = [], entities()
    for namespace, query in candidates:
        rows = count(found[namespace], query, admin)
        if 0 < rows <= limit:
            exports.append(f"/{namespace}/export/?{query}")
    if not exports:
        raise LoadTestError("None of the export filters selects between 1 and "
                            f"{limit:,} rows: the data is not the benchmark's.")
    out.write(f"Plan: {len(accounts)} user accounts for the simulated users, {len(exports)} small exports.")
    return {"users": [{"username": u, "password": password} for u in accounts], "filters": filters,
            "sorts": SORTS, "terms": TERMS, "exports": exports, "wait": list(think),
            "grid_max_rows": settings.CRM_GRID_MAX_ROWS}


# -- processes ----------------------------------------------------------------------------------

class Processes:
    """The server and the worker, started once for both phases, ended by their ids."""

    def __init__(self, folder, env, out):
        self.folder, self.env, self.out, self.running = folder, env, out, []

    def start(self, name, args):
        log = open(self.folder / f"{name}.log", "wb")
        process = subprocess.Popen(args, cwd=settings.BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.running.append((name, process, log))
        return process

    def tail(self, name, lines=30):
        try:
            return "\n".join((self.folder / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        for name, process, log in reversed(self.running):
            if process.poll() is None:
                # gunicorn ends at once on SIGINT (SIGTERM waits out its keep-alive connections).
                os.killpg(process.pid, signal.SIGINT if name == "gunicorn" else signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            log.close()
        self.running = []


def wait_for_server(base, process, processes, seconds=90):
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LoadTestError("gunicorn exited:\n" + processes.tail("gunicorn"))
        try:
            if requests.get(f"{base}/login/", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise LoadTestError(f"The server did not answer within {seconds} s:\n" + processes.tail("gunicorn"))


# -- the import, as a user does it ----------------------------------------------------------------

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Import(threading.Thread):
    """Upload on the import page, wait for the validation, confirm, wait for the import: the
    job steps run in the worker. Times are epoch seconds, as locust records its requests."""

    def __init__(self, base, username, password, path, rows, timeout):
        super().__init__(daemon=True)
        self.base, self.username, self.password, self.path, self.rows = base, username, password, path, rows
        self.timeout = timeout
        self.started = self.validated = self.ended = None
        self.state, self.error, self.job = "", "", None

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported in the table, and fails the run
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.ended = self.ended or time.time()
            connection.close()  # this thread's own

    def _post(self, session, page, path, **kw):
        token = CSRF.search(session.get(self.base + page, timeout=60).text)
        if not token:
            raise LoadTestError(f"no CSRF token on {page}")
        return session.post(self.base + path, data={"csrfmiddlewaretoken": token.group(1), **kw.pop("data", {})},
                            allow_redirects=False, timeout=600, **kw)

    def _run(self):
        import requests

        from crm.models import Job

        session = requests.Session()
        login = self._post(session, "/login/", "/login/", data={"username": self.username, "password": self.password})
        if login.status_code != 302:
            raise LoadTestError(f"{self.username} could not log in ({login.status_code})")
        self.started = time.time()
        with open(self.path, "rb") as f:
            response = self._post(session, "/customers/import/", "/customers/import/",
                                  data={"mode": "create_update"}, files={"file": ("loadtest-customers.csv", f, "text/csv")})
        found = re.search(r"/jobs/(\d+)/", response.headers.get("Location", ""))
        if response.status_code != 302 or not found:
            raise LoadTestError(f"the upload was refused ({response.status_code})")
        self.job = int(found.group(1))
        deadline = time.monotonic() + self.timeout
        confirmed = False
        while time.monotonic() < deadline:
            job = Job.objects.get(pk=self.job)
            self.state = job.state
            if job.state == Job.State.READY and not confirmed:
                self.validated = time.time()
                answer = self._post(session, f"/jobs/{self.job}/", f"/jobs/{self.job}/confirm/")
                if answer.status_code != 302:
                    raise LoadTestError(f"confirming the import failed ({answer.status_code})")
                confirmed = True
            elif job.state == Job.State.IMPORTED:
                self.ended = time.time()
                if job.created != self.rows:
                    raise LoadTestError(f"{job.created} of the {self.rows} rows were created")
                return
            elif job.state in (Job.State.INVALID, Job.State.FAILED):
                errors = (job.report or {}).get("errors", [])[:3]
                raise LoadTestError(f"the import job ended {job.state}: {job.message} {errors}")
            time.sleep(1)
        raise LoadTestError(f"the import did not finish within {self.timeout} s (state {self.state})")


# -- phases and the table -----------------------------------------------------------------------

class Phase:
    def __init__(self, label):
        self.label, self.requests, self.window = label, [], (0.0, 0.0)

    def counted(self, name=None):
        low, high = self.window
        return [r for r in self.requests if low <= r[1] <= high and (name is None or r[0] == name)]

    def figures(self, names):
        rows = [r for r in self.counted() if r[0] in names]
        ms = [r[2] for r in rows]
        return len(rows), sum(1 for r in rows if r[3]), percentile(ms, 50), percentile(ms, 95), percentile(ms, 99)

    @property
    def failures(self):
        return [r for r in self.requests if r[3]]


def run_locust(plan_data, folder, label, base, users, seconds, spawn_rate, max_requests, env):
    plan_path, record = folder / f"plan-{label}.json", folder / f"requests-{label}.csv"
    plan_path.write_text(json.dumps({**plan_data, "record": str(record), "max_requests": max_requests}))
    args = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--users", str(users),
            "--spawn-rate", str(spawn_rate), "--run-time", f"{seconds}s", "--stop-timeout", "10",
            "--host", base, "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    log = open(folder / f"locust-{label}.log", "wb")
    process = subprocess.Popen(args, cwd=settings.BASE_DIR, env={**env, "LOADTEST_PLAN": str(plan_path)},
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return process, record, log


def read_record(record, log_path):
    if not record.exists():
        raise LoadTestError("locust wrote no record of its requests:\n"
                            + "\n".join(log_path.read_text(errors="replace").splitlines()[-30:]))
    with open(record, newline="", encoding="utf-8") as f:
        return [(r["name"], float(r["start"]), float(r["ms"]), r["error"]) for r in csv.DictReader(f)]


def ms(value):
    return "—" if value is None else f"{value:.0f}"


def table(phases, header):
    base, load = phases
    width = 28
    lines = list(header) + [""]
    cols = f"{'requests':>8} {'fail':>5} {'median':>7} {'p95':>7} {'p99':>7}"
    lines.append(f"{'request (ms)':<{width}} | {base.label:^38} | {load.label:^38} | p95 with/without")
    lines.append(f"{'':<{width}} | {cols} | {cols} |")
    lines.append("-" * (width + 101))
    ratio = None
    for name in (*PAGES, None, *NOT_PAGES):
        names = PAGES if name is None else (name,)
        a, b = base.figures(names), load.figures(names)
        r = b[3] / a[3] if a[3] and b[3] else None
        if name is None:
            ratio = r
            lines.append("-" * (width + 101))
        cells = [f"{x[0]:>8,} {x[1]:>5,} {ms(x[2]):>7} {ms(x[3]):>7} {ms(x[4]):>7}" for x in (a, b)]
        label = "ALL PAGES" if name is None else name
        note = "" if name in NOT_PAGES else ("" if r is None else f"{r:.2f}" + ("!" if r > TARGET_P95 else ""))
        lines.append(f"{label:<{width}} | {cells[0]} | {cells[1]} | {note:>8}")
    return lines, ratio


class Command(BaseCommand):
    help = ("Load test: simulated users browse, search and export on a copy of the benchmark data, without and "
            "with a large import running; prints per request type requests, failures, median, p95 and p99.")

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=50, help="simulated users (default 50)")
        parser.add_argument("--seconds", type=int, default=180, help="length of each phase (default 180)")
        parser.add_argument("--customers", type=int, default=1_000_000,
                            help="size of the bench database (default 1000000; built on first use)")
        parser.add_argument("--import-rows", type=int, default=100_000, help="rows of the import (default 100000)")
        parser.add_argument("--max-requests", type=int, help="bound of each phase in requests (default 20 a user-second)")
        parser.add_argument("--think", type=think_time, default=think_time(THINK),
                            help=f"seconds between a user's clicks, least and most (default {THINK})")
        parser.add_argument("--spawn-rate", type=float, default=5, help="users started per second (default 5)")
        parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (default 3)")
        parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
        parser.add_argument("--import-timeout", type=int, default=1800,
                            help="seconds the import may take in all (default 1800)")

    def handle(self, *args, **opts):
        if connection.vendor != "postgresql":
            raise CommandError("The load test needs PostgreSQL (DATABASE_URL=postgres://...): it copies the bench "
                               "database as a template, and SQLite's one writer would measure SQLite's lock.")
        users, seconds = opts["users"], opts["seconds"]
        if users < 1 or seconds < 5:
            raise CommandError("--users must be at least 1 and --seconds at least 5.")
        max_requests = opts["max_requests"] or users * seconds * 20
        # Logins (one password hash each) and the first static files fall into the ramp-up;
        # both phases leave it out alike.
        warmup = min(users / opts["spawn_rate"] + 5, seconds / 3)
        databases = PostgresDatabases(self.stdout)
        databases.prepare(opts["customers"])
        with databases.use(opts["customers"]):
            # scratch() asks the server's version; the configured database need not exist to answer.
            connection.ensure_connection()
            assert connection.pg_version
        folder = Path(tempfile.mkdtemp(prefix="h_load-"))
        started = datetime.now(dt_timezone.utc)
        load_before = os.getloadavg()
        try:
            with databases.scratch(opts["customers"], label="loadtest"):
                lines, ratio, failed = self.run_phases(opts, folder, users, seconds, warmup, max_requests, databases)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        load_after = os.getloadavg()
        lines[0] = (f"CRM load test, {started:%Y-%m-%d %H:%M} UTC. Machine: {lines[0]}; load average "
                    f"{load_before[0]:.1f} at the start, {load_after[0]:.1f} at the end.")
        self.stdout.write("\n" + "\n".join(lines))
        if failed:
            raise CommandError("The load test failed: " + "; ".join(failed))

    def run_phases(self, opts, folder, users, seconds, warmup, max_requests, databases):
        from customers.models import BusinessCustomer

        out, ready = self.stdout, time.monotonic()
        customers = BusinessCustomer.objects.count()
        db_line = machine()
        scratch_name = connection.settings_dict["NAME"]
        password = secrets.token_urlsafe(18)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k not in ("CRM_TESTING", "DEBUG")}
        env.update(DATABASE_URL=database_url(), DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50),
                   ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="0", SECURE_COOKIES="0", SECURE_HSTS_SECONDS="0",
                   MEDIA_ROOT=str(folder / "media"), STATIC_ROOT=str(folder / "static"), LOG_LEVEL="WARNING",
                   PYTHONPATH=str(settings.BASE_DIR))
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        # Compressing the static files takes a while: beside the plan and the import file.
        collecting = subprocess.Popen([*manage, "collectstatic", "--noinput", "-v", "0"], cwd=settings.BASE_DIR,
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        plan_data = plan(users, password, opts["think"], out)
        rows = opts["import_rows"]
        import_path = folder / "import.csv"
        import_path.write_bytes(data.import_file(rows).csv_bytes())
        connection.close()  # the import thread opens its own; nothing is held during the phases
        _, errors = collecting.communicate()
        if collecting.returncode:
            raise LoadTestError("collectstatic failed:\n" + errors[-3000:])
        out.write(f"Plan, import file of {rows:,} rows and static files ready in {time.monotonic() - ready:.1f} s.")
        processes = Processes(folder, env, out)
        phases, failed, job = [Phase("without the import"), Phase("with the import")], [], None
        try:
            # Keep-alive beyond the longest think time: with gunicorn's 2 s, the server drops an
            # idle connection just as the client reuses it, and the request dies as "connection
            # reset" (browsers and proxies retry that; locust's client does not).
            server = processes.start("gunicorn", [
                sys.executable, "-m", "gunicorn", "crm.wsgi:application", "--bind", f"127.0.0.1:{port}",
                "--workers", str(opts["workers"]), "--threads", str(opts["threads"]), "--timeout", "120",
                "--keep-alive", str(int(opts["think"][1]) + 30)])
            processes.start("worker", [*manage, "db_worker", "--no-reload", "--no-startup-delay"])
            wait_for_server(base, server, processes)
            out.write(f"Server on {base} ({opts['workers']} workers x {opts['threads']} threads), worker started.")
            for n, phase in enumerate(phases):
                begin = time.time()
                process, record, log = run_locust(plan_data, folder, f"phase{n}", base, users, seconds,
                                                  opts["spawn_rate"], max_requests, env)
                if n == 1:
                    time.sleep(warmup)
                    job = Import(base, data.BENCH_ADMIN, password, import_path, rows, opts["import_timeout"])
                    job.start()
                try:
                    process.wait(seconds + 60)
                finally:
                    if process.poll() is None:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait()
                    log.close()
                end = time.time()
                phase.requests = read_record(record, folder / f"locust-phase{n}.log")
                phase.window = (begin + warmup, end)
                if job is not None:
                    job.join(opts["import_timeout"])
                    phase.window = (max(begin + warmup, job.started or end), min(end, job.ended or end))
                    if job.error or job.is_alive():
                        failed.append(f"import: {job.error or 'still running'}")
                counted = len(phase.counted())
                out.write(f"Phase {n + 1} ({phase.label}): {len(phase.requests):,} requests, {counted:,} counted, "
                          f"{time.time() - begin:.0f} s.")
                if not counted:
                    failed.append(f"{phase.label}: no request in the counted window")
            if server.poll() is not None:
                failed.append("gunicorn exited during the run")
        finally:
            processes.stop()
            connection.close()  # the scratch database is dropped next
        for phase in phases:
            errors = phase.failures
            if errors:
                failed.append(f"{phase.label}: {len(errors)} failed requests, e.g. {errors[0][0]}: {errors[0][3]}")
        header = [db_line,
                  f"Data: a copy of {databases.describe(opts['customers'])} ({customers:,} customers) as "
                  f"{scratch_name}, dropped after the run. Server: gunicorn, {opts['workers']} workers x "
                  f"{opts['threads']} threads on 127.0.0.1, DEBUG off, static files by whitenoise; jobs: one "
                  f"`manage.py db_worker`.",
                  f"Load: {users} simulated users (locust; {len(plan_data['users'])} user accounts of all roles, "
                  f"logged in at /login/), think time {opts['think'][0]:g}-{opts['think'][1]:g} s, {seconds} s a phase (at most "
                  f"{max_requests:,} requests); counted: requests started after a {warmup:.0f} s ramp-up"
                  f" and, with the import, while it ran."]
        if job is not None:
            def span(a, b):
                return f"{b - a:.0f} s" if a and b else "—"
            low, high = phases[1].window
            header.append(f"Import: {rows:,} new business customers uploaded at /customers/import/ as "
                          f"{data.BENCH_ADMIN}, job {job.job}: validation {span(job.started, job.validated)}, "
                          f"import {span(job.validated, job.ended)}, {job.state or 'not started'}"
                          f"{'; ' + job.error if job.error else ''}; it overlapped {max(0, high - low):.0f} s of "
                          f"the phase's {seconds} s.")
        lines, ratio = table(phases, header)
        total_failures = sum(len(p.failures) for p in phases)
        outside = total_failures - sum(p.figures(PAGES + NOT_PAGES)[1] for p in phases)
        lines += ["", "TARGETS",
                  f"  failed requests: {total_failures} in both phases ({outside} outside the counted windows) "
                  f"(target 0): {'met' if not total_failures else 'MISSED'}",
                  "  p95 of all pages with the import at most 3x without: "
                  + ("—: MISSED (no figures)" if ratio is None else
                     f"{ratio:.2f}x: {'met' if ratio <= TARGET_P95 else 'MISSED'}")]
        if failed:
            lines += ["", "PROBLEMS"] + [f"  {p}" for p in failed]
        return lines, ratio, failed
