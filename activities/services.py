"""Activity writes (logging, sending an email, completing a task) and the timeline read
that record pages share."""
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMessage
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from crm.access import access, restrict
from crm.filters import ids_or_subquery

from .models import Activity, target_models

TIMELINE_LIMIT = 50


def _records(obj_or_objs):
    if isinstance(obj_or_objs, models.QuerySet):
        return [obj_or_objs]
    if isinstance(obj_or_objs, models.Model):
        return [obj_or_objs]
    return list(obj_or_objs)


def activities_for(obj_or_objs, user, with_targets=False):
    """Activities of one record, several records (mixed models) or querysets, that `user`
    may see, newest first; select_related so rendering them costs no query per activity.
    `with_targets` also fetches each activity's record (one query per model), for a
    timeline that spans several records.

    Visibility is decided on the records, once: instances are checked in Python against
    the cached grants, querysets are restricted (they are a record's few related records,
    e.g. an account's customers). Filtering the activities by every record the user may
    view would cost a subquery as large as the tables."""
    acc = access(user)
    targets = set(target_models())
    cond = Q(pk__in=[])
    by_model = {}
    for item in _records(obj_or_objs):
        if isinstance(item, models.QuerySet):
            if item.model in targets:
                # The ids themselves when few: each content type is then an index lookup, where
                # a subquery under OR makes the database scan every activity.
                visible = ids_or_subquery(restrict(item, user, "view"), "pk")
                cond |= Q(content_type=ContentType.objects.get_for_model(item.model), object_id__in=visible)
        elif type(item) in targets and acc.can("view", item):
            by_model.setdefault(type(item), []).append(item.pk)
    for model, pks in by_model.items():
        cond |= Q(content_type=ContentType.objects.get_for_model(model), object_id__in=pks)
    qs = Activity.objects.filter(cond).select_related("created_by")
    if with_targets:
        qs = qs.prefetch_related("target")
    return qs.order_by("-occurred_at", "-pk")


def timeline(obj_or_objs, user, limit=TIMELINE_LIMIT, with_targets=False):
    """Context for templates/activities/_timeline.html: the newest `limit` activities,
    how many there are, and which of them the user may change (mark done)."""
    qs = activities_for(obj_or_objs, user, with_targets=with_targets)
    items = list(qs[:limit])
    total = qs.count()
    records = {(type(o), o.pk): o for o in _records(obj_or_objs) if isinstance(o, models.Model)}
    changeable = set()
    for activity in items:
        if activity.kind == Activity.Kind.TASK:
            target = records.get((ContentType.objects.get_for_id(activity.content_type_id).model_class(),
                                      activity.object_id))
            if target is None and with_targets:
                target = activity.target
            if target is not None and activity.allows(user, "change", target=target, target_visible=True):
                changeable.add(activity.pk)
    return {"activities": items, "activity_total": total, "activity_changeable": changeable,
            "activity_show_target": with_targets}


def may_log(user, target):
    """Whoever may view a record may log activities on it."""
    return access(user).can("view", target)


def record_activity(target, user, kind, **fields):
    if not may_log(user, target):
        raise PermissionDenied("You may not add activities to this record.")
    activity = Activity(kind=kind, target=target, created_by=user, **fields)
    if kind == Activity.Kind.TASK and activity.done:
        activity.done_at = timezone.now()
    activity._history_user = user
    with transaction.atomic():
        activity.save()
    return activity


def send_email(target, user, to_address, subject, body):
    """Send the email and record it, both or neither: a failed send writes nothing."""
    if not may_log(user, target):
        raise PermissionDenied("You may not add activities to this record.")
    with transaction.atomic():
        activity = Activity(kind=Activity.Kind.EMAIL, target=target, created_by=user,
                            to_address=to_address, subject=subject, body=body)
        activity._history_user = user
        activity.save()
        message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [to_address],
                               reply_to=[user.email] if user.email else None)
        message.send(fail_silently=False)
    return activity


def set_done(activity, user, done=True):
    if not activity.allows(user, "change"):
        raise PermissionDenied("You may not change this activity.")
    activity.done = done
    activity.done_at = timezone.now() if done else None
    activity._history_user = user
    activity._change_reason = "Marked done" if done else "Reopened"
    with transaction.atomic():
        activity.save(update_fields=["done", "done_at", "updated_at"])
    return activity
