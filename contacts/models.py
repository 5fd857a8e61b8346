from django.conf import settings
from django.contrib.contenttypes.fields import GenericRelation
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django_countries.fields import CountryField

from crm.access import restrict, restrict_through
from crm.models import History, OwnedModel, TimeStampedModel, share_models
from customers.models import BusinessCustomer

# Following a reports-to chain further than this means the data is broken, not deep.
MAX_REPORTING_DEPTH = 100

NAME_OR_EMAIL = "A contact needs a first name, a last name or an email."


class ContactGroup(TimeStampedModel):
    """An organization-wide list contacts can be put on (e.g. "Newsletter", "VIP").

    Like channels, everyone sees every group and may put contacts in it. A group is
    shared by every team, so adding, renaming and deleting groups is for Managers and
    Administrators (the seeded roles' levels); Sales Representatives use them."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    history = History()

    class Meta:
        ordering = ["name"]
        verbose_name = "contact group"

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("contact_groups:detail", args=[self.pk])


class Contact(OwnedModel):
    """A person at a client."""

    class Gender(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        OTHER = "other", "Other"

    class Source(models.TextChoices):
        WEBSITE = "website", "Website"
        REFERRAL = "referral", "Referral"
        TRADE_FAIR = "trade_fair", "Trade fair"
        CALL = "call", "Call"
        EMAIL = "email", "Email"
        OTHER = "other", "Other"

    name_prefix = models.CharField(max_length=20, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    middle_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    name_suffix = models.CharField(max_length=20, blank=True)
    gender = models.CharField(max_length=10, choices=Gender.choices, blank=True)
    birthday = models.DateField(null=True, blank=True)
    job_title = models.CharField(max_length=150, blank=True)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, blank=True)
    # Copies of the primary ContactEmail / ContactPhone, so the grid sorts, filters and
    # shows them without a join. contacts.services keeps them in step.
    email = models.EmailField("primary email", blank=True, editable=False)
    phone = models.CharField("primary phone", max_length=50, blank=True, editable=False)
    linkedin_url = models.URLField("LinkedIn", blank=True)
    twitter_url = models.URLField("X / Twitter", blank=True)
    website = models.URLField(blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_contacts"
    )
    reports_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="direct_reports"
    )
    groups = models.ManyToManyField(ContactGroup, blank=True, related_name="contacts")
    accounts = models.ManyToManyField("accounts.Account", blank=True, related_name="contacts")
    activities = GenericRelation("activities.Activity")
    history = History()

    class Meta:
        ordering = ["last_name", "first_name", "pk"]
        indexes = [
            models.Index(fields=["last_name", "first_name"], name="contact_name_idx"),
            models.Index(fields=["first_name"], name="contact_first_name_idx"),
            models.Index(fields=["email"], name="contact_email_idx"),
            models.Index(fields=["phone"], name="contact_phone_idx"),
            models.Index(fields=["job_title"], name="contact_job_title_idx"),
        ]

    def __str__(self):
        return self.full_name or self.email or f"Contact #{self.pk}"

    def get_absolute_url(self):
        return reverse("contacts:detail", args=[self.pk])

    @property
    def full_name(self):
        parts = (self.name_prefix, self.first_name, self.middle_name, self.last_name, self.name_suffix)
        return " ".join(p.strip() for p in parts if p and p.strip())

    def search_hint(self):
        return " · ".join(v for v in (self.job_title, self.email) if v)

    def activity_recipients(self, user):
        """Addresses Send email offers: the contact's own, primary first."""
        return [(e.email, f"{e.email} (primary)" if e.is_primary else e.email) for e in self.emails.all()]

    def name_error(self):
        """The rule of a contact's name, for the form (through clean) and the import (per
        row, so free of queries): a first name, a last name or an email. None when met."""
        if not (self.first_name.strip() or self.last_name.strip() or self.email):
            return NAME_OR_EMAIL
        return None

    def clean(self):
        errors = {}
        name_error = self.name_error()
        if name_error:
            errors["__all__"] = name_error
        if self.reports_to_id and self.reporting_cycle(self.reports_to_id):
            errors["reports_to"] = "This would make the contact report to itself (directly or through others)."
        if errors:
            raise ValidationError(errors)

    def reporting_cycle(self, boss_id):
        """Would reporting to `boss_id` close a loop? One query per level of the chain."""
        if self.pk is None:
            return False
        seen = set()
        node = boss_id
        while node is not None:
            if node == self.pk or node in seen or len(seen) >= MAX_REPORTING_DEPTH:
                return True
            seen.add(node)
            node = Contact.objects.filter(pk=node).values_list("reports_to_id", flat=True).first()
        return False

    @classmethod
    def restrict_children(cls, queryset, user, action):
        """Rows that belong to a contact (emails, phones, addresses) follow its access:
        seen with it, and changed or removed by whoever may change it."""
        action = "view" if action == "view" else "change"
        return queryset.filter(contact__in=restrict(cls._default_manager.all(), user, action).values("pk"))


ContactUserObjectPermission, ContactGroupObjectPermission = share_models(Contact, __name__)


class ContactChild(models.Model):
    is_primary = models.BooleanField("primary", default=False)

    class Meta:
        abstract = True

    @classmethod
    def restrict_queryset(cls, queryset, user, action):
        return Contact.restrict_children(queryset, user, action)

    def validate_constraints(self, exclude=None):
        """One primary per contact and no email twice are checked by the formset across
        all of a contact's rows at once (a row alone cannot tell while the primary moves
        from one row to another); the database constraints back them up."""


class ContactEmail(ContactChild):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="emails")
    # Stored lower-case, so duplicate checks are plain indexed equality.
    email = models.EmailField(db_index=True)

    class Meta:
        ordering = ["-is_primary", "pk"]
        verbose_name = "email"
        constraints = [
            models.UniqueConstraint(fields=["contact"], condition=Q(is_primary=True), name="contact_one_primary_email"),
            models.UniqueConstraint(fields=["contact", "email"], name="contact_email_once"),
        ]

    def __str__(self):
        return self.email

    def save(self, *args, **kwargs):
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)


class ContactPhone(ContactChild):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="phones")
    phone = models.CharField(max_length=50)

    class Meta:
        ordering = ["-is_primary", "pk"]
        verbose_name = "phone"
        constraints = [
            models.UniqueConstraint(fields=["contact"], condition=Q(is_primary=True), name="contact_one_primary_phone"),
        ]

    def __str__(self):
        return self.phone


class ContactAddress(ContactChild):
    class Type(models.TextChoices):
        BILLING = "billing", "Billing"
        SHIPPING = "shipping", "Shipping"
        OTHER = "other", "Other"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="addresses")
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.OTHER)
    street = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    region = models.CharField(max_length=100, blank=True)
    country = CountryField(blank=True)

    # The parts a CSV row carries for the primary address, in column order.
    PARTS = ("street", "city", "postal_code", "region", "country")

    class Meta:
        ordering = ["-is_primary", "pk"]
        verbose_name = "address"
        verbose_name_plural = "addresses"
        constraints = [
            models.UniqueConstraint(fields=["contact"], condition=Q(is_primary=True),
                                    name="contact_one_primary_address"),
        ]

    def __str__(self):
        return ", ".join(str(v) for v in (self.street, self.city, self.postal_code, self.region,
                                          self.country.name if self.country else "") if v)

    def is_blank(self):
        return not any(str(getattr(self, part) or "").strip() for part in self.PARTS)


class ContactCustomerAssignment(TimeStampedModel):
    """The part a contact plays for a business customer; one contact may play several."""

    class Type(models.TextChoices):
        PRIMARY = "primary", "Primary"
        BILLING = "billing", "Billing"
        LOGISTICS = "logistics", "Logistics"
        CONTACT = "contact", "Contact"
        DECISION_MAKER = "decision_maker", "Decision maker"
        OTHER = "other", "Other"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="customer_assignments")
    customer = models.ForeignKey("customers.BusinessCustomer", on_delete=models.CASCADE,
                                 related_name="contact_assignments")
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.CONTACT)
    # Set on a copy made by the customer's propagation setting: the assignment it came from
    # (deleting the origin deletes its copies).
    origin = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="copies")
    history = History()

    class Meta:
        ordering = ["customer__name", "type"]
        verbose_name = "customer assignment"
        constraints = [
            models.UniqueConstraint(fields=["contact", "customer", "type"], name="contact_customer_type_once",
                                    violation_error_message="The contact already has this role for this customer."),
            models.UniqueConstraint(fields=["customer"], condition=Q(type="primary"), name="one_primary_contact",
                                    violation_error_message="This customer already has a primary contact."),
        ]

    def __str__(self):
        return f"{self.contact} – {self.get_type_display()} of {self.customer}"

    @classmethod
    def restrict_queryset(cls, queryset, user, action):
        """Seen by whoever sees both the contact and the customer. A role is part of the
        customer's record: removed by whoever may change the customer (and sees the contact).
        Giving a contact a role also needs the right to change the contact (contacts.services)."""
        customer_action = "view" if action == "view" else "change"
        queryset = restrict_through(queryset, "contact", Contact, user, "view")
        return restrict_through(queryset, "customer", BusinessCustomer, user, customer_action)

    @classmethod
    def customer_section(cls, request, customer):
        """Context of templates/customers/_contacts.html: the customer page reaches it through
        the relation contacts own, as customers may not import contacts."""
        from .services import customer_contacts

        return customer_contacts(request, customer)

    @classmethod
    def of_customer(cls, customer, user):
        """[(contact, [role labels])] of a customer, for its record page: only what `user` may view."""
        rows = cls.restrict_queryset(cls.objects.filter(customer=customer), user, "view").select_related("contact")
        found = {}
        for row in rows.order_by("contact__last_name", "contact__first_name", "type"):
            found.setdefault(row.contact_id, (row.contact, []))[1].append(row.get_type_display())
        return list(found.values())
