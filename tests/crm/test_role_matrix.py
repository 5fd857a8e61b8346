"""The role matrix, cell by cell: a user whose only role sets one level on one entity and
action can do exactly that, through the grid, the record page, the edit, the export and
the import.

Where records sit, seen from the tester (a member of East, which has the sub-unit
East-North; Acme Corp is the parent of East and West):

    own      his own record in East
    unit     a colleague's record in East
    sub      a record of East-North
    parent   a record of Acme Corp
    branch   a record of West

A level reaches: user -> own; business unit -> + unit; division -> + sub; organization ->
everything. For every action but View the role also views everything (organization), so
that what is tested is the action, not whether the record can be found; and it may view
and create the other entities (a customer's channel and account), which the cell under
test does not depend on.

The entities and how to make, fill and import their records come from their access
suites (tests/<app>/test_access.py), so a new entity is covered by declaring its suite.
"""
import pytest

from crm.access import access
from crm.forms import cell_name
from crm.models import ACTIONS, Level, Role
from crm.services import save_role, set_roles
from crm.views import ENTITIES
from tests.accounts import test_access as accounts_suites
from tests.channels import test_access as channels_suites
from tests.contacts import test_access as contacts_suites
from tests.customers import test_access as customers_suites
from tests.factories import UserFactory
from tests.toolkit import AccessSuite, csv_bytes, export_csv, grid_rows, row_errors, token, upload

# Modules, not classes, are imported: pytest would otherwise collect the suites here again.
SUITES = {suite.namespace: suite()
          for module in (accounts_suites, channels_suites, contacts_suites, customers_suites)
          for suite in vars(module).values()
          if isinstance(suite, type) and issubclass(suite, AccessSuite) and suite is not AccessSuite}
POSITIONS = {  # name: (owner, unit)
    "own": ("tester", "East"),
    "unit": ("east_rep2", "East"),
    "sub": ("north_rep", "East-North"),
    "parent": ("admin", "Acme Corp"),
    "branch": ("west_rep", "West"),
}
REACH = {
    Level.NONE: set(),
    Level.USER: {"own"},
    Level.BUSINESS_UNIT: {"own", "unit"},
    Level.DIVISION: {"own", "unit", "sub"},
    Level.ORGANIZATION: set(POSITIONS),
}


def matrix_entities():
    return [e for e in ENTITIES if e.in_role_matrix]


def cells():
    for entity in matrix_entities():
        for action in ACTIONS:
            if entity.owned:
                levels = list(Level)
            elif action in ("assign", "share"):
                continue
            else:
                levels = [Level.NONE, Level.ORGANIZATION]
            for level in levels:
                yield pytest.param(entity.namespace, action, level, id=f"{entity.namespace}-{action}-{level.label}")


def test_every_entity_of_the_matrix_has_a_suite():
    assert {e.namespace for e in matrix_entities()} <= set(SUITES)


@pytest.fixture
def tester(org):
    user = UserFactory(username="tester", units=[org.unit("East")])
    org.users["tester"] = user
    return user


def give_only(user, entity, action, level):
    """A role with `level` on one cell (plus organization-wide view for other actions)."""
    levels = {(e.model._meta.label_lower, a): Level.ORGANIZATION if a in ("view", "create") else Level.NONE
              for e in matrix_entities() if e is not entity for a in ACTIONS}
    levels.update({(entity.model._meta.label_lower, a): Level.NONE for a in ACTIONS})
    key = entity.model._meta.label_lower
    if action != "view":
        levels[(key, "view")] = Level.ORGANIZATION
    levels[(key, action)] = level
    role = save_role(Role(name=f"Only {entity.namespace} {action} {level.label}"), levels)
    set_roles(user, [role.name])
    return role


def place(org, suite, word):
    """{position: record} for an owned entity, or {"any": record} for an organization-wide one."""
    if not suite.owned:
        return {"any": suite.make(org, f"{word} any")}
    return {pos: suite.make(org, f"{word} {pos}", owner=owner, unit=unit) for pos, (owner, unit) in POSITIONS.items()}


def reached(suite, level):
    if not suite.owned:
        return {"any"} if level == Level.ORGANIZATION else set()
    return REACH[level]


@pytest.mark.parametrize("namespace, action, level", list(cells()))
def test_one_cell(org, client_for, tester, namespace, action, level):
    suite = SUITES[namespace]
    entity = suite.entity
    give_only(tester, entity, action, level)
    client = client_for(tester)
    word = token()
    records = place(org, suite, word)
    allowed = reached(suite, level)
    check = globals()[f"check_{action}"]
    check(org, client, tester, suite, records, allowed, word)


def check_view(org, client, tester, suite, records, allowed, word):
    pks = set(grid_rows(client.get(suite.url("list"), {"q": word, "per_page": 250}))[0])
    assert pks == {records[p].pk for p in allowed}, "the grid lists exactly the records the level reaches"
    headers, rows = export_csv(client, suite.namespace, {"q": word})
    assert {int(r[headers.index("ID")]) for r in rows} == {records[p].pk for p in allowed}
    for pos, obj in records.items():
        expected = 200 if pos in allowed else 404
        assert client.get(suite.url("detail", obj.pk)).status_code == expected, pos
        # Viewing is not editing: the edit page is refused (403 when he sees the record).
        assert client.get(suite.url("update", obj.pk)).status_code == (403 if pos in allowed else 404), pos
    if suite.entity.can_import(tester):
        return
    assert client.get(suite.url("import")).status_code == 403


def check_change(org, client, tester, suite, records, allowed, word):
    for pos, obj in records.items():
        before = suite.name_of(obj)
        response = client.post(suite.url("update", obj.pk), suite.edit_data(org, tester, obj, f"{word} {pos} edited"))
        obj.refresh_from_db()
        if pos in allowed:
            assert response.status_code == 302, (pos, response.context["form"].errors if response.context else "")
            assert suite.name_of(obj) == f"{word} {pos} edited"
        else:
            assert response.status_code == 403, pos
            assert suite.name_of(obj) == before
    if not allowed:
        assert client.get(suite.url("import")).status_code == 403
        return
    # The import updates exactly the records the level reaches; the others are row errors.
    ordered = list(records.items())
    rows = [suite.import_row(org, tester, obj, f"{word} {pos} imported") for pos, obj in ordered]
    header = list(rows[0])
    response = upload(client, suite.namespace, csv_bytes([header] + [[r.get(h, "") for h in header] for r in rows]))
    refused = {line for line, column, _ in row_errors(response) if column == "ID"}
    assert refused == {i for i, (pos, _) in enumerate(ordered, start=2) if pos not in allowed}, row_errors(response)


def check_delete(org, client, tester, suite, records, allowed, word):
    model = suite.model
    for pos, obj in records.items():
        response = client.post(suite.url("delete", obj.pk), {"confirm": "1"})
        exists = model._default_manager.filter(pk=obj.pk).exists()
        if pos in allowed:
            assert response.status_code == 302 and not exists, pos
        else:
            assert response.status_code == 403 and exists, pos


def check_assign(org, client, tester, suite, records, allowed, word):
    east = org.unit("East")
    for pos, obj in records.items():
        response = client.post(suite.url("assign"), {"pk": [obj.pk], "owner": tester.pk, "business_unit": east.pk})
        obj.refresh_from_db()
        if pos in allowed:
            assert response.status_code == 302 and (obj.owner, obj.business_unit) == (tester, east), pos
        else:
            assert response.status_code == 403, pos
            assert (obj.owner.username, obj.business_unit.name) == POSITIONS[pos], pos


def check_share(org, client, tester, suite, records, allowed, word):
    guest = org.user("west_rep")
    for pos, obj in records.items():
        response = client.post(suite.url("share", obj.pk), {"user": guest.pk, "level": "view"})
        assert response.status_code == (302 if pos in allowed else 403), pos
        assert access(type(guest).objects.get(pk=guest.pk)).can("view", obj) == (pos in allowed or pos == "branch")


def check_create(org, client, tester, suite, records, allowed, word):
    if not allowed:
        assert client.get(suite.url("create")).status_code == 403
        assert client.get(suite.url("import")).status_code == 403 or not suite.entity.can_import(tester)
        return
    if not suite.owned:
        name = f"{word} new"
        assert client.post(suite.url("create"), suite.form_data(org, tester, name)).status_code == 302
        assert suite.model._default_manager.filter(**{suite.name_field: name}).exists()
        return
    # Where may he place a new record: (owner, unit) of each position, by the form and by a file.
    for pos, (owner, unit) in POSITIONS.items():
        user, unit_obj = org.user(owner), org.unit(unit)
        name = f"{word} new {pos}"
        data = {**suite.form_data(org, tester, name), "owner": user.pk, "business_unit": unit_obj.pk}
        response = client.post(suite.url("create"), data)
        created = suite.model._default_manager.filter(**{suite.name_field: name}).first()
        if pos in allowed:
            assert response.status_code == 302 and created is not None, (pos, response.context and response.context["form"].errors)
            assert (created.owner, created.business_unit) == (user, unit_obj)
        else:
            assert response.status_code == 400 and created is None, pos
    rows = []
    for pos, (owner, unit) in POSITIONS.items():
        row = suite.import_row(org, tester, None, f"{word} file {pos}")
        rows.append({**row, "Owner": owner, "Business Unit": unit})
    header = list(rows[0])
    response = upload(client, suite.namespace, csv_bytes([header] + [[r.get(h, "") for h in header] for r in rows]))
    refused = {line for line, column, _ in row_errors(response)}
    assert refused == {i for i, pos in enumerate(POSITIONS, start=2) if pos not in allowed}, row_errors(response)


def test_a_changed_role_applies_to_its_holders_on_the_next_request(org, client_for, tester):
    """An administrator lowers a cell on the role page; the holder's next request follows it."""
    from tests.factories import AccountFactory

    entity = next(e for e in matrix_entities() if e.namespace == "accounts")
    role = give_only(tester, entity, "view", Level.BUSINESS_UNIT)
    colleague = AccountFactory(name=f"{token()} colleague", owner=org.user("east_rep2"))
    client = client_for(tester)
    assert client.get(f"/accounts/{colleague.pk}/").status_code == 200
    admin = client_for(org.user("admin"))
    data = {"name": role.name, "description": "", cell_name(entity, "view"): str(int(Level.USER))}
    response = admin.post(f"/roles/{role.pk}/edit/", data)
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    assert role.levels()[("accounts.account", "view")] == Level.USER
    assert client.get(f"/accounts/{colleague.pk}/").status_code == 404
