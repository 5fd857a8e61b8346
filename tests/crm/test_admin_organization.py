"""The organization's admin pages (users, roles, business units, groups): for administrators
only. An administrator who is not a superuser manages users and roles as in the app, but
cannot make anyone a superuser, grant raw Django permissions or take over a superuser."""
import pytest
from django.contrib.auth.models import Group, Permission

from crm.access import access
from crm.models import Level, Role, RolePermission, User
from tests.factories import UserFactory

STAFF = ("east_rep", "east_manager")


@pytest.fixture
def staff(org):
    for name in STAFF:
        user = org.user(name)
        user.is_staff = True
        user.save()
    return org


@pytest.fixture
def operator(org):
    """An administrator who is staff but not a superuser."""
    return UserFactory(username="operator", role="Administrator", units=[org.unit("Acme Corp")], is_staff=True)


def org_pages(org):
    role = Role.objects.get_or_create(name="Support")[0]
    unit = org.unit("West")
    user = org.user("west_rep")
    group = unit.group
    pages = []
    for base, obj in (("crm/user", user), ("crm/role", role), ("crm/businessunit", unit), ("auth/group", group)):
        pages += [f"/admin/{base}/", f"/admin/{base}/add/", f"/admin/{base}/{obj.pk}/change/",
                  f"/admin/{base}/{obj.pk}/delete/", f"/admin/{base}/{obj.pk}/history/"]
    pages.append(f"/admin/crm/user/{user.pk}/password/")
    return pages


@pytest.mark.parametrize("viewer", STAFF)
def test_staff_without_an_administering_role_get_403(client_for, staff, viewer):
    client = client_for(staff.user(viewer))
    for path in org_pages(staff):
        response = client.get(path)
        assert response.status_code == 403, (path, response.status_code)
    html = client.get("/admin/").content.decode()
    assert "/admin/crm/user/" not in html and "/admin/crm/role/" not in html and "/admin/auth/group/" not in html


@pytest.mark.parametrize("viewer", STAFF)
def test_staff_cannot_write_organization_records(client_for, staff, viewer):
    client = client_for(staff.user(viewer))
    user = staff.user(viewer)
    role = Role.objects.get(name="Administrator")
    assert client.post("/admin/crm/role/add/", {"name": "Mine", "permissions-TOTAL_FORMS": "0",
                                                "permissions-INITIAL_FORMS": "0"}).status_code == 403
    assert client.post(f"/admin/crm/user/{user.pk}/change/", {
        "username": user.username, "roles": [role.pk], "is_superuser": "on"}).status_code == 403
    assert client.post("/admin/crm/businessunit/add/", {"name": "Mine"}).status_code == 403
    assert client.post("/admin/auth/group/add/", {"name": "Mine"}).status_code == 403
    user.refresh_from_db()
    assert not user.is_superuser and role not in user.roles.all()
    assert not Role.objects.filter(name="Mine").exists() and not Group.objects.filter(name="Mine").exists()


def user_post(user, **changes):
    data = {"username": user.username, "first_name": user.first_name, "last_name": user.last_name,
            "email": user.email, "primary_unit": user.primary_unit_id,
            "business_units": [str(pk) for pk in user.business_units.values_list("pk", flat=True)],
            "roles": [str(pk) for pk in user.roles.values_list("pk", flat=True)]}
    if user.is_active:
        data["is_active"] = "on"
    if user.is_staff:
        data["is_staff"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_administrator_manages_users_and_roles(client_for, staff, operator):
    client = client_for(operator)
    west = staff.user("west_rep")
    manager_role = Role.objects.get(name="Manager")
    assert client.get("/admin/crm/user/").status_code == 200
    assert client.get("/admin/crm/role/").status_code == 200
    response = client.post(f"/admin/crm/user/{west.pk}/change/", user_post(west, roles=[str(manager_role.pk)]))
    assert response.status_code == 302
    west = User.objects.get(pk=west.pk)
    assert list(west.roles.all()) == [manager_role]
    assert access(west).level(__import__("accounts.models").models.Account, "change") == Level.DIVISION


def test_administrator_edits_a_roles_levels_in_the_admin(client_for, staff, operator):
    client = client_for(operator)
    role = Role.objects.create(name="Auditor")
    response = client.get(f"/admin/crm/role/{role.pk}/change/")
    assert response.status_code == 200
    inline = response.context["inline_admin_formsets"][0]
    assert inline.has_add_permission and inline.has_change_permission
    response = client.post(f"/admin/crm/role/{role.pk}/change/", {
        "name": "Auditor", "description": "", "permissions-TOTAL_FORMS": "1", "permissions-INITIAL_FORMS": "0",
        "permissions-0-entity": "accounts.account", "permissions-0-action": "view", "permissions-0-level": "4"})
    assert response.status_code == 302
    assert RolePermission.objects.filter(role=role, entity="accounts.account", action="view", level=4).exists()


def test_administrator_cannot_make_anyone_a_superuser(client_for, staff, operator):
    client = client_for(operator)
    west = staff.user("west_rep")
    for target in (west, operator):
        response = client.get(f"/admin/crm/user/{target.pk}/change/")
        assert "is_superuser" not in response.context["adminform"].form.fields
        client.post(f"/admin/crm/user/{target.pk}/change/", user_post(target, is_superuser="on"))
        target.refresh_from_db()
        assert not target.is_superuser


def test_administrator_cannot_grant_raw_django_permissions(client_for, staff, operator):
    client = client_for(operator)
    west = staff.user("west_rep")
    perm = Permission.objects.get(codename="change_user")
    group = Group.objects.create(name="Powerful")
    group.permissions.add(perm)
    client.post(f"/admin/crm/user/{west.pk}/change/",
                user_post(west, user_permissions=[str(perm.pk)], groups=[str(group.pk)]))
    west.refresh_from_db()
    assert not west.user_permissions.exists() and group not in west.groups.all()
    # Groups carry raw permissions: superusers only.
    assert client.get("/admin/auth/group/").status_code == 403
    response = client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "Powerful",
                                                                    "permissions": [str(perm.pk)]})
    assert response.status_code == 403
    assert client.post("/admin/auth/group/add/", {"name": "Other", "permissions": [str(perm.pk)]}).status_code == 403
    client.post(f"/admin/crm/user/{operator.pk}/change/", user_post(operator, user_permissions=[str(perm.pk)]))
    assert not User.objects.get(pk=operator.pk).has_perm("crm.change_user")


def test_administrator_cannot_take_over_a_superuser(client_for, staff, operator, admin):
    client = client_for(operator)
    assert client.get(f"/admin/crm/user/{admin.pk}/password/").status_code == 403
    response = client.post(f"/admin/crm/user/{admin.pk}/password/",
                           {"password1": "taken-over-123", "password2": "taken-over-123"})
    assert response.status_code == 403
    response = client.post(f"/admin/crm/user/{admin.pk}/change/", user_post(admin, is_active=None))
    assert response.status_code == 403
    assert client.post(f"/admin/crm/user/{admin.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post("/admin/crm/user/", {"action": "delete_selected", "_selected_action": [admin.pk], "post": "yes"})
    admin = User.objects.get(pk=admin.pk)
    assert admin.is_active and admin.check_password("test-password-123")


def test_seeded_roles_cannot_be_deleted_in_the_admin(client_for, staff, operator):
    client = client_for(operator)
    role = Role.objects.get(name="Manager")
    assert client.post(f"/admin/crm/role/{role.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post("/admin/crm/role/", {"action": "delete_selected", "_selected_action": [role.pk], "post": "yes"})
    assert Role.objects.filter(pk=role.pk).exists()
    custom = Role.objects.create(name="Temp")
    assert client.post(f"/admin/crm/role/{custom.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Role.objects.filter(pk=custom.pk).exists()


def test_administrator_manages_business_units(client_for, staff, operator):
    client = client_for(operator)
    response = client.post("/admin/crm/businessunit/add/", {"name": "South", "parent": staff.unit("Acme Corp").pk})
    assert response.status_code == 302
    east = staff.unit("East")
    response = client.post(f"/admin/crm/businessunit/{east.pk}/change/", {
        "name": "East", "parent": staff.unit("East-North").pk})
    assert response.status_code == 200  # under its own child: refused
    east.refresh_from_db()
    assert east.parent == staff.unit("Acme Corp")


def test_superuser_keeps_every_organization_page(client_for, staff, admin):
    client = client_for(admin)
    for path in org_pages(staff):
        assert client.get(path).status_code == 200, path
