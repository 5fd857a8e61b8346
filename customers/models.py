from collections import namedtuple

from django.contrib.contenttypes.fields import GenericRelation
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django_countries.fields import CountryField

from channels.models import BUSINESS_CUSTOMER, channel_refusal
from crm.access import access, restrict, restrict_through
from crm.models import History, OwnedModel, TimeStampedModel, share_models

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


class Propagation(models.TextChoices):
    NONE = "none", "No"
    UP = "up", "Up to the parent companies"
    DOWN = "down", "Down to the subsidiaries"


class BusinessCustomer(OwnedModel):
    """One profile of a client company within one channel, under its account."""

    name = models.CharField(max_length=200)
    channel = models.ForeignKey("channels.Channel", on_delete=models.PROTECT, related_name="customers")
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="customers")

    legal_name = models.CharField(max_length=200, blank=True)
    registration_number = models.CharField(max_length=50, blank=True)
    registration_agency = models.CharField(max_length=200, blank=True)
    registration_date = models.DateField(null=True, blank=True)
    registration_country = CountryField("country of registration", blank=True)
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

    # Company structure (customers.tree walks it; depth is capped by CRM_MAX_TREE_DEPTH).
    # PROTECT: deleting a parent must not silently turn its subsidiaries into roots.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children",
                               verbose_name="parent company")
    assignment_propagation = models.CharField(
        "propagate contact assignments", max_length=4, choices=Propagation.choices, default=Propagation.NONE,
        help_text="New contact assignments are copied up to the parents or down to the subsidiaries.")

    # Purchasing, in the customer's currency (approvals reads these).
    purchase_limit = models.DecimalField("purchase limit", max_digits=16, decimal_places=2, null=True, blank=True,
                                         validators=[MinValueValidator(0, message="A purchase limit cannot be negative.")],
                                         help_text="Per purchase; above it a request needs an Admin's approval.")
    monthly_budget = models.DecimalField("monthly budget", max_digits=16, decimal_places=2, null=True, blank=True,
                                         validators=[MinValueValidator(0, message="A monthly budget cannot be negative.")])
    approval_expiry_days = models.PositiveSmallIntegerField(
        "approval expiry (days)", default=7, validators=[MinValueValidator(1, message="At least one day."),
                                                       MaxValueValidator(365, message="At most 365 days.")])
    # The approval group: when it has members they, and only they, approve the customer's requests.
    approvers = models.ManyToManyField("contacts.Contact", blank=True, related_name="approver_for",
                                       verbose_name="approval group")

    activities = GenericRelation("activities.Activity")
    history = History()

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
            # The grid's default order with what access filters on: a restricted user's deep
            # page walks this index alone (no table rows) to find its 25 ids.
            models.Index(fields=["created_at", "id"], include=["owner", "business_unit"],
                         name="customer_grid_order_idx"),
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
    rows = (BusinessCustomer.objects.annotate(key=Lower("name")).filter(key__any=names, channel_id__any=channels)
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
        return restrict_through(queryset, "customer", BusinessCustomer, user, "view" if action == "view" else "change")


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


class CustomerChild(models.Model):
    """A part of a customer (location, group): seen by who sees the customer, changed by who may change it."""

    class Meta:
        abstract = True

    @classmethod
    def restrict_queryset(cls, queryset, user, action):
        return restrict_through(queryset, "customer", BusinessCustomer, user, "view" if action == "view" else "change")


class LocationTag(models.Model):
    """What a location is used for (billing, shipping, pickup, ...): a managed list."""

    name = models.CharField(max_length=40, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Location(CustomerChild, TimeStampedModel):
    class Type(models.TextChoices):
        HEADQUARTERS = "headquarters", "Headquarters"
        OFFICE = "office", "Office"
        WAREHOUSE = "warehouse", "Warehouse"
        STORE = "store", "Store"

    customer = models.ForeignKey(BusinessCustomer, on_delete=models.CASCADE, related_name="locations")
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.OFFICE)
    tags = models.ManyToManyField(LocationTag, blank=True, related_name="locations")
    street = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField("postal code", max_length=20, blank=True)
    region = models.CharField(max_length=100, blank=True)
    country = CountryField(blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True, validators=[phone_validator])
    history = History(m2m_fields=[tags])

    class Meta:
        ordering = ["customer__name", "name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "customer", name="location_name_unique_per_customer",
                                    violation_error_message="This customer already has a location with this name."),
        ]
        indexes = [models.Index(fields=["name"], name="location_name_idx"),
                   models.Index(fields=["country"], name="location_country_idx")]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("locations:detail", args=[self.pk])

    def search_hint(self):
        return str(self.customer)


class CustomerGroup(CustomerChild, models.Model):
    """The predefined groups of a customer; a contact of the customer is a member of exactly
    one. They decide approvals. The four rows are created together when the customer's first
    contact joins one (customers.services.create_predefined_groups): a customer nobody has
    joined has none, and the four kinds are offered all the same."""

    class Kind(models.TextChoices):
        ADMIN = "admin", "Admin"
        BUYER = "buyer", "Buyer"
        REQUESTER = "requester", "Requester"
        CONTACT = "contact", "Contact"

    # No index of its own: one_group_of_each_kind's (customer, kind) serves lookups by customer.
    customer = models.ForeignKey(BusinessCustomer, on_delete=models.CASCADE, related_name="groups", db_index=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)

    class Meta:
        ordering = ["customer", "kind"]
        constraints = [models.UniqueConstraint(fields=["customer", "kind"], name="one_group_of_each_kind")]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.customer})"

    @property
    def name(self):
        return self.get_kind_display()


class CustomerGroupMember(models.Model):
    """A contact's group at a customer: one row per (customer, contact), so one group each."""

    customer = models.ForeignKey(BusinessCustomer, on_delete=models.CASCADE, related_name="group_members")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="customer_groups")
    group = models.ForeignKey(CustomerGroup, on_delete=models.CASCADE, related_name="members")
    history = History()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "contact"], name="one_group_per_customer")]

    def __str__(self):
        return f"{self.contact} in {self.group}"


BusinessCustomerUserObjectPermission, BusinessCustomerGroupObjectPermission = share_models(BusinessCustomer, __name__)
