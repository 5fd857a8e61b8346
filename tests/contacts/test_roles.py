"""Contact roles at business customers: several at once from both record pages, one primary
per customer, propagation up or down the subsidiary tree (copies know their origin and go
with it), the customer groups (join Contact, move, leave) and the approval group."""
import pytest
from django.urls import reverse

from contacts.models import ContactCustomerAssignment as Assignment
from contacts.services import assign_roles
from customers.models import CustomerGroup, CustomerGroupMember
from customers.services import create_predefined_groups
from tests.customers.factories import BusinessCustomerFactory
from tests.toolkit import count_queries

from .factories import ContactFactory

pytestmark = pytest.mark.django_db


def customer_of(org, username, name, **kwargs):
    user = org.user(username)
    return BusinessCustomerFactory(name=name, owner=user, business_unit=user.primary_unit, **kwargs)


def contact_of(org, username, last_name, *customers):
    user = org.user(username)
    accounts = list({c.account_id: c.account for c in customers}.values())
    return ContactFactory(owner=user, business_unit=user.primary_unit, last_name=last_name, accounts=accounts)


def roles(contact, customer):
    return sorted(Assignment.objects.filter(contact=contact, customer=customer).values_list("type", flat=True))


def group_of(contact, customer):
    member = CustomerGroupMember.objects.filter(contact=contact, customer=customer).select_related("group").first()
    return member and member.group.kind


def assign_url(customer):
    return reverse("contacts:customer_assign", args=[customer.pk])


def follow_messages(client, url, data):
    response = client.post(url, data, follow=True)
    return " ".join(str(m) for m in response.context["messages"])


# -- several roles, one primary -------------------------------------------------------------------

def test_several_roles_at_once_from_the_contact_page(org, client_for):
    rep = org.user("east_rep")
    customer = customer_of(org, "east_rep", "Initech US")
    contact = contact_of(org, "east_rep", "Multi", customer)
    client = client_for(rep)
    response = client.post(reverse("contacts:assign_customer", args=[contact.pk]),
                           {"customer": customer.pk, "type": ["billing", "logistics", "contact"]})
    assert response.status_code == 302
    assert roles(contact, customer) == ["billing", "contact", "logistics"]
    assert all(a.history.get().history_user == rep for a in Assignment.objects.filter(contact=contact))
    # He joins the customer's Contact group, recorded in its history.
    assert group_of(contact, customer) == "contact"
    assert CustomerGroupMember.history.get(contact_id=contact.pk).history_user == rep
    page = client.get(reverse("contacts:detail", args=[contact.pk])).content.decode()
    assert page.count("Initech US") >= 3 and "Logistics" in page

    # A role he already has: refused with the reason, nothing added.
    text = follow_messages(client, reverse("contacts:assign_customer", args=[contact.pk]),
                           {"customer": customer.pk, "type": ["billing", "primary"]})
    assert "already has the role billing" in text
    assert roles(contact, customer) == ["billing", "contact", "logistics"]
    # No role ticked.
    text = follow_messages(client, reverse("contacts:assign_customer", args=[contact.pk]), {"customer": customer.pk})
    assert "Tick at least one role" in text


def test_one_primary_per_customer_named_only_if_visible(org, client_for):
    rep = org.user("east_rep")
    customer = customer_of(org, "east_rep", "Initech US")
    first = contact_of(org, "east_rep", "Firstprimary", customer)
    second = contact_of(org, "east_rep", "Secondprimary", customer)
    client = client_for(rep)
    client.post(assign_url(customer), {"contact": first.pk, "type": ["primary"]})
    assert roles(first, customer) == ["primary"]
    text = follow_messages(client, assign_url(customer), {"contact": second.pk, "type": ["primary", "billing"]})
    assert "already has a primary contact (Ann" in text and "Firstprimary" in text
    assert roles(second, customer) == []

    # The holder is a contact the manager's colleague cannot see: not named.
    west = org.user("west_rep")
    hidden_holder = contact_of(org, "west_rep", "Hiddenholder", customer)
    Assignment.objects.filter(contact=first).delete()
    Assignment.objects.create(contact=hidden_holder, customer=customer, type="primary")
    text = follow_messages(client, assign_url(customer), {"contact": second.pk, "type": ["primary"]})
    assert "a contact you may not see" in text and "Hiddenholder" not in text
    assert roles(second, customer) == [] and west.pk


def test_customer_page_assigns_with_a_contact_search_of_editable_contacts(org, client_for):
    rep, colleague = org.user("east_rep"), org.user("east_rep2")
    customer = customer_of(org, "east_rep", "Initech US")
    mine = contact_of(org, "east_rep", "Mineassign", customer)
    # east_rep sees his unit's contacts but may not edit a colleague's.
    theirs = contact_of(org, "east_rep2", "Theirsassign", customer)
    contact_of(org, "east_rep", "Otheraccount")
    client = client_for(rep)
    page = client.get(reverse("customers:detail", args=[customer.pk]))
    form = page.context["customer_assignment_form"]
    assert list(form.fields["contact"].queryset) == [mine]
    options = client.get(reverse("contacts:assignable", args=[customer.pk]), {"q": "assign"}).content.decode()
    assert "Mineassign" in options and "Theirsassign" not in options
    assert client.get(reverse("contacts:assignable", args=[customer.pk]), {"q": "Other"}).content.decode().count(
        "Otheraccount") == 0

    response = client.post(assign_url(customer), {"contact": mine.pk, "type": ["billing", "logistics"]})
    assert response.status_code == 302
    assert roles(mine, customer) == ["billing", "logistics"]
    text = follow_messages(client, assign_url(customer), {"contact": theirs.pk, "type": ["billing"]})
    assert "that you may edit" in text and roles(theirs, customer) == []

    page = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert "Mineassign" in page and "Billing" in page and "Logistics" in page
    assert colleague.pk


def test_unassign_one_role_or_all(org, client_for):
    rep = org.user("east_rep")
    customer = customer_of(org, "east_rep", "Initech US")
    contact = contact_of(org, "east_rep", "Leaver", customer)
    client = client_for(rep)
    client.post(assign_url(customer), {"contact": contact.pk, "type": ["billing", "logistics", "primary"]})
    remove = reverse("contacts:customer_unassign", args=[customer.pk, contact.pk])
    assert client.post(remove, {"type": "billing"}).status_code == 302
    assert roles(contact, customer) == ["logistics", "primary"]
    assert group_of(contact, customer) == "contact"
    assert client.post(remove, {"type": "billing"}).status_code == 404
    assert client.post(remove).status_code == 302
    assert roles(contact, customer) == [] and group_of(contact, customer) is None
    deleted = Assignment.history.filter(contact_id=contact.pk, history_type="-")
    assert deleted.count() == 3 and {h.history_user for h in deleted} == {rep}


# -- propagation ---------------------------------------------------------------------------------

@pytest.fixture
def tree(org):
    """root <- middle <- leaf, all of east_rep, one account."""
    root = customer_of(org, "east_rep", "Root Holding")
    middle = customer_of(org, "east_rep", "Middle GmbH", account=root.account, parent=root)
    leaf = customer_of(org, "east_rep", "Leaf Ltd", account=root.account, parent=middle)
    return root, middle, leaf


def test_propagation_down_copies_with_origin_and_cascade(org, client_for, tree):
    root, middle, leaf = tree
    root.assignment_propagation = "down"
    root.save()
    rep = org.user("east_rep")
    holder = contact_of(org, "east_rep", "Leafprimary", root)
    Assignment.objects.create(contact=holder, customer=leaf, type="primary")
    contact = contact_of(org, "east_rep", "Propagated", root)
    client = client_for(rep)
    client.post(assign_url(root), {"contact": contact.pk, "type": ["primary", "billing"]})
    origins = {a.type: a for a in Assignment.objects.filter(contact=contact, customer=root)}
    assert set(origins) == {"primary", "billing"} and all(a.origin_id is None for a in origins.values())
    assert roles(contact, middle) == ["billing", "primary"]
    # The leaf already has a primary contact: only billing is copied there.
    assert roles(contact, leaf) == ["billing"]
    for copy in Assignment.objects.filter(contact=contact).exclude(customer=root):
        assert copy.origin == origins[copy.type]
        assert copy.history.get().history_user == rep
    assert group_of(contact, middle) == "contact" and group_of(contact, leaf) == "contact"
    page = client.get(reverse("customers:detail", args=[leaf.pk])).content.decode()
    assert "via" in page and reverse("customers:detail", args=[root.pk]) in page

    # Removing the origin removes its copies, and with the last role the memberships go.
    client.post(reverse("contacts:customer_unassign", args=[root.pk, contact.pk]), {"type": "billing"})
    assert roles(contact, leaf) == [] and roles(contact, middle) == ["primary"]
    assert group_of(contact, leaf) is None and group_of(contact, middle) == "contact"
    client.post(reverse("contacts:customer_unassign", args=[root.pk, contact.pk]))
    assert not Assignment.objects.filter(contact=contact).exists()
    assert not CustomerGroupMember.objects.filter(contact=contact).exists()


def test_propagation_up_and_none(org, client_for, tree):
    root, middle, leaf = tree
    leaf.assignment_propagation = "up"
    leaf.save()
    client = client_for(org.user("east_rep"))
    contact = contact_of(org, "east_rep", "Upwards", root)
    already = Assignment.objects.create(contact=contact, customer=root, type="logistics")
    client.post(assign_url(leaf), {"contact": contact.pk, "type": ["logistics", "contact"]})
    assert roles(contact, middle) == ["contact", "logistics"]
    assert roles(contact, root) == ["contact", "logistics"]
    assert Assignment.objects.get(pk=already.pk).origin_id is None  # his own role stays his own
    assert Assignment.objects.get(contact=contact, customer=root, type="contact").origin.customer == leaf

    # None: nothing is copied; down from the middle reaches the leaf only.
    other = contact_of(org, "east_rep", "Nowhere", root)
    client.post(assign_url(root), {"contact": other.pk, "type": ["billing"]})
    assert Assignment.objects.filter(contact=other).count() == 1
    middle.assignment_propagation = "down"
    middle.save()
    client.post(assign_url(middle), {"contact": other.pk, "type": ["billing"]})
    assert roles(other, leaf) == ["billing"] and roles(other, root) == ["billing"]
    assert Assignment.objects.get(contact=other, customer=root).origin_id is None


def test_a_copy_from_a_hidden_customer_says_so_without_its_name(org, client_for):
    west, east = org.user("west_rep"), org.user("east_rep")
    parent = customer_of(org, "west_rep", "Secret Parent", account__name="Shared Group")
    child = customer_of(org, "east_rep", "Visible Child", account=parent.account, parent=parent)
    contact = contact_of(org, "east_rep", "Viaperson", parent)
    origin = Assignment.objects.create(contact=contact, customer=parent, type="billing")
    Assignment.objects.create(contact=contact, customer=child, type="billing", origin=origin)
    for url in (reverse("customers:detail", args=[child.pk]), reverse("contacts:detail", args=[contact.pk])):
        page = client_for(east).get(url).content.decode()
        assert "a customer you may not see" in page and "Secret Parent" not in page
    assert west.pk


# -- groups --------------------------------------------------------------------------------------

def test_staff_move_a_contact_between_groups(org, client_for):
    manager = org.user("east_manager")
    customer = customer_of(org, "east_rep", "Initech US")
    contact = contact_of(org, "east_rep", "Mover", customer)
    client_for(org.user("east_rep")).post(assign_url(customer), {"contact": contact.pk, "type": ["contact"]})
    client = client_for(manager)
    move = reverse("contacts:customer_group", args=[customer.pk, contact.pk])
    for kind in ("buyer", "admin", "requester", "contact"):
        assert client.post(move, {"kind": kind}).status_code == 302
        assert group_of(contact, customer) == kind
    member = CustomerGroupMember.objects.get(contact=contact, customer=customer)
    assert member.history.filter(history_user=manager).count() == 4
    text = follow_messages(client, move, {"kind": "vip"})
    assert "Choose one of the groups" in text and group_of(contact, customer) == "contact"
    # A contact without a role there has no group to move.
    stranger = contact_of(org, "east_rep", "Stranger", customer)
    text = follow_messages(client, reverse("contacts:customer_group", args=[customer.pk, stranger.pk]),
                           {"kind": "buyer"})
    assert "has no role" in text and group_of(stranger, customer) is None
    page = client.get(reverse("customers:detail", args=[customer.pk]))
    assert [r["group"].kind for r in page.context["customer_contacts"]] == ["contact"]


def test_predefined_groups_come_with_the_first_member_and_go_with_the_customer(org):
    customer = customer_of(org, "east_rep", "Grouped")
    assert not CustomerGroup.objects.filter(customer=customer).exists()
    contact = contact_of(org, "east_rep", "Joiner", customer)
    assign_roles(contact, customer, ["billing"], org.user("east_rep"))
    assert sorted(CustomerGroup.objects.filter(customer=customer).values_list("kind", flat=True)) == [
        "admin", "buyer", "contact", "requester"]
    assert group_of(contact, customer) == "contact"
    customer.delete()
    assert not CustomerGroup.objects.filter(customer_id=customer.pk).exists()


# -- approval group ------------------------------------------------------------------------------

def test_approval_group_is_chosen_among_assigned_contacts(org, client_for):
    rep = org.user("east_rep")
    customer = customer_of(org, "east_rep", "Initech US")
    assigned = contact_of(org, "east_rep", "Approver", customer)
    outsider = contact_of(org, "east_rep", "Outsider", customer)
    client = client_for(rep)
    client.post(assign_url(customer), {"contact": assigned.pk, "type": ["billing"]})
    url = reverse("contacts:customer_approvers", args=[customer.pk])
    form = client.get(reverse("customers:detail", args=[customer.pk])).context["approvers_form"]
    assert list(form.fields["approvers"].queryset) == [assigned]
    text = follow_messages(client, url, {"approvers": [outsider.pk]})
    assert "Choose contacts with a role at this customer" in text and not customer.approvers.exists()
    client.post(url, {"approvers": [assigned.pk]})
    assert list(customer.approvers.all()) == [assigned]
    entry = customer.history.latest("history_date")
    assert entry.history_user == rep and "Approval group" in entry.history_change_reason
    # When his last role there goes, he leaves the approval group too.
    client.post(reverse("contacts:customer_unassign", args=[customer.pk, assigned.pk]))
    assert not customer.approvers.exists()


def test_hidden_approvers_are_kept_and_not_named(org, client_for):
    customer = customer_of(org, "east_rep", "Initech US")
    hidden = contact_of(org, "west_rep", "Hiddenapprover", customer)
    seen = contact_of(org, "east_rep", "Seenapprover", customer)
    for c in (hidden, seen):
        Assignment.objects.create(contact=c, customer=customer, type="billing")
    customer.approvers.add(hidden)
    client = client_for(org.user("east_rep"))
    page = client.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert "Hiddenapprover" not in page
    client.post(reverse("contacts:customer_approvers", args=[customer.pk]), {"approvers": [seen.pk]})
    assert set(customer.approvers.all()) == {hidden, seen}
    page = client_for(org.user("east_rep2")).get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert "Seenapprover" in page and "1 contact you may not see" in page


# -- access --------------------------------------------------------------------------------------

def test_access_to_the_customer_contacts_section(org, client_for):
    customer = customer_of(org, "east_rep", "Initech US")
    contact = contact_of(org, "east_rep", "Guarded", customer)
    hidden = contact_of(org, "west_rep", "Hiddencontact", customer)
    client_for(org.user("east_rep")).post(assign_url(customer), {"contact": contact.pk, "type": ["billing"]})
    Assignment.objects.create(contact=hidden, customer=customer, type="logistics")
    writes = [
        (assign_url(customer), {"contact": contact.pk, "type": ["logistics"]}),
        (reverse("contacts:customer_unassign", args=[customer.pk, contact.pk]), {}),
        (reverse("contacts:customer_group", args=[customer.pk, contact.pk]), {"kind": "buyer"}),
        (reverse("contacts:customer_approvers", args=[customer.pk]), {"approvers": [contact.pk]}),
    ]
    before = (list(Assignment.objects.order_by("pk").values_list("pk", "type")), group_of(contact, customer))

    # West cannot see the customer: 404 everywhere, also the contact search.
    west = client_for(org.user("west_rep"))
    for url, data in writes:
        assert west.post(url, data).status_code == 404, url
    assert west.get(reverse("contacts:assignable", args=[customer.pk]), {"q": "G"}).status_code == 404
    # A colleague of the same unit sees it but may not change it: 403, and no forms.
    colleague = client_for(org.user("east_rep2"))
    for url, data in writes:
        assert colleague.post(url, data).status_code == 403, url
    assert colleague.get(reverse("contacts:assignable", args=[customer.pk]), {"q": "G"}).status_code == 403
    page = colleague.get(reverse("customers:detail", args=[customer.pk]))
    assert "customer_assignment_form" not in page.context and 'name="kind"' not in page.content.decode()
    assert (list(Assignment.objects.order_by("pk").values_list("pk", "type")), group_of(contact, customer)) == before

    # The owner does not see West's contact on his customer; he cannot touch its roles either.
    owner = client_for(org.user("east_rep"))
    page = owner.get(reverse("customers:detail", args=[customer.pk])).content.decode()
    assert "Guarded" in page and "Hiddencontact" not in page
    for url in (reverse("contacts:customer_unassign", args=[customer.pk, hidden.pk]),
                reverse("contacts:customer_group", args=[customer.pk, hidden.pk])):
        assert owner.post(url, {"kind": "buyer"}).status_code == 404
    assert Assignment.objects.filter(contact=hidden).exists()


def test_a_rep_cannot_remove_a_role_at_a_customer_he_cannot_change(org, client_for):
    """From the contact's page: he may edit the contact, but the role belongs to a customer
    he only sees."""
    customer = customer_of(org, "east_rep2", "Colleague's Customer")
    contact = contact_of(org, "east_rep", "Ownedcontact", customer)
    assignment = Assignment.objects.create(contact=contact, customer=customer, type="billing")
    client = client_for(org.user("east_rep"))
    page = client.get(reverse("contacts:detail", args=[contact.pk]))
    assert list(page.context["assignment_form"].fields["customer"].queryset) == []
    assert not page.context["assignments"][0].can_remove
    assert client.post(reverse("contacts:unassign_customer", args=[contact.pk, assignment.pk])).status_code == 403
    assert client.post(reverse("contacts:assign_customer", args=[contact.pk]),
                       {"customer": customer.pk, "type": ["logistics"]}).status_code == 302
    assert roles(contact, customer) == ["billing"]
    assert client.post(reverse("contacts:customer_group", args=[customer.pk, contact.pk]),
                       {"kind": "buyer"}).status_code == 403


# -- query counts --------------------------------------------------------------------------------

def test_customer_page_queries_do_not_grow_with_its_contacts(org, client_for):
    root = customer_of(org, "east_rep", "Root")
    customer = customer_of(org, "east_rep", "Busy", account=root.account, parent=root)
    client = client_for(org.user("east_rep"))
    create_predefined_groups([customer.pk])  # the members below are made by hand

    def add(n):
        for i in range(n):
            contact = contact_of(org, "east_rep", f"Busy{i}", customer)
            origin = Assignment.objects.create(contact=contact, customer=root, type="billing")
            Assignment.objects.create(contact=contact, customer=customer, type="billing", origin=origin)
            Assignment.objects.create(contact=contact, customer=customer, type="logistics")
            CustomerGroupMember.objects.create(contact=contact, customer=customer,
                                               group=customer.groups.get(kind="buyer"))
            customer.approvers.add(contact)

    url = reverse("customers:detail", args=[customer.pk])
    add(2)
    client.get(url)
    few, _ = count_queries(lambda: client.get(url))
    add(8)
    many, page = count_queries(lambda: client.get(url))
    assert many == few and page.content.decode().count("Busy") >= 10


def test_roles_given_in_the_admin_propagate_and_join_the_contact_group(org, client_for, tree):
    root, middle, leaf = tree
    root.assignment_propagation = "down"
    root.save()
    admin = org.user("admin")
    contact = contact_of(org, "east_rep", "Adminmade", root)
    response = client_for(admin).post(reverse("admin:contacts_contactcustomerassignment_add"),
                                      {"contact": contact.pk, "customer": root.pk, "type": "billing"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert roles(contact, root) == roles(contact, middle) == roles(contact, leaf) == ["billing"]
    assert group_of(contact, root) == group_of(contact, leaf) == "contact"
