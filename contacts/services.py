"""Contact writes that touch more than one row: the contact with its emails, phones and
addresses, the primary email and phone copied onto the contact row, and the child rows
of an imported batch. Each runs inside one transaction."""
from django.db import transaction
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils.html import format_html, format_html_join
from simple_history.utils import bulk_update_with_history

from accounts.models import Account
from accounts.services import account_section
from crm.access import restrict

from .models import Contact, ContactAddress, ContactEmail, ContactPhone

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

def assign_customer(form, user):
    """Save a validated AssignmentForm, its history row naming the user."""
    with transaction.atomic():
        assignment = form.save(commit=False)
        assignment._history_user = user
        assignment.save()
    return assignment


def unassign_customer(assignment, user):
    with transaction.atomic():
        assignment._history_user = user
        assignment.delete()


# -- reads other record pages share ------------------------------------------------------------

@account_section
def account_contacts(account, user, limit=20):
    """Context for templates/contacts/_account_contacts.html: the account's contacts the
    user may view (the first `limit`, by name) and how many there are."""
    contacts = restrict(account.contacts.all(), user, "view")
    shown = list(contacts.order_by("last_name", "first_name", "pk")[: limit + 1])
    total = len(shown) if len(shown) <= limit else contacts.count()
    return {"account_contacts": shown[:limit], "account_contact_total": total}
