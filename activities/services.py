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
    timeline that spans several records."""
    by_model = {}
    subqueries = []
    for item in _records(obj_or_objs):
        if isinstance(item, models.QuerySet):
            subqueries.append((item.model, item.values("pk")))
        else:
            by_model.setdefault(type(item), []).append(item.pk)
    cond = Q(pk__in=[])
    targets = set(target_models())
    for model, pks in by_model.items():
        if model in targets:
            cond |= Q(content_type=ContentType.objects.get_for_model(model), object_id__in=pks)
    for model, pks in subqueries:
        if model in targets:
            cond |= Q(content_type=ContentType.objects.get_for_model(model), object_id__in=pks)
    qs = restrict(Activity.objects.filter(cond), user, "view").select_related("created_by")
    if with_targets:
        qs = qs.prefetch_related("target")
    return qs.order_by("-occurred_at", "-pk")


def timeline(obj_or_objs, user, limit=TIMELINE_LIMIT, with_targets=False):
    """Context for templates/activities/_timeline.html: the newest `limit` activities,
    how many there are, and which of them the user may change (mark done)."""
    qs = activities_for(obj_or_objs, user, with_targets=with_targets)
    items = list(qs[:limit])
    total = qs.count()
    tasks = [a.pk for a in items if a.kind == Activity.Kind.TASK]
    changeable = set(restrict(Activity.objects.filter(pk__in=tasks), user, "change").values_list("pk", flat=True)) if tasks else set()
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
    if not restrict(Activity.objects.filter(pk=activity.pk), user, "change").exists():
        raise PermissionDenied("You may not change this activity.")
    activity.done = done
    activity.done_at = timezone.now() if done else None
    activity._history_user = user
    activity._change_reason = "Marked done" if done else "Reopened"
    with transaction.atomic():
        activity.save(update_fields=["done", "done_at", "updated_at"])
    return activity
