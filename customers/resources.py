"""CSV import and export of business customers.

Names resolve per batch in one query each: channels among all channels, accounts among
the accounts the importing user may view (an account he may not see is not matched: it
counts as unknown and a new one is created, rather than revealing or touching it).
Unknown accounts are created for the whole batch at once, owned by the importing user in
his primary unit. A row without an ID matches the customer of its name in its channel.
Email and Phone are the primary email and phone: a new customer's rows are inserted with
it, a changed one's follow through customers.services.sync_primary_rows, in a few queries.

Parent is the parent company's name in the row's channel: a customer the user may view or
one created by an earlier row of the file. Each batch's parents are resolved and its tree
checked (cycles, depth) before its rows, against the database as the earlier batches left
it, in a few queries (customers.tree: one walk up, one walk down, parent_refusal over the
batch's own parents). New customers of a batch are inserted parents first, then their
predefined groups.
"""
import re
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Case, CharField, Exists, F, OuterRef, Value, When
from django.db.models.functions import Concat, Lower
from import_export import fields, widgets

from accounts.models import Account
from channels.models import Channel
from crm.access import access, prefixed, restrict
from crm.exports import MONEY, Column, Folded, choice, integer_kind, joined
from crm.resources import EMAIL_HEADERS, PHONE_HEADERS, CountryWidget, CRMResource, NameWidget, OwnedResource, chunked

from . import services
from .models import (CURRENCIES, DEFAULT_CURRENCY, BusinessCustomer, Location, LocationTag,
                     name_clash_message, name_clashes)
from .tree import ancestor_map, parent_refusal, subtree_heights

NEW = "new"  # stand-in keys (NEW, row number in the batch) for the batch's new customers
CHUNK = 500  # SQLite caps the number of query parameters
ACCOUNT_NAME_LENGTH = Account._meta.get_field("name").max_length


class CurrencyWidget(widgets.Widget):
    codes = {code for code, _ in CURRENCIES}
    checks_choices = True

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip().upper()
        if not text:
            return DEFAULT_CURRENCY
        if text not in self.codes:
            raise ValueError(f"Unknown currency '{value}'; use one of: {', '.join(sorted(self.codes))}.")
        return text

    def render(self, value, obj=None, **kwargs):
        return value or ""

    def export_column(self, path, field):
        return Column(path)


class MoneyWidget(widgets.Widget):
    """A decimal amount with a point for decimals (1234.50 or 1,234.50); blank is 0.
    A decimal comma (1234,50) is refused rather than misread."""

    pattern = re.compile(r"^-?(\d+|\d{1,3}(,\d{3})+)(\.\d+)?$")
    # Past decimal's 28 digits of precision quantize fails; below it the model field's own
    # max_digits check says how many digits the column takes.
    MAX_WHOLE_DIGITS = 25

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if not text:
            return Decimal("0")
        if not self.pattern.match(text):
            raise ValueError(f"'{value}' is not an amount; write it like 1234.50.")
        amount = Decimal(text.replace(",", ""))
        if amount.adjusted() >= self.MAX_WHOLE_DIGITS:
            raise ValueError(f"'{text[:40]}' is too large an amount.")
        return amount.quantize(Decimal("0.01"))

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else f"{value:.2f}"

    def export_column(self, path, field):
        return Column(path, MONEY)


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

    def export_column(self, path, field):
        return Column(path, integer_kind(field))


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
        self.current = None  # the current account of the customer the row updates
        self.hidden = {}     # {id: account} of the batch's current accounts the names did not bring
        self.created = {}    # {lower-case name: account created for this batch}
        self.refusal = None  # why unknown accounts could not be created

    def current_of(self, customer):
        """The customer's current account: brought by the batch's names, or read for it."""
        return self.found.get(customer.account_id) or self.hidden.get(customer.account_id)

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if not text:
            return None
        key = text.lower()
        current = self.current
        if current is not None and current.name.lower() == key:
            return current
        found = self.cache.get(key) or self.created.get(key)
        if found is None:
            if len(text) > ACCOUNT_NAME_LENGTH:
                raise ValueError(f"An account name has at most {ACCOUNT_NAME_LENGTH} characters.")
            raise ValueError(f"Unknown account '{text}': {self.refusal or 'it could not be created'}.")
        return found


def visible_accounts(resource):
    # A row names the account to link it: its id and name are all the import reads of it.
    return restrict(Account.objects.only("pk", "name"), resource.user, "view")


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
    natural_key = ("name", "channel")
    natural_key_unique = True
    header_aliases = {
        "Name": ("Customer", "Customer Name", "Company", "Company Name", "Business Customer"),
        "Channel": ("Channel Name", "Sales Channel"),
        "Account": ("Account Name",),
        "Tax Number": ("Tax ID", "VAT Number", "VAT ID"),
        "Email": EMAIL_HEADERS + ("Primary Email",),
        "Phone": PHONE_HEADERS + ("Primary Phone",),
        "Website": ("Web Site", "URL", "Homepage"),
        "Billing Postal Code": ("Billing Zip", "Billing ZIP Code", "Billing Postcode"),
        "Shipping Postal Code": ("Shipping Zip", "Shipping ZIP Code", "Shipping Postcode"),
        "Billing Country": ("Billing Country Code",),
        "Shipping Country": ("Shipping Country Code",),
        "Lifetime Value": ("Lifetime Sales Value",),
        "Parent": ("Parent Company",),
    }

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
        self.accounts_created, self.accounts_named = 0, []  # how many, and the first names (for the note)
        self.parent_plan, self.created_rows, self.row_number = None, {}, 1
        self.clashes = None  # {(lower name, channel id): NameClash} of the batch, once asked

    def loaded_relations(self):
        # The tree checks read each matched row's parent. Its account only matters when the
        # user may not view it (prepare_accounts reads those few): a batch's customers have
        # hundreds of accounts, which the Account column's names bring anyway.
        return [name for name in super().loaded_relations() if name != "account"] + ["parent"]

    def finish_import(self, report):
        n = self.accounts_created
        if not n:
            return []
        names = ", ".join(self.accounts_named[:10]) + (", …" if n > 10 else "")
        return [f"{n} account{'s' if n != 1 else ''} will be created: {names}."]

    # -- a batch ------------------------------------------------------------------------------
    def prepare_rows(self, batch):
        self.created_rows = {}  # {(NEW, row number): instance} of the batch's new customers
        self.prepare_accounts(batch)
        self.parent_plan = self.plan_parents(batch) if "Parent" in batch.headers else None

    def prepare_accounts(self, batch):
        """Accounts for the names of the batch that name none the user may view, created at
        once (the rows refer to them), owned by him in his primary unit."""
        widget = self.fields["account"].widget
        widget.created, widget.refusal = {}, None
        # The current accounts of matched customers that the names did not bring: those the
        # user may not view (a row naming one keeps it).
        hidden = sorted({c.account_id for c in self.matches.values()} - set(widget.found))
        widget.hidden = {}
        for part in chunked(hidden):
            widget.hidden.update((a.pk, a) for a in Account.objects.filter(pk__any=part).only("pk", "name"))
        if "Account" not in batch.headers:
            return
        unknown = {}
        for number, row in enumerate(batch.rows, start=1):
            text = row.get("Account", "")
            key = text.lower()
            if not text or key in widget.cache or number in self.match_errors or len(text) > ACCOUNT_NAME_LENGTH:
                continue
            customer = self.matches.get(number)
            current = widget.current_of(customer) if customer is not None else None
            if current is not None and current.name.lower() == key:
                continue
            unknown.setdefault(key, text)
        if not unknown:
            return
        try:
            widget.created = self.create_accounts(list(unknown.values()))
        except PermissionDenied as e:
            widget.refusal = str(e).rstrip(".")
        else:
            self.accounts_created += len(unknown)
            self.accounts_named += list(unknown.values())[: max(0, 10 - len(self.accounts_named))]

    def create_accounts(self, names):
        """{lower-case name: new account}. The checks of customers.services.create_accounts;
        written through the import's writer so their history rows carry the import's reason
        (Undo deletes them with the customers)."""
        user = self.user
        if user is None or not access(user).may(Account, "create"):
            raise PermissionDenied("You may not create accounts.")
        unit = user.primary_unit
        if unit is None or not access(user).may_place(Account, user, unit):
            raise PermissionDenied("You have no primary business unit to own new accounts.")
        accounts = [Account(name=name, owner=user, business_unit=unit) for name in names]
        self.session.writer.create(Account, accounts)
        return {a.name.lower(): a for a in accounts}

    def batch_keys(self, batch):
        channel_widget = self.fields["channel"].widget
        channels = [channel_widget.lookup(text) if text else None for text in batch["Channel"]]
        return [(name, channel) for name, channel in zip(batch["Name"], channels)]

    def load_by_natural_key(self, keys):
        """One query answers both questions of the names: which customers hold the names of
        all the batch's rows (the clashes check_unique reports) and, among them, the ones
        the user may edit that rows without an ID match (then loaded by id)."""
        self.clashes = name_clashes([(name, channel.pk) for name, channel in self.batch_keys(self.batch) if channel])
        wanted = [clash.pk for key, clash in self.clashes.items() if key in keys]
        editable = self.load_by_id(wanted) if wanted else {}
        return {key: [editable[clash.pk]] for key, clash in self.clashes.items() if clash.pk in editable}

    def check_unique(self, batch):
        """A name is unique per channel (case-insensitive): twice in the file, or taken by
        another customer of that channel, is a row error (customers.models.name_clashes and
        name_clash_message, the form's check too: one query for the batch, the existing
        record named only if the user may view it)."""
        pairs = self.batch_keys(batch)
        names, texts, channels = batch["Name"], batch["Channel"], [channel for _, channel in pairs]
        taken = self.clashes
        if taken is None:  # no row without an ID asked (load_by_natural_key)
            taken = name_clashes([(name, channel.pk) for name, channel in pairs if channel])
        self.clashes = None
        for number, (line, name, text, channel) in enumerate(zip(batch.lines, names, texts, channels), start=1):
            if not name or channel is None or number in self.match_errors:
                continue
            key = (name.lower(), channel.pk)
            if self.session.earlier_line((name.lower(), text.lower()), key, line):
                self.batch_errors[number] = {"name": f"“{name}” appears twice in the file for channel {channel}."}
            elif key in taken and str(taken[key].pk) != self.row_pk(number):
                self.batch_errors[number] = {"name": name_clash_message(taken[key], channel, self.user)}

    def exists_message(self, record, by_id=False):
        if by_id:
            return super().exists_message(record, by_id)
        return name_clash_message(record, record.channel, self.user)  # the form's words

    # -- the company tree ---------------------------------------------------------------------------
    def plan_parents(self, batch):
        """{row number: parent key or ParentError} for the batch. The parent is named in the
        row's channel: an earlier row of the batch, else a customer the user may view or one
        an earlier row of the file wrote (earlier batches are in the database already). Then
        each row is checked by parent_refusal, the batch's own parents overriding the
        database, in order: the row that closes a cycle or deepens the tree too far is the
        one refused. A few queries per batch (customers.tree: one walk up, one walk down)."""
        channel_widget = self.fields["channel"].widget
        rows = [(number, row.get("Name", ""), channel_widget.lookup(row.get("Channel", "")), row.get("Parent", ""))
                for number, row in enumerate(batch.rows, start=1)]
        wanted = sorted({parent.lower() for *_, parent in rows if parent})
        channel_ids = sorted({channel.pk for _, _, channel, _ in rows if channel is not None})
        candidates = []  # (lower name, channel id, pk) of the customers bearing a wanted name
        for part in chunked(wanted):
            candidates += BusinessCustomer.objects.annotate(key=Lower("name")).filter(
                key__any=part, channel_id__any=channel_ids).values_list("key", "channel_id", "pk")
        unseen = [pk for _, _, pk in candidates if pk not in self.session.touched]
        visible = set()
        for part in chunked(unseen):
            visible.update(restrict(BusinessCustomer.objects.filter(pk__any=part), self.user, "view")
                           .values_list("pk", flat=True))
        found = {(key, channel_id): pk for key, channel_id, pk in candidates
                 if pk in visible or pk in self.session.touched}

        plan, parents, seen, keys = {}, {}, {}, {}
        self.matches_by_pk = {instance.pk: instance for instance in self.matches.values()}
        for number, name, channel, parent_text in rows:
            if number in self.match_errors or channel is None:
                continue  # the row's ID or Channel column reports it
            instance = self.matches.get(number)
            key = instance.pk if instance is not None else (NEW, number)
            if name:
                seen[(name.lower(), channel.pk)] = key
            current_id = instance.parent_id if instance is not None else None
            hidden = current_id is not None and not access(self.user).can("view", instance.parent)
            if hidden and (not parent_text or parent_text.lower() == instance.parent.name.lower()):
                # Exported blank (its name is not his to see): a blank cell keeps it.
                parent = current_id
            elif not parent_text:
                parent = None
            else:
                lookup = (parent_text.lower(), channel.pk)
                parent = seen.get(lookup, found.get(lookup))
                if parent is None:
                    plan[number] = ParentError(
                        f"Unknown parent company '{parent_text}' in {channel}: name a business customer of the "
                        "row's channel that you may view, or one created by an earlier row of this file.")
                    continue
            plan[number] = parents[key] = parent
            keys[number] = key

        # Only rows that set a parent, or take one away, can change the tree: the walks start
        # from those (a file of companies without parents costs no walk at all).
        moved = {k: p for k, p in parents.items()
                 if p is not None or (isinstance(k, int) and self.matches_by_pk[k].parent_id is not None)}
        db_ids = {k for k in list(moved) + list(moved.values()) if isinstance(k, int)}
        tree = ancestor_map(db_ids)
        # A new row is a root until its own parent is accepted (a refused one stays a root: the
        # walk from a later row naming it must not ask the database about a row it has not).
        tree.update((k, None) for k in keys.values() if not isinstance(k, int))
        heights = subtree_heights([k for k, p in moved.items() if isinstance(k, int) and p is not None])
        accepted = []
        for number, parent in plan.items():
            if isinstance(parent, ParentError):
                continue
            refusal = parent_refusal(keys[number], parent, tree, heights)
            if refusal:
                plan[number] = ParentError(refusal)
            else:
                tree[keys[number]] = parent
                accepted.append(number)
        # A later row may hang an earlier row's subtree deeper than the heights known from the
        # database: the batch's final tree is checked once more.
        for number in accepted:
            refusal = parent_refusal(keys[number], plan[number], tree, heights)
            if refusal:
                plan[number] = ParentError(refusal)
        return plan

    def planned_parent(self):
        """The current row's parent: a customer by id, an instance created by an earlier row, or None."""
        entry = (self.parent_plan or {}).get(self.row_number)
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

    # -- a row: query-free checks, the model's rules ---------------------------------------------
    def import_instance(self, instance, row, **kwargs):
        self.row_number = kwargs.get("row_number", 1)
        new = instance.pk is None
        widget = self.fields["account"].widget
        widget.current = None if new else widget.current_of(instance)
        super().import_instance(instance, row, **kwargs)
        if new:
            self.created_rows[(NEW, self.row_number)] = instance

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

    # -- writes -----------------------------------------------------------------------------------
    def save_new(self, objs):
        """Parents before their subsidiaries: a parent created by the same batch needs its id
        first (one insert per level of the batch's new tree)."""
        def parent_saved(obj):
            parent = obj._state.fields_cache.get("parent")
            return parent is None or parent.pk is not None

        pending = list(objs)
        while pending:
            ready = [o for o in pending if parent_saved(o)]
            if not ready:
                break  # cannot happen: parent_refusal refused cycles
            taken = {id(o) for o in ready}
            pending = [o for o in pending if id(o) not in taken]
            super().save_new(ready)

    def after_save(self, created, updated):
        """New customers get their primary email and phone rows, inserted for the whole batch
        (their groups come with their first member: services.create_predefined_groups); changed
        ones have their email and phone rows put in step with the columns
        (services.sync_primary_rows)."""
        writer = self.session.writer
        if created:
            for model, value_field, column in services.CONTACT_POINTS:
                writer.insert_from(model, created, {"customer_id": "id", value_field: column}, {"is_primary": True},
                                   unless_blank=column)
        moved = [c for c in updated if (c.primary_email, c.primary_phone) != (
            c._import_before["primary_email"], c._import_before["primary_phone"])]
        if moved:
            services.sync_primary_rows(moved)

    def restore_children(self, instances):
        """Undo gave these customers their columns back: their email and phone rows follow."""
        services.sync_primary_rows([c for c in instances if isinstance(c, BusinessCustomer)])

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

    def export_columns(self):
        """The Parent as dehydrate_parent writes it: the user's view condition applied to the
        parent row through its join (a test on that one row, not a subquery of every customer
        he may view)."""
        name = F("parent__name")
        condition = access(self.user).condition(BusinessCustomer, "view") if self.user is not None else None
        if condition is not None:
            name = Case(When(prefixed(condition, "parent"), then=name), default=Value(""), output_field=CharField())
        return {"parent": Column(name)}


# -- locations -----------------------------------------------------------------------------------

TAG_SEPARATOR = ";"
WITH_CHANNEL = re.compile(r"^(?P<name>.*\S)\s*\((?P<channel>[^()]+)\)$")


def split_customer(text):
    """("Name", "Channel") of a cell written `Name (Channel)`, else (text, None)."""
    match = WITH_CHANNEL.match(text)
    return (match["name"], match["channel"].strip()) if match else (text, None)


def customer_name_shared(user):
    """Whether another customer `user` may view bears the name of the location's customer
    (an Exists bounded by the row: customers of that name)."""
    others = BusinessCustomer.objects.annotate(key=Lower("name")).filter(
        key=Lower(OuterRef("customer__name"))).exclude(pk=OuterRef("customer_id"))
    return Exists(restrict(others, user, "view"))


def with_shared_customer_names(queryset, user):
    """Locations marked `customer_name_shared` when another customer `user` may view bears
    their customer's name: those are exported as `Name (Channel)`. Customers he may not view
    never count, so the export tells nothing about them."""
    return queryset.annotate(customer_name_shared=customer_name_shared(user))


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
            for customer in visible.annotate(_key=Lower("name")).filter(_key__any=keys[i : i + CHUNK]).order_by("pk"):
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

    def lookup(self, text):
        try:
            return self.resolve(str(text or "").strip())
        except ValueError:
            return None

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
    checks_choices = True

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

    natural_key = ("customer", "name")
    natural_key_unique = True
    header_aliases = {"Customer": ("Customer Name", "Company", "Business Customer"),
                      "Name": ("Location", "Location Name")}

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

    def export_columns(self):
        """The dehydrate methods below, in SQL."""
        name = F("customer__name")
        if self.user is not None:
            with_channel = Concat(name, Value(" ("), F("customer__channel__name"), Value(")"), output_field=CharField())
            name = Case(When(customer_name_shared(self.user), then=with_channel), default=name,
                        output_field=CharField())
        tags = LocationTag.objects.filter(locations=OuterRef("pk")).order_by(Folded("name"), "name")
        return {"customer": Column(name), "type": Column(choice("type", Location.Type.choices)),
                "tags": joined(tags, "name", "; "), "country": Column("country")}

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
    def file_key_columns(self):
        return {"Customer", "Name"}

    def file_key(self, row):
        # The customer's name without "(Channel)": rows naming one customer both ways still meet.
        customer, name = row.get("Customer", ""), row.get("Name", "")
        return (split_customer(customer)[0].lower(), name.lower()) if customer and name else None

    def prepare_rows(self, batch):
        ids = sorted(instance.pk for instance in self.matches.values())
        self.current_tags = {}  # {location id: {tag id}} of the batch's matched locations
        links = Location.tags.through.objects
        for part in chunked(ids):
            for location_id, tag_id in links.filter(location_id__any=part).values_list("location_id", "locationtag_id"):
                self.current_tags.setdefault(location_id, set()).add(tag_id)

    def check_unique(self, batch):
        """A location's name is unique per customer: a name twice in the file, or taken by
        another location of the customer, is a row error (one query per batch)."""
        if "Customer" not in batch.headers or "Name" not in batch.headers:
            return
        widget = self.fields["customer"].widget
        rows = []
        for number, (line, row) in enumerate(batch.items, start=1):
            name = row["Name"]
            customer = widget.lookup(row["Customer"]) if name and number not in self.match_errors else None
            if customer is not None:  # else the Customer column reports it
                rows.append((number, line, row, customer, name))
        taken = {}
        names = sorted({name.lower() for *_, name in rows})
        customer_ids = sorted({customer.pk for _, _, _, customer, _ in rows})
        for part in chunked(names):
            taken.update({(c, key): pk for c, key, pk in Location.objects.annotate(key=Lower("name")).filter(
                key__any=part, customer_id__any=customer_ids).values_list("customer_id", "key", "pk")})
        for number, line, row, customer, name in rows:
            key = (customer.pk, name.lower())
            clash = key in taken and str(taken[key]) != self.row_pk(number)
            # A refused row claims no name: the row of the location holding it stays valid.
            if self.session.earlier_line(self.file_key(row), key, line, claim=not clash):
                self.batch_errors[number] = {"name": f"The file names the location '{name}' of {customer.name} twice."}
            elif clash:
                self.batch_errors[number] = {
                    "name": f"{customer.name} already has a location named '{name}' (ID {taken[key]})."}

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

    def other_changes(self, instance):
        return getattr(instance, "_tags_changed", False)

    def after_save(self, created, updated):
        if created or updated:
            services.write_location_tags(created + updated)
