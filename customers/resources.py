"""CSV import and export of business customers.

Names resolve per batch in one query each: channels among all channels, accounts among
the accounts the importing user may view (an account he may not see is not matched: it
counts as unknown and a new one is created, rather than revealing or touching it).
Unknown accounts are created for the whole batch at once, owned by the importing user in
his primary unit. Email and Phone are the primary email and phone; after each batch
customers.services.sync_primary_rows makes them the primary rows, in a few queries.
"""
import re
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from import_export import fields, widgets

from accounts.models import Account
from channels.models import Channel
from crm.access import restrict
from crm.resources import CountryWidget, NameWidget, OwnedResource

from . import services
from .models import CURRENCIES, DEFAULT_CURRENCY, BusinessCustomer, name_clash_message, name_clashes


class CurrencyWidget(widgets.Widget):
    codes = {code for code, _ in CURRENCIES}

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip().upper()
        if not text:
            return DEFAULT_CURRENCY
        if text not in self.codes:
            raise ValueError(f"Unknown currency '{value}'; use one of: {', '.join(sorted(self.codes))}.")
        return text

    def render(self, value, obj=None, **kwargs):
        return value or ""


class MoneyWidget(widgets.Widget):
    """A decimal amount with a point for decimals (1234.50 or 1,234.50); blank is 0.
    A decimal comma (1234,50) is refused rather than misread."""

    pattern = re.compile(r"^-?(\d+|\d{1,3}(,\d{3})+)(\.\d+)?$")

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if not text:
            return Decimal("0")
        if not self.pattern.match(text):
            raise ValueError(f"'{value}' is not an amount; write it like 1234.50.")
        return Decimal(text.replace(",", "")).quantize(Decimal("0.01"))

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else f"{value:.2f}"


class WebsiteWidget(widgets.CharWidget):
    """example.com is taken as https://example.com."""

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if text and "://" not in text:
            text = f"https://{text}"
        return text


class AccountWidget(NameWidget):
    """Accounts by name among those the user may view; a row that keeps its customer's
    current account (even one the user cannot see) keeps it; other names were created."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.current = {}    # {customer id as text: its current account}
        self.created = {}    # {lower-case name: account created by this import}
        self.refusal = None  # why unknown accounts could not be created

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if not text:
            return None
        key = text.lower()
        current = self.current.get(str((row or {}).get("ID") or "").strip())
        if current is not None and current.name.lower() == key:
            return current
        found = self.cache.get(key) or self.created.get(key)
        if found is None:
            raise ValueError(f"Unknown account '{text}': {self.refusal or 'it could not be created'}.")
        return found


def visible_accounts(resource):
    return restrict(Account.objects.all(), resource.user, "view")


class BusinessCustomerResource(OwnedResource):
    name = fields.Field(attribute="name", column_name="Name", widget=widgets.CharWidget())
    channel = fields.Field(attribute="channel", column_name="Channel", widget=NameWidget(Channel, label="channel"))
    account = fields.Field(attribute="account", column_name="Account",
                           widget=AccountWidget(Account, label="account", queryset=visible_accounts))
    legal_name = fields.Field(attribute="legal_name", column_name="Legal Name", widget=widgets.CharWidget())
    tax_number = fields.Field(attribute="tax_number", column_name="Tax Number", widget=widgets.CharWidget())
    primary_email = fields.Field(attribute="primary_email", column_name="Email", widget=widgets.CharWidget())
    primary_phone = fields.Field(attribute="primary_phone", column_name="Phone", widget=widgets.CharWidget())
    website = fields.Field(attribute="website", column_name="Website", widget=WebsiteWidget())
    billing_street = fields.Field(attribute="billing_street", column_name="Billing Street", widget=widgets.CharWidget())
    billing_city = fields.Field(attribute="billing_city", column_name="Billing City", widget=widgets.CharWidget())
    billing_postal_code = fields.Field(attribute="billing_postal_code", column_name="Billing Postal Code",
                                       widget=widgets.CharWidget())
    billing_region = fields.Field(attribute="billing_region", column_name="Billing Region", widget=widgets.CharWidget())
    billing_country = fields.Field(attribute="billing_country", column_name="Billing Country", widget=CountryWidget())
    shipping_street = fields.Field(attribute="shipping_street", column_name="Shipping Street",
                                   widget=widgets.CharWidget())
    shipping_city = fields.Field(attribute="shipping_city", column_name="Shipping City", widget=widgets.CharWidget())
    shipping_postal_code = fields.Field(attribute="shipping_postal_code", column_name="Shipping Postal Code",
                                        widget=widgets.CharWidget())
    shipping_region = fields.Field(attribute="shipping_region", column_name="Shipping Region",
                                   widget=widgets.CharWidget())
    shipping_country = fields.Field(attribute="shipping_country", column_name="Shipping Country",
                                    widget=CountryWidget())
    lifetime_value = fields.Field(attribute="lifetime_value", column_name="Lifetime Value", widget=MoneyWidget())
    currency = fields.Field(attribute="currency", column_name="Currency", widget=CurrencyWidget())

    required_columns = ("Name", "Channel", "Account")

    class Meta(OwnedResource.Meta):
        model = BusinessCustomer
        fields = ("id", "name", "channel", "account", "owner", "business_unit", "legal_name", "tax_number",
                  "primary_email", "primary_phone", "website",
                  "billing_street", "billing_city", "billing_postal_code", "billing_region", "billing_country",
                  "shipping_street", "shipping_city", "shipping_postal_code", "shipping_region", "shipping_country",
                  "lifetime_value", "currency")
        export_order = fields
        import_order = fields

    # -- the file ---------------------------------------------------------------------------
    def start_import(self, report, body, headers):
        self.seen_names = {}        # {(lower name, channel id): ID cell}, across batches
        self.accounts_created = []  # names, in file order

    def finish_import(self, report):
        n = len(self.accounts_created)
        if not n:
            return []
        names = ", ".join(self.accounts_created[:10]) + (", …" if n > 10 else "")
        return [f"{n} account{'s' if n != 1 else ''} will be created: {names}."]

    # -- a batch ------------------------------------------------------------------------------
    def before_import(self, dataset, **kwargs):
        super().before_import(dataset, **kwargs)
        self.saved = []
        self.prepare_accounts(dataset)

    def prepare_accounts(self, dataset):
        widget = self.fields["account"].widget
        widget.created, widget.refusal = {}, None
        ids = [str(v or "").strip() for v in dataset["ID"]] if "ID" in dataset.headers else [""] * len(dataset)
        known_ids = [int(i) for i in ids if i.isdigit()]
        widget.current = {
            str(c.pk): c.account for c in
            restrict(BusinessCustomer.objects.filter(pk__in=known_ids), self.user, "change").select_related("account")
        } if known_ids else {}
        unknown = {}
        if "Account" in dataset.headers:
            for pk, value in zip(ids, dataset["Account"]):
                text = str(value or "").strip()
                key = text.lower()
                if not text or key in widget.cache:
                    continue
                current = widget.current.get(pk)
                if current is not None and current.name.lower() == key:
                    continue
                unknown.setdefault(key, text)
        if unknown:
            try:
                widget.created = services.create_accounts(list(unknown.values()), self.user)
            except PermissionDenied as e:
                widget.refusal = str(e).rstrip(".")
            else:
                self.accounts_created.extend(unknown.values())

    def check_unique(self, dataset):
        """A name is unique per channel (case-insensitive): twice in the file, or taken by
        another customer of that channel, is a row error (customers.models.name_clashes and
        name_clash_message, the form's check too: one query for the batch, the existing
        record named only if the user may view it)."""
        channel_widget = self.fields["channel"].widget
        ids = [str(v or "").strip() for v in dataset["ID"]] if "ID" in dataset.headers else [""] * len(dataset)
        names = [str(v or "").strip() for v in dataset["Name"]]
        channels = [channel_widget.cache.get(str(v or "").strip().lower()) for v in dataset["Channel"]]
        taken = name_clashes([(name, channel.pk) for name, channel in zip(names, channels) if channel])
        for number, (pk, name, channel) in enumerate(zip(ids, names, channels), start=1):
            if not name or channel is None:
                continue
            key = (name.lower(), channel.pk)
            if key in self.seen_names:
                self.batch_errors[number] = {"name": f"“{name}” appears twice in the file for channel {channel}."}
            elif key in taken and str(taken[key].pk) != pk:
                self.batch_errors[number] = {"name": name_clash_message(taken[key], channel, self.user)}
            self.seen_names[key] = pk

    # -- a row: query-free checks, the model's rules ---------------------------------------------
    def validate_row(self, instance, row):
        errors = {}
        # A named but unknown channel or account was already reported by its column.
        if instance.channel_id is None and not str(row.get("Channel") or "").strip():
            errors["channel"] = "This field is required."
        if instance.account_id is None and not str(row.get("Account") or "").strip():
            errors["account"] = "This field is required."
        # The field validators (lifetime value not negative, ...) and placement, then the
        # model's clean (the channel rule): the form's and the admin's checks too.
        for check in (super().validate_row, lambda instance, row: instance.clean()):
            try:
                check(instance, row)
            except ValidationError as e:
                for attr, messages in e.message_dict.items():
                    errors.setdefault(attr, messages[0])
        if errors:
            raise ValidationError(errors)

    def after_save_instance(self, instance, row, **kwargs):
        self.saved.append(instance)

    def after_import(self, dataset, result, **kwargs):
        super().after_import(dataset, result, **kwargs)
        if not (result.has_errors() or result.has_validation_errors()):
            services.sync_primary_rows(self.saved)
        self.saved = []

    # -- export -------------------------------------------------------------------------------
    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("channel", "account", "owner", "business_unit")
