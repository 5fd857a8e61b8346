"""Account writes that span records: merge. And the account page's sections that the apps
above accounts provide (they register them here; accounts never imports them)."""
from django.apps import apps
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from crm.access import restrict

from .models import Account

MAX_MERGE = 5


# -- the account page: sections of the apps above accounts --------------------------------------

ACCOUNT_SECTIONS = []


def account_section(provider):
    """Register `provider(account, user) -> dict`: context for the account page from an app
    above accounts (customers' services register the customers per channel, contacts' the
    contacts), so the account page calls them without importing them. A decorator."""
    if provider not in ACCOUNT_SECTIONS:
        ACCOUNT_SECTIONS.append(provider)
    return provider


def account_sections(account, user):
    context = {}
    for provider in ACCOUNT_SECTIONS:
        context.update(provider(account, user))
    return context


# -- merge ---------------------------------------------------------------------------------------


def mergeable_fields():
    """Fields whose value is chosen when merging: every editable value of the account."""
    skip = {"id", "created_at", "updated_at"}
    return [f for f in Account._meta.concrete_fields if f.editable and f.name not in skip]


def default_choices(master, accounts):
    """{field: account id} -- the master's value, or for a blank master the first non-blank."""
    chosen = {}
    for f in mergeable_fields():
        source = master
        if getattr(master, f.attname) in (None, ""):
            source = next((a for a in accounts if getattr(a, f.attname) not in (None, "")), master)
        chosen[f.name] = source.pk
    return chosen


def check_merge(accounts, user):
    if not 2 <= len(accounts) <= MAX_MERGE:
        raise ValidationError(f"Select between 2 and {MAX_MERGE} accounts to merge.")
    ids = [a.pk for a in accounts]
    for action in ("change", "delete"):
        if restrict(Account.objects.filter(pk__in=ids), user, action).count() != len(ids):
            raise PermissionDenied(f"You may not {'edit' if action == 'change' else action} every selected account.")


def merge_accounts(master, accounts, choices, user):
    """Merge `accounts` into `master` in one transaction and return the master.

    Every record pointing at a merged account (customers, contact links, activities,
    shares, anything that has a foreign key, many-to-many or generic relation to it) moves
    to the master; the merged accounts are deleted; the master's history records the merge."""
    check_merge(accounts, user)
    others = [a for a in accounts if a.pk != master.pk]
    if len(others) != len(accounts) - 1:
        raise ValidationError("The master must be one of the selected accounts.")
    by_id = {a.pk: a for a in accounts}
    other_ids = [a.pk for a in others]
    with transaction.atomic():
        Account.objects.select_for_update().filter(pk__in=[a.pk for a in accounts]).exists()
        kept = []
        for f in mergeable_fields():
            source = by_id.get(int(choices.get(f.name, master.pk)), master)
            value = getattr(source, f.attname)
            if getattr(master, f.attname) != value:
                setattr(master, f.attname, value)
                kept.append(f"{f.verbose_name} from “{source}”")
        if master.referred_by_id in other_ids:
            master.referred_by = None  # the referrer is merged into this very account
        moved = _move_relations(master, other_ids)
        for other in others:
            other._history_user = user
            other._change_reason = f"Merged into “{master}” (#{master.pk})"
        summary = ", ".join(f"“{a}” (#{a.pk})" for a in others)
        moved_text = ", ".join(f"{n} {label}" for label, n in moved.items() if n)
        master._history_user = user
        master._change_reason = (f"Merged {summary} into this account"
                                 + (f"; kept {'; '.join(kept)}" if kept else "")
                                 + (f"; moved {moved_text}" if moved_text else ""))[:1000]
        master.save()
        for other in Account.objects.filter(pk__in=other_ids):
            other._history_user = user
            other._change_reason = f"Merged into “{master}” (#{master.pk})"
            other.delete()
    return master


def _move_relations(master, other_ids):
    moved = {}
    for rel in Account._meta.related_objects:
        model = rel.related_model
        if model._meta.model_name.startswith("historical"):
            continue  # history stays what it was
        label = str(model._meta.verbose_name_plural)
        if rel.many_to_many:
            through = rel.field.remote_field.through
            account_fk = next(f for f in through._meta.fields if f.is_relation and f.related_model is Account)
            other_fk = next(f for f in through._meta.fields if f.is_relation and f.related_model is not Account)
            links = through.objects.filter(**{f"{account_fk.name}__in": other_ids})
            have = set(through.objects.filter(**{account_fk.name: master}).values_list(other_fk.attname, flat=True))
            links.filter(**{f"{other_fk.attname}__in": have}).delete()
            moved[label] = links.update(**{account_fk.name: master})
        elif rel.one_to_many or rel.one_to_one:
            rows = model._default_manager.filter(**{f"{rel.field.name}__in": other_ids})
            if issubclass(model, (UserObjectPermissionBase, GroupObjectPermissionBase)):
                holder = "user_id" if issubclass(model, UserObjectPermissionBase) else "group_id"
                have = model.objects.filter(content_object=master).values_list(holder, "permission_id")
                for holder_id, perm_id in list(have):
                    rows.filter(**{holder: holder_id, "permission_id": perm_id}).delete()
                label = "shares"
            moved[label] = moved.get(label, 0) + rows.update(**{rel.field.name: master})
    # Records attached through a generic foreign key (activities) have no reverse relation to find.
    account_type = ContentType.objects.get_for_model(Account)
    for model in apps.get_models():
        for f in model._meta.private_fields:
            if isinstance(f, GenericForeignKey):
                rows = model._default_manager.filter(**{f.ct_field: account_type, f"{f.fk_field}__in": other_ids})
                moved[str(model._meta.verbose_name_plural)] = rows.update(**{f.fk_field: master.pk})
    return moved
