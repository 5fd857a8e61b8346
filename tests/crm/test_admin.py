"""The Django admin: everything for superusers; for other staff, exactly what the app
would show them (same restricted querysets, exports and imports)."""
import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Account
from tests.factories import AccountFactory, ChannelFactory


@pytest.fixture
def records(org):
    return {
        "own": AccountFactory(name="Rep Own", owner=org.user("east_rep")),
        "colleague": AccountFactory(name="Colleague East", owner=org.user("east_rep2")),
        "north": AccountFactory(name="North Child", owner=org.user("north_rep")),
        "west": AccountFactory(name="West Secret", owner=org.user("west_rep")),
        "channel": ChannelFactory(name="Direct Sales"),
    }


@pytest.fixture
def staff_rep(east_rep):
    east_rep.is_staff = True
    east_rep.save()
    return east_rep


@pytest.mark.parametrize("model", ["accounts/account", "channels/channel", "crm/businessunit", "crm/user"])
def test_superuser_opens_every_admin_page(client_for, admin, org, records, model):
    client = client_for(admin)
    objects = {"accounts/account": records["west"], "channels/channel": records["channel"],
               "crm/businessunit": org.unit("East-North"), "crm/user": org.user("west_rep")}
    obj = objects[model]
    response = client.get(f"/admin/{model}/")
    assert response.status_code == 200
    assert obj.pk in [o.pk for o in response.context["cl"].result_list]
    assert client.get(f"/admin/{model}/{obj.pk}/change/").status_code == 200
    assert client.get(f"/admin/{model}/add/").status_code == 200
    assert client.get(f"/admin/{model}/{obj.pk}/history/").status_code == 200


def test_superuser_sees_every_account(client_for, admin, records):
    response = client_for(admin).get("/admin/accounts/account/")
    assert {o.name for o in response.context["cl"].result_list} == {
        "Rep Own", "Colleague East", "North Child", "West Secret"}


def test_staff_rep_sees_only_his_accounts_in_the_changelist(client_for, staff_rep, records):
    client = client_for(staff_rep)
    response = client.get("/admin/accounts/account/")
    assert response.status_code == 200
    assert {o.name for o in response.context["cl"].result_list} == {"Rep Own", "Colleague East"}
    assert "West Secret" not in response.content.decode()
    response = client.get("/admin/accounts/account/", {"q": "West Secret"})
    assert list(response.context["cl"].result_list) == []
    # The unit filter offers nothing that leads to another unit's records either.
    response = client.get("/admin/accounts/account/", {"business_unit__id__exact": records["west"].business_unit_id})
    assert "West Secret" not in response.content.decode()


def test_staff_rep_cannot_open_or_change_another_units_account(client_for, staff_rep, records):
    client = client_for(staff_rep)
    for key in ("west", "north"):
        account = records[key]
        for path in ("change", "delete", "history"):
            response = client.get(f"/admin/accounts/account/{account.pk}/{path}/")
            assert response.status_code in (302, 403, 404), (key, path, response.status_code)
            assert account.name not in response.content.decode()
        response = client.post(f"/admin/accounts/account/{account.pk}/change/", {"name": "Hijacked"})
        assert response.status_code in (302, 403, 404)
        response = client.post(f"/admin/accounts/account/{account.pk}/delete/", {"post": "yes"})
        assert response.status_code in (302, 403, 404)
    assert Account.objects.filter(name__in=["West Secret", "North Child"]).count() == 2


def test_staff_rep_may_view_but_not_change_a_colleagues_account(client_for, staff_rep, records):
    client = client_for(staff_rep)
    colleague = records["colleague"]
    response = client.get(f"/admin/accounts/account/{colleague.pk}/change/")
    assert response.status_code == 200 and not response.context["has_change_permission"]
    response = client.post(f"/admin/accounts/account/{colleague.pk}/change/",
                           {"name": "Hijacked", "owner": staff_rep.pk, "business_unit": colleague.business_unit_id})
    assert response.status_code == 403
    colleague.refresh_from_db()
    assert colleague.name == "Colleague East"
    assert client.get(f"/admin/accounts/account/{records['own'].pk}/change/").context["has_change_permission"]


def test_staff_rep_has_no_organization_admin(client_for, staff_rep, records):
    client = client_for(staff_rep)
    assert client.get("/admin/crm/user/").status_code == 403
    assert client.get("/admin/crm/businessunit/").status_code == 403
    # Channels are changed by Administrators only.
    channel = records["channel"]
    response = client.post(f"/admin/channels/channel/{channel.pk}/change/", {"name": "Renamed", "type": "sales",
                                                                             "status": "active", "entities": ""})
    assert response.status_code == 403
    assert client.get("/admin/channels/channel/add/").status_code == 403


def test_non_staff_users_are_sent_to_the_login(client_for, west_rep):
    response = client_for(west_rep).get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response.url


def admin_export(client, **extra):
    response = client.get("/admin/accounts/account/export/")
    fields = {name: "on" for name in response.context["form"].fields if name.startswith("accountresource_")}
    response = client.post("/admin/accounts/account/export/", {"format": "0", "resource": "0", **fields, **extra})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_admin_export_is_restricted(client_for, staff_rep, records):
    client = client_for(staff_rep)
    assert {row["Name"] for row in admin_export(client)} == {"Rep Own", "Colleague East"}
    # Naming hidden records as the selected items does not export them.
    rows = admin_export(client, export_items=[records["west"].pk, records["own"].pk])
    assert {row["Name"] for row in rows} == {"Rep Own"}


def test_admin_export_neutralises_formulas(client_for, admin, east_rep):
    AccountFactory(name='=HYPERLINK("http://evil.example")', owner=east_rep, description="@SUM(A1)")
    (row,) = admin_export(client_for(admin))
    assert (row["Name"], row["Description"]) == ("'=HYPERLINK(\"http://evil.example\")", "'@SUM(A1)")


def test_admin_import_refuses_ids_the_user_may_not_edit(client_for, staff_rep, records):
    client = client_for(staff_rep)
    data = f"ID,Name\n{records['west'].pk},Hijacked\n{records['colleague'].pk},Hijacked too\n".encode()
    response = client.post("/admin/accounts/account/import/", {
        "resource": "0", "format": "0", "import_file": SimpleUploadedFile("a.csv", data, "text/csv")})
    assert response.status_code == 200
    result = response.context["result"]
    assert result.has_validation_errors()
    assert [row.number for row in result.invalid_rows] == [1, 2]
    assert "confirm_form" not in response.context or not response.context["confirm_form"]
    assert not Account.objects.filter(name__startswith="Hijacked").exists()


def test_admin_import_strips_the_exports_formula_quote(client_for, admin, east_rep):
    data = "ID,Name,Owner,Business Unit,Description\n,'=SUM(A1),east_rep,East,'+1 555\n".encode()
    client = client_for(admin)
    response = client.post("/admin/accounts/account/import/", {
        "resource": "0", "format": "0", "import_file": SimpleUploadedFile("a.csv", data, "text/csv")})
    assert response.status_code == 200 and not response.context["result"].has_validation_errors()
    confirm = response.context["confirm_form"].initial
    client.post("/admin/accounts/account/process_import/", confirm)
    account = Account.objects.get(owner=east_rep)
    assert (account.name, account.description) == ("=SUM(A1)", "+1 555")


def test_staff_rep_views_channels_in_the_admin_but_cannot_change_them(client_for, staff_rep, records):
    client = client_for(staff_rep)
    assert client.get("/admin/channels/channel/").status_code == 200
    assert "Direct Sales" in client.get("/admin/channels/channel/").content.decode()
    assert client.get("/admin/channels/channel/add/").status_code == 403
    page = client.get(f"/admin/channels/channel/{records['channel'].pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
