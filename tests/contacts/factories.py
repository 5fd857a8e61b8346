"""Factories for contacts, their emails, phones and addresses, and contact groups.

`ContactFactory(emails=["a@x.com", "b@x.com"], phones=["+1 555 0100"], accounts=[acc])`
adds the child rows (the first one primary) and keeps the contact's copies of the primary
email and phone in step, as contacts.services does."""
import factory
from factory.django import DjangoModelFactory

from contacts.models import Contact, ContactAddress, ContactCustomerAssignment, ContactEmail, ContactGroup, ContactPhone
from tests.factories import BusinessUnitFactory, UserFactory


class ContactGroupFactory(DjangoModelFactory):
    class Meta:
        model = ContactGroup
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Group {n}")
    description = ""


class ContactFactory(DjangoModelFactory):
    """A contact of `owner` (a new Sales Representative by default) in his primary unit."""

    class Meta:
        model = Contact
        skip_postgeneration_save = True

    # Not Faker: a random first name can match another test's name filter by chance.
    first_name = factory.Sequence(lambda n: f"Ann{n}")
    last_name = factory.Sequence(lambda n: f"Contact {n}")
    job_title = ""
    owner = factory.SubFactory(
        UserFactory, role="Sales Representative", units=factory.LazyFunction(lambda: [BusinessUnitFactory()])
    )
    business_unit = factory.LazyAttribute(lambda o: o.owner.primary_unit)

    @classmethod
    def _create(cls, model_class, *args, emails=(), phones=(), accounts=(), groups=(), address=None, **kwargs):
        emails = [e.lower() for e in emails]
        kwargs.setdefault("email", emails[0] if emails else "")
        kwargs.setdefault("phone", phones[0] if phones else "")
        contact = super()._create(model_class, *args, **kwargs)
        ContactEmail.objects.bulk_create(
            [ContactEmail(contact=contact, email=e, is_primary=i == 0) for i, e in enumerate(emails)])
        ContactPhone.objects.bulk_create(
            [ContactPhone(contact=contact, phone=p, is_primary=i == 0) for i, p in enumerate(phones)])
        if accounts:
            contact.accounts.add(*accounts)
        if groups:
            contact.groups.add(*groups)
        if address:
            ContactAddress.objects.create(contact=contact, is_primary=True, **address)
        return contact


class AssignmentFactory(DjangoModelFactory):
    class Meta:
        model = ContactCustomerAssignment

    contact = factory.SubFactory(ContactFactory)
    type = ContactCustomerAssignment.Type.BILLING
