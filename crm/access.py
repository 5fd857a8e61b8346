"""The one selector: which records may this user <action>?

owner = me (as far as my role allows)  OR  business_unit IN (units where I hold the
unit permission)  OR  shared with me or one of my groups. Users holding the model-level
permission (administrators) get everything. Everything is computed per user object, so
a change of role or units takes effect on the user's next request.
"""
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from .models import ACTIONS, BusinessUnitGroupObjectPermission, BusinessUnitUserObjectPermission

ADMINISTRATOR, MANAGER, SALES_REP = "Administrator", "Manager", "Sales Representative"
ROLES = (ADMINISTRATOR, MANAGER, SALES_REP)

# What each role may do with records it owns, and with records of its units.
# "deep": the unit grants extend to descendant units (Oro's Division level).
ROLE_RULES = {
    MANAGER: {"own": set(ACTIONS), "unit": set(ACTIONS), "deep": True},
    SALES_REP: {"own": {"view", "change", "delete", "share"}, "unit": {"view"}, "deep": False},
}
# Shares grant these actions on a single record, stored as the model's view/change perms.
SHARE_LEVELS = {"view": ("view",), "change": ("view", "change")}
MODEL_PERM_FOR_ACTION = {"view": "view", "change": "change", "delete": "delete", "assign": "change", "share": "change"}


def is_owned(model):
    from .models import OwnedModel

    return issubclass(model, OwnedModel)


class Access:
    """Per-user answers, cached on the user object (one request's lifetime)."""

    def __init__(self, user):
        self.user = user
        self._units = None

    @property
    def roles(self):
        if not hasattr(self, "_roles"):
            self._roles = set(self.user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        return self._roles

    def has_model_perm(self, model, action):
        opts = model._meta
        return self.user.has_perm(f"{opts.app_label}.{MODEL_PERM_FOR_ACTION[action]}_{opts.model_name}")

    def owner_actions(self):
        return set().union(*(ROLE_RULES[r]["own"] for r in self.roles if r in ROLE_RULES))

    def unit_ids(self, action):
        """Units whose records the user may <action>, from one query for all actions."""
        if self._units is None:
            self._units = {a: set() for a in ACTIONS}
            codenames = [f"{a}_records" for a in ACTIONS]
            rows = list(
                BusinessUnitUserObjectPermission.objects.filter(
                    user=self.user, permission__codename__in=codenames
                ).values_list("permission__codename", "content_object_id")
            ) + list(
                BusinessUnitGroupObjectPermission.objects.filter(
                    group__user=self.user, permission__codename__in=codenames
                ).values_list("permission__codename", "content_object_id")
            )
            for codename, unit_id in rows:
                self._units[codename.removesuffix("_records")].add(unit_id)
        return self._units[action]

    def shared_ids(self, model, action):
        """Subqueries of the record ids shared with the user or his groups for <action>."""
        codename = f"{action}_{model._meta.model_name}"
        users = get_user_obj_perms_model(model).objects.filter(user=self.user, permission__codename=codename)
        groups = get_group_obj_perms_model(model).objects.filter(
            group__in=self.user.groups.all(), permission__codename=codename
        )
        return users.values("content_object_id"), groups.values("content_object_id")

    def condition(self, model, action):
        """A Q for the records of `model` the user may <action>, or None for all."""
        if not self.user.is_active:
            return Q(pk__in=[])
        if self.user.is_superuser or self.has_model_perm(model, action):
            return None
        if not is_owned(model):
            return None if action == "view" else Q(pk__in=[])
        cond = Q(business_unit_id__in=self.unit_ids(action))
        if action in self.owner_actions():
            cond |= Q(owner_id=self.user.pk)
        if action in ("view", "change"):
            by_user, by_group = self.shared_ids(model, action)
            cond |= Q(pk__in=by_user) | Q(pk__in=by_group)
        return cond

    def can(self, action, obj):
        model = type(obj)
        if hasattr(model, "restrict_queryset"):  # its own rule, e.g. activities follow their record
            return restrict(model._default_manager.filter(pk=obj.pk), self.user, action).exists()
        cond = self.condition(type(obj), action)
        if cond is None:
            return True
        if not is_owned(type(obj)):
            return False
        if action in self.owner_actions() and obj.owner_id == self.user.pk:
            return True
        if obj.business_unit_id in self.unit_ids(action):
            return True
        return type(obj)._default_manager.filter(cond, pk=obj.pk).exists()

    def is_admin(self):
        return self.user.is_superuser or ADMINISTRATOR in self.roles

    def placement_unit_ids(self):
        """Units a new or reassigned record may be placed in: his own units and those he may assign in."""
        if not hasattr(self, "_placement_units"):
            self._placement_units = self.unit_ids("assign") | set(
                self.user.business_units.values_list("pk", flat=True)
            )
        return self._placement_units

    def placement_units(self):
        from .models import BusinessUnit

        units = BusinessUnit.objects.all()
        return units if self.is_admin() else units.filter(pk__in=self.placement_unit_ids())

    def placement_owners(self):
        """Users this user may make owners: himself, plus members of units he may assign in."""
        from django.contrib.auth import get_user_model

        users = get_user_model().objects.filter(is_active=True)
        if self.is_admin():
            return users
        return users.filter(Q(pk=self.user.pk) | Q(business_units__in=self.unit_ids("assign"))).distinct()

    def placement_owner_ids(self):
        if not hasattr(self, "_placement_owners"):
            self._placement_owners = set(self.placement_owners().values_list("pk", flat=True))
        return self._placement_owners

    def may_place(self, owner, unit):
        """May the user put a record in `unit` owned by `owner` (create, import, assign)?
        Answered from cached sets, so an import asks it per row for free."""
        if self.is_admin():
            return True
        if owner is None or unit is None or unit.pk not in self.placement_unit_ids():
            return False
        if owner.pk == self.user.pk:
            return True
        return unit.pk in self.unit_ids("assign") and owner.pk in self.placement_owner_ids()


def access(user):
    if not hasattr(user, "_crm_access"):
        user._crm_access = Access(user)
    return user._crm_access


def restrict(queryset, user, action="view"):
    """The restricted queryset every list, detail, edit, delete, export and import uses."""
    hook = getattr(queryset.model, "restrict_queryset", None)
    if hook is not None:
        return hook(queryset, user, action)
    cond = access(user).condition(queryset.model, action)
    return queryset if cond is None else queryset.filter(cond)


def get_or_404(queryset, user, action, **lookup):
    """A record the user may not <action> is a 404 when he cannot even see it, else a 403."""
    obj = restrict(queryset, user, "view").filter(**lookup).first()
    if obj is None:
        raise Http404("No such record.")
    if action != "view" and not restrict(queryset.model._default_manager.filter(pk=obj.pk), user, action).exists():
        raise PermissionDenied(f"You may not {action} this record.")
    return obj
