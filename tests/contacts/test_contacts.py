"""Contacts: the form with its emails, phones and addresses, the rules (a name or an email,
no reporting cycles), duplicate warnings, the grid's filters, the record page and the
query counts of grid, record page and export."""
import pytest
from django.urls import reverse

from contacts.models import Contact, ContactAddress, ContactEmail, ContactPhone
from crm.forms import HIDDEN_LABEL
from tests.factories import AccountFactory
from tests.toolkit import count_queries, grid_rows

from .factories import ContactFactory, ContactGroupFactory
from .test_access import management


def own(org, username, **kwargs):
    user = org.user(username)
    return ContactFactory(owner=user, business_unit=user.primary_unit, **kwargs)


def account_of(org, username, name):
    user = org.user(username)
    return AccountFactory(name=name, owner=user, business_unit=user.primary_unit)


def rows(prefix, *items, initial=0):
    """Formset POST data: `items` are dicts of one row's fields."""
    data = {f"{prefix}-TOTAL_FORMS": str(len(items)), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}
    for i, item in enumerate(items):
        data.update({f"{prefix}-{i}-{k}": v for k, v in item.items()})
    return data


def contact_data(user, emails=(), phones=(), addresses=(), **fields):
    data = {"owner": user.pk, "business_unit": user.primary_unit_id, **management(), **fields}
    data.update(rows("emails", *emails))
    data.update(rows("phones", *phones))
    data.update(rows("addresses", *addresses))
    return data


def form_errors(response):
    form = response.context["form"]
    return form.errors, {p: fs.errors + [fs.non_form_errors()] for p, fs in form.formsets.items()}


# -- the form ---------------------------------------------------------------------------------

def test_create_with_emails_phones_address_accounts_and_groups(org, client_for):
    user = org.user("east_rep")
    account = account_of(org, "east_rep", "Initech")
    group = ContactGroupFactory(name="Newsletter")
    data = contact_data(
        user, first_name="Peter", last_name="Gibbons", job_title="Engineer", source="referral",
        accounts=[account.pk], groups=[group.pk],
        emails=[{"email": "Peter@Initech.example"}, {"email": "pg@home.example", "is_primary": "on"}],
        phones=[{"phone": "+1  555 0100"}],
        addresses=[{"type": "billing", "street": "1 Main St", "city": "Austin", "postal_code": "78701",
                    "country": "US"}],
    )
    response = client_for(user).post(reverse("contacts:create"), data)
    assert response.status_code == 302, form_errors(response)
    contact = Contact.objects.get(last_name="Gibbons")
    assert response.url == reverse("contacts:detail", args=[contact.pk])
    assert [(e.email, e.is_primary) for e in contact.emails.order_by("pk")] == [
        ("peter@initech.example", False), ("pg@home.example", True)]
    assert (contact.email, contact.phone) == ("pg@home.example", "+1 555 0100")
    assert contact.phones.get().is_primary
    address = contact.addresses.get()
    assert (address.is_primary, address.city, address.country.code) == (True, "Austin", "US")
    assert list(contact.accounts.all()) == [account] and list(contact.groups.all()) == [group]
    assert contact.history.first().history_user == user

    page = client_for(user).get(response.url).content.decode()
    for text in ("Peter Gibbons", "pg@home.example", "+1 555 0100", "Austin", "Initech", "Newsletter"):
        assert text in page


def test_moving_the_primary_email_keeps_one_primary(org, client_for):
    user = org.user("east_rep")
    contact = own(org, "east_rep", emails=["a@example.com", "b@example.com"])
    a, b = contact.emails.order_by("pk")
    data = contact_data(user, first_name=contact.first_name, last_name=contact.last_name)
    data.update(rows("emails", {"id": a.pk, "contact": contact.pk, "email": a.email},
                     {"id": b.pk, "contact": contact.pk, "email": b.email, "is_primary": "on"}, initial=2))
    response = client_for(user).post(reverse("contacts:update", args=[contact.pk]), data)
    assert response.status_code == 302, form_errors(response)
    contact.refresh_from_db()
    assert contact.email == "b@example.com"
    assert list(contact.emails.filter(is_primary=True).values_list("email", flat=True)) == ["b@example.com"]


def test_two_primaries_and_a_repeated_email_are_refused(org, client_for):
    user = org.user("east_rep")
    client = client_for(user)
    data = contact_data(user, last_name="Twice", emails=[{"email": "x@example.com", "is_primary": "on"},
                                                        {"email": "y@example.com", "is_primary": "on"}])
    response = client.post(reverse("contacts:create"), data)
    assert response.status_code == 400
    assert "Mark only one email as primary." in response.content.decode()
    data = contact_data(user, last_name="Twice", emails=[{"email": "x@example.com"}, {"email": "X@example.com"}])
    response = client.post(reverse("contacts:create"), data)
    assert response.status_code == 400 and "duplicate data for email" in response.content.decode()
    assert not Contact.objects.filter(last_name="Twice").exists()


@pytest.mark.parametrize("fields, emails, ok", [
    ({}, [], False),
    ({"first_name": "Ann"}, [], True),
    ({"last_name": "Lee"}, [], True),
    ({"name_prefix": "Dr.", "job_title": "CFO"}, [], False),
    ({}, [{"email": "only@example.com"}], True),
])
def test_a_contact_needs_a_name_or_an_email(org, client_for, fields, emails, ok):
    user = org.user("east_rep")
    response = client_for(user).post(reverse("contacts:create"), contact_data(user, emails=emails, **fields))
    assert (response.status_code == 302) is ok
    if not ok:
        assert "A contact needs a first name, a last name or an email." in response.content.decode()
        assert not Contact.objects.exists()


def test_the_name_rule_is_the_models_in_form_import_and_admin(org, client_for):
    """One rule, one message: Contact.name_error, used by the model's clean (form, admin)
    and by the import per row."""
    from contacts.models import NAME_OR_EMAIL
    from contacts.resources import ContactResource
    from crm.services import import_csv
    from tests.toolkit import csv_bytes

    admin = org.user("admin")
    data = {"first_name": "", "last_name": "", "owner": admin.pk, "business_unit": admin.primary_unit_id,
            "gender": "", "source": ""}
    for prefix in ("emails", "phones", "addresses", "customer_assignments"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = client_for(admin).post("/admin/contacts/contact/add/", {**data, "job_title": "Nameless"})
    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [NAME_OR_EMAIL]
    report = import_csv(ContactResource, csv_bytes([["Job Title"], ["Nameless"]]), admin)
    assert [(e.column, e.message) for e in report.errors] == [("First Name", NAME_OR_EMAIL)]
    assert Contact(job_title="Nameless").name_error() == NAME_OR_EMAIL
    assert Contact(email="a@example.com").name_error() is None
    assert not Contact.objects.exists()


def test_model_clean_refuses_missing_name_and_cycles(org):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        Contact(owner=org.user("admin"), business_unit=org.unit("Acme Corp")).clean()
    a = own(org, "east_rep")
    b = own(org, "east_rep", reports_to=a)
    a.reports_to = b
    with pytest.raises(ValidationError) as e:
        a.clean()
    assert "reports_to" in e.value.message_dict
    a.reports_to = a
    with pytest.raises(ValidationError):
        a.clean()


def test_reports_to_cycle_refused_in_form(org, client_for):
    user = org.user("east_rep")
    boss = own(org, "east_rep", last_name="Boss")
    middle = own(org, "east_rep", last_name="Middle", reports_to=boss)
    own(org, "east_rep", last_name="Bottom", reports_to=middle)
    bottom = Contact.objects.get(last_name="Bottom")
    data = contact_data(user, first_name=boss.first_name, last_name="Boss", reports_to=bottom.pk)
    response = client_for(user).post(reverse("contacts:update", args=[boss.pk]), data)
    assert response.status_code == 400
    assert "report to itself" in response.content.decode()
    boss.refresh_from_db()
    assert boss.reports_to is None
    # The contact itself is not offered as its own manager.
    form = client_for(user).get(reverse("contacts:update", args=[boss.pk])).context["form"]
    assert boss not in form.fields["reports_to"].queryset


def test_choices_offer_only_what_the_user_may_view(org, client_for):
    east_account = account_of(org, "east_rep", "East Account")
    west_account = account_of(org, "west_rep", "West Account")
    west_contact = own(org, "west_rep", last_name="Westerly")
    client = client_for(org.user("west_rep"))
    form = client.get(reverse("contacts:create")).context["form"]
    assert west_account in form.fields["accounts"].queryset and east_account not in form.fields["accounts"].queryset
    assert west_contact in form.fields["reports_to"].queryset
    assert not form.fields["reports_to"].queryset.filter(business_unit=org.unit("East")).exists()
    grid = client.get(reverse("contacts:list"))
    choices = grid.context["filter"].form.fields["account"].queryset
    assert west_account in choices and east_account not in choices
    # Filtering by a hidden account's id is an invalid choice, not a way to probe it.
    response = client.get(reverse("contacts:list"), {"account": east_account.pk})
    assert "East Account" not in grid_rows(response)[1]


def test_links_the_user_cannot_see_survive_his_edit(org, client_for):
    """A West rep editing a contact shared with him keeps its East account and manager."""
    from crm.services import share_record

    east_account = account_of(org, "east_rep", "Hidden East")
    west_account = account_of(org, "west_rep", "Visible West")
    boss = own(org, "east_rep", last_name="Hidden Boss")
    contact = own(org, "east_rep", last_name="Shared", accounts=[east_account], reports_to=boss)
    share_record(contact, org.user("east_rep"), org.user("west_rep"), "change")
    client = client_for(org.user("west_rep"))
    page = client.get(reverse("contacts:detail", args=[contact.pk])).content.decode()
    assert "Hidden East" not in page and "Hidden Boss" not in page and "a contact you may not see" in page
    form_page = client.get(reverse("contacts:update", args=[contact.pk]))
    html = form_page.content.decode()
    assert "Hidden Boss" not in html and "Hidden East" not in html
    # The manager stays chosen without being named; the hidden account is not offered at all.
    assert f'<option value="{boss.pk}" selected>{HIDDEN_LABEL}</option>' in html
    assert list(form_page.context["form"].fields["accounts"].queryset) == [west_account]
    data = contact_data(org.user("west_rep"), first_name="Sam", last_name="Shared", accounts=[west_account.pk],
                        reports_to=boss.pk)  # what his browser sends back
    response = client.post(reverse("contacts:update", args=[contact.pk]), data)
    assert response.status_code == 302, form_errors(response)
    contact.refresh_from_db()
    assert set(contact.accounts.all()) == {east_account, west_account}
    assert contact.reports_to == boss


# -- duplicates -------------------------------------------------------------------------------

def test_duplicate_email_warns_with_visible_contacts_only(org, client_for):
    user = org.user("east_rep")
    client = client_for(user)
    seen = own(org, "east_rep2", last_name="Colleague", emails=["dup@example.com"])
    hidden = own(org, "west_rep", last_name="Westerner", emails=["dup@example.com", "west@example.com"])
    data = contact_data(user, last_name="Newcomer", emails=[{"email": "DUP@example.com"}])

    response = client.post(reverse("contacts:create"), data)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Possible duplicate" in page and reverse("contacts:detail", args=[seen.pk]) in page
    assert "Westerner" not in page and reverse("contacts:detail", args=[hidden.pk]) not in page
    assert [c for c, _ in response.context["form"].duplicates] == [seen]
    assert not Contact.objects.filter(last_name="Newcomer").exists()

    response = client.post(reverse("contacts:create"), {**data, "create_anyway": "on"})
    assert response.status_code == 302
    assert Contact.objects.filter(last_name="Newcomer", email="dup@example.com").exists()

    # An email only a contact he may not see has: no warning, nothing revealed.
    response = client.post(reverse("contacts:create"),
                           contact_data(user, last_name="Other", emails=[{"email": "west@example.com"}]))
    assert response.status_code == 302


def test_editing_keeps_own_emails_out_of_the_duplicate_check(org, client_for):
    user = org.user("east_rep")
    contact = own(org, "east_rep", last_name="Self", emails=["me@example.com"])
    email = contact.emails.get()
    data = contact_data(user, first_name="Renamed", last_name="Self")
    data.update(rows("emails", {"id": email.pk, "contact": contact.pk, "email": "me@example.com"}, initial=1))
    response = client_for(user).post(reverse("contacts:update", args=[contact.pk]), data)
    assert response.status_code == 302, form_errors(response)


# -- grid, filters and search -------------------------------------------------------------------

def test_filters_match_any_email_phone_account_and_group(org, client_for):
    account = account_of(org, "east_rep", "Filter Account")
    group = ContactGroupFactory(name="VIP")
    match = own(org, "east_rep", last_name="Match", emails=["first@example.com", "second@other.example"],
                phones=["+1 555 0100", "+49 30 1234"], accounts=[account], groups=[group])
    other = own(org, "east_rep", last_name="Other", emails=["third@example.com"])
    client = client_for(org.user("east_rep"))
    for params in ({"email": "other.example"}, {"phone": "30 1234"}, {"account": account.pk}, {"group": group.pk},
                   {"name": "mat"}, {"q": "second@other"}, {"q": "+49"}):
        pks, _ = grid_rows(client.get(reverse("contacts:list"), params))
        assert pks == [match.pk], params
    pks, _ = grid_rows(client.get(reverse("contacts:list"), {"email": "example.com"}))
    assert set(pks) == {match.pk, other.pk}
    # The grid without any parameter shows each contact's accounts too.
    _, body = grid_rows(client.get(reverse("contacts:list")))
    assert reverse("accounts:detail", args=[account.pk]) in body
    response = client.get("/search/", {"q": "second@other"})
    assert [r.pk for g in response.context["groups"] for r in g["results"]] == [match.pk]


# -- customer roles ---------------------------------------------------------------------------

def test_customer_roles_from_the_contact_page(org, client_for):
    from tests.customers.factories import BusinessCustomerFactory

    user = org.user("east_rep")
    customer = BusinessCustomerFactory(name="Initech US", owner=user, business_unit=user.primary_unit)
    contact = own(org, "east_rep", last_name="Role", accounts=[customer.account])
    client = client_for(user)
    response = client.post(reverse("contacts:assign_customer", args=[contact.pk]),
                           {"customer": customer.pk, "type": "billing"})
    assert response.status_code == 302
    assignment = contact.customer_assignments.get()
    assert (assignment.customer, assignment.type) == (customer, "billing")
    page = client.get(reverse("contacts:detail", args=[contact.pk])).content.decode()
    assert "Initech US" in page and "Billing" in page
    customer_page = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert "Role" in customer_page

    # The same role twice is refused; a West rep cannot touch the East contact's roles.
    client.post(reverse("contacts:assign_customer", args=[contact.pk]), {"customer": customer.pk, "type": "billing"})
    assert contact.customer_assignments.count() == 1
    west = client_for(org.user("west_rep"))
    assert west.post(reverse("contacts:assign_customer", args=[contact.pk]),
                     {"customer": customer.pk, "type": "other"}).status_code == 404
    assert west.post(reverse("contacts:unassign_customer", args=[contact.pk, assignment.pk])).status_code == 404

    response = client.post(reverse("contacts:unassign_customer", args=[contact.pk, assignment.pk]))
    assert response.status_code == 302 and not contact.customer_assignments.exists()


def test_customer_of_another_account_cannot_be_assigned(org, client_for):
    from tests.customers.factories import BusinessCustomerFactory

    user = org.user("east_rep")
    customer = BusinessCustomerFactory(name="Elsewhere", owner=user, business_unit=user.primary_unit)
    contact = own(org, "east_rep", last_name="Unlinked")
    client_for(user).post(reverse("contacts:assign_customer", args=[contact.pk]),
                          {"customer": customer.pk, "type": "billing"})
    assert not contact.customer_assignments.exists()


def test_the_assignment_form_offers_only_customers_of_its_accounts_he_may_view(org, client_for):
    """The form is built on the contact's page, outside the generic form view, and still gets
    the generic choice rule."""
    from crm.services import share_record
    from tests.customers.factories import BusinessCustomerFactory

    east, west = org.user("east_rep"), org.user("west_rep")
    account = account_of(org, "west_rep", "Shared Account")
    seen = BusinessCustomerFactory(name="West Branch", owner=west, business_unit=west.primary_unit, account=account)
    hidden = BusinessCustomerFactory(name="East Branch", owner=east, business_unit=east.primary_unit, account=account)
    BusinessCustomerFactory(name="Elsewhere", owner=west, business_unit=west.primary_unit)
    contact = own(org, "east_rep", last_name="Linked", accounts=[account])
    share_record(contact, east, west, "change")
    client = client_for(west)
    form = client.get(reverse("contacts:detail", args=[contact.pk])).context["assignment_form"]
    assert list(form.fields["customer"].queryset) == [seen]
    client.post(reverse("contacts:assign_customer", args=[contact.pk]), {"customer": hidden.pk, "type": "billing"})
    assert not contact.customer_assignments.exists()


# -- query counts -------------------------------------------------------------------------------

def make_contacts(org, count, prefix, accounts, groups):
    """`count` East contacts, each with 3 emails, 2 phones, an address, all `accounts` and `groups`."""
    owner = org.user("east_rep")
    contacts = Contact.objects.bulk_create([
        Contact(first_name="Ann", last_name=f"{prefix} {i:04d}", email=f"{prefix.lower()}{i}@example.com",
                phone=f"+1 555 {i:04d}", owner=owner, business_unit=owner.primary_unit)
        for i in range(count)
    ])
    ContactEmail.objects.bulk_create([
        ContactEmail(contact=c, email=f"{prefix.lower()}{i}{suffix}@example.com" if suffix else c.email,
                     is_primary=not suffix)
        for i, c in enumerate(contacts) for suffix in ("", "b", "c")
    ])
    ContactPhone.objects.bulk_create([
        ContactPhone(contact=c, phone=p, is_primary=j == 0)
        for c in contacts for j, p in enumerate((c.phone, "+1 555 9999"))
    ])
    ContactAddress.objects.bulk_create([
        ContactAddress(contact=c, is_primary=True, street="1 Main St", city="Boston", country="US") for c in contacts
    ])
    Contact.accounts.through.objects.bulk_create([
        Contact.accounts.through(contact=c, account=a) for c in contacts for a in accounts])
    Contact.groups.through.objects.bulk_create([
        Contact.groups.through(contact=c, contactgroup=g) for c in contacts for g in groups])
    return contacts


@pytest.mark.parametrize("viewer", ["admin", "east_manager", "east_rep"])
def test_grid_record_and_export_queries_do_not_grow(org, client_for, viewer, django_assert_num_queries):
    client = client_for(org.user(viewer))
    few_accounts = [account_of(org, "east_rep", f"Acc {i}") for i in range(2)]
    groups = [ContactGroupFactory(name=f"G {i}") for i in range(2)]
    first = make_contacts(org, 10, "Few", few_accounts, groups)[0]

    def grid():
        response = client.get(reverse("contacts:list"), {"per_page": 250, "sort": "name"})
        assert response.status_code == 200
        return response

    def record(pk):
        response = client.get(reverse("contacts:detail", args=[pk]))
        assert response.status_code == 200
        return response

    def export():
        response = client.get(reverse("contacts:export"), {"sort": "name"})
        return b"".join(response.streaming_content)

    grid(), record(first.pk), export()
    grid_few, _ = count_queries(grid)
    record_few, _ = count_queries(lambda: record(first.pk))
    export_few, _ = count_queries(export)

    many_accounts = [account_of(org, "east_rep", f"More {i}") for i in range(8)]
    many_groups = [ContactGroupFactory(name=f"H {i}") for i in range(5)]
    last = make_contacts(org, 190, "Many", few_accounts + many_accounts, groups + many_groups)[-1]
    ContactEmail.objects.bulk_create([ContactEmail(contact=last, email=f"extra{i}@example.com") for i in range(20)])
    with django_assert_num_queries(grid_few):
        response = grid()
    assert len(response.context["table"].page.object_list) == 200
    with django_assert_num_queries(record_few):
        record(last.pk)
    with django_assert_num_queries(export_few):
        content = export()
    assert content.count(b"\r\n") == 201


def test_customer_primary_contact_is_a_contact_of_its_account(org, client_for):
    from tests.customers.factories import BusinessCustomerFactory
    from tests.customers.test_access import formset_management

    user = org.user("east_rep")
    customer = BusinessCustomerFactory(name="Initech US", owner=user, business_unit=user.primary_unit)
    member = own(org, "east_rep", last_name="Member", accounts=[customer.account])
    stranger = own(org, "east_rep", last_name="Stranger")
    client = client_for(user)
    form = client.get(reverse("customers:update", args=[customer.pk])).context["form"]
    assert list(form.fields["primary_contact"].queryset) == [member]

    data = {"name": customer.name, "channel": customer.channel_id, "account": customer.account_id,
            "lifetime_value": "0", "currency": "USD", **formset_management()}
    response = client.post(reverse("customers:update", args=[customer.pk]), {**data, "primary_contact": stranger.pk})
    assert response.status_code == 400 and "Choose one of the contacts of the customer" in response.content.decode()
    response = client.post(reverse("customers:update", args=[customer.pk]), {**data, "primary_contact": member.pk})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.primary_contact == member
    page = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert reverse("contacts:detail", args=[member.pk]) in page


def test_admin_pages_and_primary_copies(org, client):
    admin = org.user("admin")
    client.force_login(admin)
    contact = own(org, "east_rep", last_name="Admin", emails=["a@example.com", "b@example.com"])
    for url in ("/admin/contacts/contact/", f"/admin/contacts/contact/{contact.pk}/change/",
                "/admin/contacts/contactgroup/", "/admin/contacts/contactcustomerassignment/"):
        assert client.get(url).status_code == 200, url
    a, b = contact.emails.order_by("pk")
    data = {"first_name": "Ada", "last_name": "Admin", "owner": contact.owner_id,
            "business_unit": contact.business_unit_id, "gender": "", "source": "",
            "emails-TOTAL_FORMS": "2", "emails-INITIAL_FORMS": "2",
            "emails-0-id": a.pk, "emails-0-contact": contact.pk, "emails-0-email": a.email,
            "emails-1-id": b.pk, "emails-1-contact": contact.pk, "emails-1-email": b.email,
            "emails-1-is_primary": "on"}
    for prefix in ("phones", "addresses", "customer_assignments"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = client.post(f"/admin/contacts/contact/{contact.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    contact.refresh_from_db()
    assert contact.email == "b@example.com"
    # The copied primary is in the contact's history too (not an update behind its back).
    assert contact.history.latest("history_id").email == "b@example.com"


def test_account_page_lists_its_visible_contacts(org, client_for):
    account = account_of(org, "east_rep", "Initech")
    mine = own(org, "east_rep", last_name="Mine", accounts=[account])
    theirs = own(org, "west_rep", last_name="Theirs", accounts=[account])
    from crm.services import share_record

    share_record(account, org.user("east_rep"), org.user("west_rep"), "view")
    page = client_for(org.user("west_rep")).get(reverse("accounts:detail", args=[account.pk]))
    assert [c.pk for c in page.context["account_contacts"]] == [theirs.pk]
    assert "Mine" not in page.content.decode()
    page = client_for(org.user("east_manager")).get(reverse("accounts:detail", args=[account.pk]))
    assert [c.pk for c in page.context["account_contacts"]] == [mine.pk]
