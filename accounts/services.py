"""Account writes that span records: merge. And the account page's sections that the apps
above accounts provide (they register them here; accounts never imports them)."""
from django.apps import apps
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase
from simple_history.utils import bulk_update_with_history

from crm.access import restrict
from crm.ids import as_id
from crm.services import Sections
from crm.versions import bump

from .models import Account

MAX_MERGE = 5


# -- the account page: sections of the apps above accounts --------------------------------------

# Context for the account page from apps above accounts (customers' services register the
# customers per channel, contacts' the contacts), so the page calls them without importing them.
account_sections = Sections()
account_section = account_sections.register


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

    The accounts are locked first (every one of them) and the merge works from the locked
    rows. Every record pointing at a merged account (customers, contact links, activities,
    shares, anything that has a foreign key, many-to-many or generic relation to it) is
    locked and moved to the master; records with history get a history row naming the
    merge, written in bulk (a few queries per related model, none per record). The merged
    accounts are deleted; the master's history records the merge."""
    ids = sorted({a.pk for a in accounts})
    if master.pk not in ids:
        raise ValidationError("The master must be one of the selected accounts.")
    with transaction.atomic():
        locked = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        if len(locked) != len(ids):
            raise ValidationError("One of the selected accounts no longer exists; select them again.")
        check_merge(list(locked.values()), user)
        master = locked[master.pk]
        others = [locked[pk] for pk in ids if pk != master.pk]
        kept = []
        for f in mergeable_fields():
            source = locked.get(as_id(choices.get(f.name)), master)
            value = getattr(source, f.attname)
            if getattr(master, f.attname) != value:
                setattr(master, f.attname, value)
                kept.append(f"{f.verbose_name} from “{source}”")
        if master.referred_by_id in ids:
            master.referred_by = None  # the referrer is merged into this very account
        moved = _move_relations(master, others, user)
        summary = ", ".join(f"“{a}” (#{a.pk})" for a in others)
        moved_text = ", ".join(f"{n} {label}" for label, n in moved.items() if n)
        master._history_user = user
        master._change_reason = (f"Merged {summary} into this account"
                                 + (f"; kept {'; '.join(kept)}" if kept else "")
                                 + (f"; moved {moved_text}" if moved_text else ""))[:1000]
        master.save()
        for other in others:
            other._history_user = user
            other._change_reason = f"Merged into “{master}” (#{master.pk})"
            other.delete()
    return master


def _has_history(model):
    return hasattr(model._meta, "simple_history_manager_attribute")


class _Mover:
    """Moves the rows of one merge and words their history rows."""

    def __init__(self, master, others, user):
        self.master, self.user = master, user
        self.names = {a.pk: f"“{a}” (#{a.pk})" for a in others}
        self.other_ids = sorted(self.names)
        self.now = timezone.now()

    def reason(self, source_ids):
        sources = sorted(set(source_ids))
        return (f"Moved from account{'s' if len(sources) > 1 else ''} {', '.join(self.names[i] for i in sources)} "
                f"by the merge into “{self.master}” (#{self.master.pk})")

    def save(self, model, rows, fields, sources):
        """Write `fields` of the (locked, changed) `rows`: with a history row each naming the
        merge when the model keeps history, in one bulk update either way."""
        if not rows:
            return 0
        if not _has_history(model):
            if fields:
                model._default_manager.bulk_update(rows, fields)
            return len(rows)
        if any(f.name == "updated_at" for f in model._meta.concrete_fields):
            for row in rows:
                row.updated_at = self.now  # bulk_update bypasses auto_now
            fields = [*fields, "updated_at"]
        for row in rows:
            row._history_user = self.user
            row._change_reason = self.reason(sources[row.pk])
        fields = bump(rows, fields)  # moved records: an edit form opened before the merge is stale
        bulk_update_with_history(rows, model, fields, default_user=self.user, default_date=self.now)
        return len(rows)

    def move_foreign_key(self, model, field, exclude=()):
        """Rows whose `field` points at a merged account now point at the master."""
        rows = list(model._default_manager.select_for_update()
                    .filter(**{f"{field.attname}__in": self.other_ids}).exclude(pk__in=list(exclude)).order_by("pk"))
        sources = {}
        for row in rows:
            sources[row.pk] = [getattr(row, field.attname)]
            setattr(row, field.attname, self.master.pk)
        return self.save(model, rows, [field.name], sources)

    def move_shares(self, model):
        """Shares of the merged accounts become shares of the master; one the master already
        has (same user or group, same permission) is dropped."""
        holder = "user_id" if issubclass(model, UserObjectPermissionBase) else "group_id"
        have = set(model.objects.filter(content_object=self.master).values_list(holder, "permission_id"))
        rows = list(model.objects.select_for_update().filter(content_object_id__in=self.other_ids).order_by("pk"))
        keep, drop = [], []
        for row in rows:
            key = (getattr(row, holder), row.permission_id)
            (drop if key in have else keep).append(row.pk)
            have.add(key)
        if drop:
            model.objects.filter(pk__in=drop).delete()
        if keep:
            model.objects.filter(pk__in=keep).update(content_object_id=self.master.pk)  # no history to keep
        return len(keep)

    def move_links(self, rel):
        """Many-to-many links (contacts' accounts): the records linked to a merged account are
        linked to the master instead (once), and each gets a history row naming the merge."""
        model = rel.related_model
        through = rel.field.remote_field.through
        account_fk = next(f for f in through._meta.fields if f.is_relation and f.related_model is Account)
        other_fk = next(f for f in through._meta.fields if f.is_relation and f.related_model is model)
        links = list(through.objects.select_for_update().filter(**{f"{account_fk.attname}__in": self.other_ids})
                     .order_by("pk"))
        if not links:
            return 0
        sources = {}
        for link in links:
            sources.setdefault(getattr(link, other_fk.attname), []).append(getattr(link, account_fk.attname))
        records = list(model._default_manager.select_for_update().filter(pk__in=list(sources)).order_by("pk"))
        have = set(through.objects.filter(**{account_fk.attname: self.master.pk})
                   .values_list(other_fk.attname, flat=True))
        through.objects.filter(pk__in=[link.pk for link in links]).delete()
        through.objects.bulk_create([through(**{account_fk.attname: self.master.pk, other_fk.attname: pk})
                                     for pk in sorted(sources) if pk not in have])
        self.save(model, records, [], sources)
        return len(records)

    def move_generic(self, model, field, account_type):
        """Rows attached through a generic foreign key (activities)."""
        rows = list(model._default_manager.select_for_update()
                    .filter(**{field.ct_field: account_type, f"{field.fk_field}__in": self.other_ids}).order_by("pk"))
        sources = {}
        for row in rows:
            sources[row.pk] = [getattr(row, field.fk_field)]
            setattr(row, field.fk_field, self.master.pk)
        return self.save(model, rows, [field.fk_field], sources)


def _move_relations(master, others, user):
    """Move everything that points at `others` to `master`: {label: how many moved}."""
    mover = _Mover(master, others, user)
    merged = [master.pk, *mover.other_ids]
    moved = {}
    for rel in Account._meta.related_objects:
        model = rel.related_model
        if model._meta.model_name.startswith("historical"):
            continue  # history stays what it was
        label = str(model._meta.verbose_name_plural)
        if rel.many_to_many:
            moved[label] = moved.get(label, 0) + mover.move_links(rel)
        elif issubclass(model, (UserObjectPermissionBase, GroupObjectPermissionBase)):
            moved["shares"] = moved.get("shares", 0) + mover.move_shares(model)
        elif rel.one_to_many or rel.one_to_one:
            # Accounts of the merge itself are the master (saved below) or deleted.
            exclude = merged if model is Account else ()
            moved[label] = moved.get(label, 0) + mover.move_foreign_key(model, rel.field, exclude)
    # Records attached through a generic foreign key (activities) have no reverse relation to find.
    account_type = ContentType.objects.get_for_model(Account)
    for model in apps.get_models():
        for f in model._meta.private_fields:
            if isinstance(f, GenericForeignKey):
                label = str(model._meta.verbose_name_plural)
                moved[label] = moved.get(label, 0) + mover.move_generic(model, f, account_type)
    return moved
