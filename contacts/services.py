"""Contact writes that touch more than one row: the contact with its emails, phones and
addresses, the primary email and phone copied onto the contact row, and the child rows
of an imported batch. Each runs inside one transaction."""
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils.html import format_html, format_html_join
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from accounts.models import Account
from accounts.services import account_section
from crm.access import access, restrict
from customers.models import BusinessCustomer, CustomerGroup, CustomerGroupMember, Propagation
from customers.services import create_predefined_groups
from customers.tree import ancestor_ids, descendant_rows

from .models import Contact, ContactAddress, ContactCustomerAssignment, ContactEmail, ContactPhone

CHUNK = 500  # SQLite caps the number of query parameters


def chunks(values, size=CHUNK):
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i : i + size]


# -- duplicates ------------------------------------------------------------------------------

def visible_duplicates(emails, user, exclude_pk=None, limit=20):
    """[(contact, [matching emails])] among the contacts `user` may view that already have
    one of `emails`. Contacts he may not view are never considered."""
    found = duplicates_by_email(emails, user, exclude_pks={exclude_pk} if exclude_pk else set())
    by_contact = {}
    for email, contacts in sorted(found.items()):
        for contact in contacts:
            by_contact.setdefault(contact.pk, (contact, []))[1].append(email)
    return sorted(by_contact.values(), key=lambda pair: pair[0].pk)[:limit]


def duplicates_by_email(emails, user, exclude_pks=()):
    """{email: [contacts the user may view that have it]}, one query per 500 emails."""
    emails = {e.strip().lower() for e in emails if e and e.strip()}
    visible = restrict(Contact.objects.all(), user, "view")
    if exclude_pks:
        visible = visible.exclude(pk__in=list(exclude_pks))
    found = {}
    for part in chunks(sorted(emails)):
        rows = (ContactEmail.objects.filter(email__in=part, contact__in=visible.values("pk"))
                .select_related("contact").order_by("contact_id"))
        for row in rows:
            found.setdefault(row.email, []).append(row.contact)
    return found


def duplicate_note(line, email, contacts):
    links = format_html_join(", ", '<a href="{}">{}</a> (ID {})',
                             ((c.get_absolute_url(), c, c.pk) for c in contacts[:3]))
    more = f" and {len(contacts) - 3} more" if len(contacts) > 3 else ""
    return format_html("Row {}: {} already belongs to {}{}. The row will still be imported.", line, email, links, more)


# -- the contact form --------------------------------------------------------------------------

def save_contact(form, user):
    """Create or edit a contact from a validated ContactForm: the contact, its account
    and group links and its emails, phones and addresses, all or nothing."""
    with transaction.atomic():
        contact = form.save(commit=False)
        contact.email, contact.phone = form.primary_values()
        contact._history_user = user
        contact.save()
        form.save_m2m()
        for formset in form.formsets.values():
            save_children(formset, contact)
    return contact


def save_children(formset, contact):
    """Save one inline formset of a contact. The primary flag moves in three steps (clear,
    save rows, set) because the database allows one primary per contact at every moment."""
    model = formset.model
    formset.instance = contact
    model.objects.filter(contact=contact, is_primary=True).update(is_primary=False)
    objects = formset.save(commit=False)
    for obj in formset.deleted_objects:
        obj.delete()
    for obj in objects:
        obj.contact = contact
        obj.is_primary = False
        obj.save()
    primary = formset.primary_form()
    if primary is not None:
        model.objects.filter(pk=primary.instance.pk).update(is_primary=True)
        primary.instance.is_primary = True


def refresh_primaries(contact_ids, user=None):
    """Copy each contact's primary email and phone onto its row (after the admin's inlines
    changed them): one read per 500 contacts, then one bulk update of the contacts whose
    copies changed, each with its history row."""
    first = {
        "email": ContactEmail.objects.filter(contact=OuterRef("pk")).order_by("-is_primary", "pk").values("email")[:1],
        "phone": ContactPhone.objects.filter(contact=OuterRef("pk")).order_by("-is_primary", "pk").values("phone")[:1],
    }
    changed = []
    with transaction.atomic():
        for part in chunks(contact_ids):
            rows = (Contact.objects.select_for_update().filter(pk__in=part)
                    .annotate(primary_email=Coalesce(Subquery(first["email"]), Value("")),
                              primary_phone=Coalesce(Subquery(first["phone"]), Value(""))))
            for contact in rows:
                if (contact.email, contact.phone) != (contact.primary_email, contact.primary_phone):
                    contact.email, contact.phone = contact.primary_email, contact.primary_phone
                    changed.append(contact)
        if changed:
            bulk_update_with_history(changed, Contact, ["email", "phone"], default_user=user,
                                     default_change_reason="Primary email or phone changed")
    return len(changed)


# -- import --------------------------------------------------------------------------------

def current_children(contact_ids, user):
    """What the CSV columns of these contacts hold now, from one query per table:
    {id: {"emails": [primary first], "phones": [...], "address": {part: value} | None,
    "accounts": [ids of accounts the user may view], "groups": [ids]}}."""
    current = {pk: {"emails": [], "phones": [], "address": None, "accounts": [], "groups": []} for pk in contact_ids}
    for part in chunks(contact_ids):
        for cid, email in ContactEmail.objects.filter(contact_id__in=part).order_by("-is_primary", "pk").values_list(
                "contact_id", "email"):
            current[cid]["emails"].append(email)
        for cid, phone in ContactPhone.objects.filter(contact_id__in=part).order_by("-is_primary", "pk").values_list(
                "contact_id", "phone"):
            current[cid]["phones"].append(phone)
        for address in ContactAddress.objects.filter(contact_id__in=part, is_primary=True):
            current[address.contact_id]["address"] = address
        visible = restrict(Account.objects.all(), user, "view").values("pk")
        links = Contact.accounts.through.objects.filter(contact_id__in=part, account_id__in=visible).order_by("pk")
        for cid, aid in links.values_list("contact_id", "account_id"):
            current[cid]["accounts"].append(aid)
        for cid, gid in Contact.groups.through.objects.filter(contact_id__in=part).order_by("pk").values_list(
                "contact_id", "contactgroup_id"):
            current[cid]["groups"].append(gid)
    return current


def write_import_children(plans, user):
    """Write the child rows of one imported batch: each plan is (contact, changes) where
    `changes` holds only what the file's columns set ("emails", "phones", "address",
    "accounts", "groups"). One delete and one insert per table for the whole batch.

    Account links are replaced among the accounts the user may view; links to accounts
    he may not view stay as they were."""
    def ids_with(key):
        return [contact.pk for contact, changes in plans if key in changes]

    with transaction.atomic():
        for key, model, attr in (("emails", ContactEmail, "email"), ("phones", ContactPhone, "phone")):
            ids = ids_with(key)
            for part in chunks(ids):
                model.objects.filter(contact_id__in=part).delete()
            model.objects.bulk_create([
                model(contact_id=contact.pk, is_primary=(i == 0), **{attr: value})
                for contact, changes in plans if key in changes
                for i, value in enumerate(changes[key])
            ], batch_size=CHUNK)

        address_ids = ids_with("address")
        existing = {}
        for part in chunks(address_ids):
            primaries = ContactAddress.objects.filter(contact_id__in=part, is_primary=True)
            existing.update({a.contact_id: a for a in primaries})
        create, update, delete = [], [], []
        for contact, changes in plans:
            if "address" not in changes:
                continue
            parts, address = changes["address"], existing.get(contact.pk)
            if not any(str(v).strip() for v in parts.values()):
                if address is not None:
                    delete.append(address.pk)
                continue
            if address is None:
                address = ContactAddress(contact_id=contact.pk, is_primary=True, type=ContactAddress.Type.OTHER)
                create.append(address)
            else:
                update.append(address)
            for name, value in parts.items():
                setattr(address, name, value)
        for part in chunks(delete):
            ContactAddress.objects.filter(pk__in=part).delete()
        ContactAddress.objects.bulk_create(create, batch_size=CHUNK)
        if update:
            ContactAddress.objects.bulk_update(update, list(ContactAddress.PARTS), batch_size=CHUNK)

        through = Contact.groups.through
        ids = ids_with("groups")
        for part in chunks(ids):
            through.objects.filter(contact_id__in=part).delete()
        through.objects.bulk_create([
            through(contact_id=contact.pk, contactgroup_id=group.pk)
            for contact, changes in plans if "groups" in changes for group in changes["groups"]
        ], batch_size=CHUNK)

        through = Contact.accounts.through
        ids = ids_with("accounts")
        visible = restrict(Account.objects.all(), user, "view").values("pk")
        for part in chunks(ids):
            through.objects.filter(contact_id__in=part, account_id__in=visible).delete()
        through.objects.bulk_create([
            through(contact_id=contact.pk, account_id=account.pk)
            for contact, changes in plans if "accounts" in changes for account in changes["accounts"]
        ], batch_size=CHUNK, ignore_conflicts=True)


# -- customer assignments ------------------------------------------------------------------------
# A contact's roles at a customer, the copies the customer's propagation setting makes up or
# down its subsidiary tree, the contact's group at each customer (one per customer: Contact
# when he arrives, gone with his last role there) and the customer's approval group.

def _roles_text(types):
    labels = dict(ContactCustomerAssignment.Type.choices)
    return ", ".join(labels.get(t, t).lower() for t in types)


def assignment_refusal(contact, customer, types, user):
    """Why `contact` may not get the roles `types` at `customer`, or None: a role he already
    has there, or a primary contact the customer already has (named only if `user` sees him)."""
    rows = ContactCustomerAssignment.objects.filter(customer=customer).filter(
        Q(contact=contact, type__in=types) | Q(type=ContactCustomerAssignment.Type.PRIMARY))
    rows = list(rows.values_list("contact_id", "type"))
    held = [t for t in types if (contact.pk, t) in rows]
    if held:
        return f"{contact} already has the role{'s' if len(held) > 1 else ''} {_roles_text(held)} at {customer}."
    holder = next((pk for pk, t in rows if t == ContactCustomerAssignment.Type.PRIMARY), None)
    if ContactCustomerAssignment.Type.PRIMARY in types and holder is not None:
        shown = restrict(Contact.objects.filter(pk=holder), user, "view").first()
        who = f"{shown}" if shown else "a contact you may not see"
        return (f"{customer} already has a primary contact ({who}); a customer has one primary contact. "
                f"Remove that role first.")
    return None


def assignable_contacts(customer, user):
    """Contacts `user` may give a role at `customer`: those of its account he may change."""
    return restrict(Contact.objects.filter(accounts=customer.account_id), user, "change").order_by(
        "last_name", "first_name", "pk")


def propagation_targets(customer):
    """Ids of the customers a new role at `customer` is copied to, by its propagation setting."""
    if customer.assignment_propagation == Propagation.UP:
        return ancestor_ids(customer.pk)
    if customer.assignment_propagation == Propagation.DOWN:
        return [row[0] for row in descendant_rows(customer.pk)]
    return []


def assign_roles(contact, customer, types, user):
    """Give `contact` the roles `types` at `customer`, copy them to the customers its
    propagation setting reaches (not where he already has the role, nor a primary where there
    is one) and put him in the Contact group wherever he has no group yet. Raises
    ValidationError (nothing written) when the roles cannot be given. Returns the new rows."""
    types = list(dict.fromkeys(types))
    with transaction.atomic():
        # Serialises role changes per customer, so the primary check below stays true.
        customer = BusinessCustomer.objects.select_for_update().get(pk=customer.pk)
        refusal = assignment_refusal(contact, customer, types, user)
        if refusal:
            raise ValidationError(refusal)
        origins = bulk_create_with_history(
            [ContactCustomerAssignment(contact=contact, customer=customer, type=t) for t in types],
            ContactCustomerAssignment, default_user=user)
        return origins + propagate(contact, customer, origins, user)


def propagate(contact, customer, origins, user):
    """What follows new roles `origins` of `contact` at `customer` (also when the admin
    created them): copies where the customer's propagation setting reaches, and the Contact
    group wherever he has no group yet. Returns the copies."""
    with transaction.atomic():
        types = [o.type for o in origins]
        targets = propagation_targets(customer)
        copies = []
        if targets:
            taken = set(ContactCustomerAssignment.objects.filter(customer_id__in=targets).filter(
                Q(contact=contact, type__in=types) | Q(type=ContactCustomerAssignment.Type.PRIMARY))
                .values_list("customer_id", "contact_id", "type"))
            primaries = {c for c, _, t in taken if t == ContactCustomerAssignment.Type.PRIMARY}
            copies = [ContactCustomerAssignment(contact=contact, customer_id=target, type=o.type, origin=o)
                      for target in targets for o in origins
                      if (target, contact.pk, o.type) not in taken
                      and not (o.type == ContactCustomerAssignment.Type.PRIMARY and target in primaries)]
            copies = bulk_create_with_history(copies, ContactCustomerAssignment, default_user=user,
                                              default_change_reason=f"Propagated from {customer}")
        _join_contact_group(contact, [customer.pk] + sorted({c.customer_id for c in copies}), user)
    return copies


def _join_contact_group(contact, customer_ids, user):
    create_predefined_groups(customer_ids)  # customers made before the groups existed
    members = set(CustomerGroupMember.objects.filter(contact=contact, customer_id__in=customer_ids)
                  .values_list("customer_id", flat=True))
    groups = dict(CustomerGroup.objects.filter(customer_id__in=customer_ids, kind=CustomerGroup.Kind.CONTACT)
                  .values_list("customer_id", "pk"))
    bulk_create_with_history(
        [CustomerGroupMember(customer_id=c, contact=contact, group_id=groups[c])
         for c in customer_ids if c not in members], CustomerGroupMember, default_user=user)


def unassign_roles(assignments, user):
    """Remove the roles `assignments` (rows the user may change), with the copies propagation
    made of them. Where a contact has no role left at a customer he leaves its group and its
    approval group. Returns the number of roles removed (copies included)."""
    with transaction.atomic():
        ids = [a.pk for a in assignments]
        copies = list(ContactCustomerAssignment.objects.select_for_update().filter(origin_id__in=ids)
                      .exclude(pk__in=ids))
        rows = copies + list(ContactCustomerAssignment.objects.select_for_update().filter(pk__in=ids))
        # Copies first: a cascade from their origin would write history rows naming nobody.
        for row in rows:
            row._history_user = user
            row.delete()
        pairs = {(row.contact_id, row.customer_id) for row in rows}
        if pairs:
            contact_ids, customer_ids = {p[0] for p in pairs}, {p[1] for p in pairs}
            still = set(ContactCustomerAssignment.objects.filter(contact_id__in=contact_ids,
                                                                 customer_id__in=customer_ids)
                        .values_list("contact_id", "customer_id"))
            gone = pairs - still
            for member in CustomerGroupMember.objects.filter(contact_id__in=contact_ids, customer_id__in=customer_ids):
                if (member.contact_id, member.customer_id) in gone:
                    member._history_user = user
                    member.delete()
            approver_links = BusinessCustomer.approvers.through.objects.filter(
                contact_id__in=contact_ids, businesscustomer_id__in=customer_ids)
            left = [link for link in approver_links if (link.contact_id, link.businesscustomer_id) in gone]
            if left:
                BusinessCustomer.approvers.through.objects.filter(pk__in=[link.pk for link in left]).delete()
                _approval_group_history(BusinessCustomer.objects.filter(
                    pk__in={link.businesscustomer_id for link in left}), user, "A member left the approval group")
    return len(rows)


def move_to_group(customer, contact, kind, user):
    """Put `contact` (who has a role at `customer`) in the customer's group `kind`."""
    with transaction.atomic():
        if not ContactCustomerAssignment.objects.filter(customer=customer, contact=contact).exists():
            raise ValidationError(f"{contact} has no role at {customer}; give him one first.")
        create_predefined_groups([customer.pk])
        group = CustomerGroup.objects.get(customer=customer, kind=kind)
        member = CustomerGroupMember.objects.select_for_update().filter(customer=customer, contact=contact).first()
        if member is None:
            member = CustomerGroupMember(customer=customer, contact=contact)
        elif member.group_id == group.pk:
            return member
        member.group = group
        member._history_user = user
        member.save()
    return member


def set_approvers(customer, contacts, user):
    """The customer's approval group becomes `contacts` (the form limits them to contacts
    with a role at the customer); the customer's history records the change."""
    with transaction.atomic():
        before = set(customer.approvers.values_list("pk", flat=True))
        after = {c.pk for c in contacts}
        if before == after:
            return False
        customer.approvers.set(contacts)
        # No names in the reason: the history is shown to who may not see every contact.
        _approval_group_history([customer], user, f"Approval group changed ({len(after)} "
                                                  f"member{'s' if len(after) != 1 else ''})")
    return True


def _approval_group_history(customers, user, reason):
    BusinessCustomer.history.bulk_history_create(list(customers), update=True, default_user=user,
                                                 default_change_reason=reason)


# -- record page sections ----------------------------------------------------------------------

def _visible_ids(model, ids, user):
    ids = set(ids)
    return set(restrict(model.objects.filter(pk__in=ids), user, "view").values_list("pk", flat=True)) if ids else set()


def _via(row, visible_customers):
    """(name, url) of the customer a propagated role came from; the name is hidden when the
    user may not see that customer."""
    if row.origin_id is None:
        return None
    origin = row.origin.customer
    if origin.pk in visible_customers:
        return {"name": origin.name, "url": origin.get_absolute_url()}
    return {"name": None, "url": None}


def contact_assignments(contact, user):
    """The contact page's customers: his roles at the customers the user may see, each with
    where a propagated role came from."""
    rows = list(ContactCustomerAssignment.restrict_queryset(contact.customer_assignments.all(), user, "view")
                .select_related("customer__channel", "customer__account", "origin__customer"))
    visible = _visible_ids(BusinessCustomer, {r.origin.customer_id for r in rows if r.origin_id}, user)
    ids = {r.customer_id for r in rows}
    changeable = set(restrict(BusinessCustomer.objects.filter(pk__in=ids), user, "change")
                     .values_list("pk", flat=True)) if ids else set()
    for row in rows:
        row.via = _via(row, visible)
        row.can_remove = row.customer_id in changeable
    return rows


def customer_contacts(request, customer, limit=100):
    """Context for templates/customers/_contacts.html: the contacts with a role at `customer`
    that the user may see, their roles (and where propagated ones came from), their group,
    the approval group, and the forms of who may change the customer."""
    from .forms import ApproversForm, CustomerAssignmentForm

    user = request.user
    rows = list(ContactCustomerAssignment.restrict_queryset(customer.contact_assignments.all(), user, "view")
                .select_related("contact", "origin__customer")
                .order_by("contact__last_name", "contact__first_name", "contact_id", "type")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    visible = _visible_ids(BusinessCustomer, {r.origin.customer_id for r in rows if r.origin_id}, user)
    by_contact = {}
    for row in rows:
        row.via = _via(row, visible)
        by_contact.setdefault(row.contact_id, {"contact": row.contact, "roles": [], "group": None})["roles"].append(row)
    for member in CustomerGroupMember.objects.filter(customer=customer, contact_id__in=list(by_contact)) \
            .select_related("group"):
        by_contact[member.contact_id]["group"] = member.group
    approvers = list(restrict(customer.approvers.all(), user, "view").order_by("last_name", "first_name"))
    hidden_approvers = customer.approvers.count() - len(approvers)
    can_change = access(user).can("change", customer)
    ctx = {
        "customer_contacts": list(by_contact.values()),
        "more_customer_contacts": more,
        "customer_group_kinds": CustomerGroup.Kind.choices,
        "approvers": approvers,
        "hidden_approver_count": hidden_approvers,
        "can_change_contacts": can_change,
    }
    if can_change:
        ctx["customer_assignment_form"] = CustomerAssignmentForm(customer=customer, user=user)
        ctx["approvers_form"] = ApproversForm(instance=customer, user=user)
    return ctx


# -- reads other record pages share ------------------------------------------------------------

@account_section
def account_contacts(account, user, limit=20):
    """Context for templates/contacts/_account_contacts.html: the account's contacts the
    user may view (the first `limit`, by name) and how many there are."""
    contacts = restrict(account.contacts.all(), user, "view")
    shown = list(contacts.order_by("last_name", "first_name", "pk")[: limit + 1])
    total = len(shown) if len(shown) <= limit else contacts.count()
    return {"account_contacts": shown[:limit], "account_contact_total": total}
