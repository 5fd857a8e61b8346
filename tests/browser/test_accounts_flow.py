"""A sales rep's day with accounts: create, filter, export, import (bad file, then fixed)."""
import csv
import io

from accounts.models import Account


def test_create_filter_export_and_import_accounts(login, live_server, tmp_path):
    page = login("east_rep")

    # Create an account.
    page.click("text=Accounts")
    page.click("text=New account")
    page.fill("#id_name", "Northwind Traders")
    page.fill("#id_description", "Met at the spring fair.")
    page.click("button:has-text('Save')")
    page.wait_for_selector("text=Account “Northwind Traders” saved.")
    assert Account.objects.get(name="Northwind Traders").owner.username == "east_rep"

    # Filter the grid by name: only the new account remains.
    page.goto(f"{live_server.url}/accounts/")
    page.fill("#id_name", "northwind")
    page.click("#filter-form button:has-text('Apply')")
    page.wait_for_url("**name=northwind**")
    rows = page.locator("table tbody tr")
    assert rows.count() == 1
    assert "Northwind Traders" in rows.first.inner_text()

    # Export exactly that filtered set.
    with page.expect_download() as info:
        page.click("[data-testid=export]")
    exported = list(csv.reader(io.StringIO(open(info.value.path(), encoding="utf-8-sig").read())))
    assert exported[0] == ["ID", "Name", "Owner", "Business Unit", "Description"]
    assert [r[1] for r in exported[1:]] == ["Northwind Traders"]

    # Import a file whose third row names an unknown owner: the error is shown, nothing is written.
    bad = tmp_path / "accounts.csv"
    lines = ["ID,Name,Owner,Business Unit,Description", ",Alpha Imports,east_rep,East,", ",Beta Supplies,nobody,East,",
             ",Gamma Freight,east_rep,East,"]
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page.goto(f"{live_server.url}/accounts/import/")
    page.set_input_files("#id_file", str(bad))
    page.click("button:has-text('Validate')")
    errors = page.locator("[data-testid=import-errors] tbody tr")
    errors.first.wait_for()
    assert errors.count() == 1
    text = errors.first.inner_text()
    assert "3" in text and "Owner" in text and "nobody" in text
    assert page.locator("button:has-text('Import')").count() == 0
    assert "nothing was written" in page.get_by_test_id("job-invalid").inner_text()
    assert not Account.objects.filter(name__in=["Alpha Imports", "Gamma Freight"]).exists()

    # Fix the row and import: the rows appear in the grid.
    lines[2] = ",Beta Supplies,east_rep,East,"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page.click("text=Upload a corrected file")
    page.set_input_files("#id_file", str(bad))
    page.click("button:has-text('Validate')")
    page.wait_for_selector("[data-state=ready]")
    assert "3" in page.get_by_test_id("job-counts").inner_text()
    page.click("button:has-text('Import 3 rows')")
    page.wait_for_selector("[data-state=imported]")
    page.click("text=Open accounts")
    grid = page.locator("table tbody").inner_text()
    for name in ("Alpha Imports", "Beta Supplies", "Gamma Freight"):
        assert name in grid
    page.screenshot(path=str(tmp_path / "grid.png"))
