"""A manager creates a contact with two emails and an address; the second email is one a
demo contact already has, so the first save shows the duplicate with its link and the
second, with "Create anyway", saves. He then adds a note from More actions and finds it
in the contact's Activities tab, and finds the contact in the grid by its other email."""
import pytest

from activities.models import Activity
from contacts.models import Contact

pytestmark = pytest.mark.browser



def test_create_contact_past_the_duplicate_warning_and_add_a_note(login, live_server):
    page = login("east_manager")
    lisa = Contact.objects.get(email="lisa.harmon@globex.example")

    page.click("nav >> text=Contacts")
    page.click("text=New contact")
    page.fill("#id_first_name", "Laura")
    page.fill("#id_last_name", "Harmon")
    page.fill("#id_emails-0-email", "laura@globex.example")
    page.click("[data-formset=emails] [data-formset-add]")
    page.fill("#id_emails-1-email", "LISA@harmon.example")
    page.check("#id_emails-1-is_primary")
    page.select_option("#id_addresses-0-type", "shipping")
    page.fill("#id_addresses-0-city", "Springfield")
    page.select_option("#id_addresses-0-country", "US")
    # The accounts box searches as one types, offering only accounts the manager may see.
    page.locator(".crm-autocomplete:has(#id_accounts) input[type=search]").fill("globex")
    page.wait_for_selector("#id_accounts option:has-text('Globex Corporation')", state="attached")
    page.select_option("#id_accounts", label="Globex Corporation")
    page.click("button:has-text('Save')")

    warning = page.locator("[data-testid=duplicates]")
    warning.wait_for()
    assert warning.locator(f"a[href='/contacts/{lisa.pk}/']").count() == 1
    assert not Contact.objects.filter(first_name="Laura").exists()
    page.check("#id_create_anyway")
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=Contact “Laura Harmon” saved.")

    laura = Contact.objects.get(first_name="Laura")
    assert (laura.email, [a.name for a in laura.accounts.all()]) == ("lisa@harmon.example", ["Globex Corporation"])
    assert laura.addresses.get().city == "Springfield"

    page.click("text=More actions")
    page.click(".dropdown-menu >> text=Add note")
    page.wait_for_selector("#activity-modal textarea")
    page.fill("#activity-modal input[name=subject]", "Met at the trade fair")
    page.fill("#activity-modal textarea", "Call back in May.")
    page.click("#activity-modal button:has-text('Save')")
    page.wait_for_selector("[data-testid=timeline] >> text=Met at the trade fair", state="attached")
    assert Activity.objects.filter(object_id=laura.pk, subject="Met at the trade fair").exists()

    page.goto(f"{live_server.url}/contacts/?q=laura@globex")
    rows = page.locator("table tbody tr")
    assert rows.count() == 1 and "Laura Harmon" in rows.first.inner_text()
