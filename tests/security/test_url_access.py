"""Every URL that takes a record id, attacked with the id of a record owned in another unit.

The walk reads the URL configuration itself (tests.security.world.routes), so a new pattern
is attacked without anyone remembering it: one whose parameters the tables of world.py
cannot fill fails test_every_pattern_with_parameters_is_mapped, naming it."""
import pytest
from django.urls import reverse

from crm.access import access, is_owned

from tests.security.world import (ENTITY_RECORDS, all_paths, attackers, body, build_world, changed_tables, snapshot,
                                  unmapped)

# Pages an attacker may open with these ids: organization-wide records (channels, contact
# groups: everyone reads them) and pages that are not one record's. They answer, but must
# not show the hidden records that refer to them.
READABLE = {"channels:detail", "contact_groups:detail", "saved_views:owners", "admin:app_list",
            "admin/(?P<url>.*)$"}
READABLE_ADMIN = ("admin/channels/channel/", "admin/contacts/contactgroup/")
REFUSED = {403, 404, 405, 410}


def readable(route):
    if route.name in READABLE:
        return True
    return route.route.startswith(READABLE_ADMIN) and not route.route.endswith(("/delete/", "/permissions/"))


def org_wide_editor(route, user):
    """May `user` change the organization-wide records (channels, contact groups) `route` is of?"""
    from channels.models import Channel
    from contacts.models import ContactGroup

    if route.name.startswith("contact_groups:") or route.route.startswith("admin/contacts/contactgroup/"):
        model = ContactGroup
    elif route.name.startswith("channels:") or route.route.startswith("admin/channels/channel/"):
        model = Channel
    else:
        return False
    return access(user).may(model, "change")


@pytest.fixture
def world(org):
    return build_world(org)


def test_every_pattern_with_parameters_is_mapped(world):
    missing = unmapped(world)
    assert not missing, ("URL patterns with parameters that tests/security/world.py (ARGS, ADMIN_RECORDS) "
                         f"does not know how to build: {missing}")


def chain(client, method, path, data=None):
    """The responses of a request and of the redirects it leads to (on this site)."""
    response = getattr(client, method)(path, data or {})
    responses = [response]
    while response.status_code in (301, 302) and len(responses) < 5:
        location = response["Location"].removeprefix("http://testserver")
        assert location.startswith("/"), (path, location)
        response = client.get(location)
        responses.append(response)
    return responses


def check_refused(route, path, responses, secret, method):
    final = responses[-1]
    allowed = set(REFUSED)
    if readable(route):  # a POST there must still change nothing (the snapshot tells)
        allowed.add(200)
    if route.route.startswith("admin/") and len(responses) > 1 and final.request["PATH_INFO"] == "/admin/":
        # Django's admin answers a missing object with its index ("... doesn't exist"), the
        # same for an id that does not exist and for one the user may not view.
        allowed.add(200)
    assert final.status_code in allowed, (
        f"{method.upper()} {path} ({route.name}) answered {[r.status_code for r in responses]}")
    for response in responses:
        assert secret not in body(response), f"{method.upper()} {path} ({route.name}) shows the hidden record"
        assert secret.decode() not in response.get("Location", ""), (path, route.name)


def attack_data(world):
    """A POST that would do something on most pages: confirm, select the hidden records, fill fields."""
    w = world
    return {"confirm": "1", "post": "yes", "pk": [w.account.pk, w.customer.pk, w.contact.pk], "name": "Taken",
            "description": "Taken", "body": "Taken", "comment": "Taken", "decision": "approve", "level": "change",
            "target": f"user:{w.owner.pk}", "default": "1", "contact": w.contact.pk, "type": "billing",
            "group": "buyer", "subject": "Taken", "kind": "note"}


@pytest.mark.parametrize("attacker", ["east_rep", "east_manager"])
def test_record_urls_of_another_unit_are_refused_and_change_nothing(org, world, client_for, attacker):
    attackers(org)
    attacker_user = org.user(attacker)
    client = client_for(attacker_user)
    secret = world.token.encode()
    data = attack_data(world)
    attacked = 0
    for route, path in all_paths(world):
        if not route.params or path is None or route.name in ("login", "logout", "admin:logout"):
            continue
        if org_wide_editor(route, attacker_user):
            # A Manager edits the organization's channels and contact groups: no attack, but
            # their pages must not show the hidden records that refer to them.
            assert all(secret not in body(r) for r in chain(client, "get", path)), path
            continue
        check_refused(route, path, chain(client, "get", path), secret, "get")
        before = snapshot()
        check_refused(route, path, chain(client, "post", path, data), secret, "post")
        assert not changed_tables(before, snapshot()), f"POST {path} ({route.name}) changed the database"
        attacked += 1
    assert attacked > 150  # the walk reached the site, not an empty URL list


@pytest.mark.parametrize("attacker", ["east_rep", "east_manager"])
def test_mass_actions_with_hidden_ids_change_nothing(org, world, client_for, attacker):
    """Mass delete, assign and merge take their ids from the POST, not the URL."""
    attackers(org)
    client = client_for(org.user(attacker))
    secret = world.token.encode()
    me = org.user(attacker)
    for namespace, attr in ENTITY_RECORDS.items():
        record = getattr(world, attr)
        if not is_owned(type(record)) and access(me).may(type(record), "change"):
            continue  # organization-wide records he may edit: not another unit's
        pk = record.pk
        names = ["mass_delete"] + (["assign"] if namespace in ("accounts", "customers", "contacts", "locations")
                                   else [])
        for name in names:
            try:
                path = reverse(f"{namespace}:{name}")
            except Exception:
                continue
            for data in ({"pk": [pk]}, {"pk": [pk], "confirm": "1", "owner": me.pk,
                                        "business_unit": me.primary_unit_id}):
                before = snapshot()
                response = client.post(path, data)
                assert secret not in body(response), (path, data)
                assert not changed_tables(before, snapshot()), (path, data)
    other = world.account.__class__.objects.create(name="Mine", owner=me, business_unit=me.primary_unit)
    for data in ({"pk": [world.account.pk, other.pk]},
                 {"pk": [world.account.pk, other.pk], "master": world.account.pk, "confirm": "1"},
                 {"pk": [world.account.pk, other.pk], "master": other.pk, "confirm": "1"}):
        before = snapshot()
        response = client.post(reverse("accounts:merge"), data)
        assert secret not in body(response)
        assert not changed_tables(before, snapshot()), data
    before = snapshot()
    response = client.post(reverse("users:deactivate"), {"pk": [world.owner.pk], "confirm": "1"})
    assert response.status_code in (403, 404) and not changed_tables(before, snapshot())
