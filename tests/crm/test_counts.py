"""Grid totals: exact when small; above CRM_EXACT_COUNT_LIMIT, on PostgreSQL, the planner's
estimate ("about N"), so a page for a restricted user never counts a million rows."""
import pytest
from django.db import connection

from accounts.models import Account
from crm.tables import count


def make_accounts(user, n):
    Account.objects.bulk_create([Account(name=f"Counted {i:03d}", owner=user, business_unit=user.primary_unit)
                                 for i in range(n)])


def test_small_totals_are_exact(org, client_for, east_rep):
    make_accounts(east_rep, 30)
    response = client_for(east_rep).get("/accounts/")
    assert response.context["table"].paginator.count == 30
    assert not response.context["table"].paginator.estimated
    assert ">30</span>" in response.content.decode()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="estimates come from PostgreSQL's planner")
def test_large_totals_are_estimated_on_postgresql(org, client_for, east_rep, settings):
    settings.CRM_EXACT_COUNT_LIMIT = 5
    make_accounts(east_rep, 300)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_account")
    total, estimated = count(Account.objects.filter(owner=east_rep))
    assert estimated and 150 <= total <= 600
    response = client_for(east_rep).get("/accounts/")
    assert response.context["table"].paginator.estimated
    assert "about" in response.content.decode()
    # The rows themselves are still exactly the user's.
    assert len(response.context["table"].page.object_list) == 25


def test_estimates_are_never_used_off_postgresql(org, east_rep, settings):
    if connection.vendor == "postgresql":
        pytest.skip("this is about the other engines")
    settings.CRM_EXACT_COUNT_LIMIT = 0
    make_accounts(east_rep, 3)
    assert count(Account.objects.filter(owner=east_rep)) == (3, False)
