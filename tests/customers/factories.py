"""Factories for business customers, their emails and phones, and activities."""
import factory
from factory.django import DjangoModelFactory

from activities.models import Activity
from customers.models import BusinessCustomer, CustomerEmail, CustomerPhone, Location, LocationTag
from tests.factories import AccountFactory, BusinessUnitFactory, ChannelFactory, UserFactory


class BusinessCustomerFactory(DjangoModelFactory):
    """A customer of `owner` (a new Sales Representative by default) in his primary unit,
    in the active channel "Direct Sales", under a new account owned the same way."""

    class Meta:
        model = BusinessCustomer

    name = factory.Sequence(lambda n: f"Customer {n}")
    channel = factory.SubFactory(ChannelFactory, name="Direct Sales")
    owner = factory.SubFactory(
        UserFactory, role="Sales Representative", units=factory.LazyFunction(lambda: [BusinessUnitFactory()])
    )
    business_unit = factory.LazyAttribute(lambda o: o.owner.primary_unit)
    account = factory.SubFactory(
        AccountFactory, name=factory.SelfAttribute("..name"),
        owner=factory.SelfAttribute("..owner"), business_unit=factory.SelfAttribute("..business_unit"),
    )
    billing_city = "Boston"
    billing_country = "US"
    lifetime_value = 1000
    currency = "USD"


class CustomerEmailFactory(DjangoModelFactory):
    class Meta:
        model = CustomerEmail

    customer = factory.SubFactory(BusinessCustomerFactory)
    email = factory.Sequence(lambda n: f"contact{n}@example.com")
    is_primary = False


class CustomerPhoneFactory(DjangoModelFactory):
    class Meta:
        model = CustomerPhone

    customer = factory.SubFactory(BusinessCustomerFactory)
    phone = factory.Sequence(lambda n: f"+1 555 {n:04d}")
    is_primary = False


class ActivityFactory(DjangoModelFactory):
    """A note on `target` (a new customer by default) written by the target's owner."""

    class Meta:
        model = Activity

    target = factory.SubFactory(BusinessCustomerFactory)
    kind = Activity.Kind.NOTE
    subject = factory.Sequence(lambda n: f"Note {n}")
    body = "Discussed the renewal."
    created_by = factory.LazyAttribute(lambda o: o.target.owner)


def location_tag(name):
    """One of the seeded location tags (billing, shipping, pickup, delivery, returns)."""
    return LocationTag.objects.get_or_create(name=name)[0]


class LocationFactory(DjangoModelFactory):
    """A warehouse of `customer` (a new customer by default) in Hamburg; `tags` names tags."""

    class Meta:
        model = Location
        skip_postgeneration_save = True

    customer = factory.SubFactory(BusinessCustomerFactory)
    name = factory.Sequence(lambda n: f"Location {n}")
    type = Location.Type.WAREHOUSE
    street = "Hafenstraße 1"
    city = "Hamburg"
    postal_code = "20457"
    country = "DE"

    @factory.post_generation
    def tags(self, create, names, **kwargs):
        if create and names:
            self.tags.set([location_tag(n) for n in names])
