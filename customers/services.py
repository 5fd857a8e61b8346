"""Business customer writes that touch more than one row or model, each one transaction:
saving a customer with its phones, emails and (optionally) a new account, and keeping the
primary email/phone copied on the customer row in step with its phones and emails."""
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Max, Sum

from accounts.models import Account
from accounts.services import account_section
from crm.access import access, restrict
from crm.services import Sections

from .models import BusinessCustomer, CustomerEmail, CustomerGroup, CustomerPhone, Location

# (child model, its value field, the customer column holding the primary value)
CONTACT_POINTS = ((CustomerEmail, "email", "primary_email"), (CustomerPhone, "phone", "primary_phone"))


def save_customer(form, user):
    """Save the customer form with its phone and email formsets; with "create a new account"
    ticked, the account is created in the same transaction, named after the customer and
    owned like it."""
    with transaction.atomic():
        customer = form.save(commit=False)
        if form.cleaned_data.get("create_account"):
            if not access(user).may(Account, "create"):
                raise PermissionDenied("You may not create accounts.")
            account = Account(name=customer.name, owner=customer.owner, business_unit=customer.business_unit)
            account._history_user = user
            account._change_reason = f"Created with business customer “{customer.name}”"
            account.save()
            customer.account = account
        for formset in form.formsets.values():
            model, value_field, column = next(c for c in CONTACT_POINTS if c[0] is formset.model)
            setattr(customer, column, formset.primary_value())
        customer._history_user = user
        customer.save()
        form.save_m2m()
        for formset in form.formsets.values():
            formset.instance = customer
            _save_points(formset)
    return customer


# Context for the customer page from apps above customers (approvals' purchasing section),
# so the page calls them without importing them.
customer_sections = Sections()
customer_section = customer_sections.register


def create_predefined_groups(customer_ids):
    """The Admin, Buyer, Requester and Contact groups of the customers that have none yet: one
    insert for a whole batch. Called where a contact joins a group, not when a customer is
    created: most customers never get a member, and a million customers would carry four
    million empty groups (and an import of 100k customers 400k inserts, an eighth of its time)."""
    CustomerGroup.objects.bulk_create(
        [CustomerGroup(customer_id=pk, kind=kind) for pk in customer_ids for kind in CustomerGroup.Kind.values],
        ignore_conflicts=True)


def _save_points(formset):
    """Deleted rows and demoted primaries first, so the one-primary constraint holds at every step."""
    objs = formset.save(commit=False)
    promoted = getattr(formset, "promoted", None)
    if promoted is not None and promoted.pk and promoted not in objs:
        objs.append(promoted)  # an unchanged row made primary because none was ticked
    for obj in formset.deleted_objects:
        obj.delete()
    for obj in sorted(objs, key=lambda o: o.is_primary):
        obj.save()


def sync_primary_columns(customers):
    """Copy each customer's primary email and phone rows onto its columns (after phones or
    emails changed elsewhere, e.g. in the admin). Two reads and one bulk update."""
    customers = list(customers)
    ids = [c.pk for c in customers]
    changed = []
    values = {}
    for model, value_field, column in CONTACT_POINTS:
        values[column] = dict(model.objects.filter(customer_id__any=ids, is_primary=True)
                              .values_list("customer_id", value_field))
    for customer in customers:
        dirty = False
        for column, by_customer in values.items():
            value = by_customer.get(customer.pk, "")
            if getattr(customer, column) != value:
                setattr(customer, column, value)
                dirty = True
        if dirty:
            changed.append(customer)
    if changed:
        from simple_history.utils import bulk_update_with_history

        bulk_update_with_history(changed, BusinessCustomer, [c for _, _, c in CONTACT_POINTS],
                                 default_change_reason="Primary email or phone changed")
    return len(changed)


def sync_primary_rows(customers):
    """The reverse, for imports: each customer's Email/Phone column value becomes its primary
    email/phone row. The row with that value is promoted, or the current primary is replaced,
    or a new primary row is added; a blank value removes the primary row. A fixed number of
    queries for the whole batch."""
    customers = [c for c in customers if c.pk]
    ids = [c.pk for c in customers]
    if not ids:
        return
    for model, value_field, column in CONTACT_POINTS:
        rows = {}
        for row in model.objects.filter(customer_id__any=ids):
            rows.setdefault(row.customer_id, []).append(row)
        demote, promote, replace, create, delete = [], [], [], [], []
        for customer in customers:
            wanted = getattr(customer, column).strip()
            mine = rows.get(customer.pk, [])
            primary = next((r for r in mine if r.is_primary), None)
            same = (lambda a, b: a.lower() == b.lower()) if value_field == "email" else (lambda a, b: a == b)
            if not wanted:
                if primary:
                    delete.append(primary.pk)
                continue
            if primary and same(getattr(primary, value_field), wanted):
                if getattr(primary, value_field) != wanted:
                    setattr(primary, value_field, wanted)
                    replace.append(primary)
                continue
            match = next((r for r in mine if same(getattr(r, value_field), wanted)), None)
            if match:
                if primary:
                    primary.is_primary = False
                    demote.append(primary)
                match.is_primary = True
                promote.append(match)
            elif primary:
                setattr(primary, value_field, wanted)
                replace.append(primary)
            else:
                create.append(model(customer_id=customer.pk, is_primary=True, **{value_field: wanted}))
        if delete:
            model.objects.filter(pk__in=delete).delete()
        if demote:
            model.objects.bulk_update(demote, ["is_primary"])
        if promote:
            model.objects.bulk_update(promote, ["is_primary"])
        if replace:
            model.objects.bulk_update(replace, [value_field])
        if create:
            model.objects.bulk_create(create)


def create_accounts(names, user):
    """Accounts for an import's unknown account names, owned by the importing user in his
    primary unit. {lower-case name: account}."""
    from simple_history.utils import bulk_create_with_history

    if not names:
        return {}
    if not access(user).may(Account, "create"):
        raise PermissionDenied("You may not create accounts.")
    unit = user.primary_unit
    if unit is None or not access(user).may_place(Account, user, unit):
        raise PermissionDenied("You have no primary business unit to own new accounts.")
    accounts = [Account(name=name, owner=user, business_unit=unit) for name in names]
    bulk_create_with_history(accounts, Account, default_user=user,
                             default_change_reason="Created by a business customer import")
    return {a.name.lower(): a for a in accounts}


@account_section
def account_customers(account, user):
    """The account page's customers section: the customers of the account the user may
    view, grouped by channel, with counts and lifetime value summed per currency."""
    customers = restrict(BusinessCustomer.objects.filter(account=account), user, "view")
    per_channel = list(customers.values("channel_id", "channel__name", "channel__status")
                       .annotate(count=Count("pk")).order_by("channel__name"))
    totals = list(customers.values("currency").annotate(total=Sum("lifetime_value"), count=Count("pk"))
                  .order_by("-total"))
    channel_totals = {}
    for row in (customers.values("channel_id", "currency").annotate(total=Sum("lifetime_value"))
                .order_by("channel_id", "-total")):
        if row["total"] is not None:
            channel_totals.setdefault(row["channel_id"], []).append(row)
    shown = list(customers.select_related("channel", "owner").order_by("channel__name", "name")[:200])
    groups = []
    for row in per_channel:
        groups.append({"channel_id": row["channel_id"], "channel": row["channel__name"],
                       "active": row["channel__status"] == "active", "count": row["count"],
                       "totals": channel_totals.get(row["channel_id"], []),
                       "customers": [c for c in shown if c.channel_id == row["channel_id"]]})
    return {"customer_groups": groups, "customer_count": sum(g["count"] for g in groups),
            "customer_shown": len(shown), "lifetime_totals": totals}


# -- locations ---------------------------------------------------------------------------------

LOCATION_CHUNK = 500  # SQLite caps the number of query parameters


def _chunks(values, size=LOCATION_CHUNK):
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i : i + size]


def save_location(form, user):
    """A location from its form: its customer must be one the user may change (the form says
    so at the field; checked again here, where the write happens)."""
    with transaction.atomic():
        location = form.save(commit=False)
        if not access(user).can("change", location.customer):
            raise PermissionDenied("You may not change this customer's locations.")
        location._history_user = user
        location.save()
        form.save_m2m()
    return location


def write_location_tags(locations):
    """The tags of one imported batch, after its rows were written in bulk (which writes no
    many-to-many rows): one delete and one insert of links for the locations whose Tags cell
    changed them (`_tags_changed`, `_final_tags` set by LocationResource), then every written
    location's links copied onto its newest history row, as a form's save would keep them."""
    links = Location.tags.through
    with transaction.atomic():
        changed = [loc for loc in locations if getattr(loc, "_tags_changed", False)]
        for part in _chunks(loc.pk for loc in changed):
            links.objects.filter(location_id__in=part).delete()
        links.objects.bulk_create([links(location_id=loc.pk, locationtag_id=tag_id)
                                   for loc in changed for tag_id in loc._final_tags], batch_size=LOCATION_CHUNK)
        history = Location.history.model
        tag_history = history._meta.get_field("historicallocation_tags").related_model
        rows = []
        for part in _chunks(loc.pk for loc in locations):
            newest = dict(history.objects.filter(id__in=part).values("id").annotate(newest=Max("history_id"))
                          .values_list("id", "newest"))
            rows += [tag_history(id=pk, location_id=location_id, locationtag_id=tag_id, history_id=newest[location_id])
                     for pk, location_id, tag_id in links.objects.filter(location_id__in=part).values_list(
                         "pk", "location_id", "locationtag_id")
                     if location_id in newest]
        tag_history.objects.bulk_create(rows, batch_size=LOCATION_CHUNK)
