"""Optimistic locking of edit forms.

Every editable record (crm.models.TimeStampedModel) has a `version` that each save through
the product raises: Model.save, imports' updates (BulkWriter.update), mass assign, merge,
undo. An edit form carries the version it was opened at in a hidden field; saving it locks
the row and refuses the write when the row has moved on, so two people editing the same
record never overwrite each other silently. The refusal says what changed since (from the
record's history) and the form comes back with the user's values and the current version,
so saving again applies them knowingly.

A form posted without the field (an old page, a script) is not checked; one with a bogus
value is refused like a stale one.
"""
from dataclasses import dataclass

from django import forms

from .ids import as_id

VERSION = "version"


def versioned(model):
    return any(f.name == VERSION for f in model._meta.concrete_fields)


def bump(objs, fields):
    """For writes that bypass Model.save (bulk updates): raise the version of the (locked)
    `objs` and return `fields` with the version column added."""
    objs = list(objs)
    if not objs or not versioned(type(objs[0])):
        return list(fields)
    for obj in objs:
        obj.version = (obj.version or 0) + 1
    return [*fields, VERSION] if VERSION not in fields else list(fields)


def version_field(initial):
    # Text, not a number: a tampered value must reach the check (and be refused), not
    # become a hidden field's error nobody sees.
    return forms.CharField(widget=forms.HiddenInput, required=False, initial=initial)


def add_version_field(form):
    """The edit form of an existing versioned record carries the version it shows."""
    instance = form.instance
    if instance.pk is not None and versioned(type(instance)):
        form.fields[VERSION] = version_field(instance.version)
    return form


def opened_at(form):
    """The version the form was opened at; None when the form does not say (not checked)."""
    if VERSION not in form.fields:
        return None
    raw = form.data.get(form.add_prefix(VERSION), "") if form.is_bound else ""
    raw = str(raw).strip()
    if raw == "":
        return None
    version = as_id(raw)
    return -1 if version is None else version


@dataclass
class StaleEdit(Exception):
    """The record changed (or was deleted) since the form was opened; nothing was written."""

    pk: int
    opened: int
    current: int | None  # None: deleted meanwhile

    def __str__(self):
        if self.current is None:
            return "This record was deleted while you were editing it; your changes were not saved."
        return "This record was changed by someone else since you opened it; your changes were not saved."


def check(form):
    """Lock the form's record (until the caller's transaction ends) and raise StaleEdit when
    it is no longer at the version the form was opened at. Call inside the transaction that
    saves the form."""
    instance = form.instance
    opened = opened_at(form)
    if instance.pk is None or opened is None:
        return
    current = (type(instance)._base_manager.select_for_update().filter(pk=instance.pk)
               .values_list(VERSION, flat=True).first())
    if current != opened:
        raise StaleEdit(instance.pk, opened, current)


def current_version(model, pk):
    return model._base_manager.filter(pk=pk).values_list(VERSION, flat=True).first()


def resubmit_data(form, version):
    """The form's posted data with the current version, to offer the same values again."""
    data = form.data.copy()
    data[form.add_prefix(VERSION)] = str(version)
    return data


@dataclass
class Change:
    field: str
    theirs: str
    yours: str
    differs: bool
    who: str
    when: object


def _shown(obj, field, value, user):
    """A value as the user may see it: a related record he may not view is only #id."""
    from .access import restrict
    from .forms import restricts_choices

    if value is None or value == "":
        return "—"
    if field.many_to_many:
        items = list(value)
        model = field.related_model
        if items and restricts_choices(model) and user is not None:
            seen = set(restrict(model._default_manager.filter(pk__in=[o.pk for o in items]), user, "view")
                       .values_list("pk", flat=True))
            items = [o if o.pk in seen else f"#{o.pk}" for o in items]
        return ", ".join(sorted(str(o) for o in items)) or "—"
    if field.many_to_one:
        model = field.related_model
        pk = getattr(value, "pk", value)
        if restricts_choices(model) and user is not None:
            if not restrict(model._default_manager.filter(pk=pk), user, "view").exists():
                return f"#{pk}"
        return str(value if hasattr(value, "pk") else model._default_manager.filter(pk=pk).first() or f"#{pk}")
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    return str(value)


def changes_since(obj, opened, form, user=None, limit=50):
    """[Change] for each field someone changed after version `opened` of `obj` (the record
    as it is now): its current value, the one the user submitted, who changed it last and when.
    From the record's history; [] when it has none to tell."""
    if not hasattr(obj, "history"):
        return []
    rows = list(obj.history.select_related("history_user").order_by("-history_date", "-history_id")[: limit + 1])
    rows.reverse()  # oldest first
    start = max((i for i, r in enumerate(rows) if getattr(r, VERSION, 0) <= opened), default=0)
    latest = {}
    for older, newer in zip(rows[start:], rows[start + 1:]):
        if newer.history_type != "~":
            continue
        for change in newer.diff_against(older).changes:  # editable fields: not version, timestamps
            latest[change.field] = newer
    data = getattr(form, "cleaned_data", {}) or {}
    out = []
    for name, row in latest.items():
        field = obj._meta.get_field(name)
        theirs = getattr(obj, name).all() if field.many_to_many else getattr(obj, name if field.many_to_one else field.attname)
        yours = _shown(obj, field, data[name], user) if name in data else "(not on your form)"
        theirs_text = _shown(obj, field, theirs, user)
        who = row.history_user.get_username() if row.history_user else "someone (no user recorded)"
        if row.history_user and row.history_user.get_full_name():
            who = f"{row.history_user.get_full_name()} ({who})"
        out.append(Change(str(field.verbose_name).capitalize(), theirs_text, yours,
                          name in data and theirs_text != yours, who, row.history_date))
    return out


def describe(changes):
    """The changes as lines of text (the admin shows them as the form's error)."""
    from django.utils import timezone
    from django.utils.formats import date_format

    return [f"{c.field}: now “{c.theirs}” (changed by {c.who} on "
            f"{date_format(timezone.localtime(c.when), 'DATETIME_FORMAT')}), yours “{c.yours}”." for c in changes]
