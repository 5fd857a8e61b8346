"""The Django admin applies exactly the app's rules to staff who are not superusers: a
staff Sales Representative (east_rep: his own records, read-only those of East) and a
staff Manager (east_manager: everything of East and East-North), page by page.

The records: one account, customer and contact per owner, named after him ("Own", "Colleague",
"Manager", "North", "West" + kind). The Sales Representative views Own, Colleague and
Manager and edits Own; the Manager views and edits all but West.
"""
import csv
import io
from dataclasses import dataclass, field

import pytest
from django.contrib import admin as django_admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from guardian.shortcuts import assign_perm
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from accounts.admin import AccountAdmin
from accounts.models import Account
from activities.models import Activity
from contacts.models import Contact, ContactAddress, ContactCustomerAssignment, ContactEmail, ContactPhone
from crm.access import access
from crm.forms import HIDDEN_LABEL
from crm.models import User
from customers.models import BusinessCustomer, CustomerEmail, CustomerPhone
from tests.contacts.factories import AssignmentFactory, ContactFactory
from tests.customers.factories import ActivityFactory, BusinessCustomerFactory
from tests.factories import AccountFactory, ChannelFactory

OWNERS = {"own": "east_rep", "colleague": "east_rep2", "manager": "east_manager", "north": "north_rep",
          "west": "west_rep"}
# What each staff user may view and edit (the seeded roles' meaning).
VIEWS = {"east_rep": {"own", "colleague", "manager"}, "east_manager": {"own", "colleague", "manager", "north"}}
EDITS = {"east_rep": {"own"}, "east_manager": {"own", "colleague", "manager", "north"}}
HIDDEN = {"east_rep": {"north", "west"}, "east_manager": {"west"}}
READ_ONLY = {"east_rep": {"colleague", "manager"}, "east_manager": set()}
STAFF = ("east_rep", "east_manager")

MODELS = {"account": Account, "customer": BusinessCustomer, "contact": Contact}
URLS = {"account": "accounts/account", "customer": "customers/businesscustomer", "contact": "contacts/contact"}


@dataclass
class World:
    org: object
    channel: object
    records: dict = field(default_factory=dict)  # {(kind, key): record}

    def user(self, name):
        return self.org.user(name)

    def unit(self, name):
        return self.org.unit(name)

    def get(self, kind, key):
        return self.records[(kind, key)]

    def name(self, kind, key):
        return str(self.get(kind, key))


@pytest.fixture
def world(org):
    for name in STAFF:
        user = org.user(name)
        user.is_staff = True
        user.save()
    channel = ChannelFactory(name="Direct Sales")
    w = World(org=org, channel=channel)
    for key, username in OWNERS.items():
        owner = org.user(username)
        label = key.capitalize()
        account = AccountFactory(name=f"{label} Account", owner=owner)
        w.records[("account", key)] = account
        w.records[("customer", key)] = BusinessCustomerFactory(name=f"{label} Customer", owner=owner,
                                                               account=account, channel=channel)
        w.records[("contact", key)] = ContactFactory(first_name=label, last_name="Person", owner=owner,
                                                     accounts=[account], emails=[f"{key}@example.com"])
    return w


def fresh(user):
    """The user as the next request sees him (no cached answers)."""
    return User.objects.get(pk=user.pk)


def names(queryset):
    return {str(obj) for obj in queryset}


def form_post(response, **changes):
    """The POST a browser sends for the rendered admin form and its inlines, with `changes`
    (html name: value; None drops the field)."""
    data = {}

    def add(form):
        for bf in form:
            if bf.field.disabled:
                continue
            value = bf.value()
            if value is None or value is False:
                continue
            if value is True:
                data[bf.html_name] = "on"
            elif isinstance(value, (list, tuple)):
                data[bf.html_name] = [str(v) for v in value]
            else:
                data[bf.html_name] = str(value)

    ctx = response.context
    add(ctx["adminform"].form)
    for inline in ctx.get("inline_admin_formsets") or []:
        formset = inline.formset
        for bf in formset.management_form:
            data[bf.html_name] = str(bf.value())
        for form in formset.forms:
            add(form)
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def share_rows(obj):
    """Guardian rows on `obj`, in its direct tables or guardian's generic ones."""
    from django.contrib.contenttypes.models import ContentType

    count = 0
    for model in (get_user_obj_perms_model(obj), get_group_obj_perms_model(obj)):
        if model.objects.is_generic():
            rows = model.objects.filter(content_type=ContentType.objects.get_for_model(obj), object_pk=str(obj.pk))
        else:
            rows = model.objects.filter(content_object=obj)
        count += rows.count()
    return count


# == 1. guardian's object-permission pages ====================================================

def share_paths(world, obj, grantee):
    base = f"/admin/{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/permissions/"
    group = world.unit("East").group
    return [base, f"{base}user-manage/{grantee.pk}/", f"{base}group-manage/{group.pk}/"]


def grant_everything(obj):
    model = obj._meta.model_name
    return {"permissions": [f"view_{model}", f"change_{model}", f"delete_{model}"], "user": "east_rep",
            "group": "Unit: East", "submit_manage_user": "1", "submit_manage_group": "1"}


CANNOT_SHARE = [(viewer, key, 404) for viewer in STAFF for key in sorted(HIDDEN[viewer])] + [
    ("east_rep", "colleague", 403), ("east_rep", "manager", 403)]


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("viewer, key, status", CANNOT_SHARE)
def test_guardian_pages_refuse_who_may_not_share(client_for, world, kind, viewer, key, status):
    user, obj = world.user(viewer), world.get(kind, key)
    client = client_for(user)
    for path in share_paths(world, obj, user):
        response = client.get(path)
        assert response.status_code == status, (path, response.status_code)
        assert str(obj) not in response.content.decode()
        response = client.post(path, grant_everything(obj))
        assert response.status_code == status, (path, response.status_code)
    assert share_rows(obj) == 0
    assert not access(fresh(user)).can("change", obj)


SHARERS = [("east_rep", "own"), ("east_manager", "own"), ("east_manager", "north"), ("east_manager", "manager")]


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("viewer, key", SHARERS)
def test_sharers_are_sent_to_the_apps_share_page(client_for, world, kind, viewer, key):
    user, obj = world.user(viewer), world.get(kind, key)
    client = client_for(user)
    share_url = obj.get_absolute_url() + "share/"
    for path in share_paths(world, obj, world.user("west_rep")):
        response = client.get(path)
        assert response.status_code == 302 and response.url == share_url, (path, response.status_code)
        response = client.post(path, grant_everything(obj))
        assert response.status_code == 302 and response.url == share_url, (path, response.status_code)
    assert share_rows(obj) == 0  # the admin wrote nothing; the share page decides
    assert client.get(share_url).status_code == 200


@pytest.mark.parametrize("kind", MODELS)
def test_a_record_shared_for_viewing_cannot_be_made_editable_through_the_admin(client_for, world, kind):
    rep, obj = world.user("east_rep"), world.get(kind, "west")
    assign_perm(f"view_{obj._meta.model_name}", rep, obj)
    client = client_for(rep)
    assert client.get(f"/admin/{URLS[kind]}/{obj.pk}/change/").status_code == 200  # he may view it
    for path in share_paths(world, obj, rep):
        assert client.post(path, grant_everything(obj)).status_code == 403
    assert client.post(obj.get_absolute_url() + "share/",
                       {"user": rep.pk, "level": "change"}).status_code == 403
    assert share_rows(obj) == 1
    assert not access(fresh(rep)).can("change", obj)


@pytest.mark.parametrize("viewer", STAFF)
@pytest.mark.parametrize("model", ["channels/channel", "contacts/contactgroup"])
def test_guardian_pages_of_organization_wide_records_are_refused(client_for, world, viewer, model):
    from tests.contacts.factories import ContactGroupFactory

    obj = world.channel if model == "channels/channel" else ContactGroupFactory(name="VIP")
    user = world.user(viewer)
    client = client_for(user)
    for path in share_paths(world, obj, user):
        assert client.get(path).status_code == 403
        assert client.post(path, grant_everything(obj)).status_code == 403
    assert share_rows(obj) == 0


@pytest.mark.parametrize("viewer", STAFF)
def test_guardian_pages_of_missing_records_are_404(client_for, world, viewer):
    client = client_for(world.user(viewer))
    for pk in ("999999", "abc"):
        assert client.get(f"/admin/accounts/account/{pk}/permissions/").status_code == 404
        assert client.get(f"/admin/accounts/account/{pk}/permissions/user-manage/1/").status_code == 404


def test_superusers_keep_guardians_pages(client_for, world, admin):
    obj = world.get("account", "west")
    client = client_for(admin)
    base = f"/admin/accounts/account/{obj.pk}/permissions/"
    assert client.get(base).status_code == 200
    rep = world.user("east_rep")
    assert client.get(f"{base}user-manage/{rep.pk}/").status_code == 200
    response = client.post(f"{base}user-manage/{rep.pk}/", {"permissions": ["view_account"]})
    assert response.status_code == 302
    assert access(fresh(rep)).can("view", obj)


# == 2. placement on the change and add forms ===================================================

def add_data(client, world, kind, name, owner, unit):
    """The add page's POST (with its inlines' management forms) for a record named `name`."""
    response = client.get(f"/admin/{URLS[kind]}/add/")
    changes = {"name": name, "owner": str(owner.pk), "business_unit": str(unit.pk)}
    if kind == "customer":
        changes.update(channel=str(world.channel.pk), account=str(world.get("account", "own").pk))
    if kind == "contact":
        changes = {"first_name": name, "last_name": "Added", "owner": str(owner.pk), "business_unit": str(unit.pk)}
    return form_post(response, **changes)


def created(kind, name):
    model = MODELS[kind]
    if kind == "contact":
        return model.objects.filter(first_name=name).first()
    return model.objects.filter(name=name).first()


CREATE_PLACES = {
    "east_rep": ({"east_rep"}, {"East"}),
    "east_manager": ({"east_manager", "east_rep", "east_rep2", "north_rep"}, {"East", "East-North"}),
}


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("viewer", STAFF)
def test_add_form_offers_exactly_the_create_placement(client_for, world, kind, viewer):
    user = world.user(viewer)
    response = client_for(user).get(f"/admin/{URLS[kind]}/add/")
    assert response.status_code == 200
    form = response.context["adminform"].form
    owners, units = CREATE_PLACES[viewer]
    assert {u.username for u in form.fields["owner"].queryset} == owners
    assert names(form.fields["business_unit"].queryset) == units
    acc = access(fresh(user))
    assert set(form.fields["owner"].queryset) == set(acc.placement_owners(MODELS[kind], "create"))
    assert set(form.fields["business_unit"].queryset) == set(acc.placement_units(MODELS[kind], "create"))
    html = response.content.decode()
    assert "west_rep" not in html and ">West<" not in html
    # A select he can choose from (not the users' autocomplete, which is for administrators).
    for username in owners:
        assert f"({username})</option>" in html


BAD_CREATES = [
    ("east_rep", "west_rep", "West"), ("east_rep", "east_rep2", "East"), ("east_rep", "east_rep", "West"),
    ("east_rep", "east_rep", "East-North"), ("east_manager", "west_rep", "West"),
    ("east_manager", "west_rep", "East"), ("east_manager", "east_rep", "West"),
]


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("viewer, owner, unit", BAD_CREATES)
def test_add_outside_the_placement_is_refused(client_for, world, kind, viewer, owner, unit):
    user = world.user(viewer)
    client = client_for(user)
    data = add_data(client, world, kind, "Placed", world.user(owner), world.unit(unit))
    response = client.post(f"/admin/{URLS[kind]}/add/", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert created(kind, "Placed") is None


GOOD_CREATES = [("east_rep", "east_rep", "East"), ("east_manager", "north_rep", "East-North"),
                ("east_manager", "east_rep", "East"), ("east_manager", "east_manager", "East-North")]


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("viewer, owner, unit", GOOD_CREATES)
def test_add_inside_the_placement_is_saved(client_for, world, kind, viewer, owner, unit):
    user = world.user(viewer)
    client = client_for(user)
    data = add_data(client, world, kind, "Placed", world.user(owner), world.unit(unit))
    response = client.post(f"/admin/{URLS[kind]}/add/", data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    record = created(kind, "Placed")
    assert (record.owner.username, record.business_unit.name) == (owner, unit)
    assert record.history.first().history_user == user


@pytest.mark.parametrize("kind", MODELS)
def test_change_form_without_assign_shows_owner_and_unit_read_only(client_for, world, kind):
    rep = world.user("east_rep")
    obj = world.get(kind, "own")
    client = client_for(rep)
    response = client.get(f"/admin/{URLS[kind]}/{obj.pk}/change/")
    form = response.context["adminform"].form
    assert "owner" not in form.fields and "business_unit" not in form.fields
    # A crafted POST naming another owner and unit changes neither.
    data = form_post(response, owner=str(world.user("west_rep").pk), business_unit=str(world.unit("West").pk))
    response = client.post(f"/admin/{URLS[kind]}/{obj.pk}/change/", data)
    assert response.status_code == 302
    obj.refresh_from_db()
    assert (obj.owner.username, obj.business_unit.name) == ("east_rep", "East")


@pytest.mark.parametrize("kind", MODELS)
def test_change_form_offers_exactly_the_assign_placement(client_for, world, kind):
    manager = world.user("east_manager")
    obj = world.get(kind, "north")
    response = client_for(manager).get(f"/admin/{URLS[kind]}/{obj.pk}/change/")
    form = response.context["adminform"].form
    acc = access(fresh(manager))
    assert set(form.fields["owner"].queryset) == set(acc.placement_owners(MODELS[kind], "assign"))
    assert set(form.fields["business_unit"].queryset) == set(acc.placement_units(MODELS[kind], "assign"))
    assert {u.username for u in form.fields["owner"].queryset} == CREATE_PLACES["east_manager"][0]
    assert ">West<" not in response.content.decode()


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("owner, unit", [("west_rep", "West"), ("west_rep", "East"), ("north_rep", "West")])
def test_assign_outside_the_placement_is_refused(client_for, world, kind, owner, unit):
    manager = world.user("east_manager")
    obj = world.get(kind, "north")
    client = client_for(manager)
    response = client.get(f"/admin/{URLS[kind]}/{obj.pk}/change/")
    data = form_post(response, owner=str(world.user(owner).pk), business_unit=str(world.unit(unit).pk))
    response = client.post(f"/admin/{URLS[kind]}/{obj.pk}/change/", data)
    assert response.status_code == 200 and response.context["adminform"].form.errors
    obj.refresh_from_db()
    assert (obj.owner.username, obj.business_unit.name) == ("north_rep", "East-North")


@pytest.mark.parametrize("kind", MODELS)
def test_assign_inside_the_placement_is_saved(client_for, world, kind):
    manager = world.user("east_manager")
    obj = world.get(kind, "north")
    client = client_for(manager)
    response = client.get(f"/admin/{URLS[kind]}/{obj.pk}/change/")
    data = form_post(response, owner=str(world.user("east_rep").pk), business_unit=str(world.unit("East").pk))
    response = client.post(f"/admin/{URLS[kind]}/{obj.pk}/change/", data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    obj.refresh_from_db()
    assert (obj.owner.username, obj.business_unit.name) == ("east_rep", "East")


def test_placement_uses_the_shared_check(client_for, world, monkeypatch):
    """The admin asks crm.access's placement_error (the forms' and the import's check), so a
    rule added there applies here too."""
    from django.core.exceptions import ValidationError

    from crm.access import Access

    calls = []

    def refuse(self, instance, before=None):
        calls.append((instance, before))
        return ValidationError({"owner": "Refused by the shared rule."})

    monkeypatch.setattr(Access, "placement_error", refuse)
    rep = world.user("east_rep")
    data = add_data(client_for(rep), world, "account", "Placed", rep, world.unit("East"))
    response = client_for(rep).post("/admin/accounts/account/add/", data)
    assert response.status_code == 200 and "Refused by the shared rule." in response.content.decode()
    assert calls and calls[0][1] is None
    assert created("account", "Placed") is None


# == 3. history ===============================================================================

def move(obj, owner, unit):
    obj.owner, obj.business_unit = owner, unit
    obj.save()


def versions(obj):
    return list(obj.history.order_by("history_date"))


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("viewer, key", [("east_rep", "own"), ("east_manager", "north")])
def test_history_of_a_record_moved_away_is_closed(client_for, world, kind, viewer, key):
    user, obj = world.user(viewer), world.get(kind, key)
    move(obj, world.user("west_rep"), world.unit("West"))
    old = versions(obj)[0]
    assert old.owner_id != obj.owner_id
    client = client_for(user)
    base = f"/admin/{URLS[kind]}/{obj.pk}/history/"
    for path in (base, f"{base}{old.history_id}/"):
        response = client.get(path)
        assert response.status_code in (403, 404), (path, response.status_code)
        assert str(obj) not in response.content.decode()
    response = client.post(f"{base}{old.history_id}/", {"name": "Reverted", "first_name": "Reverted",
                                                        "owner": user.pk, "business_unit": user.primary_unit_id})
    assert response.status_code in (403, 404)
    obj.refresh_from_db()
    assert obj.owner.username == "west_rep" and obj.history.count() == 2


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("viewer, key", [("east_rep", "own"), ("east_manager", "north")])
def test_history_of_a_record_moved_without_a_history_row_is_closed(client_for, world, kind, viewer, key):
    """The check runs against the record as it is, not against its last history row (a
    bulk write may have moved it without one)."""
    user, obj = world.user(viewer), world.get(kind, key)
    MODELS[kind].objects.filter(pk=obj.pk).update(owner=world.user("west_rep"), business_unit=world.unit("West"))
    old = versions(obj)[-1]
    client = client_for(user)
    base = f"/admin/{URLS[kind]}/{obj.pk}/history/"
    for path in (base, f"{base}{old.history_id}/"):
        response = client.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert str(obj) not in response.content.decode()
    assert client.post(f"{base}{old.history_id}/", {"name": "Reverted"}).status_code == 404
    obj.refresh_from_db()
    assert obj.owner.username == "west_rep"


@pytest.mark.parametrize("kind", MODELS)
def test_revert_that_would_reassign_is_refused_without_assign(client_for, world, kind):
    """He may edit his record now; the old version was his colleague's. Reverting it would
    give it back to the colleague: an Assign he does not hold."""
    rep = world.user("east_rep")
    obj = world.get(kind, "colleague")
    move(obj, rep, world.unit("East"))
    old = versions(obj)[0]
    client = client_for(rep)
    path = f"/admin/{URLS[kind]}/{obj.pk}/history/{old.history_id}/"
    response = client.get(path)
    assert response.status_code == 200
    response = client.post(path, form_post(response))
    assert response.status_code == 200
    assert "You may not change the owner or unit" in response.content.decode()
    obj.refresh_from_db()
    assert obj.owner.username == "east_rep" and obj.history.count() == 2


@pytest.mark.parametrize("kind", MODELS)
def test_manager_reverts_within_his_division_but_not_out_of_it(client_for, world, kind):
    manager = world.user("east_manager")
    client = client_for(manager)
    # Came from West: reverting would send it back there, where he may not place records.
    obj = world.get(kind, "west")
    move(obj, world.user("north_rep"), world.unit("East-North"))
    old = versions(obj)[0]
    path = f"/admin/{URLS[kind]}/{obj.pk}/history/{old.history_id}/"
    response = client.get(path)
    assert response.status_code == 200
    response = client.post(path, form_post(response))
    assert response.status_code == 200 and response.context["adminform"].form.errors
    obj.refresh_from_db()
    assert obj.owner.username == "north_rep"
    # Came from East-North to East: reverting is an Assign within his division.
    obj = world.get(kind, "north")
    move(obj, world.user("east_rep"), world.unit("East"))
    old = versions(obj)[0]
    path = f"/admin/{URLS[kind]}/{obj.pk}/history/{old.history_id}/"
    response = client.post(path, form_post(client.get(path)))
    assert response.status_code == 302
    obj.refresh_from_db()
    assert (obj.owner.username, obj.business_unit.name) == ("north_rep", "East-North")


@pytest.mark.parametrize("kind", MODELS)
def test_old_versions_of_a_read_only_record_can_be_seen_not_reverted(client_for, world, kind):
    rep = world.user("east_rep")
    obj = world.get(kind, "colleague")
    if kind == "contact":
        obj.job_title = "Changed"
    else:
        obj.description = "Changed"
    obj.save()
    old = versions(obj)[0]
    client = client_for(rep)
    assert client.get(f"/admin/{URLS[kind]}/{obj.pk}/history/").status_code == 200
    path = f"/admin/{URLS[kind]}/{obj.pk}/history/{old.history_id}/"
    response = client.get(path)
    assert response.status_code == 200
    data = form_post(response)
    assert client.post(path, data).status_code == 403
    obj.refresh_from_db()
    assert obj.history.count() == 2


def test_history_pages_do_not_name_hidden_linked_records(client_for, world):
    rep = world.user("east_rep")
    account = world.get("account", "own")
    account.referred_by = world.get("account", "west")
    account.default_contact = world.get("contact", "west")
    account.save()
    account.referred_by = world.get("account", "colleague")
    account.save()
    client = client_for(rep)
    response = client.get(f"/admin/accounts/account/{account.pk}/history/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "West Account" not in html and "West Person" not in html
    assert "Colleague Account" in html
    middle = versions(account)[1]
    html = client.get(f"/admin/accounts/account/{account.pk}/history/{middle.history_id}/").content.decode()
    assert "West Account" not in html and "West Person" not in html and HIDDEN_LABEL in html


# == 4. record choices and the admin's autocomplete ============================================

def visible_names(world, viewer, kind):
    return {world.name(kind, key) for key in VIEWS[viewer]}


@pytest.mark.parametrize("viewer", STAFF)
@pytest.mark.parametrize("page", ["add", "change"])
def test_account_form_offers_only_visible_records(client_for, world, viewer, page):
    user = world.user(viewer)
    path = "/admin/accounts/account/add/" if page == "add" else \
        f"/admin/accounts/account/{world.get('account', 'own').pk}/change/"
    response = client_for(user).get(path)
    form = response.context["adminform"].form
    assert names(form.fields["referred_by"].queryset) == visible_names(world, viewer, "account")
    assert names(form.fields["default_contact"].queryset) == visible_names(world, viewer, "contact")
    html = response.content.decode()
    assert "West Account" not in html and "West Person" not in html


@pytest.mark.parametrize("viewer", STAFF)
@pytest.mark.parametrize("page", ["add", "change"])
def test_customer_form_offers_only_visible_records(client_for, world, viewer, page):
    user = world.user(viewer)
    path = "/admin/customers/businesscustomer/add/" if page == "add" else \
        f"/admin/customers/businesscustomer/{world.get('customer', 'own').pk}/change/"
    response = client_for(user).get(path)
    form = response.context["adminform"].form
    assert names(form.fields["account"].queryset) == visible_names(world, viewer, "account")
    assert names(form.fields["primary_contact"].queryset) == visible_names(world, viewer, "contact")
    html = response.content.decode()
    assert "West Account" not in html and "West Person" not in html


@pytest.mark.parametrize("viewer", STAFF)
@pytest.mark.parametrize("page", ["add", "change"])
def test_contact_form_offers_only_visible_records(client_for, world, viewer, page):
    user = world.user(viewer)
    path = "/admin/contacts/contact/add/" if page == "add" else \
        f"/admin/contacts/contact/{world.get('contact', 'own').pk}/change/"
    response = client_for(user).get(path)
    form = response.context["adminform"].form
    assert names(form.fields["reports_to"].queryset) == visible_names(world, viewer, "contact")
    assert names(form.fields["accounts"].queryset) == visible_names(world, viewer, "account")
    inline = next(i for i in response.context["inline_admin_formsets"]
                  if i.formset.model is ContactCustomerAssignment)
    assert names(inline.formset.empty_form.fields["customer"].queryset) == visible_names(world, viewer, "customer")
    html = response.content.decode()
    assert "West Account" not in html and "West Person" not in html and "West Customer" not in html


@pytest.mark.parametrize("viewer", STAFF)
def test_contact_assigned_to_offers_only_colleagues(client_for, world, viewer):
    """As on the app's form: himself and members of units whose contacts he may view."""
    contact = world.get("contact", "own")
    response = client_for(world.user(viewer)).get(f"/admin/contacts/contact/{contact.pk}/change/")
    users = {u.username for u in response.context["adminform"].form.fields["assigned_to"].queryset}
    assert users == FILTER_CHOICES[viewer][0]
    assert "west_rep" not in response.content.decode()


@pytest.mark.parametrize("viewer", STAFF)
@pytest.mark.parametrize("page", ["add", "change"])
def test_assignment_admin_offers_only_visible_records(client_for, world, viewer, page):
    user = world.user(viewer)
    assignment = AssignmentFactory(contact=world.get("contact", "own"), customer=world.get("customer", "own"))
    path = "/admin/contacts/contactcustomerassignment/add/" if page == "add" else \
        f"/admin/contacts/contactcustomerassignment/{assignment.pk}/change/"
    response = client_for(user).get(path)
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert names(form.fields["customer"].queryset) == visible_names(world, viewer, "customer")
    # The contact is the one whose assignments change: only contacts he may edit.
    assert names(form.fields["contact"].queryset) == {world.name("contact", key) for key in EDITS[viewer]}


def test_assignment_admin_refuses_a_contact_he_may_only_view(client_for, world):
    rep = world.user("east_rep")
    response = client_for(rep).post("/admin/contacts/contactcustomerassignment/add/", {
        "contact": world.get("contact", "colleague").pk, "customer": world.get("customer", "own").pk,
        "type": "billing"})
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert not ContactCustomerAssignment.objects.exists()
    response = client_for(rep).post("/admin/contacts/contactcustomerassignment/add/", {
        "contact": world.get("contact", "own").pk, "customer": world.get("customer", "west").pk,
        "type": "billing"})
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert not ContactCustomerAssignment.objects.exists()


def test_a_hidden_current_link_stays_without_its_name(client_for, world):
    rep = world.user("east_rep")
    account = world.get("account", "own")
    account.referred_by = world.get("account", "west")
    account.default_contact = world.get("contact", "west")
    account.save()
    client = client_for(rep)
    response = client.get(f"/admin/accounts/account/{account.pk}/change/")
    html = response.content.decode()
    assert "West Account" not in html and "West Person" not in html and HIDDEN_LABEL in html
    response = client.post(f"/admin/accounts/account/{account.pk}/change/",
                           form_post(response, description="Still referred"))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.referred_by == world.get("account", "west") and account.description == "Still referred"
    # ...and a hidden record cannot be newly chosen.
    response = client.get(f"/admin/accounts/account/{account.pk}/change/")
    data = form_post(response, default_contact=str(world.get("contact", "north").pk))
    response = client.post(f"/admin/accounts/account/{account.pk}/change/", data)
    assert response.status_code == 200 and "default_contact" in response.context["adminform"].form.errors
    account.refresh_from_db()
    assert account.default_contact == world.get("contact", "west")


AUTOCOMPLETES = [
    ("contacts", "contact", "accounts", "account"), ("contacts", "contact", "reports_to", "contact"),
    ("customers", "businesscustomer", "account", "account"),
    ("customers", "businesscustomer", "primary_contact", "contact"),
    ("accounts", "account", "referred_by", "account"), ("accounts", "account", "default_contact", "contact"),
    ("contacts", "contactcustomerassignment", "customer", "customer"),
    ("contacts", "contactcustomerassignment", "contact", "contact"),
]


@pytest.mark.parametrize("viewer", STAFF)
@pytest.mark.parametrize("app_label, model_name, field_name, kind", AUTOCOMPLETES)
def test_admin_autocomplete_returns_only_visible_records(client_for, world, viewer, app_label, model_name,
                                                         field_name, kind):
    client = client_for(world.user(viewer))
    params = {"app_label": app_label, "model_name": model_name, "field_name": field_name}
    response = client.get("/admin/autocomplete/", params)
    assert response.status_code == 200
    assert {r["text"] for r in response.json()["results"]} == visible_names(world, viewer, kind)
    response = client.get("/admin/autocomplete/", {**params, "term": "West"})
    assert response.json()["results"] == []


@pytest.mark.parametrize("viewer", STAFF)
@pytest.mark.parametrize("field_name", ["owner", "assigned_to"])
def test_admin_autocomplete_of_users_lists_nobody_to_staff(client_for, world, viewer, field_name):
    response = client_for(world.user(viewer)).get("/admin/autocomplete/", {
        "app_label": "contacts", "model_name": "contact", "field_name": field_name})
    assert response.status_code == 403
    assert "west_rep" not in response.content.decode()


# == 5. list filters ==============================================================================

FILTER_CHOICES = {
    "east_rep": ({"east_manager", "east_rep", "east_rep2"}, {"East"}),
    "east_manager": ({"east_manager", "east_rep", "east_rep2", "north_rep"}, {"East", "East-North"}),
}


def filter_choices(response, field_name, missing=None):
    for spec in response.context["cl"].filter_specs:
        if getattr(spec, "field_path", None) == field_name:
            return {label for _, label in spec.lookup_choices}
    if missing is not None:
        return missing
    raise AssertionError(f"no {field_name} filter")


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("viewer", STAFF)
def test_owner_and_unit_filters_list_only_what_he_may_view(client_for, world, kind, viewer):
    response = client_for(world.user(viewer)).get(f"/admin/{URLS[kind]}/")
    assert response.status_code == 200
    owners, units = FILTER_CHOICES[viewer]
    assert {label.split(" (")[-1].rstrip(")") for label in filter_choices(response, "owner")} == owners
    # A filter with a single choice is not shown at all.
    assert filter_choices(response, "business_unit", missing=set()) == (units if len(units) > 1 else set())
    html = response.content.decode()
    assert "west_rep" not in html and ">West<" not in html
    for key in HIDDEN[viewer]:
        assert world.name(kind, key) not in html
    if viewer == "east_rep":
        assert "north_rep" not in html and "East-North" not in html


def test_other_relation_filters_list_only_visible_records(world):
    class Probe(AccountAdmin):
        list_filter = ("referred_by", "default_contact", "owner", "business_unit")

    probe = Probe(Account, django_admin.site)
    for viewer in STAFF:
        request = RequestFactory().get("/admin/accounts/account/")
        request.user = fresh(world.user(viewer))
        changelist = probe.get_changelist_instance(request)
        choices = {spec.field_path: {label for _, label in spec.lookup_choices} for spec in changelist.filter_specs}
        assert choices["referred_by"] == visible_names(world, viewer, "account")
        assert choices["default_contact"] == visible_names(world, viewer, "contact")


def test_customer_channel_filter_lists_channels(client_for, world):
    ChannelFactory(name="Web Shop")
    response = client_for(world.user("east_rep")).get("/admin/customers/businesscustomer/")
    assert "Direct Sales" in filter_choices(response, "channel")


# == 6. hidden records: no byte of them, no write ================================================

HIDDEN_CASES = [(viewer, key) for viewer in STAFF for key in sorted(HIDDEN[viewer])]


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("viewer, key", HIDDEN_CASES)
def test_hidden_record_pages_show_nothing_and_write_nothing(client_for, world, kind, viewer, key):
    user, obj = world.user(viewer), world.get(kind, key)
    name = str(obj)
    client = client_for(user)
    base = f"/admin/{URLS[kind]}/"
    pages = [base, f"{base}?q={name.split()[0]}", f"{base}?owner__id__exact={obj.owner_id}",
             f"{base}?business_unit__id__exact={obj.business_unit_id}", f"{base}{obj.pk}/change/",
             f"{base}{obj.pk}/delete/", f"{base}{obj.pk}/history/", f"{base}{obj.pk}/permissions/"]
    for path in pages:
        response = client.get(path, follow=True)
        assert name not in response.content.decode(), path
    for path in (f"{base}{obj.pk}/change/", f"{base}{obj.pk}/delete/"):
        response = client.post(path, {"name": "Hijacked", "first_name": "Hijacked", "post": "yes",
                                      "owner": user.pk, "business_unit": user.primary_unit_id})
        assert response.status_code in (302, 403, 404)
    response = client.post(base, {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"})
    assert response.status_code in (200, 302, 403)
    assert MODELS[kind].objects.filter(pk=obj.pk).exists()
    obj.refresh_from_db()
    assert str(obj) == name and obj.owner.username == OWNERS[key]


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("viewer", STAFF)
def test_delete_action_deletes_only_what_he_may_delete(client_for, world, kind, viewer):
    client = client_for(world.user(viewer))
    model = MODELS[kind]
    own = world.get(kind, "own")
    hidden = world.get(kind, "west")
    # Confirmation page: lists the deletable one, not the hidden one.
    response = client.post(f"/admin/{URLS[kind]}/", {"action": "delete_selected",
                                                     "_selected_action": [own.pk, hidden.pk]})
    html = response.content.decode()
    assert "West " not in html
    if kind == "account":  # its customer protects it
        world.get("customer", "own").delete()
    client.post(f"/admin/{URLS[kind]}/", {"action": "delete_selected", "_selected_action": [own.pk, hidden.pk],
                                          "post": "yes"})
    assert model.objects.filter(pk=hidden.pk).exists()
    assert not model.objects.filter(pk=own.pk).exists()


@pytest.mark.parametrize("kind", MODELS)
def test_delete_action_on_a_read_only_record_is_refused(client_for, world, kind):
    client = client_for(world.user("east_rep"))
    colleague, own = world.get(kind, "colleague"), world.get(kind, "own")
    response = client.post(f"/admin/{URLS[kind]}/", {"action": "delete_selected",
                                                     "_selected_action": [colleague.pk, own.pk], "post": "yes"})
    assert response.status_code in (200, 403)
    assert MODELS[kind].objects.filter(pk__in=[colleague.pk, own.pk]).count() == 2
    response = client.post(f"/admin/{URLS[kind]}/{colleague.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert MODELS[kind].objects.filter(pk=colleague.pk).exists()


def test_delete_page_does_not_name_hidden_related_records(client_for, world):
    rep = world.user("east_rep")
    account = world.get("account", "own")
    # A customer of another unit under his account protects it; a contact of another unit is linked.
    BusinessCustomerFactory(name="Secret West Branch", owner=world.user("west_rep"), account=account,
                            channel=world.channel)
    contact = world.get("contact", "own")
    AssignmentFactory(contact=contact, customer=world.get("customer", "west"))
    client = client_for(rep)
    html = client.get(f"/admin/accounts/account/{account.pk}/delete/").content.decode()
    assert "Secret West Branch" not in html
    html = client.get(f"/admin/contacts/contact/{contact.pk}/delete/").content.decode()
    assert "West Customer" not in html
    html = client.post("/admin/contacts/contact/", {"action": "delete_selected",
                                                    "_selected_action": [contact.pk]}).content.decode()
    assert "West Customer" not in html


def test_delete_page_masks_records_he_may_delete_but_not_view(client_for, world):
    """Roles are data: a role may delete more than it views. The delete page still names
    only what he may view."""
    from crm.models import Level, Role, RolePermission
    from tests.factories import UserFactory

    role = Role.objects.create(name="Cleaner")
    for entity, action, level in (("accounts.account", "view", Level.USER), ("accounts.account", "delete", Level.USER),
                                  ("customers.businesscustomer", "view", Level.USER),
                                  ("customers.businesscustomer", "delete", Level.ORGANIZATION)):
        RolePermission.objects.create(role=role, entity=entity, action=action, level=level)
    cleaner = UserFactory(username="cleaner", units=[world.unit("East")], is_staff=True)
    cleaner.roles.add(role)
    account = AccountFactory(name="Cleaner Account", owner=cleaner)
    BusinessCustomerFactory(name="Secret West Branch", owner=world.user("west_rep"), account=account,
                            channel=world.channel)
    client = client_for(fresh(cleaner))
    response = client.get(f"/admin/accounts/account/{account.pk}/delete/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Secret West Branch" not in html and HIDDEN_LABEL in html
    html = client.post("/admin/accounts/account/", {"action": "delete_selected",
                                                    "_selected_action": [account.pk]}).content.decode()
    assert "Secret West Branch" not in html and HIDDEN_LABEL in html


def admin_export_rows(client, path, **extra):
    response = client.get(f"{path}export/")
    assert response.status_code == 200
    fields = {name: "on" for name in response.context["form"].fields if "resource_" in name}
    response = client.post(f"{path}export/", {"format": "0", "resource": "0", **fields, **extra})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return response.content.decode("utf-8-sig")


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("viewer", STAFF)
def test_admin_export_has_no_byte_of_hidden_records(client_for, world, kind, viewer):
    client = client_for(world.user(viewer))
    path = f"/admin/{URLS[kind]}/"
    hidden = [world.get(kind, key) for key in HIDDEN[viewer]]
    for extra in ({}, {"export_items": [obj.pk for obj in hidden] + [world.get(kind, "own").pk]}):
        text = admin_export_rows(client, path, **extra)
        assert "West" not in text and "west" not in text
        for key in HIDDEN[viewer]:
            assert key.capitalize() not in text and f"{key}@example.com" not in text
        assert "Own" in text


IMPORTS = {
    "account": ("accounts/account", "ID,Name\n{pk},Hijacked\n"),
    "customer": ("customers/businesscustomer", "ID,Name\n{pk},Hijacked\n"),
    "contact": ("contacts/contact", "ID,First Name\n{pk},Hijacked\n"),
}


def admin_upload(client, path, text):
    return client.post(f"/admin/{path}/import/", {
        "resource": "0", "format": "0", "import_file": SimpleUploadedFile("a.csv", text.encode(), "text/csv")})


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("viewer, key", HIDDEN_CASES + [("east_rep", "colleague")])
def test_admin_import_does_not_touch_hidden_or_read_only_records(client_for, world, kind, viewer, key):
    obj = world.get(kind, key)
    path, template = IMPORTS[kind]
    response = admin_upload(client_for(world.user(viewer)), path, template.format(pk=obj.pk))
    assert response.status_code == 200
    assert response.context["result"].has_validation_errors()
    assert not response.context.get("confirm_form")
    html = response.content.decode()
    assert str(obj) not in html
    obj.refresh_from_db()
    assert str(obj) != "Hijacked" and "Hijacked" not in str(obj)


@pytest.mark.parametrize("viewer", STAFF)
def test_admin_import_confirmed_after_the_record_moved_away_writes_nothing(client_for, world, viewer):
    user = world.user(viewer)
    client = client_for(user)
    own = world.get("account", "own")
    response = admin_upload(client, "accounts/account", f"ID,Name\n{own.pk},Renamed\n,Brand New\n")
    confirm = response.context["confirm_form"].initial
    move(own, world.user("west_rep"), world.unit("West"))  # meanwhile
    response = client.post("/admin/accounts/account/process_import/", confirm, follow=True)
    assert response.status_code == 200
    own.refresh_from_db()
    assert own.name == "Own Account"
    assert not Account.objects.filter(name="Brand New").exists()  # one transaction: all or nothing
    assert "Own Account" not in response.content.decode()


@pytest.mark.parametrize("viewer", STAFF)
def test_admin_confirm_of_a_file_he_did_not_upload_is_refused(client_for, world, viewer, admin):
    own = world.get("account", "own")
    response = admin_upload(client_for(admin), "accounts/account", f"ID,Name\n{own.pk},By the admin\n")
    confirm = response.context["confirm_form"].initial  # the administrator's pending upload
    response = client_for(world.user(viewer)).post("/admin/accounts/account/process_import/", confirm)
    assert response.status_code in (403, 404)
    own.refresh_from_db()
    assert own.name == "Own Account"
    # The administrator's file is still there for him to confirm.
    client_for(admin).post("/admin/accounts/account/process_import/", confirm)
    own.refresh_from_db()
    assert own.name == "By the admin"


def test_admin_import_of_his_own_records_still_works(client_for, world):
    rep = world.user("east_rep")
    client = client_for(rep)
    own = world.get("account", "own")
    response = admin_upload(client, "accounts/account", f"ID,Name\n{own.pk},Renamed\n,Brand New\n")
    assert not response.context["result"].has_validation_errors()
    client.post("/admin/accounts/account/process_import/", response.context["confirm_form"].initial)
    own.refresh_from_db()
    assert own.name == "Renamed"
    new = Account.objects.get(name="Brand New")
    assert (new.owner, new.business_unit.name) == (rep, "East")


@pytest.mark.parametrize("viewer", STAFF)
def test_hidden_activities_and_assignments_stay_hidden(client_for, world, viewer):
    client = client_for(world.user(viewer))
    note = ActivityFactory(target=world.get("customer", "west"), subject="West secret note")
    assignment = AssignmentFactory(contact=world.get("contact", "west"), customer=world.get("customer", "west"))
    for path, obj in (("activities/activity", note), ("contacts/contactcustomerassignment", assignment)):
        for page in ("", f"{obj.pk}/change/", f"{obj.pk}/delete/", f"{obj.pk}/history/"):
            html = client.get(f"/admin/{path}/{page}", follow=True).content.decode()
            assert "West" not in html, (path, page)
        client.post(f"/admin/{path}/{obj.pk}/delete/", {"post": "yes"})
        client.post(f"/admin/{path}/", {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"})
    assert Activity.objects.filter(pk=note.pk).exists()
    assert ContactCustomerAssignment.objects.filter(pk=assignment.pk).exists()


# == 8. inlines: editable only by who may edit the record =========================================

INLINES = {
    "customer": [(CustomerEmail, "email", "new@example.com"), (CustomerPhone, "phone", "+1 555 0199")],
    "contact": [(ContactEmail, "email", "new@example.com"), (ContactPhone, "phone", "+1 555 0199"),
                (ContactAddress, "city", "Springfield")],
}


def inline_prefix(response, model):
    for inline in response.context["inline_admin_formsets"]:
        if inline.formset.model is model:
            return inline
    raise AssertionError(f"no inline for {model.__name__}")


def with_new_row(response, model, field_name, value):
    inline = inline_prefix(response, model)
    prefix = inline.formset.prefix
    data = form_post(response)
    total = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(total + 1)
    data[f"{prefix}-{total}-{field_name}"] = value
    if model in (CustomerEmail, CustomerPhone):
        data[f"{prefix}-{total}-kind"] = "work"
    if model is ContactAddress:
        data[f"{prefix}-{total}-type"] = "other"
    return data


@pytest.mark.parametrize("kind", ["customer", "contact"])
@pytest.mark.parametrize("viewer, key", [("east_rep", "own"), ("east_manager", "north"),
                                         ("east_manager", "colleague")])
def test_inlines_are_editable_by_who_may_edit_the_record(client_for, world, kind, viewer, key):
    client = client_for(world.user(viewer))
    obj = world.get(kind, key)
    path = f"/admin/{URLS[kind]}/{obj.pk}/change/"
    for model, field_name, value in INLINES[kind]:
        response = client.get(path)
        inline = inline_prefix(response, model)
        assert inline.has_add_permission and inline.has_change_permission and inline.has_delete_permission
        response = client.post(path, with_new_row(response, model, field_name, value))
        assert response.status_code == 302, response.context and [
            (i.formset.model.__name__, i.formset.errors, i.formset.non_form_errors())
            for i in response.context["inline_admin_formsets"]]
        parent = {"customer": obj} if kind == "customer" else {"contact": obj}
        assert model.objects.filter(**parent, **{field_name: value}).exists()


@pytest.mark.parametrize("kind", ["customer", "contact"])
@pytest.mark.parametrize("key", ["colleague", "manager"])
def test_inlines_of_a_read_only_record_cannot_be_changed(client_for, world, kind, key):
    client = client_for(world.user("east_rep"))
    obj = world.get(kind, key)
    path = f"/admin/{URLS[kind]}/{obj.pk}/change/"
    response = client.get(path)
    assert response.status_code == 200
    for model, field_name, value in INLINES[kind]:
        inline = inline_prefix(response, model)
        assert not (inline.has_add_permission or inline.has_change_permission or inline.has_delete_permission)
    html = response.content.decode()
    assert f"{key}@example.com" in html or kind == "customer"  # he sees the parts with the record
    model, field_name, value = INLINES[kind][0]
    data = form_post(response)
    prefix = inline_prefix(response, model).formset.prefix
    data.update({f"{prefix}-TOTAL_FORMS": "1", f"{prefix}-INITIAL_FORMS": "0", f"{prefix}-0-{field_name}": value,
                 f"{prefix}-0-kind": "work"})
    assert client.post(path, data).status_code == 403
    assert not model.objects.filter(**{field_name: value}).exists()


def test_assignment_inline_hides_assignments_to_hidden_customers(client_for, world):
    rep = world.user("east_rep")
    contact = world.get("contact", "own")
    AssignmentFactory(contact=contact, customer=world.get("customer", "west"))
    AssignmentFactory(contact=contact, customer=world.get("customer", "own"))
    client = client_for(rep)
    response = client.get(f"/admin/contacts/contact/{contact.pk}/change/")
    html = response.content.decode()
    assert "West Customer" not in html
    # Saving the contact keeps the assignment he cannot see.
    response = client.post(f"/admin/contacts/contact/{contact.pk}/change/", form_post(response, job_title="CFO"))
    assert response.status_code == 302
    assert ContactCustomerAssignment.objects.filter(contact=contact).count() == 2


def test_assignment_inline_adds_only_visible_customers(client_for, world):
    rep = world.user("east_rep")
    contact = world.get("contact", "own")
    client = client_for(rep)
    path = f"/admin/contacts/contact/{contact.pk}/change/"
    for customer, ok in ((world.get("customer", "west"), False), (world.get("customer", "colleague"), True)):
        response = client.get(path)
        data = with_new_row(response, ContactCustomerAssignment, "customer", str(customer.pk))
        prefix = inline_prefix(response, ContactCustomerAssignment).formset.prefix
        total = int(data[f"{prefix}-TOTAL_FORMS"]) - 1
        data[f"{prefix}-{total}-type"] = "billing"
        response = client.post(path, data)
        assert (response.status_code == 302) == ok
        assert ContactCustomerAssignment.objects.filter(contact=contact, customer=customer).exists() == ok


def test_csv_export_still_quotes_formulas_for_staff(client_for, world):
    rep = world.user("east_rep")
    AccountFactory(name="=cmd()", owner=rep)
    text = admin_export_rows(client_for(rep), "/admin/accounts/account/")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert "'=cmd()" in {row["Name"] for row in rows}
