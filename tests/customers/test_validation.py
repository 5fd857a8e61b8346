"""One source of validation: each customer rule lives once (on the model, or a shared function
of customers.models) and the form, the CSV import and the Django admin all apply it, with the
same message."""
import pytest
from django.core.exceptions import ValidationError

from channels.models import Channel
from crm.services import import_csv
from customers.models import NEGATIVE_VALUE, BusinessCustomer
from customers.resources import BusinessCustomerResource
from tests.factories import AccountFactory, ChannelFactory
from tests.toolkit import csv_bytes

from .factories import BusinessCustomerFactory
from .test_access import formset_management

CLOSED = "The channel Closed Fair is inactive or does not enable business customers."


@pytest.fixture
def direct(db):
    return ChannelFactory(name="Direct Sales")


@pytest.fixture
def closed(db):
    return ChannelFactory(name="Closed Fair", status=Channel.Status.INACTIVE)


def form_post(client, user, url="/customers/new/", **fields):
    account = fields.pop("account", None) or AccountFactory(owner=user, business_unit=user.primary_unit)
    data = {"account": account.pk, "owner": user.pk, "business_unit": user.primary_unit_id, "lifetime_value": "0",
            "currency": "USD", **formset_management(), **fields}
    return client.post(url, data)


def admin_post(client, user, url="/admin/customers/businesscustomer/add/", **fields):
    account = fields.pop("account", None) or AccountFactory(owner=user, business_unit=user.primary_unit)
    data = {"account": account.pk, "owner": user.pk, "business_unit": user.primary_unit_id, "lifetime_value": "0",
            "currency": "USD", **formset_management(), **fields}
    return client.post(url, data)


def import_errors(user, mode="create_update", **cells):
    row = {"Name": "Imported", "Channel": "Direct Sales", "Account": "Some Account", **cells}
    report = import_csv(BusinessCustomerResource, csv_bytes([list(row), list(row.values())]), user, mode=mode)
    return {e.column: e.message for e in report.errors}


def test_lifetime_value_not_negative_in_model_form_import_and_admin(org, client_for, admin, direct):
    rep = org.user("east_rep")
    with pytest.raises(ValidationError) as e:
        BusinessCustomer(name="Minus", lifetime_value=-1, channel=direct).clean_fields(
            exclude=["channel", "account", "owner", "business_unit", "primary_contact"])
    assert e.value.message_dict["lifetime_value"] == [NEGATIVE_VALUE]

    response = form_post(client_for(rep), rep, name="Minus", channel=direct.pk, lifetime_value="-5")
    assert response.status_code == 400 and response.context["form"].errors["lifetime_value"] == [NEGATIVE_VALUE]
    assert import_errors(rep, **{"Lifetime Value": "-5"}) == {"Lifetime Value": NEGATIVE_VALUE}
    response = admin_post(client_for(admin), admin, name="Minus", channel=direct.pk, lifetime_value="-5")
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["lifetime_value"] == [NEGATIVE_VALUE]
    assert not BusinessCustomer.objects.exists()


def test_channel_rule_in_model_import_and_admin(org, client_for, admin, direct, closed):
    rep = org.user("east_rep")
    new = BusinessCustomer(name="New", channel=closed)
    with pytest.raises(ValidationError) as e:
        new.clean()
    assert e.value.message_dict == {"channel": [CLOSED]}
    assert import_errors(rep, Channel="Closed Fair") == {"Channel": CLOSED}
    response = admin_post(client_for(admin), admin, name="Late", channel=closed.pk)
    assert response.status_code == 200 and response.context["adminform"].form.errors["channel"] == [CLOSED]
    # The form offers only channels that take new customers.
    form = client_for(rep).get("/customers/new/").context["form"]
    assert closed not in form.fields["channel"].queryset and direct in form.fields["channel"].queryset
    assert not BusinessCustomer.objects.exists()


def test_a_customer_stays_in_its_deactivated_channel_but_cannot_move_into_one(org, admin, client_for, direct,
                                                                              closed):
    rep = org.user("east_rep")
    customer = BusinessCustomerFactory(name="Stays", owner=rep, business_unit=rep.primary_unit, channel=direct)
    Channel.objects.filter(pk=direct.pk).update(status=Channel.Status.INACTIVE)
    loaded = BusinessCustomer.objects.get(pk=customer.pk)
    loaded.clean()  # unchanged channel: fine
    loaded.channel = closed
    with pytest.raises(ValidationError):
        loaded.clean()
    # Through the import: an update keeping the channel passes, one moving into a closed channel does not.
    rows = [["ID", "Name", "Channel", "Account"], [customer.pk, "Stays", "Direct Sales", customer.account.name]]
    assert import_csv(BusinessCustomerResource, csv_bytes(rows), rep).ok
    rows[1][2] = "Closed Fair"
    report = import_csv(BusinessCustomerResource, csv_bytes(rows), rep)
    assert [(e.column, e.message) for e in report.errors] == [("Channel", CLOSED)]
    # Through the admin: the edit of the customer in its deactivated channel saves.
    response = admin_post(client_for(admin), rep, url=f"/admin/customers/businesscustomer/{customer.pk}/change/",
                          name="Stays", channel=direct.pk, account=customer.account)
    assert response.status_code == 302, response.context["adminform"].form.errors


def test_name_clash_says_the_same_in_form_and_import(org, client_for, direct):
    rep, west = org.user("east_rep"), org.user("west_rep")
    taken = BusinessCustomerFactory(name="Globex", owner=rep, business_unit=rep.primary_unit, channel=direct)
    seen = f"“Globex” (ID {taken.pk}) already exists in Direct Sales: a name is unique per channel."
    unseen = "A business customer of another unit is already named “Globex” in Direct Sales."
    for user, message in ((rep, seen), (west, unseen)):
        response = form_post(client_for(user), user, name="GLOBEX", channel=direct.pk)
        assert response.context["form"].errors["name"] == [message]
        # Add only: a row without an ID naming a customer he may edit would otherwise update it.
        assert import_errors(user, mode="create", Name="globex") == {"Name": message}


def test_name_clash_in_the_admin_names_nothing(org, client_for, admin, direct):
    rep = org.user("east_rep")
    BusinessCustomerFactory(name="Globex", owner=rep, business_unit=rep.primary_unit, channel=direct)
    response = admin_post(client_for(admin), admin, name="globex", channel=direct.pk)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["__all__"] == [
        "A business customer with this name already exists in this channel."]
    assert BusinessCustomer.objects.count() == 1
