"""CSV import and export of contacts.

Columns with several values are separated by ';'. Street..Country are the primary
address. Account and group names are resolved for a whole batch in one query each,
accounts among those the importing user may view. A row without an ID matches the
contact of its primary email among those the user may edit. The contact rows are
written in bulk by crm.resources; their emails, phones, address, account and group links
are then written for the whole batch at once (contacts.services.write_import_children).
"""
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Case, CharField, F, FilteredRelation, OuterRef, Prefetch, Q, Value, When
from django.db.models.functions import Cast, Coalesce, Concat, Lower, NullIf, Substr
from django.db.models.lookups import Exact
from django.utils.html import format_html, format_html_join
from import_export import fields, widgets

from accounts.models import Account
from crm.access import restrict
from crm.exports import Column, Folded, Strip, joined
from crm.resources import EMAIL_HEADERS, PHONE_HEADERS, CountryWidget, CRMResource, NameWidget, OwnedResource, chunked

from . import services
from .models import Contact, ContactAddress, ContactEmail, ContactGroup, ContactPhone

SEPARATOR = ";"
MAX_NOTES = 20


def split(value):
    return [part.strip() for part in str(value or "").split(SEPARATOR) if part.strip()]


class ListWidget(widgets.Widget):
    """Several values in one cell, separated by ';'. Repeats are dropped."""

    def __init__(self, label, normalise=str.strip, validate=None, max_length=None):
        super().__init__()
        self.label, self.normalise, self.validate, self.max_length = label, normalise, validate, max_length

    def clean(self, value, row=None, **kwargs):
        items = []
        for part in split(value):
            item = self.normalise(part)
            if self.max_length and len(item) > self.max_length:
                raise ValueError(f"The {self.label} '{item[:40]}…' is longer than {self.max_length} characters.")
            if self.validate is not None:
                try:
                    self.validate(item)
                except ValidationError:
                    raise ValueError(f"'{item}' is not a valid {self.label}.") from None
            if item not in items:
                items.append(item)
        return items

    def render(self, value, obj=None, **kwargs):
        return "; ".join(value or [])


class NameListWidget(NameWidget):
    """Several related records by name in one cell, resolved for the whole batch in one
    query. A name shared by two records the user may see is an error, not a guess."""

    def __init__(self, model, plural, **kwargs):
        super().__init__(model, **kwargs)
        self.plural = plural
        self.ambiguous = set()

    def prime(self, resource, values):
        keys = sorted({name.lower() for value in values for name in split(value)})
        self.cache, self.ambiguous = {}, set()
        for part in services.chunks(keys):
            qs = self.base_queryset(resource).annotate(_key=Lower(self.field)).filter(_key__in=part)
            for obj in qs.order_by("pk"):
                key = getattr(obj, self.field).lower()
                if key in self.cache and self.cache[key].pk != obj.pk:
                    self.ambiguous.add(key)
                self.cache.setdefault(key, obj)

    def clean(self, value, row=None, **kwargs):
        found = []
        for name in split(value):
            key = name.lower()
            if key in self.ambiguous:
                raise ValueError(f"Several {self.plural} you may see are named '{name}'; "
                                 f"rename one of them, then import again.")
            obj = self.cache.get(key)
            if obj is None:
                raise ValueError(f"No {self.label} named '{name}' that you may see.")
            if obj not in found:
                found.append(obj)
        return found

    def render(self, value, obj=None, **kwargs):
        return "; ".join(getattr(o, self.field) for o in value or [])


def address_parts(address):
    """{part: value} of a stored address (country as its code), blanks for no address."""
    if address is None:
        return {part: "" for part in ContactAddress.PARTS}
    return {part: (address.country.code or "") if part == "country" else getattr(address, part)
            for part in ContactAddress.PARTS}


def visible_accounts(resource):
    return restrict(Account.objects.all(), resource.user, "view")


def char(attribute, column):
    return fields.Field(attribute=attribute, column_name=column, widget=widgets.CharWidget())


def with_visible_accounts(queryset, user):
    """Each contact's accounts, limited to those `user` may view, as `visible_accounts`."""
    # By name, then by key: two accounts of one name come in one order (the SQL export's too).
    accounts = restrict(Account.objects.all(), user, "view").only("pk", "name").order_by("name", "pk")
    return queryset.prefetch_related(Prefetch("accounts", queryset=accounts, to_attr="visible_accounts"))


NAME_PARTS = ("name_prefix", "first_name", "middle_name", "last_name", "name_suffix")


def contact_name(prefix=""):
    """str(contact) in SQL, for the contact at `prefix` (e.g. "requester__"): its full name
    (the name parts that are not blank, stripped, joined by spaces), else its email, else
    "Contact #<id>"."""
    spaced = []
    for part in NAME_PARTS:
        stripped = Strip(F(f"{prefix}{part}"))
        spaced.append(Case(When(Exact(stripped, Value("")), then=Value("")), default=Concat(Value(" "), stripped),
                           output_field=CharField()))
    full_name = Substr(Concat(*spaced, output_field=CharField()), 2)
    return Coalesce(NullIf(full_name, Value("")), NullIf(F(f"{prefix}email"), Value("")),
                    Concat(Value("Contact #"), Cast(F(f"{prefix}pk"), CharField())), output_field=CharField())


class ContactResource(OwnedResource):
    required_columns = ()  # a name or an email is enough; checked per row
    natural_key = ("email",)  # the primary email; several contacts may share one: then the ID says which
    natural_key_lower_case = ("email",)  # stored in lower case: matched through its index
    header_aliases = {
        "Primary Email": ("Email",) + EMAIL_HEADERS, "Primary Phone": ("Phone",) + PHONE_HEADERS,
        "First Name": ("Given Name", "Firstname"), "Last Name": ("Surname", "Family Name", "Lastname"),
        "Job Title": ("Title", "Position"), "Name Prefix": ("Salutation",),
    }
    name_prefix = char("name_prefix", "Name Prefix")
    first_name = char("first_name", "First Name")
    middle_name = char("middle_name", "Middle Name")
    last_name = char("last_name", "Last Name")
    name_suffix = char("name_suffix", "Name Suffix")
    job_title = char("job_title", "Job Title")
    email = char("email", "Primary Email")
    other_emails = fields.Field(attribute="csv_other_emails", column_name="Other Emails", widget=ListWidget(
        "email", normalise=lambda v: v.strip().lower(), validate=validate_email, max_length=254))
    phone = char("phone", "Primary Phone")
    other_phones = fields.Field(attribute="csv_other_phones", column_name="Other Phones", widget=ListWidget(
        "phone", normalise=lambda v: " ".join(v.split()), max_length=50))
    street = char("csv_street", "Street")
    city = char("csv_city", "City")
    postal_code = char("csv_postal_code", "Postal Code")
    region = char("csv_region", "Region")
    country = fields.Field(attribute="csv_country", column_name="Country", widget=CountryWidget())
    accounts = fields.Field(attribute="csv_accounts", column_name="Accounts", widget=NameListWidget(
        Account, "accounts", label="account", queryset=visible_accounts))
    groups = fields.Field(attribute="csv_groups", column_name="Groups", widget=NameListWidget(
        ContactGroup, "contact groups", label="contact group"))

    class Meta(OwnedResource.Meta):
        model = Contact
        fields = ("id", "name_prefix", "first_name", "middle_name", "last_name", "name_suffix", "job_title",
                  "email", "other_emails", "phone", "other_phones", "street", "city", "postal_code", "region",
                  "country", "accounts", "groups", "owner", "business_unit")
        export_order = fields
        import_order = fields

    ADDRESS_COLUMNS = {"street": "Street", "city": "City", "postal_code": "Postal Code", "region": "Region",
                       "country": "Country"}

    # -- export ----------------------------------------------------------------------------
    @classmethod
    def export_queryset(cls, queryset):
        primary = ContactAddress.objects.filter(is_primary=True)
        return super().export_queryset(queryset).prefetch_related(
            "emails", "phones", "groups", Prefetch("addresses", queryset=primary, to_attr="primary_addresses"))

    def filter_export(self, queryset, **kwargs):
        """The admin's export path: the same prefetches, accounts limited to the user's."""
        return with_visible_accounts(self.export_queryset(queryset), self.user)

    def export_columns(self):
        """The dehydrate methods below, in SQL: the many-valued columns as subqueries bounded by
        the contact, the primary address by a join (one per contact at most)."""
        emails = ContactEmail.objects.filter(contact=OuterRef("pk")).exclude(email=OuterRef("email"))
        phones = ContactPhone.objects.filter(contact=OuterRef("pk")).exclude(phone=OuterRef("phone"))
        accounts = Account.objects.filter(contacts=OuterRef("pk"))
        if self.user is not None:
            accounts = restrict(accounts, self.user, "view")
        groups = ContactGroup.objects.filter(contacts=OuterRef("pk")).order_by(Folded("name"), "name")
        address = {"export_address": FilteredRelation("addresses", condition=Q(addresses__is_primary=True))}
        return {
            "other_emails": joined(emails.order_by("-is_primary", "pk"), "email", "; "),
            "other_phones": joined(phones.order_by("-is_primary", "pk"), "phone", "; "),
            "accounts": joined(accounts.order_by("name", "pk"), "name", "; "),
            "groups": joined(groups, "name", "; "),
            **{part: Column(f"export_address__{part}", relations=address) for part in ContactAddress.PARTS},
        }

    def dehydrate_other_emails(self, obj):
        return "; ".join(e.email for e in obj.emails.all() if e.email != obj.email)

    def dehydrate_other_phones(self, obj):
        return "; ".join(p.phone for p in obj.phones.all() if p.phone != obj.phone)

    def primary_address(self, obj):
        found = getattr(obj, "primary_addresses", None)
        if found is None:
            found = [a for a in obj.addresses.all() if a.is_primary]
        return found[0] if found else None

    def address_part(self, obj, part):
        address = self.primary_address(obj)
        if address is None:
            return ""
        return address.country.code if part == "country" and address.country else getattr(address, part)

    def dehydrate_street(self, obj):
        return self.address_part(obj, "street")

    def dehydrate_city(self, obj):
        return self.address_part(obj, "city")

    def dehydrate_postal_code(self, obj):
        return self.address_part(obj, "postal_code")

    def dehydrate_region(self, obj):
        return self.address_part(obj, "region")

    def dehydrate_country(self, obj):
        return self.address_part(obj, "country")

    def dehydrate_accounts(self, obj):
        accounts = getattr(obj, "visible_accounts", None)
        if accounts is None:  # not prefetched: ask, still limited to what the user may view
            accounts = restrict(obj.accounts.all(), self.user, "view").order_by("name", "pk")
        return "; ".join(a.name for a in accounts)

    def dehydrate_groups(self, obj):
        return "; ".join(g.name for g in sorted(obj.groups.all(), key=lambda g: g.name.lower()))

    # -- import -----------------------------------------------------------------------------------
    def file_keys(self, row):
        """Every email of the row: one on two rows of the file is noted (possible duplicates)."""
        return self.row_emails(row)

    def file_key_columns(self):
        return {"Primary Email", "Other Emails"}

    @staticmethod
    def row_emails(row):
        return list(dict.fromkeys(split(row.get("Primary Email", "").lower()) + split(row.get("Other Emails", "").lower())))

    def start_import(self, report, importer):
        self.note_items, self.note_count = [], 0

    def finish_import(self, report):
        """Emails that contacts the user may view already have, or that an earlier row of the
        file has, are listed in the preview with links; the rows are still imported (the
        preview is where the user decides)."""
        items, count = getattr(self, "note_items", []), getattr(self, "note_count", 0)
        if not count:
            return []
        more = f" and {count - MAX_NOTES} more" if count > MAX_NOTES else ""
        return [format_html(
            "<strong>Possible duplicates</strong> ({} found{}). They will be imported as they are; "
            "cancel and fix the file if they are the same people.<ul class=\"mb-0\">{}</ul>",
            count, more, format_html_join("", "<li>{}</li>", ((item,) for item in items[:MAX_NOTES])))]

    def prepare_rows(self, batch):
        ids = sorted(instance.pk for instance in self.matches.values())
        self.current = services.current_children(ids, self.user)
        self.note_duplicates(batch)

    def note_duplicates(self, batch):
        """One query per batch for the emails that contacts the user may view have (not the
        row's own contact, nor one this import created: those are rows of the file)."""
        if not hasattr(self, "note_items"):
            self.note_items, self.note_count = [], 0
        emails = {number: self.row_emails(row) for number, row in enumerate(batch.rows, start=1)}
        found = services.duplicates_by_email({e for found in emails.values() for e in found}, self.user)
        created = self.session.created
        for number, line in enumerate(batch.lines, start=1):
            own = self.matches.get(number)
            for email in emails[number]:
                others = [c for c in found.get(email, []) if c.pk not in created and (own is None or c.pk != own.pk)]
                items = [services.duplicate_note(line, email, others)] if others else []
                first = self.session.earlier_line(email, email, line)
                if first:
                    items.append(format_html("Row {}: {} is also on row {} of this file.", line, email, first))
                self.note_count += len(items)
                self.note_items += items[: MAX_NOTES - len(self.note_items)]

    def validate_row(self, instance, row):
        self.plan_children(instance, row)
        super().validate_row(instance, row)
        name_error = instance.name_error()  # the model's rule (Contact.clean uses it too)
        if name_error:
            raise ValidationError({"first_name": name_error})
        parts = instance._csv_changes.get("address")
        if parts:
            try:
                ContactAddress(**parts).clean_fields(exclude=["contact", "type", "is_primary"])
            except ValidationError as e:
                raise ValidationError({f"csv_{part}": msgs for part, msgs in e.message_dict.items()}) from None

    def plan_children(self, instance, row):
        """What the row changes besides the contact's own columns, in `instance._csv_changes`
        (only the columns present in the file, only what differs from the stored values)."""
        current = self.current.get(instance.pk) or {"emails": [], "phones": [], "address": None,
                                                     "accounts": [], "groups": []}
        changes = {}
        instance.email = (instance.email or "").strip().lower()
        instance.phone = " ".join((instance.phone or "").split())
        for key, attr, columns in (("emails", "email", ("Primary Email", "Other Emails")),
                                   ("phones", "phone", ("Primary Phone", "Other Phones"))):
            if not any(c in row for c in columns):
                continue
            others = getattr(instance, f"csv_other_{key}", None)
            if columns[1] not in row or others is None:
                others = current[key][1:]
            primary = getattr(instance, attr)
            if not primary and others:
                primary, others = others[0], others[1:]
                setattr(instance, attr, primary)
            values = ([primary] if primary else []) + [v for v in others if v != primary]
            if values != current[key]:
                changes[key] = values
        if any(column in row for column in self.ADDRESS_COLUMNS.values()):
            stored = address_parts(current["address"])
            parts = dict(stored)
            for part, column in self.ADDRESS_COLUMNS.items():
                value = getattr(instance, f"csv_{part}", None) if column in row else None
                if value is not None:
                    parts[part] = value
            if parts != stored:
                changes["address"] = parts
        for key in ("accounts", "groups"):
            chosen = getattr(instance, f"csv_{key}", None)
            if chosen is not None and {o.pk for o in chosen} != set(current[key]):
                changes[key] = chosen
        instance._csv_changes = changes

    def other_changes(self, instance):
        return bool(getattr(instance, "_csv_changes", None))

    def after_save(self, created, updated):
        plans = [(c, c._csv_changes) for c in created + updated if getattr(c, "_csv_changes", None)]
        if plans:
            services.write_import_children(plans, self.user)

    def restore_children(self, instances):
        """Undo gave these contacts their primary email and phone back: their primary email
        and phone rows follow (the other rows stay; they have no history to go back to)."""
        contacts = {c.pk: c for c in instances if isinstance(c, Contact)}
        for model, attr in ((ContactEmail, "email"), (ContactPhone, "phone")):
            rows = {}
            for part in services.chunks(sorted(contacts)):
                for row in model.objects.filter(contact_id__in=part).order_by("-is_primary", "pk"):
                    rows.setdefault(row.contact_id, []).append(row)
            stale, fresh = [], []
            for pk, contact in contacts.items():
                mine, wanted = rows.get(pk, []), getattr(contact, attr)
                if [getattr(r, attr) for r in mine[:1]] == ([wanted] if wanted else []):
                    continue
                # Rewritten primary first, as the import writes them (one primary at every moment).
                values = ([wanted] if wanted else []) + [getattr(r, attr) for r in mine if getattr(r, attr) != wanted]
                values = values if wanted else []
                stale += [r.pk for r in mine]
                fresh += [model(contact_id=pk, is_primary=(i == 0), **{attr: v}) for i, v in enumerate(values)]
            for part in services.chunks(stale):
                model.objects.filter(pk__in=part).delete()
            model.objects.bulk_create(fresh, batch_size=services.CHUNK)


class ContactGroupResource(CRMResource):
    natural_key = ("name",)
    natural_key_unique = True
    header_aliases = {"Name": ("Group", "Group Name")}

    name = char("name", "Name")
    description = char("description", "Description")

    class Meta(CRMResource.Meta):
        model = ContactGroup
        fields = ("id", "name", "description")
        export_order = fields
        import_order = fields

    def check_unique(self, batch):
        """Names are unique: a name twice in the file, or taken by another group, is a row error."""
        names = batch["Name"]
        taken = {}
        for part in chunked(sorted({n.lower() for n in names if n})):
            taken.update(ContactGroup.objects.annotate(key=Lower("name")).filter(key__in=part).values_list("key", "pk"))
        for number, (line, name) in enumerate(zip(batch.lines, names), start=1):
            key = name.lower()
            if not key or number in self.match_errors:
                continue
            if self.session.earlier_line((key,), key, line):
                self.batch_errors[number] = {"name": f"The name '{name}' appears twice in the file."}
            elif key in taken and str(taken[key]) != self.row_pk(number):
                self.batch_errors[number] = {
                    "name": f"A contact group named '{name}' already exists (ID {taken[key]})."}
