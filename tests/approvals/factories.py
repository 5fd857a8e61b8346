"""B2B customers with group members, purchase requests and approvals, built directly
(assignments and group rows included) so these tests do not depend on the contact UI."""
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from approvals.models import ApprovalRequest, PurchaseRequest
from contacts.models import ContactCustomerAssignment
from customers.models import CustomerGroup, CustomerGroupMember
from customers.services import create_predefined_groups
from tests.contacts.factories import ContactFactory
from tests.customers.factories import BusinessCustomerFactory


def b2b_customer(owner=None, unit=None, limit=None, budget=None, **kwargs):
    """A customer with its predefined groups, a purchase limit and a monthly budget."""
    if owner is not None:
        kwargs.update(owner=owner, business_unit=unit or owner.primary_unit)
    customer = BusinessCustomerFactory(purchase_limit=None if limit is None else Decimal(str(limit)),
                                       monthly_budget=None if budget is None else Decimal(str(budget)), **kwargs)
    create_predefined_groups([customer.pk])
    return customer


def member(customer, kind, email=None, **kwargs):
    """A contact assigned to `customer` and in its group `kind` (admin, buyer, requester, contact)."""
    contact = ContactFactory(owner=customer.owner, business_unit=customer.business_unit,
                             emails=[email] if email else [], **kwargs)
    ContactCustomerAssignment.objects.create(contact=contact, customer=customer,
                                             type=ContactCustomerAssignment.Type.CONTACT)
    CustomerGroupMember.objects.create(customer=customer, contact=contact,
                                       group=CustomerGroup.objects.get(customer=customer, kind=kind))
    return contact


class PurchaseRequestFactory(DjangoModelFactory):
    """A request (approved unless told) of a requester contact of `customer`."""

    class Meta:
        model = PurchaseRequest

    customer = factory.LazyFunction(b2b_customer)
    requester = factory.LazyAttribute(lambda o: member(o.customer, "requester"))
    title = factory.Sequence(lambda n: f"Request {n}")
    total = Decimal("100.00")
    currency = "USD"
    approved = True


class ApprovalFactory(DjangoModelFactory):
    """A Pending approval of a new request, expiring in a week."""

    class Meta:
        model = ApprovalRequest

    purchase_request = factory.SubFactory(PurchaseRequestFactory, approved=False)
    customer = factory.LazyAttribute(lambda o: o.purchase_request.customer)
    requester = factory.LazyAttribute(lambda o: o.purchase_request.requester)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
    reason = "Requester's request"
