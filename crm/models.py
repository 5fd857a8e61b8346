from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

# What a user may do with a record. Unit grants, role rules and shares all speak these.
ACTIONS = ("view", "change", "delete", "assign", "share")


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
        permissions = [(f"{action}_records", f"Can {action} records of the unit") for action in ACTIONS]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
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


class User(AbstractUser):
    primary_unit = models.ForeignKey(
        BusinessUnit, null=True, blank=True, on_delete=models.PROTECT, related_name="primary_users"
    )
    business_units = models.ManyToManyField(BusinessUnit, blank=True, related_name="members")

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        ordering = ["username"]

    def __str__(self):
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


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
