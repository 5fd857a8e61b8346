"""Simulated back-office users for `manage.py loadtest` (which starts locust with this file).

Each user logs in through /login/ with one of the accounts the plan lists (round robin),
loads the page's static files once as a browser with an empty cache would, then browses:
the customers, accounts and contacts grids (page 1, a deeper page, a filter, a sort, a
quick search), opens records linked from the grid it saw last, runs global searches and
downloads small filtered exports. Every request is checked (status, not bounced to the
login page, the page is what was asked for), so an error counts as a failure, and is
recorded with its start time: the command cuts the phases' windows from that record and
computes the percentiles itself.

No Django import here: this process is gevent's, and it only speaks HTTP to the server.
The plan (a JSON file named by LOADTEST_PLAN) comes from the command; see its plan().
"""
import csv
import itertools
import json
import os
import random
import re

import gevent
from locust import HttpUser, between, events, task

PLAN = json.loads(open(os.environ["LOADTEST_PLAN"], encoding="utf-8").read())
ACCOUNTS = itertools.cycle(PLAN["users"])
ENTITIES = ("customers", "accounts", "contacts")
PER_PAGE = 25
TOTAL = re.compile(r'data-testid="total"[^>]*>\s*(?:about\s*)?([\d,]+)')
STATIC = re.compile(r'(?:href|src)="(/static/[^"]+)"')
LINK = re.compile(r'href="/(customers|accounts|contacts)/(\d+)/"')
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

RECORDED = []  # (name, start, milliseconds, error)


@events.request.add_listener
def _record(request_type, name, response_time, response_length, exception=None, start_time=None, **kwargs):
    RECORDED.append((name, start_time or 0.0, response_time, "" if exception is None else str(exception)[:200]))
    # The bound in requests, beside locust's own bound in time (--run-time).
    if len(RECORDED) == PLAN["max_requests"]:
        gevent.spawn(_ENV["environment"].runner.quit)


_ENV = {}


@events.init.add_listener
def _init(environment, **kwargs):
    _ENV["environment"] = environment


@events.quitting.add_listener
def _write(environment, **kwargs):
    with open(PLAN["record"], "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "start", "ms", "error"])
        writer.writerows(RECORDED)


def status_of(response):
    """"HTTP 500", or for no answer at all (status 0) what the client met instead."""
    if response.status_code:
        return f"HTTP {response.status_code}"
    return f"no answer ({type(response.error).__name__}: {response.error})"[:200]


class BackOfficeUser(HttpUser):
    # Think time of someone reading a grid before the next click.
    wait_time = between(*PLAN["wait"])

    def on_start(self):
        self.totals, self.links = {}, []
        account = next(ACCOUNTS)
        with self.client.get("/login/", name="login", catch_response=True) as page:
            token = CSRF.search(page.text or "")
            if page.status_code != 200 or not token:
                page.failure(f"login page: {page.status_code}, csrf token {'found' if token else 'missing'}")
                self.stop()
                return
        assets = sorted(set(STATIC.findall(page.text)))
        with self.client.post("/login/", name="login", catch_response=True, data={
                "username": account["username"], "password": account["password"],
                "csrfmiddlewaretoken": token.group(1), "next": ""}) as response:
            if response.status_code != 200 or response.url.rstrip("/").endswith("/login"):
                response.failure(f"{account['username']} was not logged in ({response.status_code})")
                self.stop()
                return
        for path in assets:
            with self.client.get(path, name="static file", catch_response=True) as response:
                if response.status_code != 200 or not response.content:
                    response.failure(f"{path}: {response.status_code}")

    # - checks -

    def page(self, path, name, grid=None):
        with self.client.get(path, name=name, catch_response=True) as response:
            text = response.text or ""
            if response.status_code != 200:
                response.failure(f"{path}: {status_of(response)}")
            elif "/login/" in response.url:
                response.failure(f"{path}: sent to the login page")
            elif grid and not TOTAL.search(text):
                response.failure(f"{path}: no grid total on the page")
            else:
                if grid:
                    found = TOTAL.search(text)
                    self.totals[grid] = int(found.group(1).replace(",", ""))
                    self.links = LINK.findall(text) or self.links
                return text
        return ""

    def grid(self, name, query=""):
        entity = random.choice(ENTITIES)
        return self.page(f"/{entity}/{query(entity) if callable(query) else query}", name, grid=entity)

    # - what users do -

    @task(4)
    def grid_page_1(self):
        self.grid("grid page 1", "?reset=1")

    @task(2)
    def grid_deep_page(self):
        entity = random.choice(ENTITIES)
        if entity not in self.totals:
            self.page(f"/{entity}/?reset=1", "grid page 1", grid=entity)
        pages = min(self.totals.get(entity, 0), PLAN["grid_max_rows"]) // PER_PAGE
        if pages >= 2:
            self.page(f"/{entity}/?page={random.randint(2, pages)}", "grid deeper page", grid=entity)

    @task(2)
    def grid_filter(self):
        self.grid("grid filter", lambda entity: "?" + random.choice(PLAN["filters"][entity]))

    @task(2)
    def grid_sort(self):
        self.grid("grid sort", lambda entity: "?sort=" + random.choice(PLAN["sorts"][entity]))

    @task(2)
    def grid_quick_search(self):
        self.grid("grid quick search", lambda entity: "?q=" + random.choice(PLAN["terms"]))

    @task(3)
    def open_record(self):
        if not self.links:
            self.grid("grid page 1", "?reset=1")
        if self.links:
            namespace, pk = random.choice(self.links)
            self.page(f"/{namespace}/{pk}/", "record page")

    @task(2)
    def global_search(self):
        self.page(f"/search/?q={random.choice(PLAN['terms'])}", "global search")

    @task(1)
    def export(self):
        path = random.choice(PLAN["exports"])
        with self.client.get(path, name="export (small, filtered)", catch_response=True) as response:
            kind = response.headers.get("Content-Type", "")
            if response.status_code != 200:
                response.failure(f"{path}: {status_of(response)}")
            elif not kind.startswith("text/csv") or "attachment" not in response.headers.get("Content-Disposition", ""):
                # Above CRM_EXPORT_JOB_ROWS the export becomes a job: the plan chose too large a filter.
                response.failure(f"{path}: no CSV download ({kind}, {response.url})")
