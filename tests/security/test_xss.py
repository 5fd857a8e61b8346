"""Stored XSS: every text a user can store (names, notes, subjects, URLs) renders escaped on
every page of the site, the admin's included, for an Administrator and for the records'
owner. The records of tests.security.world get a script in each of their text fields and a
`javascript:` URL in each URL field; then every URL pattern is fetched and no response may
carry the payload as markup or a `javascript:` link."""
import re

import pytest
from django.core import mail
from django.db import models

from activities import services as activity_services
from tests.security.world import all_paths, body, build_world

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
PAYLOAD = f"{SCRIPT}{IMG}"
RAW = re.compile(rb"<script>alert\(1\)|<img src=x onerror|href=[\"']?\s*javascript:", re.I)


def poison(w):
    """A payload in every text field of the world's records (cut to the field's length, with
    the pk so unique fields stay unique), a javascript: URL in every URL field."""
    records = [w.account, w.customer, w.child, w.location, w.contact, w.activity, w.purchase_request,
               w.approval, w.saved_view, w.role, w.channel, w.contact_group, w.unit]
    for record in records:
        model = type(record)
        values = {}
        for f in model._meta.concrete_fields:
            if isinstance(f, models.URLField):
                values[f.name] = "javascript:alert(1)"
            elif type(f) in (models.CharField, models.TextField) and not f.choices and f.name not in (
                    "grid", "query", "currency", "password"):
                text = f"{record.pk}{PAYLOAD}"
                values[f.name] = text[: f.max_length] if f.max_length else text
        model._default_manager.filter(pk=record.pk).update(**values)


@pytest.fixture
def world(org):
    w = build_world(org)
    poison(w)
    w.owner.is_staff = True  # the admin answers him with its rules, not its login page
    w.owner.save(update_fields=["is_staff"])
    return w


def leaks(client, paths):
    found = []
    for route, path in paths:
        if route.name and route.name.endswith("logout"):
            continue
        response = client.get(path)
        content = body(response)
        kind = response.get("Content-Type", "")
        if not kind.startswith("text/html"):
            # Data files keep the stored text as it is (a CSV is not markup); they must
            # download, not render in the browser.
            assert "text/html" not in kind and ("attachment" in response.get("Content-Disposition", "")
                                                or response.status_code != 200 or not content
                                                or kind.startswith(("application/json", "text/plain",
                                                                    "text/javascript", "text/css"))), (path, kind)
            continue
        if RAW.search(content):
            start = RAW.search(content).start()
            found.append((path, content[max(0, start - 80): start + 60]))
    return found


@pytest.mark.parametrize("who", ["admin", "owner"])
def test_stored_payloads_render_escaped_on_every_page(org, world, client_for, who):
    client = client_for(org.user("admin") if who == "admin" else world.owner)
    paths = [(r, p) for r, p in all_paths(world) if p is not None]
    paths += [(r, f"{p}?q=alert") for r, p in paths if "autocomplete" in (r.name or "") or r.route == "search/"]
    assert len(paths) > 300
    found = leaks(client, paths)
    assert not found, f"unescaped payload on {len(found)} page(s): {found[:5]}"


def test_an_email_activity_goes_out_as_plain_text(org, world):
    world.customer.refresh_from_db()
    activity_services.send_email(world.customer, world.owner, "buyer@example.com", "Offer", f"Hello {PAYLOAD}")
    message = mail.outbox[-1]
    assert not getattr(message, "alternatives", None), "no HTML part in which markup would run"
    assert message.content_subtype == "plain"
