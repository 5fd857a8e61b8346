"""The Content-Security-Policy in a real browser: the main pages, their scripts (static
files now) and htmx work with it, and Chromium reports no refused script, style or
connection on any of them."""
import pytest

from accounts.models import Account
from approvals.models import ApprovalRequest
from customers.models import BusinessCustomer

pytestmark = pytest.mark.browser


@pytest.fixture
def refusals(page):
    """Console messages of CSP violations ("Refused to apply inline style ...", ...)."""
    found = []
    page.on("console", lambda m: found.append(m.text) if (
        "Content Security Policy" in m.text or "Refused to" in m.text) else None)
    return found


def visit(page, url):
    response = page.goto(url)
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    return response


def test_main_pages_raise_no_csp_violation(login, live_server, refusals, settings):
    page = login("admin")
    base = live_server.url
    globex = BusinessCustomer.objects.get(name="Globex Online")
    europe = BusinessCustomer.objects.get(name="Globex Online Europe")
    first, second = Account.objects.order_by("pk")[:2]
    approval = ApprovalRequest.objects.filter(status="pending").first()
    for url in ["/", "/customers/", f"/customers/{globex.pk}/", "/contacts/", "/accounts/",
                f"/accounts/{first.pk}/", "/search/?q=Globex", "/jobs/", "/admin/", "/admin/customers/businesscustomer/"]:
        visit(page, base + url)

    # The company tree is indented by level from the stylesheet (no style attribute).
    visit(page, f"{base}/customers/{europe.pk}/")
    child = page.locator('[data-testid=tree] li[data-level="1"]')
    assert child.evaluate("e => getComputedStyle(e).paddingLeft") == "16px"

    # Scripts moved to static files still run: the customer form's account toggle...
    visit(page, f"{base}/customers/new/")
    page.check("#id_create_account")
    assert page.is_disabled("#id_account")
    # ...the merge page's master choice, the grid's page size (was onchange)...
    visit(page, f"{base}/accounts/merge/?pk={first.pk}&pk={second.pk}")
    visit(page, f"{base}/customers/")
    with page.expect_navigation():
        page.select_option("#per-page", "50")
    assert "per_page=50" in page.url
    # ...and the Withdraw confirmation (was onclick): dismissing it sends nothing.
    if approval is not None:
        visit(page, f"{base}/approvals/{approval.pk}/")
        page.once("dialog", lambda d: d.dismiss())
        page.click("button:has-text('Withdraw')")
        approval.refresh_from_db()
        assert approval.status == "pending"

    # The import page and a job page that polls with htmx.
    visit(page, f"{base}/channels/import/")
    page.set_input_files("input[type=file]", files=[{"name": "c.csv", "mimeType": "text/csv",
                                                      "buffer": b"Name,Type\nCSP Channel,Sales\n"}])
    page.click("form[data-progress] button[type=submit]")
    page.wait_for_url("**/jobs/*/")
    page.wait_for_load_state("networkidle")

    # Logged out: the login page, and the lockout page once a user is locked.
    page.context.clear_cookies()
    visit(page, f"{base}/login/")
    settings.AXES_ENABLED = True
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.fill("#id_username", "west_rep")
        page.fill("#id_password", "wrong-password")
        page.click("main button[type=submit]")
        page.wait_for_load_state("networkidle")
    page.locator("[data-testid=lockout-message]").wait_for()
    page.click("text=Back to the login page")
    page.wait_for_load_state("networkidle")

    assert refusals == []
