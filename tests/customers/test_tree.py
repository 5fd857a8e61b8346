"""Company structure: parent companies, the tree on the record page, the grid's tree filter
and Parent column, the refusals (cycles, depth, channel) in the form and the admin."""
import pytest
from django.test.utils import CaptureQueriesContext
from django.db import connection

import customers.views  # noqa: F401  (declares the entity)
from customers.models import BusinessCustomer, CustomerGroup
from customers.tree import ancestor_map, parent_refusal, subtree_heights, tree_ids
from tests.factories import ChannelFactory

from .factories import BusinessCustomerFactory
from .test_access import formset_management


@pytest.fixture
def direct(db):
    return ChannelFactory(name="Direct Sales")


def make(org, owner, name, parent=None, channel=None):
    user = org.user(owner)
    return BusinessCustomerFactory(name=name, owner=user, business_unit=user.primary_unit, parent=parent,
                                   **({"channel": channel} if channel else {}))


def chain(org, owner, n, prefix="Level", channel=None):
    nodes, parent = [], None
    for i in range(n):
        parent = make(org, owner, f"{prefix} {i}", parent, channel)
        nodes.append(parent)
    return nodes


def edit_data(customer, **extra):
    data = {"name": customer.name, "channel": customer.channel_id, "account": customer.account_id,
            "lifetime_value": "0", "currency": "USD", **formset_management()}
    data.update({k: "" if v is None else v for k, v in extra.items()})
    return data


def post_edit(client, customer, **extra):
    return client.post(f"/customers/{customer.pk}/edit/", edit_data(customer, **extra))


# -- the form -------------------------------------------------------------------------------

def test_form_sets_the_parent_and_purchasing(org, client_for, direct):
    rep = org.user("east_rep")
    parent, child = make(org, "east_rep", "Holding"), make(org, "east_rep", "Daughter")
    response = post_edit(client_for(rep), child, parent=parent.pk, purchase_limit="5000.00",
                         monthly_budget="20000", approval_expiry_days="14", assignment_propagation="up",
                         registration_agency="Amtsgericht Berlin", registration_country="DE")
    assert response.status_code == 302, response.context["form"].errors
    child.refresh_from_db()
    assert child.parent == parent and str(child.purchase_limit) == "5000.00"
    assert (child.approval_expiry_days, child.assignment_propagation) == (14, "up")
    assert child.registration_country == "DE" and child.history.first().history_user == rep
    page = client_for(rep).get(f"/customers/{child.pk}/").content.decode()
    assert "Amtsgericht Berlin" in page and "5,000.00 USD" in page and "Up to the parent companies" in page


def test_left_out_purchasing_fields_keep_their_values(org, client_for, direct):
    rep = org.user("east_rep")
    customer = make(org, "east_rep", "Keeper")
    BusinessCustomer.objects.filter(pk=customer.pk).update(approval_expiry_days=30, assignment_propagation="down")
    assert post_edit(client_for(rep), customer).status_code == 302
    customer.refresh_from_db()
    assert (customer.approval_expiry_days, customer.assignment_propagation) == (30, "down")


def test_form_refuses_a_cycle_and_its_own_parent(org, client_for, direct):
    rep = org.user("east_rep")
    top, middle, bottom = chain(org, "east_rep", 3)
    client = client_for(rep)
    for parent in (bottom, middle):
        response = post_edit(client, top, parent=parent.pk)
        assert response.status_code == 400
        assert "cycle" in response.context["form"].errors["parent"][0]
    # Itself is not even offered.
    response = post_edit(client, top, parent=top.pk)
    assert response.status_code == 400 and "parent" in response.context["form"].errors
    top.refresh_from_db()
    assert top.parent_id is None


def test_form_refuses_a_tree_deeper_than_the_setting(org, client_for, direct, settings):
    settings.CRM_MAX_TREE_DEPTH = 3
    rep = org.user("east_rep")
    levels = chain(org, "east_rep", 3)
    other = chain(org, "east_rep", 2, prefix="Other")
    client = client_for(rep)
    response = post_edit(client, other[0], parent=levels[-1].pk)  # 3 + 2 levels
    assert response.status_code == 400
    assert response.context["form"].errors["parent"] == [
        "The subsidiary tree would be 5 levels deep; at most 3 are allowed."]
    assert post_edit(client, other[0], parent=levels[0].pk).status_code == 302  # 1 + 2 levels


def test_parent_must_be_of_the_same_channel_and_offered_from_it(org, client_for, direct):
    rep = org.user("east_rep")
    web = ChannelFactory(name="Web Store", type="commerce")
    child = make(org, "east_rep", "Direct Child")
    other = make(org, "east_rep", "Web Parent", channel=web)
    same = make(org, "east_rep", "Direct Parent")
    client = client_for(rep)
    response = post_edit(client, child, parent=other.pk)
    assert "same channel" in response.context["form"].errors["parent"][0]
    options = client.get("/customers/autocomplete/", {"q": "Parent", "channel": direct.pk}).content.decode()
    assert "Direct Parent" in options and "Web Parent" not in options
    form = client.get(f"/customers/{child.pk}/edit/").content.decode()
    assert "#id_parent, #id_channel" in form
    # A customer with subsidiaries keeps its channel.
    BusinessCustomer.objects.filter(pk=child.pk).update(parent=same)
    response = post_edit(client, same, channel=web.pk)
    assert "subsidiaries" in response.context["form"].errors["channel"][0]


def test_parent_offered_only_among_visible_customers(org, client_for, direct):
    west = make(org, "west_rep", "West Holding")
    child = make(org, "east_rep", "East Daughter")
    client = client_for(org.user("east_rep"))
    response = post_edit(client, child, parent=west.pk)
    assert response.status_code == 400 and "parent" in response.context["form"].errors
    assert "West Holding" not in client.get("/customers/autocomplete/", {"q": "West"}).content.decode()


# -- the tree helpers -------------------------------------------------------------------------

def test_batch_walks_and_refusal_with_overrides(org, direct, settings):
    a, b, c = chain(org, "east_rep", 3)
    d = make(org, "east_rep", "Loose")
    assert ancestor_map([c.pk, d.pk]) == {c.pk: b.pk, b.pk: a.pk, a.pk: None, d.pk: None}
    assert subtree_heights([a.pk, b.pk, d.pk]) == {a.pk: 2, b.pk: 1, d.pk: 0}
    assert sorted(tree_ids(b.pk)) == sorted([a.pk, b.pk, c.pk])
    # Within a file: d under c, and a under d -> a cycle through rows of the file.
    tree = {**ancestor_map([a.pk, c.pk, d.pk]), d.pk: c.pk, a.pk: d.pk}
    assert "cycle" in parent_refusal(a.pk, d.pk, tree, subtree_heights([a.pk]))
    settings.CRM_MAX_TREE_DEPTH = 3
    assert "5 levels" in parent_refusal(("new", 1), d.pk, {("new", 1): d.pk, d.pk: c.pk, **ancestor_map([c.pk])}, {})


# -- the record page --------------------------------------------------------------------------

def test_record_page_shows_the_tree_with_hidden_nodes(org, client_for, direct, django_assert_max_num_queries):
    root = make(org, "west_rep", "Secret Root Holding")
    middle = make(org, "east_rep", "Visible Middle", root)
    hidden_child = make(org, "west_rep", "Secret Child Ltd", middle)
    make(org, "east_rep", "Visible Grandchild", hidden_child)
    make(org, "east_rep", "Visible Sibling", middle)
    client = client_for(org.user("east_rep"))
    page = client.get(f"/customers/{middle.pk}/").content.decode()
    assert "Secret" not in page
    assert page.count('data-testid="tree-hidden"') == 2
    assert 'data-testid="tree-current">Visible Middle' in page
    assert page.count('data-testid="tree-node"') == 2 and "Visible Grandchild" in page
    assert 'data-level="3"' in page  # the grandchild, under the hidden child
    # The parent company line says "hidden" without its name.
    assert "Parent company" in page and "Secret Root" not in page

    with CaptureQueriesContext(connection) as small:
        client.get(f"/customers/{middle.pk}/")
    for i in range(15):
        make(org, "east_rep" if i % 2 else "west_rep", f"More {i}", middle)
    with django_assert_max_num_queries(len(small)):
        response = client.get(f"/customers/{middle.pk}/")
    assert response.content.decode().count('data-testid="tree-hidden"') == 2 + 8


def test_record_page_without_tree(org, client_for, direct):
    customer = make(org, "east_rep", "Alone")
    page = client_for(org.user("east_rep")).get(f"/customers/{customer.pk}/").content.decode()
    assert "No parent company and no subsidiaries." in page


# -- the grid ----------------------------------------------------------------------------------

def test_grid_tree_filter_is_restricted(org, client_for, direct):
    root = make(org, "west_rep", "West Root")
    east_child = make(org, "east_rep", "East Child", root)
    make(org, "west_rep", "West Child", root)
    east_grandchild = make(org, "east_rep", "East Grandchild", east_child)
    make(org, "east_rep", "Unrelated")
    client = client_for(org.user("east_rep"))
    response = client.get("/customers/", {"tree": east_grandchild.pk, "per_page": 100})
    names = {row.record.name for row in response.context["table"].page.object_list}
    assert names == {"East Child", "East Grandchild"}
    # A hidden customer cannot be X: an invalid choice, no rows, nothing said of it.
    response = client.get("/customers/", {"tree": root.pk})
    assert "tree" in response.context["filter"].form.errors
    assert list(response.context["table"].page.object_list) == []
    assert "West Root" not in response.content.decode()
    _, rows = export(client, {"tree": root.pk})
    assert rows == []
    headers, rows = export(client, {"tree": east_child.pk})
    assert sorted(r[1] for r in rows) == ["East Child", "East Grandchild"]
    # The administrator sees the whole tree.
    response = client_for(org.user("admin")).get("/customers/", {"tree": east_child.pk})
    assert response.context["table"].paginator.count == 4


def export(client, params):
    from tests.toolkit import export_csv

    return export_csv(client, "customers", params)


def test_grid_parent_column_links_visible_parents_without_a_query_per_row(org, client_for, direct,
                                                                          django_assert_max_num_queries):
    visible_parent = make(org, "east_rep", "Seen Parent")
    hidden_parent = make(org, "west_rep", "Unseen Parent")
    make(org, "east_rep", "Child A", visible_parent)
    make(org, "east_rep", "Child B", hidden_parent)
    client = client_for(org.user("east_rep"))
    with CaptureQueriesContext(connection) as few:
        page = client.get("/customers/", {"per_page": 250}).content.decode()
    assert f'href="/customers/{visible_parent.pk}/">Seen Parent</a>' in page
    assert "Unseen Parent" not in page and "hidden" in page
    for i in range(30):
        make(org, "east_rep", f"Many {i}", [visible_parent, hidden_parent][i % 2])
    with django_assert_max_num_queries(len(few)):
        client.get("/customers/", {"per_page": 250})


# -- predefined groups in the admin -------------------------------------------------------------

def test_predefined_groups_are_read_only_in_the_admin_and_go_with_the_customer(org, client_for, direct):
    admin = org.user("admin")
    client = client_for(admin)
    customer = make(org, "east_rep", "Grouped")
    from customers.services import create_predefined_groups

    create_predefined_groups([customer.pk])
    group = CustomerGroup.objects.get(customer=customer, kind="admin")
    assert client.get("/admin/customers/customergroup/").status_code == 200
    assert client.get("/admin/customers/customergroup/add/").status_code == 403
    response = client.post(f"/admin/customers/customergroup/{group.pk}/change/", {"kind": "buyer"})
    assert response.status_code == 403
    assert client.post(f"/admin/customers/customergroup/{group.pk}/delete/", {"post": "yes"}).status_code == 403
    group.refresh_from_db()
    assert group.kind == "admin"
    customer.delete()
    assert not CustomerGroup.objects.filter(customer_id=customer.pk).exists()


def test_admin_form_refuses_a_cycle(org, client_for, direct):
    from customers.forms import BusinessCustomerAdminForm

    top, bottom = chain(org, "east_rep", 2)
    form_class = type("F", (BusinessCustomerAdminForm,), {"Meta": type("Meta", (), {
        "model": BusinessCustomer, "fields": ["name", "channel", "parent"]})})
    form = form_class({"name": top.name, "channel": top.channel_id, "parent": bottom.pk}, instance=top)
    assert not form.is_valid() and "cycle" in form.errors["parent"][0]
