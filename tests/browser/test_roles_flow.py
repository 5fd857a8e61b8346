"""An administrator defines an Auditor role in the matrix and gives it to a new user, who
then reads every account and customer, edits none and sees no contacts."""
from pathlib import Path

from crm.models import Role, User

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_administrator_creates_an_auditor(login, live_server, page):
    page = login("admin")
    page.click("[data-testid=administration-menu]")
    page.click(".dropdown-menu >> text=Roles")
    page.wait_for_url("**/roles/")
    page.click("text=New role")
    page.fill("#id_name", "Auditor")
    page.fill("#id_description", "Reads accounts and customers across the company.")
    matrix = page.locator("[data-testid=role-matrix]")
    assert matrix.locator("tbody tr").count() >= 5
    page.select_option("#id_accounts__view", label="Organization")
    page.select_option("#id_customers__view", label="Organization")
    # Channels are organization-wide: only None or Organization make sense there.
    options = page.locator("#id_channels__view option").all_inner_texts()
    assert options == ["None", "Organization"]
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "role-form.png"), full_page=True)
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=Role “Auditor” saved.")
    role = Role.objects.get(name="Auditor")

    page.click("[data-testid=administration-menu]")
    page.click(".dropdown-menu >> text=Users")
    page.click("text=New user")
    page.fill("#id_username", "auditor")
    page.fill("#id_first_name", "Audrey")
    page.fill("#id_last_name", "Ito")
    page.select_option("#id_primary_unit", label="West")
    page.select_option("#id_roles", str(role.pk))
    page.fill("#id_password1", "audit-the-books-42")
    page.fill("#id_password2", "audit-the-books-42")
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=User “Audrey Ito (auditor)” saved.")
    assert list(User.objects.get(username="auditor").roles.all()) == [role]

    # Log out and in as the auditor.
    page.click("[data-testid=user-menu]")
    page.click("button:has-text('Log out')")
    page.fill("#id_username", "auditor")
    page.fill("#id_password", "audit-the-books-42")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    nav = page.locator("nav").inner_text()
    assert "Accounts" in nav and "Business customers" in nav and "Contacts" not in nav
    page.click("nav >> text=Accounts")
    grid = page.locator("table tbody").inner_text()
    for name in ("Globex Corporation", "Soylent Foods", "Wayne Holdings"):   # East, West and the top unit
        assert name in grid
    page.click("text=Soylent Foods")
    assert page.locator("a:has-text('Edit')").count() == 0
    page.screenshot(path=str(SHOTS / "auditor-account.png"), full_page=True)
    page.goto(f"{live_server.url}/contacts/")
    assert page.locator("[data-testid=total]").inner_text().strip() == "0"
