"""Authentication and response headers: login throttling (django-axes), Argon2 password
hashes, secure cookies and HSTS in production, and a Content-Security-Policy without
'unsafe-inline' that the pages keep (no inline script, style or handler left in them)."""
import os
import subprocess
import sys
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Permission
from django.test import Client

import crm.settings as project_settings
from tests.approvals.factories import ApprovalFactory, b2b_customer
from tests.factories import PASSWORD, AccountFactory
from tests.toolkit import csv_bytes, upload

pytestmark = pytest.mark.django_db

WRONG = "not-the-password"


@pytest.fixture
def throttled(settings):
    """Throttling on (the suite runs with it off), at the shipped defaults."""
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def log_in(client, username, password, path="/login/", address="127.0.0.1"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client):
    return "_auth_user_id" in client.session


def lock(username, path="/login/", address="127.0.0.1", tries=12):
    client = Client()
    return client, [log_in(client, username, WRONG, path, address).status_code for _ in range(tries)]


# -- login throttling ---------------------------------------------------------------------------

def test_twelve_wrong_passwords_lock_and_the_right_one_is_then_refused(throttled, org):
    client, statuses = lock("east_rep")
    # Four typos get the login form back; the fifth failure locks, and so does every try after.
    assert statuses == [200] * 4 + [429] * 8
    response = log_in(client, "east_rep", PASSWORD)
    assert response.status_code == 429
    assert not logged_in(client)
    assert "registration/locked_out.html" in [t.name for t in response.templates]
    page = response.content.decode()
    assert 'data-testid="lockout-message"' in page and "Too many failed logins" in page
    assert "<strong>east_rep</strong>" in page and "Wait 15 minutes" in page
    assert "bootstrap.min.css" in page  # the product's page, not axes' bare text
    assert client.get("/").status_code == 302


def test_a_lockout_leaves_other_users_and_other_addresses_alone(throttled, org):
    lock("east_rep", address="10.0.0.1")
    elsewhere = Client()
    assert log_in(elsewhere, "east_rep", PASSWORD, address="10.0.0.2").status_code == 302
    assert logged_in(elsewhere)
    colleague = Client()
    assert log_in(colleague, "east_manager", PASSWORD, address="10.0.0.1").status_code == 302
    assert logged_in(colleague)
    assert log_in(Client(), "east_rep", PASSWORD, address="10.0.0.1").status_code == 429


def test_the_admin_login_is_throttled_with_the_same_page(throttled, org):
    client, statuses = lock("admin", path="/admin/login/")
    assert statuses[-1] == 429
    response = log_in(client, "admin", PASSWORD, path="/admin/login/")
    assert response.status_code == 429 and "Too many failed logins" in response.content.decode()
    # Failures on either login page count for the same user and address.
    assert log_in(Client(), "admin", PASSWORD).status_code == 429


def test_a_success_resets_the_count_so_repeated_correct_logins_never_lock(throttled, org):
    """As a load test's simulated users do: many logins from one address, with a typo now and then."""
    for _ in range(3):
        for _ in range(4):
            assert log_in(Client(), "east_rep", WRONG).status_code == 200
        client = Client()
        assert log_in(client, "east_rep", PASSWORD).status_code == 302
    for _ in range(20):
        assert log_in(Client(), "east_rep", PASSWORD).status_code == 302


def test_an_administrator_unlocks_in_the_admin(throttled, org, admin, client_for):
    lock("east_rep")
    client = client_for(admin)
    listing = client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    attempts = list(listing.context["cl"].result_list)
    assert [a.username for a in attempts] == ["east_rep"]
    response = client.post("/admin/axes/accessattempt/", {
        "action": "delete_selected", "_selected_action": [attempts[0].pk], "post": "yes"})
    assert response.status_code == 302
    user = Client()
    assert log_in(user, "east_rep", PASSWORD).status_code == 302 and logged_in(user)


def test_staff_who_are_not_superusers_see_no_lockouts_unless_granted(throttled, org, client_for):
    lock("east_rep")
    staff = org.user("east_manager")
    staff.is_staff = True
    staff.save()
    client = client_for(staff)
    assert "axes" not in client.get("/admin/").content.decode().lower()
    assert client.get("/admin/axes/accessattempt/").status_code == 403
    staff.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="axes", codename__in=["view_accessattempt", "delete_accessattempt"]))
    assert client.get("/admin/axes/accessattempt/").status_code == 200


def test_the_suite_runs_unthrottled(org):
    """The suite's many logins (Client.login passes no request, which axes needs) are not counted."""
    assert settings.AXES_ENABLED is False
    for _ in range(12):
        log_in(Client(), "east_rep", WRONG)
    assert log_in(Client(), "east_rep", PASSWORD).status_code == 302


# -- production settings, in a fresh process ------------------------------------------------------

def production(code, **env):
    clean = {k: v for k, v in os.environ.items()
             if k not in {"DATABASE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "CRM_TESTING", "SECURE_SSL_REDIRECT",
                          "SECURE_HSTS_SECONDS", "SECURE_COOKIES", "CRM_LOGIN_THROTTLE", "CRM_LOGIN_FAILURES",
                          "CRM_LOGIN_COOLOFF_MINUTES"}}
    clean.update(DJANGO_SETTINGS_MODULE="crm.settings", DEBUG="0", SECRET_KEY="k" * 20 + "production-like-key-0123456789",
                 ALLOWED_HOSTS="crm.example.com", DATABASE_URL="sqlite:////tmp/h_auth_unused.sqlite3", **env)
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()\n" + code], cwd=settings.BASE_DIR,
                            env=clean, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_throttling_is_on_in_production_and_configured_from_the_environment():
    code = "from django.conf import settings as s; print(s.AXES_ENABLED, s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME)"
    assert production(code) == "True 5 0:15:00"
    assert production(code, CRM_LOGIN_FAILURES="7", CRM_LOGIN_COOLOFF_MINUTES="30") == "True 7 0:30:00"


def test_production_sends_hsts_csp_and_secure_cookie_settings():
    code = """
from django.conf import settings as s
from django.test import Client
r = Client().get("/", secure=True, HTTP_HOST="crm.example.com")
print(r.status_code)
print(r["Strict-Transport-Security"])
print(r["Content-Security-Policy"])
print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT)
print(Client().get("/", HTTP_HOST="crm.example.com").status_code)
"""
    status, hsts, csp, cookies, plain = production(code).splitlines()
    assert status == "302"
    assert hsts == "max-age=31536000; includeSubDomains; preload"
    assert_strict(csp)
    assert cookies == "True True True True"
    assert plain == "301"  # plain HTTP is redirected to HTTPS


# -- password hashing ------------------------------------------------------------------------------

def test_passwords_are_hashed_with_argon2_and_older_hashes_upgraded(settings, org):
    assert project_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    assert make_password("a-new-secret-42").startswith("argon2$")
    user = org.user("east_rep")
    user.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
    user.save(update_fields=["password"])
    assert log_in(Client(), "east_rep", PASSWORD).status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("argon2$")


# -- Content-Security-Policy --------------------------------------------------------------------------

def assert_strict(header):
    directives = dict((part.split(" ", 1) + [""])[:2] for part in header.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in header and "unsafe-eval" not in header


class InlineFinder(HTMLParser):
    """Everything a CSP without 'unsafe-inline' would refuse: <script> without src, <style>,
    style="..." attributes, on*= handlers and javascript: links (also inside <template>)."""

    def __init__(self):
        super().__init__()
        self.found = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and "src" not in attrs and attrs.get("type") != "application/json":
            self.found.append(self.get_starttag_text())
        if tag == "style":
            self.found.append(self.get_starttag_text())
        for name, value in attrs.items():
            if name == "style" or name.startswith("on") or (
                    name in {"href", "src", "action"} and (value or "").strip().lower().startswith("javascript:")):
                self.found.append(self.get_starttag_text())


def inline_parts(html):
    finder = InlineFinder()
    finder.feed(html)
    return finder.found


def test_the_finder_finds_what_the_policy_refuses():
    html = ('<div style="width: 5%"></div><script>alert(1)</script><style>p{}</style><a href="javascript:x()">x</a>'
            '<template><button onclick="go()">go</button></template>'
            '<script src="/static/crm/crm.js"></script><div class="crm-w-5" data-onclick="no"></div>')
    assert len(inline_parts(html)) == 5


@pytest.fixture
def pages(org, admin, client_for):
    """The main pages, as an administrator sees them (the most controls), and anonymously."""
    client = client_for(admin)
    customer = b2b_customer(owner=org.user("east_rep"), limit=1000, budget=5000, name="Globex CSP")
    child = b2b_customer(owner=org.user("east_rep"), name="Globex CSP Child", parent=customer)
    approval = ApprovalFactory(purchase_request__customer=customer)
    first, second = AccountFactory(name="Merge One"), AccountFactory(name="Merge Two")
    job_page = upload(client, "channels", csv_bytes([["Name", "Type"], ["CSP Channel", "Sales"]]))
    assert job_page.status_code == 200
    urls = ["/", "/customers/", f"/customers/{customer.pk}/", f"/customers/{child.pk}/", "/customers/new/",
            f"/customers/{customer.pk}/edit/", "/contacts/new/", "/accounts/", f"/accounts/{first.pk}/",
            f"/accounts/merge/?pk={first.pk}&pk={second.pk}", "/customers/import/", "/jobs/",
            job_page.request["PATH_INFO"], f"/approvals/{approval.pk}/", "/search/?q=Globex",
            "/admin/", "/admin/customers/businesscustomer/", f"/admin/customers/businesscustomer/{customer.pk}/change/"]
    return client, urls


def test_main_pages_send_the_policy_and_keep_no_inline_script_or_style(pages, throttled):
    client, urls = pages
    rendered = [(u, client.get(u)) for u in urls]
    anonymous = Client()
    rendered.append(("/login/", anonymous.get("/login/")))
    rendered.append(("/admin/login/", anonymous.get("/admin/login/")))
    _, attempts = lock("east_rep")
    rendered.append(("lockout", log_in(Client(), "east_rep", PASSWORD)))
    for u, response in rendered:
        assert response.status_code in {200, 429}, (u, response.status_code)
        assert_strict(response["Content-Security-Policy"])
        html = response.content.decode()
        assert inline_parts(html) == [], u
        # htmx would insert its indicator <style> without this.
        if "htmx.min.js" in html:
            assert '"includeIndicatorStyles": false' in html, u


def test_dynamic_widths_are_classes_the_stylesheet_defines(pages):
    client, urls = pages
    css = (settings.BASE_DIR / "static/crm/crm.css").read_text()
    for name in ["crm-w-0", "crm-w-37", "crm-w-100", "progress-sm", "progress-md", "nav-search", "htmx-indicator"]:
        assert f".{name} " in css, name
    assert '.crm-tree > li[data-level="1"] { padding-left: 1rem; }' in css
    page = client.get(urls[3]).content.decode()  # the subsidiary's record: its tree is indented by level
    assert 'class="list-unstyled small mb-0 crm-tree"' in page and 'data-level="1"' in page


def test_behind_a_proxy_lockouts_follow_the_address_it_saw(throttled, org, settings):
    settings.CRM_PROXY_COUNT = 1
    proxy = "10.9.9.9"  # every request reaches the server from the proxy

    def attempt(forwarded, password=WRONG):
        return Client().post("/login/", {"username": "east_rep", "password": password}, REMOTE_ADDR=proxy,
                             HTTP_X_FORWARDED_FOR=forwarded)

    # A client that writes its own X-Forwarded-For only adds to the left of what the proxy appends.
    statuses = [attempt(f"1.2.3.{i}, 203.0.113.5").status_code for i in range(6)]
    assert statuses == [200] * 4 + [429] * 2
    assert attempt("203.0.113.6", PASSWORD).status_code == 302  # another client behind the same proxy
    assert attempt("203.0.113.5", PASSWORD).status_code == 429


def test_without_proxies_the_forwarded_header_is_ignored(throttled, org):
    for i in range(5):
        Client().post("/login/", {"username": "east_rep", "password": WRONG}, REMOTE_ADDR="10.0.0.7",
                      HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    assert log_in(Client(), "east_rep", PASSWORD, address="10.0.0.7").status_code == 429
