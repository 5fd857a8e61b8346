"""A manager narrows the customers grid to the Globex companies, hides two columns, saves
that as his default view, leaves, and finds the grid opened with it; the plain grid is a
click away."""
import os

import pytest

from crm.models import SavedView

pytestmark = pytest.mark.browser


def shot(page, name):
    """CRM_SCREENSHOTS=<folder>: keep a picture of the page (to look at the layout)."""
    folder = os.environ.get("CRM_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def headers(page):
    return [h.strip() for h in page.locator("table thead th").all_inner_texts()]


def test_save_a_default_view_and_come_back_to_it(login, live_server):
    page = login("east_manager")
    page.click("nav >> text=Business customers")
    page.wait_for_url("**/customers/")
    assert "Email" in headers(page) and "Phone" in headers(page)

    page.fill("#id_name", "Globex")
    page.click("#filter-form button:has-text('Apply')")
    page.wait_for_url("**/customers/?*name=Globex*")

    page.click("[data-testid=columns-toggle]")
    page.uncheck("#col-primary_email")
    page.uncheck("#col-primary_phone")
    page.click("[data-testid=columns-form] button:has-text('Apply')")
    page.wait_for_url("**cols=*")
    assert "Email" not in headers(page) and "Phone" not in headers(page) and "Name" in headers(page)
    names = page.locator("table tbody td:nth-child(2)").all_inner_texts()
    assert names and all("Globex" in n for n in names)

    page.click("[data-testid=saved-views-toggle]")
    shot(page, "saved-views-menu")
    form = page.locator("[data-testid=save-view-form]")
    form.locator("input[name=name]").fill("Globex, short")
    form.locator("input[name=is_default]").check()
    form.locator("button:has-text('Save view')").click()
    page.wait_for_selector("text=Saved the view “Globex, short”.")
    view = SavedView.objects.get(name="Globex, short")
    assert view.is_default and view.owner.username == "east_manager" and "name=Globex" in view.query
    assert "cols=" in view.query and "primary_email" not in view.query

    # Elsewhere, then back to the grid through the top bar: the default view applies.
    page.goto(f"{live_server.url}/")
    page.click("nav >> text=Business customers")
    page.wait_for_url("**/customers/?*name=Globex*")
    assert page.locator("[data-testid=saved-views-toggle]").inner_text().strip() == "Globex, short"
    assert "Email" not in headers(page) and "Phone" not in headers(page)
    names = page.locator("table tbody td:nth-child(2)").all_inner_texts()
    assert names and all("Globex" in n for n in names)
    shot(page, "grid-with-default-view")

    # The plain grid: every column and customer again.
    page.click("[data-testid=saved-views-toggle]")
    page.click("[data-testid=plain-grid]")
    page.wait_for_url("**/customers/?reset=1")
    assert "Email" in headers(page)
    names = page.locator("table tbody td:nth-child(2)").all_inner_texts()
    assert any("Globex" not in n for n in names)
    page.click("[data-testid=columns-toggle]")
    shot(page, "columns-menu")
