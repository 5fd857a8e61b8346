"""A sales rep records a purchase request above the customer's limit; the Admin contact
approves it through the link emailed to him, without logging in; the request is Approved."""
import pytest
from django.core import mail

from approvals.models import ApprovalRequest, PurchaseRequest, Status
from tests.approvals.factories import b2b_customer, member
from tests.factories import PASSWORD, build_org

pytestmark = pytest.mark.browser


def test_request_above_limit_approved_through_the_emailed_link(browser, page, live_server, transactional_db):
    org = build_org()
    rep = org.user("east_rep")
    customer = b2b_customer(owner=rep, limit=1000, budget=20000, name="Initech")
    requester = member(customer, "requester", first_name="Peter", last_name="Gibbons",
                       email="peter@initech.example")
    member(customer, "admin", first_name="Bill", last_name="Lumbergh", email="bill@initech.example")
    member(customer, "buyer", first_name="Milton", last_name="Waddams", email="milton@initech.example")

    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", rep.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/customers/{customer.pk}/")
    assert "1,000.00 USD per purchase" in page.locator("[data-testid=purchase-limit]").inner_text()
    page.click("[data-testid=new-purchase-request]")
    page.fill("#id_title", "Red staplers")
    page.select_option("#id_requester", str(requester.pk))
    page.fill("#id_lines-0-item", "Swingline stapler")
    page.fill("#id_lines-0-quantity", "100")
    page.fill("#id_lines-0-unit_price", "25")
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=saved.")
    assert page.locator("[data-testid=status]").inner_text().strip() == "Pending"

    pr = PurchaseRequest.objects.get(title="Red staplers")
    approval = ApprovalRequest.objects.get(purchase_request=pr)
    assert approval.admin_only and [c.first_name for c in approval.approvers.all()] == ["Bill"]
    message = next(m for m in mail.outbox if m.to == ["bill@initech.example"])
    url = next(word for word in message.body.split() if "/approvals/respond/" in word)
    assert url.startswith(live_server.url)

    approver = browser.new_context()  # not logged in
    link_page = approver.new_page()
    link_page.goto(url)
    assert "2,500.00 USD" in link_page.locator("[data-testid=amount]").inner_text()
    link_page.fill("#id_comment", "Approved, keep one for Milton.")
    link_page.click("button:has-text('Approve')")
    link_page.wait_for_selector("[data-testid=done]")
    link_page.goto(url)
    assert "already been used" in link_page.locator("[data-testid=refused]").inner_text()
    approver.close()

    approval.refresh_from_db()
    assert approval.status == Status.APPROVED
    assert any(m.to == ["peter@initech.example"] and "approved" in m.subject for m in mail.outbox)
    page.reload()
    assert page.locator("[data-testid=status]").inner_text().strip() == "Approved"
    page.goto(f"{live_server.url}/approvals/{approval.pk}/")
    assert "Approved, keep one for Milton." in page.locator("[data-testid=comments]").inner_text()
