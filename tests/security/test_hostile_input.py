"""Hostile input never gives a 500: out-of-range and malformed ids, NUL bytes, huge strings,
SQL-looking text, repeated parameters and unicode, fed to every grid, export and
autocomplete the URL configuration declares (so a new entity is covered without a line
here), and posted to every create form and mass action. Each answer is a 200 or a 400 (or
the refusal the user gets anyway), and a refused write leaves the database as it was."""
import re

import pytest
from django.apps import apps
from django.urls import NoReverseMatch, URLResolver, get_resolver, reverse

from crm.ids import MAX_ID, as_id, parse_ids
from crm.views import ENTITIES
from tests.approvals.factories import ApprovalFactory, PurchaseRequestFactory
from tests.contacts.factories import ContactGroupFactory
from tests.customers.factories import LocationFactory
from tests.factories import AccountFactory

OVERFLOW = "99999999999999999999"
HOSTILE = [
    OVERFLOW, str(MAX_ID + 1), "-1", "abc", "\u00b2", "\x00", "1\x00", "a" * 10_000, "9" * 4_400,
    "a " * 1_500, "'; DROP TABLE crm_user; --", "\u00fcn\u00efc\u00f8d\u00e9 \U0001f600",
]
# What a text filter accepts (no NUL): these reach the queries, so they go to text fields alone.
TEXT = [v for v in HOSTILE if "\x00" not in v]
REPEATED = ["1", "abc", OVERFLOW, "\u00b2"]
# Each grid also gets its own filters' names (read from its page).
GENERIC_PARAMS = ["page", "per_page", "sort", "q", "cols", "reset", "format", "pk"]
NAME = re.compile(r'\bname="([^"]+)"')


def url_names():
    """Every named URL that takes no argument, e.g. "accounts:list"."""
    names = []

    def walk(patterns, namespaces):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, namespaces + ([p.namespace] if p.namespace else []))
            elif p.name:
                names.append(":".join(namespaces + [p.name]))
    walk(get_resolver().url_patterns, [])
    found = []
    for name in names:
        try:
            found.append((name, reverse(name)))
        except NoReverseMatch:
            pass
    return found


def urls_ending(suffix):
    return [(name, url) for name, url in url_names() if name.endswith(f":{suffix}")]


GRIDS = urls_ending("list")
EXPORTS = urls_ending("export")
AUTOCOMPLETES = urls_ending("autocomplete")
USERS = ["admin", "east_rep"]


def test_every_entity_is_discovered():
    namespaces = {e.namespace for e in ENTITIES}
    assert namespaces <= {n.split(":")[0] for n, _ in GRIDS}
    assert namespaces <= {n.split(":")[0] for n, _ in EXPORTS}
    assert {"accounts", "customers", "contacts", "locations", "purchase_requests", "approvals"} <= namespaces


@pytest.fixture
def records(org):
    """A few records of every entity, owned by east_rep so both users see them."""
    rep = org.user("east_rep")
    approval = ApprovalFactory(purchase_request=PurchaseRequestFactory(
        approved=False, customer=__import__("tests.approvals.factories", fromlist=["b2b_customer"]).b2b_customer(
            owner=rep)))
    customer = approval.customer
    LocationFactory(customer=customer)
    ContactGroupFactory()
    accounts = [customer.account, AccountFactory(owner=rep)]
    return {"customer": customer, "accounts": accounts}


def fetch(client, method, url, data):
    """(status, error): the answer's status, or the exception a 500 would have been."""
    try:
        response = getattr(client, method)(url, data)
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)
        return response.status_code, None
    except Exception as error:  # the test client re-raises what the handler would answer 500 to
        return 500, f"{type(error).__name__}: {str(error)[:120]}"


def check_all(client, url, params, allowed=(200, 400), method="get", extra=None):
    """The problems found with hostile values in `params` ({name: is a text field}).

    Each field with a different value per request (every field is cleaned and rendered back
    whatever the others hold), so over len(HOSTILE) requests every field meets every value;
    text values in the text fields alone, so the filters run with them (an invalid field
    elsewhere would leave the grid empty without querying); every field repeated. One
    request per case, not per field and value: the test stays fast."""
    names = sorted(params)
    text = [n for n in names if params[n]]
    cases = [{n: HOSTILE[(i + k) % len(HOSTILE)] for i, n in enumerate(names)} for k in range(len(HOSTILE))]
    cases += [{n: v for n in text} for v in TEXT]
    cases += [{n: REPEATED for n in names}]
    problems = []
    for case in cases:
        status, error = fetch(client, method, url, {**(extra or {}), **case})
        if status not in allowed:
            shown = {k: (v[:12] + "…" if isinstance(v, str) and len(v) > 12 else v) for k, v in case.items()}
            problems.append(f"{method.upper()} {url} {shown!r}: {status} {error or ''}")
    return problems


INPUT = re.compile(r"<(input|select|textarea)\b[^>]*>")
TYPE = re.compile(r'type="([^"]+)"')


def field_names(html):
    """{name: is a free-text field} of the page's inputs."""
    fields = {}
    for tag in INPUT.finditer(html):
        name = NAME.search(tag.group(0))
        if name is None or name.group(1) == "csrfmiddlewaretoken":
            continue
        kind = TYPE.search(tag.group(0))
        free = tag.group(1) == "textarea" or (tag.group(1) == "input" and (kind is None or kind.group(1) in (
            "text", "search", "email", "url", "tel")))
        fields[name.group(1)] = fields.get(name.group(1), False) or free
    return fields


def grid_params(client, url):
    fields = field_names(client.get(url, {"reset": "1"}).content.decode())
    return {**{n: n in ("q", "sort", "cols") for n in GENERIC_PARAMS}, **fields}


def plain_status(client, url):
    return fetch(client, "get", url, {"reset": "1"})[0]


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("name,url", GRIDS, ids=[n for n, _ in GRIDS])
def test_grid_and_its_export_never_fail(org, records, client_for, user, name, url):
    client = client_for(org.user(user))
    status = plain_status(client, url)
    if status != 200:  # a grid he may not open stays refused, whatever the query string (or
        allowed = (status, 400)  # refused before any view runs: crm.middleware, a NUL)
    else:
        allowed = (200, 400)
    params = grid_params(client, url) if status == 200 else dict.fromkeys(GENERIC_PARAMS, False)
    problems = check_all(client, url, params, allowed)
    export = dict(EXPORTS).get(name.replace(":list", ":export"))
    if export:
        problems += check_all(client, export, params, (status, 400) if status != 200 else (200, 400))
    assert not problems, "\n".join(problems[:30])
