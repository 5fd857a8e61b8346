"""Nothing leaks (issue 10): refusals, the admin's delete, shortcut and export pages, and
forms saved unchanged never name, count or drop a record the user cannot see.

East's Manager (east_manager, staff) sees East and East-North; West's records are hidden
from him. Each hidden record's name holds a token, so "not named" is "token absent"."""
import re

import pytest
from django.contrib.contenttypes.models import ContentType

from accounts.models import Account
from crm import services
from crm.ids import MAX_ID
from crm.views import ENTITIES
from customers.models import BusinessCustomer
from tests.contacts.factories import ContactFactory
from tests.customers.factories import BusinessCustomerFactory
from tests.factories import AccountFactory, ChannelFactory
from tests.toolkit import token

OVERFLOW = "99999999999999999999"
EXPORT_FORM = {"format": "0", "resource": "0"}


def entity(model):
    return next(e for e in ENTITIES if e.model is model)


@pytest.fixture
def staff(org):
    for name in ("east_manager", "east_rep"):
        user = org.user(name)
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return org.user("east_manager")


@pytest.fixture
def channel(db):
    return ChannelFactory(name="Direct Sales")


# -- 1. a refused delete names only what the user may view --------------------------------------


def test_refused_delete_names_only_visible_references(org, staff, channel):
    secret = token()
    account = AccountFactory(name="Shared Account", owner=staff)
    BusinessCustomerFactory(name="Visible Branch", owner=org.user("east_rep"), account=account, channel=channel)
    BusinessCustomerFactory(name=f"{secret} Branch", owner=org.user("west_rep"), account=account, channel=channel)
    BusinessCustomerFactory(name=f"{secret} Depot", owner=org.user("west_rep"), account=account, channel=channel)

    count, refusal = services.delete_records(Account.objects.filter(pk=account.pk), staff, entity(Account))

    assert count == 0 and Account.objects.filter(pk=account.pk).exists()
    assert secret not in refusal
    assert "1 business customer (Visible Branch)" in refusal
    assert "other records you cannot see" in refusal
    assert not re.search(r"\b[23]\b", refusal)  # the hidden ones are not counted either


def test_refused_delete_with_only_hidden_references_says_so_without_a_count(org, staff, channel):
    secret = token()
    account = AccountFactory(name="Shared Account", owner=staff)
    BusinessCustomerFactory(name=f"{secret} Branch", owner=org.user("west_rep"), account=account, channel=channel)

    _, refusal = services.delete_records(Account.objects.filter(pk=account.pk), staff, entity(Account))

    assert refusal == "Cannot delete: still referenced by other records you cannot see."


def test_refused_delete_page_message_does_not_name_hidden_records(org, staff, channel, client_for):
    secret = token()
    account = AccountFactory(name="Shared Account", owner=staff)
    BusinessCustomerFactory(name=f"{secret} Branch", owner=org.user("west_rep"), account=account, channel=channel)

    response = client_for(staff).post(f"/accounts/{account.pk}/delete/", {"confirm": "1"}, follow=True)

    html = response.content.decode()
    assert "other records you cannot see" in html and secret not in html


def test_admin_delete_page_neither_names_nor_counts_hidden_records(org, staff, channel, client_for):
    secret = token()
    account = AccountFactory(name="Shared Account", owner=staff)
    for n in range(3):
        BusinessCustomerFactory(name=f"{secret} Branch {n}", owner=org.user("west_rep"), account=account,
                                channel=channel)

    html = client_for(staff).get(f"/admin/accounts/account/{account.pk}/delete/").content.decode()

    assert secret not in html and "Business customers: 3" not in html


def test_admin_delete_lines_show_one_line_per_hidden_model_and_lift_visible_children():
    from crm.admin import Hidden, without_hidden_lines

    hidden = "Business customer: (a record you may not view)"
    nested = ["Account: A", [Hidden(hidden), ["Phone: 1"], Hidden(hidden), ["Contact: Visible"], "Business customer: B"]]

    assert without_hidden_lines(nested) == ["Account: A", [hidden, ["Phone: 1"], "Contact: Visible",
                                                           "Business customer: B"]]
    assert without_hidden_lines([Hidden(hidden), Hidden(hidden), "Customer: C"]) == [hidden, "Customer: C"]


# -- 3. the admin's "view on site" shortcut -----------------------------------------------------


def test_admin_shortcut_answers_hidden_and_missing_ids_alike(org, staff, channel, client_for):
    hidden = AccountFactory(name="Hidden Account", owner=org.user("west_rep"))
    visible = AccountFactory(name="Visible Account", owner=staff)
    ct = ContentType.objects.get_for_model(Account).pk
    client = client_for(staff)

    assert client.get(f"/admin/r/{ct}/{hidden.pk}/").status_code == 404
    assert client.get(f"/admin/r/{ct}/{MAX_ID}/").status_code == 404
    assert client.get(f"/admin/r/{ct}/{OVERFLOW}/").status_code == 404
    assert client.get(f"/admin/r/{ct}/abc/").status_code == 404
    response = client.get(f"/admin/r/{ct}/{visible.pk}/")
    assert response.status_code == 302 and response["Location"].endswith(visible.get_absolute_url())


def test_admin_shortcut_still_works_for_superusers(org, client_for):
    hidden = AccountFactory(name="Hidden Account", owner=org.user("west_rep"))
    ct = ContentType.objects.get_for_model(Account).pk
    response = client_for(org.user("admin")).get(f"/admin/r/{ct}/{hidden.pk}/")
    assert response.status_code == 302


# -- 4. the admin export with unknown or hostile parameters -------------------------------------


@pytest.mark.parametrize("query", ["foo=bar", "o=abc", "id__in=abc", f"business_unit__id__exact={OVERFLOW}",
                                   f"id__exact={OVERFLOW}", "owner__id__exact=\u00b2", "e=1"])
@pytest.mark.parametrize("path", ["accounts/account", "customers/businesscustomer"])
def test_admin_export_answers_hostile_parameters(staff, client_for, path, query):
    client = client_for(staff)
    response = client.get(f"/admin/{path}/export/?{query}")
    assert response.status_code in (200, 302), response.status_code
    response = client.post(f"/admin/{path}/export/?{query}", EXPORT_FORM)
    assert response.status_code in (200, 302), response.status_code


def test_admin_export_still_applies_valid_filters(org, staff, client_for):
    AccountFactory(name="East Account", owner=staff)
    AccountFactory(name="North Account", owner=org.user("north_rep"))
    unit = staff.primary_unit_id
    response = client_for(staff).post(f"/admin/accounts/account/export/?business_unit__id__exact={unit}",
                                      {**EXPORT_FORM, "accountresource_name": "on"})
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"East Account" in body and b"North Account" not in body


# -- 5. the admin export page works under the Content-Security-Policy ---------------------------


def test_admin_export_page_needs_no_inline_script(staff, client_for):
    response = client_for(staff).get("/admin/accounts/account/export/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "select-toggle" in html  # the "Select all" box is there
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handlers need 'unsafe-inline'"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html), "inline scripts need 'unsafe-inline'"
    assert "crm/admin_export.js" in html


# -- 2. a form saved unchanged keeps links to records the editor cannot see ---------------------


def unchanged_data(form):
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None or field.disabled:
            continue
        data[name] = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
        if value is False:
            del data[name]
    for prefix in getattr(form, "formsets", {}):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    return data


def test_customer_form_keeps_hidden_account_parent_and_primary_contact(org, channel, client_for):
    from crm.forms import restrict_form_fields
    from customers.forms import BusinessCustomerForm

    secret = token()
    west, editor = org.user("west_rep"), org.user("east_rep")
    hidden_account = AccountFactory(name=f"{secret} Account", owner=west)
    parent = BusinessCustomerFactory(name=f"{secret} Parent", owner=west, account=hidden_account, channel=channel)
    contact = ContactFactory(first_name=secret, last_name="Person", owner=west, accounts=[hidden_account])
    customer = BusinessCustomerFactory(name="East Branch", owner=editor, account=hidden_account, channel=channel,
                                       parent=parent, primary_contact=contact)

    html = client_for(editor).get(f"/customers/{customer.pk}/edit/").content.decode()
    assert secret not in html

    form = restrict_form_fields(BusinessCustomerForm(instance=customer, user=editor), editor)
    response = client_for(editor).post(f"/customers/{customer.pk}/edit/", unchanged_data(form))
    assert response.status_code == 302, response.content.decode()[:2000]
    customer.refresh_from_db()
    assert (customer.account_id, customer.parent_id, customer.primary_contact_id) == (
        hidden_account.pk, parent.pk, contact.pk)


# -- 6. ids in activity imports are ASCII digits only -------------------------------------------


def test_activity_import_ignores_superscript_record_ids(org, channel):
    """"\u00b2".isdigit() is true but int() refuses it: the row's record is unknown, not a crash."""
    from activities.resources import ActivityResource

    customer = BusinessCustomerFactory(owner=org.user("east_rep"), channel=channel)
    resource = ActivityResource(user=org.user("admin"))
    label = "customers.businesscustomer"
    resource.prepare_rows({"Record Type": [label, label, label],
                           "Record ID": ["\u00b2", f" {customer.pk} ", OVERFLOW]})
    ct = ContentType.objects.get_for_model(BusinessCustomer).pk
    assert resource.visible_records == {(ct, customer.pk)}
