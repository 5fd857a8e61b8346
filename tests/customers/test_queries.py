"""The record page costs the same number of queries with 10 or 200+ phones, emails,
activities and sibling customers; so do the grid and the export with phones and emails."""
import customers.views  # noqa: F401  (declares the entity)
from activities.models import Activity
from customers.models import BusinessCustomer, CustomerEmail, CustomerPhone
from tests.factories import ChannelFactory
from tests.toolkit import count_queries

from .factories import BusinessCustomerFactory


def grow(customer, count, start):
    CustomerEmail.objects.bulk_create(
        [CustomerEmail(customer=customer, email=f"e{start + i}@example.com") for i in range(count)])
    CustomerPhone.objects.bulk_create(
        [CustomerPhone(customer=customer, phone=f"+1 555 {start + i:05d}") for i in range(count)])
    Activity.objects.bulk_create([
        Activity(target=customer, kind=kind, subject=f"{kind} {start + i}", created_by=customer.owner,
                 direction="out" if kind == "call" else "", to_address="a@example.com" if kind == "email" else "")
        for i in range(count) for kind in ("call", "task")])
    BusinessCustomer.objects.bulk_create([
        BusinessCustomer(name=f"Sibling {customer.pk}-{start + i}", channel=customer.channel, account=customer.account,
                         owner=customer.owner, business_unit=customer.business_unit) for i in range(count)])


def test_record_page_queries_do_not_grow(org, client_for, django_assert_num_queries):
    for viewer in ("east_rep", "east_manager", "admin"):
        rep = org.user("east_rep")
        customer = BusinessCustomerFactory(owner=rep, business_unit=org.unit("East"),
                                           channel=ChannelFactory(name="Direct Sales"))
        client = client_for(org.user(viewer))
        grow(customer, 10, 0)
        url = f"/customers/{customer.pk}/"
        client.get(url)
        few, response = count_queries(lambda: client.get(url))
        assert len(response.context["activities"]) == 20
        grow(customer, 200, 1000)
        with django_assert_num_queries(few):
            response = client.get(url)
        assert len(response.context["activities"]) == 50 and response.context["activity_total"] == 420
        assert len(response.context["emails"]) == 210


def test_grid_and_export_with_phones_and_emails(org, client_for, django_assert_num_queries):
    client = client_for(org.user("east_manager"))
    channel = ChannelFactory(name="Direct Sales")
    first = BusinessCustomerFactory(owner=org.user("east_rep"), business_unit=org.unit("East"), channel=channel)
    grow(first, 10, 0)

    def both():
        grid = client.get("/customers/", {"per_page": 250, "sort": "-lifetime_value"})
        export = b"".join(client.get("/customers/export/", {"sort": "account"}).streaming_content)
        return grid, export

    both()
    few, _ = count_queries(both)
    grow(first, 240, 1000)
    with django_assert_num_queries(few):
        grid, export = both()
    assert len(grid.context["table"].page.object_list) == 250
    assert export.count(b"\n") == 252
