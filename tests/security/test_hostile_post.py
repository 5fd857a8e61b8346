"""Hostile POSTs never give a 500, and a refused one writes nothing.

Every form, mass action and record action of the site (found in the URL configuration, as
test_hostile_input finds the grids), and every autocomplete, gets a table of hostile values
as an Administrator and as a Sales Representative owning the records (world.build_world).
Each field first meets every value with the other fields just as hostile (every clean
runs), then the page's own valid values are posted with the hostile value in every free-text
field (so it reaches the save). After a request that is not a redirect (an accepted write),
no table of the database differs (world.snapshot).
"""
import re

import pytest
from django.core import mail

from accounts.models import Account
from activities.models import Activity
from crm.middleware import MESSAGE as NUL_MESSAGE
from tests.factories import AccountFactory
from tests.security.test_concurrency import FormReader
from tests.security.test_hostile_input import OVERFLOW, fetch, field_names
from tests.security.world import build_world, changed_tables, routes, snapshot, targets

VALUES = [
    "abc", OVERFLOW, "-1", "1.5", "\u00b2", "", "a" * 100_000, "\x00", "<script>alert(1)</script>",
    "Hello\r\nBcc: victim@evil.example",
]
# What may pass a text field's validation (the rest is refused by every field, see above).
TEXT_VALUES = ["abc", "\u00b2", "a" * 100_000, "<script>alert(1)</script>", "Hello\r\nBcc: victim@evil.example"]

# The pages that take a POST, by the last part of their URL name.
POSTED = {"create", "update", "share", "assign", "mass_delete", "merge", "comment", "withdraw", "deactivate",
          "done", "assign_customer", "customer_assign", "customer_group", "save", "edit", "default", "respond"}
# Mass actions work on the records picked in the grid (pk=..., repeated).
MASS = {"assign", "mass_delete", "merge", "deactivate"}
AUTOCOMPLETE = {"autocomplete", "owners", "assignable", "customer_approvers"}
# The navigation's search box is on every page, and no form's field.
NOT_FIELDS = {"csrfmiddlewaretoken", "q"}


def pages(kinds, w):
    """[(url name, path)] of the site's non-admin patterns whose name ends in one of `kinds`."""
    found = []
    for route in routes():
        if route.route.startswith("admin/") or route.name.rsplit(":", 1)[-1] not in kinds:
            continue
        paths = targets(route, w) if route.params else [f"/{route.route}"]
        assert paths, f"world.ARGS does not say how to fill {route.name} ({route.route})"
        found.extend((route.name, p) for p in paths)
    return found


def test_the_forms_are_discovered(org):
    w = build_world(org)
    names = {n for n, _ in pages(POSTED, w)}
    for ns in ("accounts", "customers", "locations", "contacts", "purchase_requests", "approvals", "roles", "users"):
        assert {f"{ns}:create", f"{ns}:update", f"{ns}:mass_delete"} <= names
    assert {"accounts:merge", "accounts:share", "accounts:assign", "activities:create"} <= names
    assert {n for n, _ in pages(AUTOCOMPLETE, w)} >= {"accounts:autocomplete", "saved_views:owners"}


def page_form(html):
    """(the page's main POST form as a browser would post it, {field: is free text})."""
    reader = FormReader()
    reader.feed(html)
    forms = [f for f in reader.forms if set(f) - NOT_FIELDS]
    form = max(forms, key=len) if forms else {}
    base = {k: v if len(v) != 1 else v[0] for k, v in form.items() if k not in NOT_FIELDS}
    fields = {n: free for n, free in field_names(html).items() if n not in NOT_FIELDS}
    return base, {**dict.fromkeys(base, False), **fields}


def short(data):
    def cut(v):
        if isinstance(v, list):
            return [cut(x) for x in v]
        return v[:12] + "…" if isinstance(v, str) and len(v) > 12 else v
    return {cut(k): cut(v) for k, v in data.items()}


class Prober:
    """Posts cases and collects what went wrong; keeps the database's snapshot in step."""

    def __init__(self, client):
        self.client, self.problems, self.before = client, [], snapshot()

    def send(self, method, url, data, expect=None):
        status, error = fetch(self.client, method, url, data)
        after = snapshot()
        if status == 500:
            self.problems.append(f"{method.upper()} {url} {short(data)!r}: 500 {error}")
        elif expect is not None and status not in expect:
            self.problems.append(f"{method.upper()} {url} {short(data)!r}: {status}, expected {expect}")
        elif status != 302 and changed_tables(self.before, after):
            self.problems.append(f"{method.upper()} {url} {short(data)!r}: answered {status} but wrote "
                                 f"{changed_tables(self.before, after)}")
        self.before = after
        return status


def selection(name, w, extra_account):
    """The records a mass action is posted, as the grid would send them."""
    if name == "accounts:merge":
        return [w.account.pk, extra_account.pk]
    ns = name.split(":")[0]
    if ns == "users":
        return [w.owner.pk]
    return [getattr(w, {"accounts": "account", "customers": "customer", "contacts": "contact",
                        "locations": "location", "contact_groups": "contact_group", "channels": "channel",
                        "purchase_requests": "purchase_request", "approvals": "approval",
                        "roles": "role"}[ns]).pk]


def cases(base, fields, fixed):
    names = sorted(fields)
    text = [n for n in names if fields[n]]
    out = [{**fixed, **{n: VALUES[(i + k) % len(VALUES)] for i, n in enumerate(names)}} for k in range(len(VALUES))]
    if text:  # the values a text field may accept, so they reach the save
        out += [{**base, **fixed, **{n: v for n in text}} for v in TEXT_VALUES]
    return out


# Destructive pages go last, so the others still find the world's records.
LAST = ("merge", "mass_delete", "deactivate", "withdraw")


@pytest.fixture
def world(org):
    w = build_world(org)
    w.extra_account = AccountFactory(name=f"{w.token} Other", owner=w.owner, business_unit=w.unit)
    return w


@pytest.mark.parametrize("who", ["admin", "rep"])
def test_hostile_posts_never_fail_and_refusals_write_nothing(org, world, client_for, who):
    w = world
    user = org.user("admin") if who == "admin" else w.owner  # a Sales Representative owning the records
    probe = Prober(client_for(user))
    found = sorted(pages(POSTED, w), key=lambda p: p[0].rsplit(":", 1)[-1] in LAST)
    for name, url in found:
        action = name.rsplit(":", 1)[-1]
        fixed = {"pk": selection(name, w, w.extra_account)} if action in MASS else {}
        status, _ = fetch(probe.client, "get", url, fixed)
        page = probe.client.get(url, fixed) if status == 200 else None
        base, fields = page_form(page.content.decode()) if page is not None else ({}, {})
        fields = fields or dict.fromkeys(["name", "confirm", "pk"], True)
        if action in MASS:
            fields.pop("pk", None)
            fixed["confirm"] = "1"
        for data in cases(base, fields, fixed):
            probe.send("post", url, data)
        if action in MASS:  # the selection itself hostile
            for value in VALUES:
                probe.send("post", url, {"pk": [value, w.account.pk], "confirm": "1"})
    assert not probe.problems, "\n".join(probe.problems[:30])


@pytest.mark.parametrize("who", ["admin", "rep"])
def test_hostile_autocomplete_queries_never_fail(org, world, client_for, who):
    user = org.user("admin") if who == "admin" else world.owner
    probe = Prober(client_for(user))
    for name, url in pages(AUTOCOMPLETE, world):
        for value in VALUES:
            probe.send("get", url, {"q": value, "field": "id", "id": value, "multiple": value})
            probe.send("get", url, {"q": [value, value], "field": value, value[:50]: value})
    assert not probe.problems, "\n".join(probe.problems[:30])


def test_share_with_hostile_targets(org, world, client_for):
    w = world
    probe = Prober(client_for(w.owner))
    url = f"/accounts/{w.account.pk}/share/"
    for data in ({"unshare_user": "abc"}, {"unshare_unit": ""}, {"unshare_user": OVERFLOW},
                 {"unshare_unit": "\u00b2"}, {"user": "abc", "level": "view"}, {"unit": OVERFLOW, "level": "x"},
                 {"user": "-1", "unit": "1.5", "level": ""}):
        probe.send("post", url, data, expect=(302, 400, 200))
    assert not probe.problems, "\n".join(probe.problems)


def test_merge_with_an_unknown_field_or_hostile_choices_is_a_form_error(org, world, client_for):
    w = world
    client = client_for(org.user("admin"))
    probe = Prober(client)
    accounts = [w.account.pk, w.extra_account.pk]
    valid = {"pk": accounts, "master": w.account.pk, "confirm": "1"}
    for data in ({**valid, "field_no_such_field": w.account.pk}, {**valid, "field_name": "abc"},
                 {**valid, "field_name": OVERFLOW}, {**valid, "master": "\u00b2"}, {**valid, "master": "-1"},
                 {**valid, "field_description": str(w.customer.pk + 1000)}):
        assert probe.send("post", "/accounts/merge/", data, expect=(400,)) == 400
        response = client.post("/accounts/merge/", data)
        assert response.context["form"].errors, data
    assert not probe.problems, "\n".join(probe.problems)
    assert Account.objects.filter(pk__in=accounts).count() == 2
    # Still merges when the choices are the page's own.
    assert client.post("/accounts/merge/", {**valid, "field_name": w.extra_account.pk}).status_code == 302
    assert list(Account.objects.filter(pk__in=accounts).values_list("name", flat=True)) == [w.extra_account.name]


@pytest.mark.parametrize("subject", ["Hello\r\nBcc: victim@evil.example", "Hello\nthere", "Hello\rthere"])
def test_email_subject_with_a_line_break_is_a_field_error(org, world, client_for, subject):
    w = world
    client = client_for(w.owner)
    url = f"/activities/customers.businesscustomer/{w.customer.pk}/new/email/"
    before, count = snapshot(), Activity.objects.count()
    response = client.post(url, {"to_address": w.email.email, "subject": subject, "body": "Hi"})
    assert response.status_code == 400
    assert response.context["form"].errors["subject"] == ["A subject cannot contain line breaks."]
    assert mail.outbox == [] and Activity.objects.count() == count
    assert changed_tables(before, snapshot()) == []
    response = client.post(url, {"to_address": w.email.email, "subject": "Hello", "body": "Hi"})
    assert response.status_code == 302 and len(mail.outbox) == 1


@pytest.mark.parametrize("method,where", [("get", "/search/"), ("get", "/accounts/"), ("post", "/accounts/new/"),
                                          ("get", "/admin/accounts/account/"), ("post", "/login/")])
def test_a_nul_character_is_a_400_with_a_sentence(org, client_for, method, where):
    client = client_for(org.user("admin"))
    before = snapshot()
    for data in ({"q": "a\x00b"}, {"name\x00": "x"}, {"name": ["ok", "\x00"]}):
        response = getattr(client, method)(where, data)
        assert response.status_code == 400
        assert response.content.decode() == NUL_MESSAGE
        assert re.search(r"NUL", response.content.decode())
    assert changed_tables(before, snapshot()) == []
