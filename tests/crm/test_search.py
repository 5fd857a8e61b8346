"""Global search: customers, accounts and contacts at once, only what the user may see."""
import pytest

from tests.contacts.factories import ContactFactory
from tests.customers.factories import BusinessCustomerFactory
from tests.factories import AccountFactory


@pytest.fixture
def east_records(east_rep):
    account = AccountFactory(name="Orion Holdings", owner=east_rep)
    customer = BusinessCustomerFactory(name="Orion Retail", account=account, owner=east_rep,
                                       primary_email="buy@orion.example", primary_phone="+1 555 7777")
    contact = ContactFactory(first_name="Olga", last_name="Orion", owner=east_rep, emails=["olga@orion.example"],
                             phones=["+1 555 8888"])
    return account, customer, contact


def test_search_finds_every_type_grouped(client_for, east_manager, east_records):
    account, customer, contact = east_records
    response = client_for(east_manager).get("/search/", {"q": "orion"})
    html = response.content.decode()
    assert response.status_code == 200
    for ns, obj in (("accounts", account), ("customers", customer), ("contacts", contact)):
        assert f'data-testid="search-group-{ns}"' in html
        assert f"/{ns}/{obj.pk}/" in html
    assert 'search-group-channels' not in html


@pytest.mark.parametrize("q", ["olga@orion.example", "555 8888", "buy@orion"])
def test_search_by_email_and_phone(client_for, east_manager, east_records, q):
    html = client_for(east_manager).get("/search/", {"q": q}).content.decode()
    assert "Orion" in html


def test_search_never_shows_what_the_user_cannot_open(client_for, west_rep, east_records):
    for q in ("orion", "olga@orion.example", "555 7777", "Olga"):
        html = client_for(west_rep).get("/search/", {"q": q}).content.decode()
        assert "Orion" not in html and "Nothing found" in html
