from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.db import models, transaction
from django.urls import reverse
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase
from simple_history.models import HistoricalRecords

# What a user may do with records of an entity. Roles, unit grants and shares all speak these.
# "change" is shown as Edit; "create" decides where a new record may be placed.
ACTIONS = ("view", "create", "change", "delete", "assign", "share")
ACTION_LABELS = {"view": "View", "create": "Create", "change": "Edit", "delete": "Delete", "assign": "Assign",
                 "share": "Share"}


class History(HistoricalRecords):
    """simple_history's records, whose table is indexed by the record's id (and the history's
    date and user) only. simple_history indexes every copied relation and indexed column too,
    which nothing here looks history up by, and every write of history (an import's 100,000
    rows) paid for: seven more indexes on a customer's history."""

    def copy_fields(self, model):
        fields = super().copy_fields(model)
        for field in fields.values():
            if field.name != model._meta.pk.name:
                field.db_index = False
        return fields


class Level(models.IntegerChoices):
    """How far a role's permission reaches (OroCRM's access levels), each including the ones below."""

    NONE = 0, "None"
    USER = 1, "User"                    # records he owns
    BUSINESS_UNIT = 2, "Business unit"  # ... and records of his units
    DIVISION = 3, "Division"            # ... and of their sub-units
    ORGANIZATION = 4, "Organization"    # every record


class BusinessUnit(models.Model):
    """A node of the organization tree; records of a unit are granted through it."""

    name = models.CharField(max_length=100, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    # Members of the unit, as a group so a record can be shared with the whole unit.
    group = models.OneToOneField(Group, on_delete=models.PROTECT, editable=False, related_name="business_unit")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        with transaction.atomic():  # the unit and its member group, both or neither
            if not self.group_id:
                self.group, _ = Group.objects.get_or_create(name=f"Unit: {self.name}")
            elif self.group.name != f"Unit: {self.name}":
                Group.objects.filter(pk=self.group_id).update(name=f"Unit: {self.name}")
            super().save(*args, **kwargs)

    def clean(self):
        from django.core.exceptions import ValidationError

        node = self.parent
        while node is not None:
            if node.pk == self.pk:
                raise ValidationError({"parent": "A unit cannot be placed under itself or its own descendants."})
            node = node.parent

    @classmethod
    def descendants_map(cls):
        """{unit id: ids of it and all units below}, from one query (units are few)."""
        children = {}
        for pk, parent in cls.objects.values_list("pk", "parent_id"):
            children.setdefault(parent, []).append(pk)
        result = {}

        def walk(pk):
            if pk not in result:
                ids = {pk}
                for child in children.get(pk, []):
                    ids |= walk(child)
                result[pk] = ids
            return result[pk]

        for pk in list(children.get(None, [])) + [pk for kids in children.values() for pk in kids]:
            walk(pk)
        return result


class BusinessUnitUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(BusinessUnit, on_delete=models.CASCADE)


class BusinessUnitGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(BusinessUnit, on_delete=models.CASCADE)


class Role(models.Model):
    """A set of access levels, one per entity and action, as in OroCRM. Users hold several;
    for each entity and action the widest level of their roles applies."""

    class Preset(models.TextChoices):
        # The seeded roles: for an entity added later, their cells are filled from the
        # entity's defaults (Entity.default_levels); other roles get None there.
        ADMINISTRATOR = "administrator", "Administrator"
        MANAGER = "manager", "Manager"
        SALES_REP = "sales_rep", "Sales Representative"

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    administers = models.BooleanField(
        "administers the organization", default=False,
        help_text="Manages users, roles and business units (the Administration menu and the Django admin).")
    preset = models.CharField(max_length=20, choices=Preset.choices, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("roles:detail", args=[self.pk])

    def delete(self, *args, **kwargs):
        if self.preset:  # seeded again after every migrate: change its levels instead
            raise models.ProtectedError(f"The seeded role {self} cannot be deleted.", [self])
        return super().delete(*args, **kwargs)

    def levels(self):
        """{(entity label, action): level} of this role's cells."""
        return {(p.entity, p.action): p.level for p in self.permissions.all()}


class RolePermission(models.Model):
    """One cell of a role's matrix: the level of `action` on `entity` (a model label)."""

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="permissions")
    entity = models.CharField(max_length=100)   # model label, e.g. "accounts.account"
    action = models.CharField(max_length=10, choices=[(a, ACTION_LABELS[a]) for a in ACTIONS])
    level = models.PositiveSmallIntegerField(choices=Level.choices, default=Level.NONE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["role", "entity", "action"], name="role_cell_once")]

    def __str__(self):
        return f"{self.role}: {self.action} {self.entity} = {self.get_level_display()}"


class User(AbstractUser):
    primary_unit = models.ForeignKey(
        BusinessUnit, null=True, blank=True, on_delete=models.PROTECT, related_name="primary_users"
    )
    business_units = models.ManyToManyField(BusinessUnit, blank=True, related_name="members")
    roles = models.ManyToManyField(Role, blank=True, related_name="users")

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        ordering = ["username"]

    def __str__(self):
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username

    def get_absolute_url(self):
        return reverse("users:detail", args=[self.pk])


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Optimistic locking (crm.versions): an edit form carries the version it was opened at and
    # is refused when the row moved on. db_default too, so raw COPY inserts (bench, imports)
    # that do not name the column still get one.
    version = models.PositiveIntegerField(default=1, db_default=1, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding and self.pk is not None:
            self.version = (self.version or 0) + 1
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "version"}
        super().save(*args, **kwargs)


class OwnedModel(TimeStampedModel):
    """A business record: its owner and owning unit decide who may act on it."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    business_unit = models.ForeignKey(BusinessUnit, on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True


def share_models(model, module):
    """Guardian's direct foreign-key permission tables for one model (indexed joins,
    not the generic text-keyed ones). They hold explicit shares of single records."""
    def attrs():
        return {"__module__": module, "content_object": models.ForeignKey(model, on_delete=models.CASCADE)}

    name = model.__name__
    user_model = type(f"{name}UserObjectPermission", (UserObjectPermissionBase,), attrs())
    group_model = type(f"{name}GroupObjectPermission", (GroupObjectPermissionBase,), attrs())
    return user_model, group_model


class Job(models.Model):
    """A background import or export: its file, state, progress and outcome.

    One import is one job through all its steps (validate, import, undo), so the user
    follows one page from upload to undo. Live progress is not written here but beside the
    job's files in Django's storage (crm.jobs), since an import's rows and this row would
    otherwise share one transaction that nobody outside sees until it ends."""

    class Kind(models.TextChoices):
        IMPORT = "import", "Import"
        EXPORT = "export", "Export"

    class State(models.TextChoices):
        VALIDATING = "validating", "Validating"
        READY = "ready", "Ready to import"
        INVALID = "invalid", "Has errors"
        IMPORTING = "importing", "Importing"
        IMPORTED = "imported", "Imported"
        UNDOING = "undoing", "Undoing"
        UNDONE = "undone", "Undone"
        EXPORTING = "exporting", "Exporting"
        EXPORTED = "exported", "Exported"
        FAILED = "failed", "Failed"

    class Mode(models.TextChoices):
        CREATE_UPDATE = "create_update", "Add new and update existing"
        CREATE = "create", "Add new only"
        UPDATE = "update", "Update existing only"

    RUNNING = (State.VALIDATING, State.IMPORTING, State.UNDOING, State.EXPORTING)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    entity = models.CharField(max_length=50)  # the Entity's namespace, e.g. "customers"
    state = models.CharField(max_length=12, choices=State.choices, db_index=True)
    filename = models.CharField(max_length=255, blank=True)  # as the user named it
    source = models.CharField(max_length=255, blank=True)    # storage name of the upload
    result = models.CharField(max_length=255, blank=True)    # storage name of the export or error report
    mode = models.CharField(max_length=20, blank=True, choices=Mode.choices)
    params = models.JSONField(default=dict, blank=True)      # export: query string and format; import: column mapping
    total = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)      # first errors, notes, unmatched columns, undo outcome
    message = models.TextField(blank=True)                   # why it failed, or what undo refused
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)   # of the current step
    finished_at = models.DateTimeField(null=True, blank=True)  # of the last step

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "-created_at"], name="job_user_newest")]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk}"

    def get_absolute_url(self):
        return reverse("jobs:detail", args=[self.pk])

    @property
    def running(self):
        return self.state in self.RUNNING

    @property
    def change_reason(self):
        """What every history row the import writes says, so Undo finds them."""
        return f"CSV import (job #{self.pk})"


class SavedView(models.Model):
    """A named state of one grid (filters, quick search, sort, page size, columns) kept as
    its query string: applying it is opening the grid with that query, so it shows only
    what the viewer may see, and it never holds record ids of its own. Shared with the
    owner's primary unit, its members see and apply it; only the owner changes it."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    grid = models.CharField(max_length=50, help_text="The grid's namespace, e.g. customers.")
    name = models.CharField(max_length=100)
    query = models.TextField(blank=True, help_text="The grid's query string, without the page.")
    is_default = models.BooleanField(
        "my default", default=False, help_text="Applied when I open the grid without a query string.")
    shared_with = models.ForeignKey(BusinessUnit, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="saved_views", help_text="Members of this unit see and apply it.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(models.functions.Lower("name"), "owner", "grid", name="saved_view_name_once",
                                    violation_error_message="You already have a view with this name on this grid."),
            models.UniqueConstraint(fields=["owner", "grid"], condition=models.Q(is_default=True),
                                    name="saved_view_one_default"),
        ]
        indexes = [models.Index(fields=["grid", "shared_with"], name="saved_view_shared_idx")]

    def __str__(self):
        return self.name

    def clean(self):
        from django.core.exceptions import ValidationError

        self.name = " ".join((self.name or "").split())
        if not self.name:
            raise ValidationError({"name": "Give the view a name."})
        if self.owner_id and self.grid:
            same = SavedView.objects.filter(owner_id=self.owner_id, grid=self.grid, name__iexact=self.name)
            if same.exclude(pk=self.pk).exists():
                raise ValidationError({"name": "You already have a view with this name on this grid."})

    def get_absolute_url(self):
        return reverse("saved_views:apply", args=[self.pk])
