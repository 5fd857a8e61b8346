"""The customer's rules: channel, account, unique name per channel, phones and emails."""
import pytest

from accounts.models import Account
from channels.models import Channel
from customers.models import BusinessCustomer, CustomerEmail, CustomerPhone
from tests.factories import AccountFactory, ChannelFactory

from .factories import BusinessCustomerFactory, CustomerEmailFactory
from .test_access import formset_management


@pytest.fixture
def direct(db):
    return ChannelFactory(name="Direct Sales")


def create_data(user, name, channel, account=None, **extra):
    data = {"name": name, "channel": channel.pk, "owner": user.pk, "business_unit": user.primary_unit_id,
            "lifetime_value": "0", "currency": "USD", **formset_management()}
    if account is None:
        data["create_account"] = "on"
    else:
        data["account"] = account.pk
    data.update(extra)
    return data


def form_errors(response):
    assert response.status_code == 400, response.status_code
    return response.context["form"].errors


def test_create_with_new_account_in_the_same_step(org, client_for, direct):
    rep = org.user("east_rep")
    response = client_for(rep).post("/customers/new/", create_data(rep, "Acme Robotics", direct))
    assert response.status_code == 302
    customer = BusinessCustomer.objects.get(name="Acme Robotics")
    assert customer.account.name == "Acme Robotics"
    assert (customer.account.owner, customer.account.business_unit) == (rep, org.unit("East"))
    assert customer.account.history.first().history_user == rep


def test_account_must_be_chosen_or_created(org, client_for, direct):
    rep = org.user("east_rep")
    data = create_data(rep, "Nameless", direct)
    del data["create_account"]
    assert "account" in form_errors(client_for(rep).post("/customers/new/", data))
    account = AccountFactory(owner=rep, business_unit=org.unit("East"))
    both = create_data(rep, "Both", direct, account=account, create_account="on")
    assert "account" in form_errors(client_for(rep).post("/customers/new/", both))
    assert not BusinessCustomer.objects.exists()


def test_account_of_another_unit_is_refused(org, client_for, direct):
    west = org.user("west_rep")
    east_account = AccountFactory(owner=org.user("east_rep"), business_unit=org.unit("East"))
    client = client_for(west)
    form = client.get("/customers/new/").context["form"]
    assert east_account not in form.fields["account"].queryset
    errors = form_errors(client.post("/customers/new/", create_data(west, "Sneaky", direct, account=east_account)))
    assert "account" in errors
    assert not BusinessCustomer.objects.filter(name="Sneaky").exists()


@pytest.mark.parametrize("status, entities", [("inactive", "business_customer"), ("active", "")])
def test_channel_must_be_active_and_enable_customers(org, client_for, status, entities):
    rep = org.user("east_rep")
    channel = ChannelFactory(name="Closed", status=status, entities=entities)
    client = client_for(rep)
    assert channel not in client.get("/customers/new/").context["form"].fields["channel"].queryset
    assert "channel" in form_errors(client.post("/customers/new/", create_data(rep, "Late", channel)))
    assert not BusinessCustomer.objects.filter(name="Late").exists()


def test_customer_of_a_deactivated_channel_stays_editable(org, client_for, direct):
    rep = org.user("east_rep")
    customer = BusinessCustomerFactory(owner=rep, business_unit=org.unit("East"), channel=direct)
    Channel.objects.filter(pk=direct.pk).update(status="inactive")
    data = {"name": "Renamed", "channel": direct.pk, "account": customer.account_id, "lifetime_value": "5",
            "currency": "USD", **formset_management()}
    response = client_for(rep).post(f"/customers/{customer.pk}/edit/", data)
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "Renamed"


def test_name_is_unique_per_channel_case_insensitive(org, client_for, direct):
    rep = org.user("east_rep")
    existing = BusinessCustomerFactory(name="Globex", owner=rep, business_unit=org.unit("East"), channel=direct)
    client = client_for(rep)
    errors = form_errors(client.post("/customers/new/", create_data(rep, "GLOBEX", direct)))
    assert f"ID {existing.pk}" in errors["name"][0] and "Globex" in errors["name"][0]
    # Another channel may hold the same name: the same client seen in two channels.
    web = ChannelFactory(name="Web Store", type="commerce")
    response = client.post("/customers/new/", create_data(rep, "Globex", web, account=existing.account))
    assert response.status_code == 302
    assert existing.account.customers.count() == 2


def test_clash_with_a_hidden_customer_does_not_name_it(org, client_for, direct):
    BusinessCustomerFactory(name="Initech", owner=org.user("east_rep"), business_unit=org.unit("East"),
                            channel=direct)
    west = org.user("west_rep")
    errors = form_errors(client_for(west).post("/customers/new/", create_data(west, "initech", direct)))
    assert "another unit" in errors["name"][0] and "ID" not in errors["name"][0]


def test_phones_and_emails_with_one_primary_copied_onto_the_row(org, client_for, direct):
    rep = org.user("east_rep")
    client = client_for(rep)
    data = create_data(rep, "Hooli", direct)
    data.update({"emails-TOTAL_FORMS": "2", "emails-0-email": "sales@hooli.example", "emails-0-kind": "work",
                 "emails-1-email": "billing@hooli.example", "emails-1-kind": "billing", "emails-1-is_primary": "on",
                 "phones-TOTAL_FORMS": "1", "phones-0-phone": "+1 555 0100", "phones-0-kind": "work"})
    assert client.post("/customers/new/", data).status_code == 302
    customer = BusinessCustomer.objects.get(name="Hooli")
    assert customer.primary_email == "billing@hooli.example"
    assert customer.primary_phone == "+1 555 0100"  # the only phone becomes primary
    assert CustomerPhone.objects.get(customer=customer).is_primary

    # Two primaries, a duplicate and a malformed phone are refused.
    bad = create_data(rep, "Pied Piper", direct)
    bad.update({"emails-TOTAL_FORMS": "2", "emails-0-email": "a@pp.example", "emails-0-is_primary": "on",
                "emails-0-kind": "work", "emails-1-email": "b@pp.example", "emails-1-is_primary": "on",
                "emails-1-kind": "work", "phones-TOTAL_FORMS": "2", "phones-0-phone": "call me", "phones-0-kind": "work",
                "phones-1-phone": "+1 555 0101", "phones-1-kind": "work"})
    response = client.post("/customers/new/", bad)
    assert response.status_code == 400
    formsets = response.context["form"].formsets
    assert "Mark only one email as primary." in formsets["emails"].non_form_errors()
    assert formsets["phones"].errors[0]["phone"]
    assert not BusinessCustomer.objects.filter(name="Pied Piper").exists()


def test_editing_phones_moves_the_primary(org, client_for, direct):
    rep = org.user("east_rep")
    customer = BusinessCustomerFactory(owner=rep, business_unit=org.unit("East"), channel=direct)
    first = CustomerEmailFactory(customer=customer, email="one@example.com", is_primary=True)
    second = CustomerEmailFactory(customer=customer, email="two@example.com")
    data = {"name": customer.name, "channel": direct.pk, "account": customer.account_id, "lifetime_value": "0",
            "currency": "USD", **formset_management(emails=2)}
    data.update({"emails-0-id": first.pk, "emails-0-email": first.email, "emails-0-kind": "work",
                 "emails-0-DELETE": "on",
                 "emails-1-id": second.pk, "emails-1-email": second.email, "emails-1-kind": "work",
                 "emails-1-is_primary": "on"})
    response = client_for(rep).post(f"/customers/{customer.pk}/edit/", data)
    assert response.status_code == 302, response.context["form"].formsets["emails"].errors
    customer.refresh_from_db()
    assert customer.primary_email == "two@example.com"
    assert list(CustomerEmail.objects.filter(customer=customer).values_list("email", "is_primary")) == [
        ("two@example.com", True)]


def test_record_page_sections(org, client_for, direct):
    rep = org.user("east_rep")
    customer = BusinessCustomerFactory(owner=rep, business_unit=org.unit("East"), channel=direct,
                                       billing_street="1 Main St", billing_city="Boston", billing_country="US")
    web = ChannelFactory(name="Web Store")
    sibling = BusinessCustomerFactory(name="Sibling", owner=rep, business_unit=org.unit("East"), channel=web,
                                      account=customer.account)
    hidden = BusinessCustomerFactory(name="Hidden sibling", owner=org.user("west_rep"), business_unit=org.unit("West"),
                                     channel=web, account=customer.account)
    response = client_for(rep).get(f"/customers/{customer.pk}/")
    html = response.content.decode()
    assert response.context["siblings"] == [sibling] and hidden.name not in html
    for text in ("General information", "Company details", "Addresses", "1 Main St", "United States of America",
                 "Contacts", "More actions", "Log call", "Send email", "Add note", "Add task", "Activities", "History"):
        assert text in html, text
    assert f'/accounts/{customer.account_id}/' in html


def test_channel_page_lists_its_visible_customers(org, client_for, direct):
    mine = BusinessCustomerFactory(name="Mine", owner=org.user("east_rep"), business_unit=org.unit("East"),
                                   channel=direct)
    theirs = BusinessCustomerFactory(name="Theirs", owner=org.user("west_rep"), business_unit=org.unit("West"),
                                     channel=direct)
    response = client_for(org.user("east_rep")).get(f"/channels/{direct.pk}/")
    assert list(response.context["customers"]) == [mine]
    assert theirs.name not in response.content.decode()


def test_account_page_lists_customers_per_channel_with_lifetime_value(org, client_for, direct):
    rep = org.user("east_rep")
    account = AccountFactory(name="Umbrella", owner=rep, business_unit=org.unit("East"))
    web = ChannelFactory(name="Web Store")
    BusinessCustomerFactory(name="Umbrella Direct", account=account, channel=direct, owner=rep,
                            business_unit=org.unit("East"), lifetime_value=1500, currency="USD")
    BusinessCustomerFactory(name="Umbrella Web", account=account, channel=web, owner=rep,
                            business_unit=org.unit("East"), lifetime_value=500, currency="USD")
    BusinessCustomerFactory(name="Umbrella West", account=account, channel=web, owner=org.user("west_rep"),
                            business_unit=org.unit("West"), lifetime_value=99999, currency="USD")
    response = client_for(rep).get(f"/accounts/{account.pk}/")
    assert response.status_code == 200
    groups = {g["channel"]: [c.name for c in g["customers"]] for g in response.context["customer_groups"]}
    assert groups == {"Direct Sales": ["Umbrella Direct"], "Web Store": ["Umbrella Web"]}
    assert [(t["currency"], t["total"]) for t in response.context["lifetime_totals"]] == [("USD", 2000)]
    html = response.content.decode()
    assert "2,000.00" in html and "Umbrella West" not in html


def test_admin_inlines_keep_the_primary_columns_in_step(org, client, direct):
    admin = org.user("admin")
    client.force_login(admin)
    customer = BusinessCustomerFactory(owner=admin, business_unit=org.unit("Acme Corp"), channel=direct)
    assert client.get("/admin/customers/businesscustomer/").status_code == 200
    page = client.get(f"/admin/customers/businesscustomer/{customer.pk}/change/")
    assert page.status_code == 200
    data = {f.name: f.value() or "" for f in page.context["adminform"].form}
    data.update({"owner": admin.pk, "business_unit": customer.business_unit_id, "account": customer.account_id,
                 "channel": direct.pk, "lifetime_value": "1000", "currency": "USD", "billing_country": "US",
                 "shipping_country": "", "registration_date": "", "employees": "",
                 "emails-TOTAL_FORMS": "1", "emails-INITIAL_FORMS": "0", "emails-0-email": "desk@corp.example",
                 "emails-0-kind": "work", "emails-0-is_primary": "on",
                 "phones-TOTAL_FORMS": "0", "phones-INITIAL_FORMS": "0"})
    response = client.post(f"/admin/customers/businesscustomer/{customer.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    customer.refresh_from_db()
    assert customer.primary_email == "desk@corp.example"
    assert Account.objects.filter(pk=customer.account_id).exists()
