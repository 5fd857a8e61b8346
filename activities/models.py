"""Calls, emails, notes and tasks, attached to any record that declares
`activities = GenericRelation("activities.Activity")` (customers now; accounts and
contacts the same way). An activity is visible to exactly those who may view its record.
"""
from functools import lru_cache

from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from crm.models import History


@lru_cache(maxsize=None)
def target_models():
    """Models activities may be attached to: those with a GenericRelation to Activity."""
    found = []
    for model in apps.get_models():
        for f in model._meta.private_fields:
            if isinstance(f, GenericRelation) and f.related_model is Activity:
                found.append(model)
    return tuple(found)


def target_model(label):
    """The target model for "app_label.modelname", or None if activities cannot attach to it."""
    for model in target_models():
        if model._meta.label_lower == label.lower():
            return model
    return None


class Activity(models.Model):
    class Kind(models.TextChoices):
        CALL = "call", "Call"
        EMAIL = "email", "Email"
        NOTE = "note", "Note"
        TASK = "task", "Task"

    class Direction(models.TextChoices):
        OUTBOUND = "out", "Outbound"
        INBOUND = "in", "Inbound"

    kind = models.CharField(max_length=10, choices=Kind.choices, db_index=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField("notes", blank=True)
    # Call
    direction = models.CharField(max_length=3, choices=Direction.choices, blank=True)
    duration = models.PositiveIntegerField("duration (minutes)", null=True, blank=True)
    # Email
    to_address = models.EmailField("to", blank=True)
    # Task
    due_date = models.DateField(null=True, blank=True, db_index=True)
    done = models.BooleanField(default=False)
    done_at = models.DateTimeField(null=True, blank=True)

    occurred_at = models.DateTimeField("when", default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")

    history = History()

    class Meta:
        verbose_name_plural = "activities"
        ordering = ["-occurred_at", "-pk"]
        indexes = [models.Index(fields=["content_type", "object_id", "-occurred_at"], name="activity_target_idx")]

    def __str__(self):
        return self.subject or f"{self.get_kind_display()} of {self.occurred_at:%Y-%m-%d}"

    def get_absolute_url(self):
        return reverse("activities:detail", args=[self.pk])

    ICONS = {"call": "bi-telephone", "email": "bi-envelope", "note": "bi-sticky", "task": "bi-check2-square"}

    @property
    def icon(self):
        return self.ICONS.get(self.kind, "bi-activity")

    @property
    def overdue(self):
        return self.kind == self.Kind.TASK and not self.done and self.due_date and self.due_date < timezone.localdate()

    def allows(self, user, action, target=None, target_visible=False):
        """The rule for one activity, from its record alone: whoever may view the record
        views the activity; its author (still seeing the record) or whoever may change the
        record changes or deletes it."""
        from crm.access import access

        if action not in ("view", "change", "delete") or not user.is_active:
            return False
        acc = access(user)
        target = target if target is not None else self.target
        if target is None:
            return False
        seen = target_visible or acc.can("view", target)
        if action == "view":
            return seen
        return (seen and self.created_by_id == user.pk) or acc.can("change", target)

    @classmethod
    def restrict_queryset(cls, queryset, user, action):
        """Whoever may view the parent record may view its activities and add to them.
        Changing or deleting one (e.g. marking a task done) takes its author who still
        sees the record, or someone who may change the record."""
        from crm.access import access, restrict

        if not user.is_active:
            return queryset.none()
        if action not in ("view", "change", "delete"):
            return queryset.none()
        cond = Q(pk__in=[])
        for model in target_models():
            ct = ContentType.objects.get_for_model(model)
            seen = _parents(model, ct, user, "view", access, restrict)
            if action == "view":
                cond |= seen
            else:
                cond |= (seen & Q(created_by_id=user.pk)) | _parents(model, ct, user, "change", access, restrict)
        return queryset.filter(cond)


def _parents(model, ct, user, action, access, restrict):
    """Q for activities whose parent (of `model`) the user may <action>."""
    if not hasattr(model, "restrict_queryset") and access(user).condition(model, action) is None:
        return Q(content_type=ct)
    return Q(content_type=ct, object_id__in=restrict(model._default_manager.all(), user, action).values("pk"))
