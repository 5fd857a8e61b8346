"""A manager merges three accounts in the browser; a rep of another unit finds none of them."""
from accounts.models import Account
from activities.models import Activity
from customers.models import BusinessCustomer


def test_manager_merges_three_accounts(login, live_server, demo, browser):
    east = ["Globex Corporation", "Initech", "Umbrella Industries"]
    ids = {name: Account.objects.get(name=name).pk for name in east}
    customers = set(BusinessCustomer.objects.filter(account_id__in=ids.values()).values_list("name", flat=True))
    activities = Activity.objects.count()
    assert customers, "the demo data gives these accounts customers"

    page = login("east_manager")
    page.goto(f"{live_server.url}/accounts/")
    for name in east:
        page.locator("tr", has_text=name).locator("input[name=pk]").check()
    page.click("button:has-text('Merge')")
    page.wait_for_selector("[data-testid=merge-table]")
    page.check(f"#master-{ids['Initech']}")
    page.click("[data-testid=merge-confirm]")
    page.wait_for_selector("text=Merged 2 account(s)")
    assert page.url.endswith(f"/accounts/{ids['Initech']}/")

    body = page.locator("main").inner_text()
    for name in customers:
        assert name in body
    assert set(Account.objects.filter(pk__in=ids.values()).values_list("name", flat=True)) == {"Initech"}
    assert Activity.objects.count() == activities
    page.click("[data-testid=activities-tab]")
    assert page.locator("#tab-activities [data-testid=activity]").count() >= 1
    page.click("text=History")
    assert "Merged" in page.locator("#tab-history").inner_text()

    # A rep of West finds none of it.
    other = browser.new_context().new_page()
    other.goto(f"{live_server.url}/login/")
    other.fill("#id_username", "west_rep")
    from crm.management.commands.seed_demo import DEFAULT_PASSWORD

    other.fill("#id_password", DEFAULT_PASSWORD)
    other.click("button[type=submit]")
    other.wait_for_url(f"{live_server.url}/")
    for q in ("Initech", *customers):
        other.goto(f"{live_server.url}/search/?q={q}")
        assert "Nothing found" in other.locator("main").inner_text()
    other.context.close()
