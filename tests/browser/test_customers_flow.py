"""A sales rep creates a business customer with a new account, logs a call on it from the
record page's More actions, and finds the call in the activity timeline."""
import pytest

from activities.models import Activity
from customers.models import BusinessCustomer

pytestmark = pytest.mark.browser


def test_create_customer_with_new_account_and_log_a_call(login, live_server):
    page = login("east_rep")

    page.click("nav >> text=Business customers")
    page.click("text=New business customer")
    page.fill("#id_name", "Northwind Traders")
    page.select_option("#id_channel", label="Direct Sales")
    page.check("#id_create_account")
    assert page.is_disabled("#id_account")
    page.fill("#id_billing_city", "Seattle")
    page.select_option("#id_billing_country", "US")
    page.fill("#id_emails-0-email", "orders@northwind.example")
    page.click("[data-formset-add=phones]")
    page.fill("#id_phones-0-phone", "+1 206 555 0100")
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=Business customer “Northwind Traders” saved.")

    customer = BusinessCustomer.objects.get(name="Northwind Traders")
    assert customer.account.name == "Northwind Traders" and customer.account.owner.username == "east_rep"
    assert (customer.primary_email, customer.primary_phone) == ("orders@northwind.example", "+1 206 555 0100")
    assert page.locator("[data-testid=account-link]").inner_text() == "Northwind Traders"

    # More actions > Log call opens the form in a modal.
    page.click("[data-testid=more-actions] button")
    page.click("text=Log call")
    modal = page.locator("#activity-modal")
    modal.locator("#id_subject").wait_for()
    modal.locator("#id_subject").fill("Discovery call with purchasing")
    modal.locator("#id_duration").fill("20")
    modal.locator("#id_body").fill("Needs 500 units by March.")
    modal.locator("button:has-text('Save')").click()

    # Back on the record page with the Activities tab open: the call heads the timeline.
    page.wait_for_selector("text=Call added to “Northwind Traders”.")
    item = page.locator("#tab-activities [data-testid=activity]").first
    item.wait_for(state="visible")
    text = item.inner_text()
    assert "Discovery call with purchasing" in text and "20 min" in text and "Outbound" in text
    assert "Eddie Easton" in text
    call = Activity.objects.get(subject="Discovery call with purchasing")
    assert (call.target, call.created_by.username, call.kind) == (customer, "east_rep", "call")
