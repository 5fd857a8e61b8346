"""The access model, walked through with accounts: roles and units, shares, assignment,
and changes of a user's role or units taking effect on his next request."""
import pytest

from accounts.models import Account
from crm.access import MANAGER, SALES_REP
from crm.models import BusinessUnit
from tests.factories import AccountFactory, BusinessUnitFactory, seeded_role
from tests.toolkit import csv_bytes, export_csv, grid_rows, report_of, row_errors, search_results, upload


def grid_pks(client, **params):
    response = client.get("/accounts/", {"per_page": 250, **params})
    assert response.status_code == 200
    return set(grid_rows(response)[0])


def can_edit(client, account):
    """200/302: may edit, 403: sees but may not, 404: does not see."""
    return client.get(f"/accounts/{account.pk}/edit/").status_code


@pytest.fixture
def accounts(org):
    """One account per user, each in the owner's primary unit."""
    return {name: AccountFactory(name=f"{name} account", owner=user) for name, user in org.users.items()}


# -- roles and units --------------------------------------------------------------------------------

def test_manager_sees_and_edits_his_unit_and_its_children_not_west(org, client_for, east_manager, accounts):
    client = client_for(east_manager)
    east_side = {accounts[n].pk for n in ("east_manager", "east_rep", "east_rep2", "north_rep")}
    assert grid_pks(client) == east_side
    for name in ("east_rep", "north_rep"):
        account = accounts[name]
        response = client.post(f"/accounts/{account.pk}/edit/", {"name": f"{name} edited", "description": ""})
        assert response.status_code == 302
        account.refresh_from_db()
        assert account.name == f"{name} edited"
    assert can_edit(client, accounts["west_rep"]) == 404
    assert can_edit(client, accounts["admin"]) == 404


def test_rep_sees_his_unit_but_edits_only_his_own(client_for, east_rep, accounts):
    client = client_for(east_rep)
    assert grid_pks(client) == {accounts[n].pk for n in ("east_manager", "east_rep", "east_rep2")}
    assert can_edit(client, accounts["east_rep"]) == 200
    assert can_edit(client, accounts["east_rep2"]) == 403
    assert can_edit(client, accounts["east_manager"]) == 403
    assert can_edit(client, accounts["north_rep"]) == 404   # a child unit is not his unit
    assert can_edit(client, accounts["west_rep"]) == 404
    response = client.post(f"/accounts/{accounts['east_rep2'].pk}/edit/", {"name": "Mine now", "description": ""})
    assert response.status_code == 403
    assert Account.objects.get(pk=accounts["east_rep2"].pk).name == "east_rep2 account"


def test_west_rep_reaches_nothing_of_east(org, client_for, west_rep, accounts):
    client = client_for(west_rep)
    east = [accounts[n] for n in ("east_manager", "east_rep", "east_rep2", "north_rep")]
    mine = accounts["west_rep"]
    for account in east:
        pk = account.pk
        assert client.get(f"/accounts/{pk}/").status_code == 404
        assert client.get(f"/accounts/{pk}/edit/").status_code == 404
        assert client.get(f"/accounts/{pk}/delete/").status_code == 404
        assert client.post(f"/accounts/{pk}/delete/", {"confirm": "1"}).status_code == 404
        assert client.get(f"/accounts/{pk}/share/").status_code == 404
        assert client.post(f"/accounts/{pk}/share/", {"user": west_rep.pk, "level": "change"}).status_code == 404
        assert client.get("/accounts/assign/", {"pk": pk}).status_code == 404
        assert client.post("/accounts/assign/", {"pk": [pk], "owner": west_rep.pk}).status_code == 404
        assert client.get(f"/admin/accounts/account/{pk}/change/").status_code == 302  # not staff: to the login
    assert Account.objects.filter(pk__in=[a.pk for a in east], owner__username__startswith="east").count() == 3

    assert grid_pks(client) == {mine.pk}
    for account in east:
        assert grid_pks(client, q=account.name) == set()
        assert grid_pks(client, name=account.name) == set()
        assert search_results(client, account.name) == {}
    assert grid_pks(client, business_unit=org.unit("East").pk) == set()
    assert grid_pks(client, owner=org.user("east_rep").pk) == set()

    # Filter choices and form choices offer no East unit and no East user.
    response = client.get("/accounts/")
    fields = response.context["filter"].form.fields
    assert set(fields["business_unit"].queryset) == {org.unit("West")}
    assert set(fields["owner"].queryset) == {west_rep}
    form = client.get("/accounts/new/").context["form"]
    assert set(form.fields["business_unit"].queryset) == {org.unit("West")}
    assert set(form.fields["owner"].queryset) == {west_rep}
    html = response.content.decode()
    for name in ("East", "East-North", "east_rep", "east_manager", "north_rep"):
        assert f">{name}<" not in html

    headers, rows = export_csv(client, "accounts")
    assert [row[0] for row in rows] == [str(mine.pk)]
    headers, rows = export_csv(client, "accounts", {"business_unit": org.unit("East").pk})
    assert rows == []

    data = csv_bytes([["ID", "Name"]] + [[a.pk, "Taken over"] for a in east])
    response = upload(client, "accounts", data)
    assert not report_of(response).ok
    assert [(row, column) for row, column, _ in row_errors(response)] == [(2, "ID"), (3, "ID"), (4, "ID"), (5, "ID")]
    assert not Account.objects.filter(name="Taken over").exists()


def test_admin_sees_and_edits_everything(client_for, admin, accounts):
    client = client_for(admin)
    assert grid_pks(client) == {a.pk for a in accounts.values()}
    assert all(can_edit(client, a) == 200 for a in accounts.values())


def test_a_user_without_a_role_sees_nothing_not_even_his_own(org, client_for, east_rep, accounts):
    east_rep.roles.remove(seeded_role(SALES_REP))
    client = client_for(east_rep)
    assert grid_pks(client) == set()
    assert client.get(f"/accounts/{accounts['east_rep'].pk}/").status_code == 404


# -- shares ---------------------------------------------------------------------------------------

def share(client, account, **data):
    return client.post(f"/accounts/{account.pk}/share/", {"level": "view", **data})


def test_share_with_a_user_view_then_change_then_unshare(client_for, east_rep, west_rep, accounts):
    account = accounts["east_rep"]
    owner, guest = client_for(east_rep), client_for(west_rep)
    assert guest.get(f"/accounts/{account.pk}/").status_code == 404

    assert share(owner, account, user=west_rep.pk).status_code == 302
    assert guest.get(f"/accounts/{account.pk}/").status_code == 200
    assert account.pk in grid_pks(guest)
    assert str(account.pk) in [row[0] for row in export_csv(guest, "accounts")[1]]
    assert search_results(guest, account.name) == {"accounts": [account.pk]}
    assert can_edit(guest, account) == 403
    page = owner.get(f"/accounts/{account.pk}/share/").content.decode()
    assert "west_rep" in page and "view</span>" in page

    assert share(owner, account, user=west_rep.pk, level="change").status_code == 302
    response = guest.post(f"/accounts/{account.pk}/edit/", {"name": "Edited by a guest", "description": ""})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Edited by a guest"
    # A share lends view and edit, never delete, assign or share.
    assert guest.post(f"/accounts/{account.pk}/delete/", {"confirm": "1"}).status_code == 403
    assert guest.get("/accounts/assign/", {"pk": account.pk}).status_code == 403
    assert guest.get(f"/accounts/{account.pk}/share/").status_code == 403

    assert owner.post(f"/accounts/{account.pk}/share/", {"unshare_user": west_rep.pk}).status_code == 302
    assert guest.get(f"/accounts/{account.pk}/").status_code == 404
    assert account.pk not in grid_pks(guest)
    assert "Not shared with anyone" in owner.get(f"/accounts/{account.pk}/share/").content.decode()


def test_share_with_a_unit_reaches_its_members_only(org, client_for, east_rep, west_rep, north_rep, accounts):
    account = accounts["east_rep"]
    assert share(client_for(east_rep), account, business_unit=org.unit("West").pk).status_code == 302
    assert client_for(west_rep).get(f"/accounts/{account.pk}/").status_code == 200
    assert client_for(north_rep).get(f"/accounts/{account.pk}/").status_code == 404
    # Whoever joins the unit later sees it too, from his next request.
    north_rep.business_units.add(org.unit("West"))
    assert client_for(north_rep).get(f"/accounts/{account.pk}/").status_code == 200
    # Unsharing the unit revokes it for every member.
    client_for(east_rep).post(f"/accounts/{account.pk}/share/", {"unshare_unit": org.unit("West").pk})
    assert client_for(west_rep).get(f"/accounts/{account.pk}/").status_code == 404
    assert client_for(north_rep).get(f"/accounts/{account.pk}/").status_code == 404


def test_share_form_needs_exactly_one_target(org, client_for, east_rep, west_rep, accounts):
    account = accounts["east_rep"]
    response = share(client_for(east_rep), account)
    assert response.status_code == 200 and "Choose either a user or a business unit" in response.content.decode()
    response = share(client_for(east_rep), account, user=west_rep.pk, business_unit=org.unit("West").pk)
    assert "Choose either a user or a business unit" in response.content.decode()
    assert client_for(west_rep).get(f"/accounts/{account.pk}/").status_code == 404


# -- assignment -------------------------------------------------------------------------------------

def test_manager_assigns_one_record(org, client_for, east_manager, east_rep2, north_rep, accounts):
    client = client_for(east_manager)
    account = accounts["east_rep"]
    assert client.get("/accounts/assign/", {"pk": account.pk}).status_code == 200
    response = client.post("/accounts/assign/", {"pk": account.pk, "owner": east_rep2.pk})
    assert response.status_code == 302 and response.url == f"/accounts/{account.pk}/"
    account.refresh_from_db()
    assert (account.owner, account.business_unit) == (east_rep2, org.unit("East"))
    # Into a child unit, to its member.
    response = client.post("/accounts/assign/", {"pk": account.pk, "owner": north_rep.pk,
                                                "business_unit": org.unit("East-North").pk})
    assert response.status_code == 302
    account.refresh_from_db()
    assert (account.owner, account.business_unit) == (north_rep, org.unit("East-North"))
    assert account.history.first().history_change_reason == "Assigned to north_rep (East-North)"
    assert client_for(north_rep).get(f"/accounts/{account.pk}/edit/").status_code == 200


def test_manager_mass_assigns(org, client_for, east_manager, east_rep2, accounts):
    client = client_for(east_manager)
    picked = [accounts["east_rep"], accounts["north_rep"], accounts["east_manager"]]
    response = client.post("/accounts/assign/", {"pk": [a.pk for a in picked]})
    assert response.status_code == 200 and response.context["count"] == 3
    response = client.post("/accounts/assign/", {"pk": [a.pk for a in picked], "owner": east_rep2.pk})
    assert response.status_code == 302 and response.url == "/accounts/"
    assert set(Account.objects.filter(pk__in=[a.pk for a in picked]).values_list("owner", "business_unit")) == {
        (east_rep2.pk, org.unit("East").pk)}


def test_manager_cannot_give_records_outside_his_units(org, client_for, east_manager, west_rep, accounts):
    client = client_for(east_manager)
    account = accounts["east_rep"]
    response = client.post("/accounts/assign/", {"pk": account.pk, "owner": west_rep.pk})
    assert response.status_code == 200 and "owner" in response.context["form"].errors
    response = client.post("/accounts/assign/", {"pk": account.pk, "owner": east_manager.pk,
                                                "business_unit": org.unit("West").pk})
    assert response.status_code == 200 and response.context["form"].errors
    account.refresh_from_db()
    assert (account.owner.username, account.business_unit.name) == ("east_rep", "East")


def test_rep_cannot_assign_even_his_own(client_for, east_rep, east_rep2, accounts):
    client = client_for(east_rep)
    for account in (accounts["east_rep"], accounts["east_rep2"]):
        assert client.get("/accounts/assign/", {"pk": account.pk}).status_code == 403
        assert client.post("/accounts/assign/", {"pk": account.pk, "owner": east_rep2.pk}).status_code == 403
    assert Account.objects.get(pk=accounts["east_rep"].pk).owner == east_rep
    response = client.get(f"/accounts/{accounts['east_rep'].pk}/")
    assert response.context["can_change"] and not response.context["can_assign"]


# -- changes to users take effect on the next request -------------------------------------------------

def test_moving_a_rep_into_east_shows_him_east_records(org, client_for, west_rep, accounts):
    client = client_for(west_rep)
    east_account = accounts["east_rep"]
    assert client.get(f"/accounts/{east_account.pk}/").status_code == 404
    west_rep.business_units.add(org.unit("East"))
    assert client.get(f"/accounts/{east_account.pk}/").status_code == 200
    assert east_account.pk in grid_pks(client)
    assert can_edit(client, east_account) == 403
    west_rep.business_units.remove(org.unit("East"))
    assert client.get(f"/accounts/{east_account.pk}/").status_code == 404


def test_demoting_a_manager_makes_edit_403(client_for, east_manager, accounts):
    client = client_for(east_manager)
    account = accounts["east_rep"]
    assert can_edit(client, account) == 200
    east_manager.roles.remove(seeded_role(MANAGER))
    east_manager.roles.add(seeded_role(SALES_REP))
    assert can_edit(client, account) == 403
    assert can_edit(client, accounts["north_rep"]) == 404  # a Sales Rep's view does not reach child units
    assert can_edit(client, accounts["east_manager"]) == 200


def test_promoting_a_rep_lets_him_edit_colleagues(client_for, east_rep, accounts):
    client = client_for(east_rep)
    assert can_edit(client, accounts["east_rep2"]) == 403
    east_rep.roles.add(seeded_role(MANAGER))
    assert can_edit(client, accounts["east_rep2"]) == 200
    assert can_edit(client, accounts["north_rep"]) == 200


def test_a_new_child_unit_is_covered_by_the_manager(org, client_for, east_manager):
    south = BusinessUnitFactory(name="East-South", parent=org.unit("East"))
    account = AccountFactory(owner=east_manager, business_unit=south)
    assert can_edit(client_for(east_manager), account) == 200


def test_moving_a_unit_under_east_moves_its_records_under_the_manager(org, client_for, east_manager, accounts):
    client = client_for(east_manager)
    assert client.get(f"/accounts/{accounts['west_rep'].pk}/").status_code == 404
    west = BusinessUnit.objects.get(name="West")
    west.parent = org.unit("East")
    west.save()
    assert can_edit(client, accounts["west_rep"]) == 200


def test_a_new_primary_unit_makes_the_user_its_member(org, client_for, north_rep, accounts):
    client = client_for(north_rep)
    assert client.get(f"/accounts/{accounts['west_rep'].pk}/").status_code == 404
    north_rep.primary_unit = org.unit("West")
    north_rep.save()
    assert set(north_rep.business_units.all()) == {org.unit("East-North"), org.unit("West")}
    assert client.get(f"/accounts/{accounts['west_rep'].pk}/").status_code == 200
    assert client.get("/accounts/new/").context["form"]["business_unit"].initial == org.unit("West").pk
