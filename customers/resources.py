"""CSV import and export of business customers.

Names resolve per batch in one query each: channels among all channels, accounts among
the accounts the importing user may view (an account he may not see is not matched: it
counts as unknown and a new one is created, rather than revealing or touching it).
Unknown accounts are created for the whole batch at once, owned by the importing user in
his primary unit. Email and Phone are the primary email and phone; after each batch
customers.services.sync_primary_rows makes them the primary rows, in a few queries.

Parent is the parent company's name in the row's channel: a customer the user may view or
one created by an earlier row of the file. The whole file's parents are resolved and its
tree checked (cycles, depth) before the first batch, in a few queries for the file
(customers.tree: one walk up, one walk down, parent_refusal over the file's own parents).
New customers of a batch are inserted parents first, then their predefined groups.
"""
import re
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef
from django.db.models.functions import Lower
from import_export import fields, widgets

from accounts.models import Account
from channels.models import Channel
from crm.access import access, restrict
from crm.resources import CountryWidget, CRMResource, NameWidget, OwnedResource, unneutralise

from . import services
from .models import (CURRENCIES, DEFAULT_CURRENCY, BusinessCustomer, Location, LocationTag, name_clash_message,
                     name_clashes)
from .tree import ancestor_map, parent_refusal, subtree_heights

NEW = "new"  # stand-in keys (NEW, index in the file) for the file's rows without an ID
CHUNK = 500  # SQLite caps the number of query parameters


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


class OptionalMoneyWidget(MoneyWidget):
    """An amount that may be absent: blank is none (no purchase limit, no monthly budget)."""

    def clean(self, value, row=None, **kwargs):
        if not str(value or "").strip():
            return None
        return super().clean(value, row, **kwargs)


class DaysWidget(widgets.Widget):
    """A whole number of days; blank is the field's default."""

    def __init__(self, default):
        super().__init__()
        self.default = default

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if not text:
            return self.default
        if not (text.isascii() and text.isdigit()) or len(text) > 6:
            raise ValueError(f"'{value}' is not a number of days; write a whole number such as 7.")
        return int(text)

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class ParentError(str):
    """Why a row's Parent cannot be used (planned for the whole file)."""


class ParentWidget(widgets.Widget):
    """The parent company, as BusinessCustomerResource.plan_parents resolved it for this row."""

    resource = None

    def clean(self, value, row=None, **kwargs):
        return self.resource.planned_parent()

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else value.name


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
    parent = fields.Field(attribute="parent", column_name="Parent", widget=ParentWidget())
    purchase_limit = fields.Field(attribute="purchase_limit", column_name="Purchase Limit",
                                  widget=OptionalMoneyWidget())
    monthly_budget = fields.Field(attribute="monthly_budget", column_name="Monthly Budget",
                                  widget=OptionalMoneyWidget())
    approval_expiry_days = fields.Field(
        attribute="approval_expiry_days", column_name="Approval Expiry Days",
        widget=DaysWidget(BusinessCustomer._meta.get_field("approval_expiry_days").default))

    required_columns = ("Name", "Channel", "Account")

    class Meta(OwnedResource.Meta):
        model = BusinessCustomer
        fields = ("id", "name", "channel", "account", "owner", "business_unit", "legal_name", "tax_number",
                  "primary_email", "primary_phone", "website",
                  "billing_street", "billing_city", "billing_postal_code", "billing_region", "billing_country",
                  "shipping_street", "shipping_city", "shipping_postal_code", "shipping_region", "shipping_country",
                  "lifetime_value", "currency", "parent", "purchase_limit", "monthly_budget", "approval_expiry_days")
        export_order = fields
        import_order = fields

    # -- the file ---------------------------------------------------------------------------
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].widget.resource = self
        self.started = False

    def get_queryset(self):
        # skip_row compares each row's parent: loaded with the rows, not one query per row.
        return super().get_queryset().select_related("parent")

    def start_import(self, report, body, headers):
        self.started = True
        self.seen_names = {}        # {(lower name, channel id): ID cell}, across batches
        self.accounts_created = []  # names, in file order
        self.rows_done = 0          # rows of the earlier batches: a batch's row n is the file's row rows_done + n
        self.created_rows = {}      # {(NEW, index): instance} of the file's new customers
        self.parent_plan = self.plan_parents(body, headers) if "Parent" in headers else None

    # -- the company tree of the whole file -------------------------------------------------------
    def plan_parents(self, body, headers):
        """{index in the file: parent key or ParentError}: parents resolved by name in the
        row's channel (an earlier row of the file, else a customer the user may view), then
        each row checked by parent_refusal with the file's parents overriding the database."""
        column = {h: i for i, h in enumerate(headers)}

        def cell(cells, name):
            return str(unneutralise(cells[column[name]]) or "").strip() if name in column else ""

        rows = [(cell(c, "ID"), cell(c, "Name"), cell(c, "Channel").lower(), cell(c, "Parent")) for _, c in body]
        channels = {}
        channel_names = sorted({r[2] for r in rows if r[2]})
        for i in range(0, len(channel_names), CHUNK):
            for channel in Channel.objects.annotate(key=Lower("name")).filter(key__in=channel_names[i : i + CHUNK]):
                channels.setdefault(channel.key, channel)
        ids = sorted({int(r[0]) for r in rows if r[0].isascii() and r[0].isdigit() and int(r[0]) < 2**63})
        existing = {}  # {id: (parent id, parent name, parent visible)}
        for i in range(0, len(ids), CHUNK):
            for pk, parent_id, name, owner_id, unit_id in (
                    BusinessCustomer.objects.filter(pk__in=ids[i : i + CHUNK]).values_list(
                        "pk", "parent_id", "parent__name", "parent__owner_id", "parent__business_unit_id")):
                visible = parent_id is not None and access(self.user).can(
                    "view", BusinessCustomer(pk=parent_id, owner_id=owner_id, business_unit_id=unit_id))
                existing[pk] = (parent_id, name, visible)
        wanted = sorted({r[3].lower() for r in rows if r[3]})
        found = {}  # {(lower name, channel id): id} among the customers the user may view
        channel_ids = sorted({c.pk for c in channels.values()})
        for i in range(0, len(wanted), CHUNK):
            qs = restrict(BusinessCustomer.objects.annotate(key=Lower("name")).filter(
                key__in=wanted[i : i + CHUNK], channel_id__in=channel_ids), self.user, "view")
            for key, channel_id, pk in qs.values_list("key", "channel_id", "pk"):
                found[(key, channel_id)] = pk

        plan, parents, seen, keys = {}, {}, {}, {}
        for index, (pk_text, name, channel_key, parent_text) in enumerate(rows):
            channel = channels.get(channel_key)
            if pk_text:
                key = int(pk_text) if pk_text.isdigit() and int(pk_text) in existing else None
            else:
                key = (NEW, index)
            if key is None or channel is None:
                continue  # the row's ID or Channel column reports it
            if name:
                seen[(name.lower(), channel.pk)] = key
            current_id, current_name, current_visible = existing.get(key, (None, None, True))
            keeps_hidden = current_id is not None and not current_visible and (
                not parent_text or parent_text.lower() == (current_name or "").lower())
            if keeps_hidden:
                # Exported blank (its name is not his to see): a blank cell keeps it.
                parent = current_id
            elif not parent_text:
                parent = None
            else:
                lookup = (parent_text.lower(), channel.pk)
                parent = seen.get(lookup, found.get(lookup))
                if parent is None:
                    plan[index] = ParentError(
                        f"Unknown parent company '{parent_text}' in {channel}: name a business customer of the "
                        "row's channel that you may view, or one created by an earlier row of this file.")
                    continue
            plan[index] = parents[key] = parent
            keys[index] = key

        # The file applies in order: a row is checked against the database as the earlier
        # rows leave it, so the row that closes a cycle or deepens the tree is the one refused.
        db_ids = {k for k in list(parents) + list(parents.values()) if isinstance(k, int)}
        tree = ancestor_map(db_ids)
        heights = subtree_heights([k for k in parents if isinstance(k, int)])
        accepted = []
        for index, parent in plan.items():
            if isinstance(parent, ParentError):
                continue
            refusal = parent_refusal(keys[index], parent, tree, heights)
            if refusal:
                plan[index] = ParentError(refusal)
            else:
                tree[keys[index]] = parent
                accepted.append(index)
        # A later row may hang an earlier row's subtree deeper than the heights known from the
        # database: the final tree is checked once more.
        for index in accepted:
            refusal = parent_refusal(keys[index], plan[index], tree, heights)
            if refusal:
                plan[index] = ParentError(refusal)
        return plan

    def planned_parent(self):
        """The current row's parent: a customer by id, an instance created by an earlier row, or None."""
        entry = (self.parent_plan or {}).get(self.row_index)
        if isinstance(entry, ParentError):
            raise ValueError(str(entry))
        if entry is None:
            return None
        if isinstance(entry, tuple):
            created = self.created_rows.get(entry)
            if created is None:
                raise ValueError("The parent company's row of this file is invalid; correct that row first.")
            return created
        return BusinessCustomer(pk=entry)  # compared and saved by its id only

    def finish_import(self, report):
        n = len(self.accounts_created)
        if not n:
            return []
        names = ", ".join(self.accounts_created[:10]) + (", …" if n > 10 else "")
        return [f"{n} account{'s' if n != 1 else ''} will be created: {names}."]

    # -- a batch ------------------------------------------------------------------------------
    def before_import(self, dataset, **kwargs):
        if not self.started:  # the admin's import: the whole file is one batch
            self.start_import(None, list(enumerate(dataset, start=2)), list(dataset.headers))
        super().before_import(dataset, **kwargs)
        self.saved = []
        self.row_offset, self.rows_done = self.rows_done, self.rows_done + len(dataset)
        self.prepare_accounts(dataset)

    def import_instance(self, instance, row, **kwargs):
        self.row_index = self.row_offset + kwargs.get("row_number", 1) - 1
        new = instance.pk is None
        super().import_instance(instance, row, **kwargs)
        if new:
            self.created_rows[(NEW, self.row_index)] = instance

    def bulk_create(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        """Parents before their subsidiaries (a parent created by the same batch needs its id
        first: one insert per level of the batch's new tree), then the predefined groups of
        every new customer in one insert."""
        pending, created = list(self.create_instances), []
        while pending:
            ready = [o for o in pending if o.parent is None or o.parent.pk is not None]
            if not ready:
                break  # cannot happen: parent_refusal refused cycles
            taken = {id(o) for o in ready}
            pending = [o for o in pending if id(o) not in taken]
            created += ready
            self.create_instances = list(ready)  # the base class clears the list it writes
            super().bulk_create(using_transactions, dry_run, raise_errors, batch_size, result)
        ids = [o.pk for o in created if o.pk is not None]
        if ids:
            services.create_predefined_groups(ids)

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
        if self.parent_plan is None and instance.parent_id is not None and instance.channel_id is not None \
                and instance.parent.channel_id != instance.channel_id:
            # A file without Parent that moves a subsidiary to another channel.
            errors["parent"] = "The parent company is in another channel: a company's tree lives in one channel."
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
    def dehydrate_parent(self, obj):
        """A parent company the user may not view is exported blank (a blank cell keeps it)."""
        parent = obj.parent
        if parent is None or (self.user is not None and not access(self.user).can("view", parent)):
            return ""
        return parent.name

    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("channel", "account", "owner", "business_unit", "parent")


# -- locations -----------------------------------------------------------------------------------

TAG_SEPARATOR = ";"
WITH_CHANNEL = re.compile(r"^(?P<name>.*\S)\s*\((?P<channel>[^()]+)\)$")


def split_customer(text):
    """("Name", "Channel") of a cell written `Name (Channel)`, else (text, None)."""
    match = WITH_CHANNEL.match(text)
    return (match["name"], match["channel"].strip()) if match else (text, None)


def with_shared_customer_names(queryset, user):
    """Locations marked `customer_name_shared` when another customer `user` may view bears
    their customer's name: those are exported as `Name (Channel)`. Customers he may not view
    never count, so the export tells nothing about them."""
    others = BusinessCustomer.objects.annotate(key=Lower("name")).filter(
        key=Lower(OuterRef("customer__name"))).exclude(pk=OuterRef("customer_id"))
    return queryset.annotate(customer_name_shared=Exists(restrict(others, user, "view")))


class LocationCustomerWidget(NameWidget):
    """The customer by name among those the user may view, as `Name (Channel)` when several
    of them bear the name; he must be allowed to change it (its locations are part of it).
    A customer he may not view is unknown, never named."""

    def __init__(self):
        super().__init__(BusinessCustomer, label="customer")
        self.user = None

    def prime(self, resource, values):
        self.user, self.cache = resource.user, {}
        keys = set()
        for value in values:
            text = str(value or "").strip()
            if text:
                keys.add(text.lower())
                keys.add(split_customer(text)[0].lower())
        keys = sorted(keys)
        visible = BusinessCustomer.objects.select_related("channel")
        if self.user is not None:
            visible = restrict(visible, self.user, "view")
        for i in range(0, len(keys), CHUNK):
            for customer in visible.annotate(_key=Lower("name")).filter(_key__in=keys[i : i + CHUNK]).order_by("pk"):
                self.cache.setdefault(customer._key, []).append(customer)

    def resolve(self, text):
        name, channel = split_customer(text)
        if channel is not None:
            found = [c for c in self.cache.get(name.lower(), []) if c.channel.name.lower() == channel.lower()]
            if found:
                return found[0]  # a name is unique per channel
        same = self.cache.get(text.lower(), [])
        if len(same) > 1:
            channels = ", ".join(sorted(c.channel.name for c in same))
            raise ValueError(f"Several customers you may view are named '{text}' (in {channels}): write "
                             f"'{text} (Channel)', e.g. '{text} ({same[0].channel.name})'.")
        if not same:
            raise ValueError(f"Unknown customer '{text}': name a business customer you may view, as 'Name' or, "
                             "when several bear the name, 'Name (Channel)'.")
        return same[0]

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if not text:
            raise ValueError("Name the location's customer.")
        customer = self.resolve(text)
        if self.user is not None and not access(self.user).can("change", customer):
            raise ValueError(f"You may not change the customer '{customer.name}', so you may not add or change "
                             "its locations.")
        return customer

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else value.name


class LocationTypeWidget(widgets.Widget):
    """A type by its label or value (Warehouse, warehouse); exported as the label. Blank
    keeps the current type (a new location: Office)."""

    choices = {k.lower(): v for v, label in Location.Type.choices for k in (v, label)}

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if not text:
            return None
        found = self.choices.get(" ".join(text.split()).lower())
        if found is None:
            raise ValueError(f"Unknown type '{text}': use one of "
                             f"{', '.join(label for _, label in Location.Type.choices)}.")
        return found

    def render(self, value, obj=None, **kwargs):
        return Location.Type(value).label if value else ""


class LocationTagsWidget(widgets.Widget):
    """Tags by name, separated by ';' (case ignored, repeats dropped); an unknown one is an error."""

    def __init__(self):
        super().__init__()
        self.tags = None

    def known(self):
        if self.tags is None:  # a managed list of a few rows: once per import
            self.tags = {t.name.lower(): t for t in LocationTag.objects.all()}
        return self.tags

    def clean(self, value, row=None, **kwargs):
        found = []
        for part in str(value or "").split(TAG_SEPARATOR):
            name = part.strip()
            if not name:
                continue
            tag = self.known().get(name.lower())
            if tag is None:
                allowed = ", ".join(sorted(t.name for t in self.known().values()))
                raise ValueError(f"Unknown tag '{name}': the tags are {allowed}.")
            if tag not in found:
                found.append(tag)
        return found

    def render(self, value, obj=None, **kwargs):
        return "; ".join(t.name for t in value or [])


def location_char(attribute, column):
    return fields.Field(attribute=attribute, column_name=column, widget=widgets.CharWidget())


class LocationResource(CRMResource):
    """Locations: ID, Customer, Name, Type, Tags, address, Email, Phone. The customer must be
    one the user may change; tags are written for the whole batch after its rows
    (customers.services.write_location_tags), with their history."""

    customer = fields.Field(attribute="customer", column_name="Customer", widget=LocationCustomerWidget())
    name = location_char("name", "Name")
    type = fields.Field(attribute="type", column_name="Type", widget=LocationTypeWidget())
    tags = fields.Field(attribute="csv_tags", column_name="Tags", widget=LocationTagsWidget())
    street = location_char("street", "Street")
    city = location_char("city", "City")
    postal_code = location_char("postal_code", "Postal Code")
    region = location_char("region", "Region")
    country = fields.Field(attribute="country", column_name="Country", widget=CountryWidget())
    email = location_char("email", "Email")
    phone = location_char("phone", "Phone")

    class Meta(CRMResource.Meta):
        model = Location
        fields = ("id", "customer", "name", "type", "tags", "street", "city", "postal_code", "region", "country",
                  "email", "phone")
        export_order = fields
        import_order = fields

    # -- export ------------------------------------------------------------------------------
    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("customer__channel").prefetch_related("tags")

    def export_rows(self, queryset):
        return with_shared_customer_names(self.export_queryset(queryset), self.user) if self.user else \
            self.export_queryset(queryset)

    def filter_export(self, queryset, **kwargs):
        """The admin's export: the same rows as the app's."""
        return self.export_rows(queryset)

    def dehydrate_customer(self, obj):
        customer = obj.customer
        if getattr(obj, "customer_name_shared", False):
            return f"{customer.name} ({customer.channel.name})"
        return customer.name

    def dehydrate_type(self, obj):
        return obj.get_type_display()

    def dehydrate_tags(self, obj):
        return "; ".join(sorted((t.name for t in obj.tags.all()), key=str.lower))

    def dehydrate_country(self, obj):
        return obj.country.code or ""

    # -- import --------------------------------------------------------------------------------
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen_names = set()  # (customer id, lower name) across batches (the admin imports one)

    def start_import(self, report, body, headers):
        self.seen_names = set()

    def before_import(self, dataset, **kwargs):
        super().before_import(dataset, **kwargs)
        ids = []
        if "ID" in dataset.headers:
            ids = [int(v) for v in dataset["ID"] if str(v or "").strip().isascii() and str(v).strip().isdigit()
                   and int(v) < 2**63]
        self.current_tags = {}  # {location id: {tag id}} of the batch's rows with an ID
        links = Location.tags.through.objects
        for i in range(0, len(ids), CHUNK):
            for location_id, tag_id in links.filter(location_id__in=ids[i : i + CHUNK]).values_list(
                    "location_id", "locationtag_id"):
                self.current_tags.setdefault(location_id, set()).add(tag_id)
        self.saved = []

    def check_unique(self, dataset):
        """A location's name is unique per customer: a name twice in the file, or taken by
        another location of the customer, is a row error (one query per batch)."""
        if "Customer" not in dataset.headers or "Name" not in dataset.headers:
            return
        widget = self.fields["customer"].widget
        ids = dataset["ID"] if "ID" in dataset.headers else [""] * len(dataset)
        rows = []
        for number, (pk, customer_text, name) in enumerate(zip(ids, dataset["Customer"], dataset["Name"]), start=1):
            name = str(name or "").strip()
            try:
                customer = widget.resolve(str(customer_text or "").strip()) if name else None
            except ValueError:
                customer = None  # the Customer column reports it
            if customer is not None:
                rows.append((number, str(pk or "").strip(), customer, name))
        taken = {}
        names = sorted({name.lower() for *_, name in rows})
        customer_ids = sorted({customer.pk for _, _, customer, _ in rows})
        for i in range(0, len(names), CHUNK):
            taken.update({(c, key): pk for c, key, pk in Location.objects.annotate(key=Lower("name")).filter(
                key__in=names[i : i + CHUNK], customer_id__in=customer_ids).values_list("customer_id", "key", "pk")})
        for number, pk, customer, name in rows:
            key = (customer.pk, name.lower())
            if key in self.seen_names:
                self.batch_errors[number] = {"name": f"The file names the location '{name}' of {customer.name} twice."}
            elif key in taken and str(taken[key]) != pk:
                self.batch_errors[number] = {
                    "name": f"{customer.name} already has a location named '{name}' (ID {taken[key]})."}
            else:  # a refused row claims no name: the row of the location holding it stays valid
                self.seen_names.add(key)

    def import_instance(self, instance, row, **kwargs):
        instance._loaded_type = instance.type if instance.pk else Location.Type.OFFICE
        super().import_instance(instance, row, **kwargs)

    def fill_defaults(self, instance):
        if not instance.type:
            instance.type = instance._loaded_type

    def validate_row(self, instance, row):
        if instance.customer_id is None and "Customer" not in row:
            raise ValidationError({"customer": "Name the location's customer (a Customer column)."})
        super().validate_row(instance, row)
        tags = getattr(instance, "csv_tags", None)
        current = self.current_tags.get(instance.pk, set())
        instance._tags_changed = tags is not None and {t.pk for t in tags} != current
        instance._final_tags = [t.pk for t in tags] if tags is not None else sorted(current)

    def skip_row(self, instance, original, row, import_validation_errors=None):
        if import_validation_errors or not self._meta.skip_unchanged or instance.pk is None:
            return False
        if getattr(instance, "_tags_changed", False):
            return False
        return all(field.get_value(instance) == field.get_value(original)
                   for field in self.get_import_fields() if field.attribute and field.attribute != "csv_tags")

    def save_instance(self, instance, is_create, row, **kwargs):
        super().save_instance(instance, is_create, row, **kwargs)
        self.saved.append(instance)

    def after_import(self, dataset, result, **kwargs):
        super().after_import(dataset, result, **kwargs)
        if not (result.has_errors() or result.has_validation_errors()) and self.saved:
            services.write_location_tags(self.saved)
        self.saved = []
