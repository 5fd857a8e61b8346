"""Administration in the app: roles (a matrix of levels) and users (units, roles,
deactivation), for administrators only."""
import pytest
from django.test import Client

from accounts.models import Account
from crm.forms import cell_name
from crm.models import Level, Role, User
from crm.views import ENTITIES
from tests.contacts.factories import ContactFactory
from tests.customers.factories import BusinessCustomerFactory
from tests.factories import AccountFactory, UserFactory
from tests.toolkit import export_csv

ADMINISTRATION = [e for e in ENTITIES if e.administration]
NAMESPACES = {e.namespace for e in ADMINISTRATION}   # read by the meta-test of entity coverage


def entity(namespace):
    return next(e for e in ENTITIES if e.namespace == namespace)


def matrix_post(name, levels=None, **extra):
    """The role form's POST: every cell None unless `levels` says {(namespace, action): level}."""
    from crm.forms import matrix_entities
    from crm.models import ACTIONS

    data = {"name": name, "description": "", **extra}
    for e in matrix_entities():
        for action in ACTIONS:
            if e.owned or action not in ("assign", "share"):
                data[cell_name(e, action)] = str(int((levels or {}).get((e.namespace, action), Level.NONE)))
    return data


def test_an_administrator_creates_an_auditor_who_sees_accounts_and_customers_edits_nothing_sees_no_contacts(
        org, client_for, admin):
    east, west = org.user("east_rep"), org.user("west_rep")
    accounts = [AccountFactory(name="East Books", owner=east), AccountFactory(name="West Books", owner=west)]
    customers = [BusinessCustomerFactory(name="East Shop", owner=east, business_unit=org.unit("East")),
                 BusinessCustomerFactory(name="West Shop", owner=west, business_unit=org.unit("West"))]
    contact = ContactFactory(last_name="Hidden Person", owner=east, business_unit=org.unit("East"))
    client = client_for(admin)

    # The role: organization-wide view on accounts and customers, nothing else.
    levels = {("accounts", "view"): Level.ORGANIZATION, ("customers", "view"): Level.ORGANIZATION}
    response = client.post("/roles/new/", matrix_post("Auditor", levels, description="Reads the books."))
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    auditor_role = Role.objects.get(name="Auditor")
    assert auditor_role.levels()[("accounts.account", "view")] == Level.ORGANIZATION
    assert auditor_role.levels()[("contacts.contact", "view")] == Level.NONE

    # A new user in the app, with that role.
    response = client.post("/users/new/", {
        "username": "auditor", "first_name": "Audrey", "last_name": "Ito", "email": "audrey@example.com",
        "primary_unit": org.unit("West").pk, "business_units": [org.unit("West").pk], "roles": [auditor_role.pk],
        "is_active": "on", "password1": "a-long-secret-9", "password2": "a-long-secret-9"})
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    user = User.objects.get(username="auditor")
    assert list(user.roles.all()) == [auditor_role]

    auditor = Client()
    assert auditor.login(username="auditor", password="a-long-secret-9")
    grid = auditor.get("/accounts/", {"per_page": 250})
    assert {r.record.pk for r in grid.context["table"].paginated_rows} >= {a.pk for a in accounts}
    grid = auditor.get("/customers/", {"per_page": 250})
    assert {r.record.pk for r in grid.context["table"].paginated_rows} >= {c.pk for c in customers}
    for obj, ns in [(accounts[0], "accounts"), (accounts[1], "accounts"), (customers[1], "customers")]:
        assert auditor.get(f"/{ns}/{obj.pk}/").status_code == 200
        assert auditor.get(f"/{ns}/{obj.pk}/edit/").status_code == 403
        assert auditor.post(f"/{ns}/{obj.pk}/edit/", {"name": "Changed"}).status_code == 403
        assert auditor.post(f"/{ns}/{obj.pk}/delete/", {"confirm": "1"}).status_code == 403
    assert auditor.get("/accounts/new/").status_code == 403
    assert auditor.get("/accounts/import/").status_code == 403
    assert not Account.objects.filter(name="Changed").exists()
    # No contacts at all: not in the grid, the record is a 404, the export is empty, search finds nothing.
    contacts = auditor.get("/contacts/")
    assert contacts.status_code == 200 and contacts.context["table"].paginator.count == 0
    assert auditor.get(f"/contacts/{contact.pk}/").status_code == 404
    assert export_csv(auditor, "contacts")[1] == []
    assert "Hidden Person" not in auditor.get("/search/", {"q": "Hidden"}).content.decode()
    # Contacts are not even offered in his navigation; accounts and customers are.
    nav = auditor.get("/").content.decode()
    assert 'href="/accounts/"' in nav and 'href="/contacts/"' not in nav
    # And no Administration menu for him.
    assert auditor.get("/roles/").status_code == 403


@pytest.mark.parametrize("namespace", sorted(NAMESPACES))
@pytest.mark.parametrize("username", ["east_manager", "east_rep", "west_rep"])
def test_administration_pages_are_for_administrators_only(org, client_for, admin, namespace, username):
    target = Role.objects.get(name="Manager") if namespace == "roles" else org.user("west_rep")
    client = client_for(org.user(username))
    before = (Role.objects.count(), User.objects.filter(is_active=True).count())
    urls = [f"/{namespace}/", f"/{namespace}/new/", f"/{namespace}/{target.pk}/", f"/{namespace}/{target.pk}/edit/",
            f"/{namespace}/{target.pk}/delete/", f"/{namespace}/export/", f"/{namespace}/autocomplete/?q=a"]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 403, url
        assert target.name if namespace == "roles" else target.username not in response.content.decode()
    assert client.post(f"/{namespace}/{target.pk}/delete/", {"confirm": "1"}).status_code == 403
    assert client.post(f"/{namespace}/new/", {"name": "Mine", "username": "mine"}).status_code == 403
    if namespace == "users":
        assert client.post("/users/deactivate/", {"pk": [target.pk], "confirm": "1"}).status_code == 403
    assert (Role.objects.count(), User.objects.filter(is_active=True).count()) == before
    admin_client = client_for(admin)
    for url in urls[:-1]:
        assert admin_client.get(url).status_code == 200, url


def test_the_administration_menu_shows_for_administrators_only(org, client_for, admin):
    assert 'data-testid="administration-menu"' in client_for(admin).get("/").content.decode()
    assert 'data-testid="administration-menu"' not in client_for(org.user("east_manager")).get("/").content.decode()


def test_a_non_superuser_administrator_manages_users_but_makes_no_superuser(org, client_for):
    boss = UserFactory(username="boss", role="Administrator", units=[org.unit("Acme Corp")])
    client = client_for(boss)
    target = org.user("west_rep")
    response = client.post(f"/users/{target.pk}/edit/", {
        "username": target.username, "first_name": "W", "last_name": "R", "email": "w@example.com",
        "primary_unit": org.unit("West").pk, "business_units": [org.unit("West").pk],
        "roles": [Role.objects.get(name="Manager").pk], "is_active": "on", "is_superuser": "on"})
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    target.refresh_from_db()
    assert not target.is_superuser and [r.name for r in target.roles.all()] == ["Manager"]


def test_a_new_user_needs_matching_passwords_and_a_primary_unit(org, client_for, admin):
    response = client_for(admin).post("/users/new/", {"username": "newbie", "password1": "x1-long-enough",
                                                      "password2": "different-9"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "password2" in errors and "primary_unit" in errors
    assert not User.objects.filter(username="newbie").exists()


def test_deactivated_users_cannot_log_in_and_keep_their_records(org, client_for, admin):
    rep = UserFactory(username="leaver", role="Sales Representative", units=[org.unit("East")], password="pw-12345-long")
    account = AccountFactory(name="Leaver's account", owner=rep)
    client = client_for(admin)
    response = client.post("/users/deactivate/", {"pk": [rep.pk, admin.pk], "confirm": "1"})
    assert response.status_code == 302
    rep.refresh_from_db()
    admin.refresh_from_db()
    assert not rep.is_active and admin.is_active, "an administrator never deactivates himself"
    assert not Client().login(username="leaver", password="pw-12345-long")
    account.refresh_from_db()
    assert account.owner == rep
    # Deleting him instead is refused: he still owns records.
    response = client.post(f"/users/{rep.pk}/delete/", {"confirm": "1"})
    assert User.objects.filter(pk=rep.pk).exists()


def test_seeded_roles_cannot_be_deleted_but_others_can(org, client_for, admin):
    client = client_for(admin)
    manager = Role.objects.get(name="Manager")
    client.post(f"/roles/{manager.pk}/delete/", {"confirm": "1"})
    assert Role.objects.filter(pk=manager.pk).exists()
    custom = Role.objects.create(name="Temp")
    holder = UserFactory(username="temp_holder", units=[org.unit("East")])
    holder.roles.add(custom)
    assert client.post(f"/roles/{custom.pk}/delete/", {"confirm": "1"}).status_code == 302
    assert not Role.objects.filter(pk=custom.pk).exists() and not holder.roles.exists()


def test_role_page_shows_the_matrix_and_its_holders(org, client_for, admin):
    role = Role.objects.get(name="Sales Representative")
    page = client_for(admin).get(f"/roles/{role.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and 'data-testid="role-matrix"' in html
    assert "east_rep" in html and "Business unit" in html


def test_users_export_lists_units_and_roles(org, client_for, admin):
    headers, rows = export_csv(client_for(admin), "users", {"q": "east_rep2"})
    row = dict(zip(headers, rows[0]))
    assert (row["Username"], row["Roles"], row["Primary Unit"]) == ("east_rep2", "Sales Representative", "East")
