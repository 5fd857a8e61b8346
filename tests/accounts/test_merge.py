"""Account merge: everything moves to the master, nothing is lost, only for who may."""
import pytest
from guardian.shortcuts import assign_perm

from accounts.models import Account
from crm.access import restrict
from tests.factories import AccountFactory


def merge_post(client, accounts, master, **choices):
    data = {"pk": [a.pk for a in accounts], "master": master.pk, "confirm": "1"}
    data.update({f"field_{k}": v.pk for k, v in choices.items()})
    return client.post("/accounts/merge/", data)


@pytest.fixture
def east_accounts(org, east_manager, east_rep):
    a = AccountFactory(name="Globex", owner=east_manager, description="")
    b = AccountFactory(name="Globex Corp.", owner=east_rep, description="Key account", website="https://globex.example")
    c = AccountFactory(name="GLOBEX", owner=east_rep, industry="Energy")
    return a, b, c


def test_merge_page_shows_accounts_side_by_side(client_for, east_manager, east_accounts):
    response = client_for(east_manager).post("/accounts/merge/", {"pk": [a.pk for a in east_accounts]})
    assert response.status_code == 200
    html = response.content.decode()
    for account in east_accounts:
        assert f'name="master" value="{account.pk}"' in html
    # Blank master fields default to the first non-blank value.
    a, b, c = east_accounts
    assert f'name="field_description" value="{b.pk}" id="f-description-{b.pk}" checked' in html
    assert f'name="field_name" value="{a.pk}" id="f-name-{a.pk}" checked' in html


def test_merge_three_accounts_keeps_chosen_values_and_moves_everything(client_for, east_manager, east_rep,
                                                                       west_rep, east_accounts):
    a, b, c = east_accounts
    referred = AccountFactory(name="Referred", owner=east_rep, referred_by=c)
    assign_perm("view_account", west_rep, b)  # a share of a merged account moves to the master
    response = merge_post(client_for(east_manager), east_accounts, master=a, name=b, description=b, industry=c)
    assert response.status_code == 302 and response["Location"] == f"/accounts/{a.pk}/"
    a.refresh_from_db()
    assert (a.name, a.description, a.industry) == ("Globex Corp.", "Key account", "Energy")
    assert not Account.objects.filter(pk__in=[b.pk, c.pk]).exists()
    referred.refresh_from_db()
    assert referred.referred_by == a
    assert list(restrict(Account.objects.all(), west_rep)) == [a]
    latest = a.history.first()
    assert "Merged" in latest.history_change_reason and f"#{b.pk}" in latest.history_change_reason
    assert latest.history_user == east_manager
    page = client_for(east_manager).get(f"/accounts/{a.pk}/").content.decode()
    assert "Merged" in page


def test_rep_who_cannot_edit_one_account_cannot_merge(client_for, east_rep, east_manager, east_accounts):
    a, b, c = east_accounts  # a belongs to the manager: east_rep may view it but not edit it
    response = merge_post(client_for(east_rep), east_accounts, master=b)
    assert response.status_code == 403
    assert Account.objects.filter(pk__in=[a.pk, b.pk, c.pk]).count() == 3


def test_other_unit_cannot_merge_or_even_see(client_for, west_rep, east_accounts):
    response = merge_post(client_for(west_rep), east_accounts, master=east_accounts[0])
    assert response.status_code == 404
    assert Account.objects.count() == 3


def test_merge_needs_two_to_five(client_for, east_manager, east_rep):
    one = AccountFactory(owner=east_rep)
    response = client_for(east_manager).post("/accounts/merge/", {"pk": [one.pk]})
    assert response.status_code == 302
    six = [AccountFactory(owner=east_rep) for _ in range(6)]
    response = merge_post(client_for(east_manager), six, master=six[0])
    assert response.status_code == 302
    assert Account.objects.count() == 7
