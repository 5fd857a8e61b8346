from collections import namedtuple

from django.contrib.contenttypes.fields import GenericRelation
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django_countries.fields import CountryField
from simple_history.models import HistoricalRecords

from channels.models import BUSINESS_CUSTOMER, channel_refusal
from crm.access import access, restrict
from crm.models import OwnedModel, share_models

# ISO 4217 codes offered for the lifetime sales value.
CURRENCIES = [
    ("USD", "USD – US dollar"), ("EUR", "EUR – Euro"), ("GBP", "GBP – Pound sterling"),
    ("CHF", "CHF – Swiss franc"), ("CAD", "CAD – Canadian dollar"), ("AUD", "AUD – Australian dollar"),
    ("JPY", "JPY – Japanese yen"), ("CNY", "CNY – Chinese yuan"), ("INR", "INR – Indian rupee"),
    ("SEK", "SEK – Swedish krona"), ("NOK", "NOK – Norwegian krone"), ("DKK", "DKK – Danish krone"),
    ("PLN", "PLN – Polish złoty"), ("BRL", "BRL – Brazilian real"), ("MXN", "MXN – Mexican peso"),
]
DEFAULT_CURRENCY = "USD"

phone_validator = RegexValidator(
    r"^\+?[0-9][0-9 ()./-]{3,30}[0-9](\s*(x|ext\.?)\s*[0-9]{1,6})?$",
    "Enter a phone number: digits, spaces and + ( ) - . / only, e.g. +1 555 0100 or +49 (30) 1234-567.",
)

ADDRESS_PARTS = ("street", "city", "postal_code", "region", "country")

NEGATIVE_VALUE = "The lifetime sales value cannot be negative."
_NOT_LOADED = object()


class BusinessCustomer(OwnedModel):
    """One profile of a client company within one channel, under its account."""

    name = models.CharField(max_length=200)
    channel = models.ForeignKey("channels.Channel", on_delete=models.PROTECT, related_name="customers")
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="customers")

    legal_name = models.CharField(max_length=200, blank=True)
    registration_number = models.CharField(max_length=50, blank=True)
    registration_date = models.DateField(null=True, blank=True)
    tax_number = models.CharField("tax / VAT number", max_length=50, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    employees = models.PositiveIntegerField("number of employees", null=True, blank=True)
    website = models.URLField(blank=True)

    # The primary email and phone, copied from the phones/emails rows by customers.services
    # so the grid, its filters and the export read one row per customer.
    primary_email = models.EmailField("primary email", blank=True)
    primary_phone = models.CharField("primary phone", max_length=40, blank=True, validators=[phone_validator])

    billing_street = models.CharField("street", max_length=200, blank=True)
    billing_city = models.CharField("city", max_length=100, blank=True)
    billing_postal_code = models.CharField("postal code", max_length=20, blank=True)
    billing_region = models.CharField("region", max_length=100, blank=True)
    billing_country = CountryField("country", blank=True)
    shipping_street = models.CharField("street", max_length=200, blank=True)
    shipping_city = models.CharField("city", max_length=100, blank=True)
    shipping_postal_code = models.CharField("postal code", max_length=20, blank=True)
    shipping_region = models.CharField("region", max_length=100, blank=True)
    shipping_country = CountryField("country", blank=True)

    # One of the account's contacts (customers.forms offers only them).
    primary_contact = models.ForeignKey("contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="primary_for_customers")

    lifetime_value = models.DecimalField("lifetime sales value", max_digits=16, decimal_places=2, default=0,
                                         validators=[MinValueValidator(0, message=NEGATIVE_VALUE)])
    currency = models.CharField(max_length=3, choices=CURRENCIES, default=DEFAULT_CURRENCY)
    description = models.TextField(blank=True)

    activities = GenericRelation("activities.Activity")
    history = HistoricalRecords()

    class Meta:
        verbose_name = "business customer"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"), "channel", name="customer_name_unique_per_channel",
                violation_error_message="A business customer with this name already exists in this channel.",
            ),
        ]
        # The grid sorts and filters on these; foreign keys are indexed already.
        indexes = [
            models.Index(fields=["name"], name="customer_name_idx"),
            models.Index(fields=["primary_email"], name="customer_email_idx"),
            models.Index(fields=["primary_phone"], name="customer_phone_idx"),
            models.Index(fields=["billing_city"], name="customer_city_idx"),
            models.Index(fields=["billing_country"], name="customer_country_idx"),
            models.Index(fields=["lifetime_value"], name="customer_value_idx"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("customers:detail", args=[self.pk])

    def search_hint(self):
        return f"{self.channel} · {self.account}"

    def address(self, kind):
        """{part: value} of the billing or shipping address."""
        return {part: getattr(self, f"{kind}_{part}") for part in ADDRESS_PARTS}

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_channel_id = instance.__dict__.get("channel_id", _NOT_LOADED)
        return instance

    def channel_changed(self):
        """New, or moved to another channel since it was loaded."""
        if self._state.adding:
            return True
        loaded = getattr(self, "_loaded_channel_id", _NOT_LOADED)
        if loaded is _NOT_LOADED:
            loaded = BusinessCustomer.objects.filter(pk=self.pk).values_list("channel_id", flat=True).first()
        return loaded != self.channel_id

    def clean(self):
        """The customer's own rules, for the form, the import and the admin alike (free of
        queries when the channel is loaded, as the form and the import have it): a new or
        re-channelled customer needs an active channel that enables business customers. A
        customer stays in its channel after the channel is deactivated."""
        super().clean()
        if self.channel_id is not None and self.channel_changed():
            refusal = channel_refusal(self.channel, BUSINESS_CUSTOMER)
            if refusal:
                raise ValidationError({"channel": refusal})

    def activity_recipients(self, user):
        """Addresses Send email offers: the customer's own, primary first, then the primary
        emails of its contacts the user may view (through the contacts app's assignments,
        which relate contacts to customers; customers does not import contacts)."""
        own = [(e.email, f"{e.email} (primary)" if e.is_primary else e.email)
               for e in self.emails.order_by("-is_primary", "email")]
        assignments = getattr(self, "contact_assignments", None)
        if assignments is None:
            return own
        contacts = [contact for contact, _ in assignments.model.of_customer(self, user) if contact.email]
        return own + [(c.email, f"{c.email} ({c})") for c in contacts]


class NameClash(namedtuple("NameClash", "pk name owner_id business_unit_id")):
    """A customer already holding a name in a channel (enough to tell who may view it)."""


def name_clashes(keys):
    """Customers already holding these names in these channels: {(lower-case name, channel
    id): NameClash} for `keys`, an iterable of (name, channel id). The rule "a name is unique
    per channel" (case-insensitive) as the form and the import check it: one query for a
    whole batch (the database's unique constraint backs it up)."""
    keys = {(str(name).strip().lower(), channel_id) for name, channel_id in keys if name and channel_id}
    if not keys:
        return {}
    names, channels = {n for n, _ in keys}, {c for _, c in keys}
    rows = (BusinessCustomer.objects.annotate(key=Lower("name")).filter(key__in=names, channel_id__in=channels)
            .values_list("key", "channel_id", "pk", "name", "owner_id", "business_unit_id"))
    return {(key, channel_id): NameClash(*rest) for key, channel_id, *rest in rows if (key, channel_id) in keys}


def name_clash_message(clash, channel, user):
    """The error for a name taken in `channel` by `clash`: the existing record is named only
    to a user who may view it (answered from his cached grants, without a query)."""
    record = BusinessCustomer(pk=clash.pk, owner_id=clash.owner_id, business_unit_id=clash.business_unit_id)
    if access(user).can("view", record):
        return f"“{clash.name}” (ID {clash.pk}) already exists in {channel}: a name is unique per channel."
    return f"A business customer of another unit is already named “{clash.name}” in {channel}."


class ContactPoint(models.Model):
    """A phone or email of a customer; at most one of each kind is primary."""

    class Kind(models.TextChoices):
        WORK = "work", "Work"
        BILLING = "billing", "Billing"
        SUPPORT = "support", "Support"
        MOBILE = "mobile", "Mobile"
        FAX = "fax", "Fax"
        OTHER = "other", "Other"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.WORK)
    is_primary = models.BooleanField("primary", default=False)

    class Meta:
        abstract = True

    @classmethod
    def restrict_queryset(cls, queryset, user, action):
        """A customer's phones and emails follow the customer: view it, see them; change it, change them."""
        customers = restrict(BusinessCustomer.objects.all(), user, "view" if action == "view" else "change")
        return queryset.filter(customer__in=customers.values("pk"))


class CustomerEmail(ContactPoint):
    customer = models.ForeignKey(BusinessCustomer, on_delete=models.CASCADE, related_name="emails")
    email = models.EmailField()

    class Meta:
        verbose_name = "email"
        ordering = ["-is_primary", "email"]
        constraints = [
            models.UniqueConstraint(fields=["customer"], condition=Q(is_primary=True), name="one_primary_email"),
        ]

    def __str__(self):
        return self.email


class CustomerPhone(ContactPoint):
    customer = models.ForeignKey(BusinessCustomer, on_delete=models.CASCADE, related_name="phones")
    phone = models.CharField(max_length=40, validators=[phone_validator])

    class Meta:
        verbose_name = "phone"
        ordering = ["-is_primary", "phone"]
        constraints = [
            models.UniqueConstraint(fields=["customer"], condition=Q(is_primary=True), name="one_primary_phone"),
        ]

    def __str__(self):
        return self.phone


BusinessCustomerUserObjectPermission, BusinessCustomerGroupObjectPermission = share_models(BusinessCustomer, __name__)
