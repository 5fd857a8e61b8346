"""The one selector: which records of an entity may this user <action>?

Roles are data (crm.models.Role): for each entity and action a level, the widest of the
user's roles winning. What a level covers:

    organization   every record
    division       records of his units and their sub-units  } held as guardian object
    business unit  records of his units                      } permissions on the units
    user           records he owns
    none           nothing

plus single records shared with him or one of his units (guardian's per-model tables).
So a restricted queryset is `owner = me OR business_unit IN (granted units) OR pk IN
(shared ids)`: three indexed lookups, whatever the size of the table. Everything is
computed per user object, so a change of roles or units applies on the user's next request.
"""
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from .models import ACTIONS, BusinessUnitUserObjectPermission, Level, Role

ADMINISTRATOR, MANAGER, SALES_REP = "Administrator", "Manager", "Sales Representative"
PRESET_NAMES = {Role.Preset.ADMINISTRATOR: ADMINISTRATOR, Role.Preset.MANAGER: MANAGER,
                Role.Preset.SALES_REP: SALES_REP}

# Shares grant these actions on a single record, stored as the model's view/change perms.
SHARE_LEVELS = {"view": ("view",), "change": ("view", "change")}
# Shared ids up to this many are inlined into the query (an index lookup); more, a subquery.
INLINE_SHARES = 1000


def is_owned(model):
    from .models import OwnedModel

    return issubclass(model, OwnedModel)


def entity_key(model):
    return model._meta.label_lower


def grant_codename(model, action):
    """The guardian permission on a business unit that grants <action> on `model`'s records of it."""
    return f"{action}_records_{model._meta.app_label}_{model._meta.model_name}"


def default_levels(owned, preset):
    """{action: level} a seeded role gets on an entity (Entity.default_levels may differ)."""
    org, div, unit, user, none = (Level.ORGANIZATION, Level.DIVISION, Level.BUSINESS_UNIT, Level.USER,
                                  Level.NONE)
    if not owned:  # organization-wide settings such as channels: everyone reads, administrators manage
        if preset == Role.Preset.ADMINISTRATOR:
            return {"view": org, "create": org, "change": org, "delete": org}
        return {"view": org}
    return {
        Role.Preset.ADMINISTRATOR: dict.fromkeys(ACTIONS, org),
        Role.Preset.MANAGER: dict.fromkeys(ACTIONS, div),
        Role.Preset.SALES_REP: {"view": unit, "create": user, "change": user, "delete": user, "share": user,
                                "assign": none},
    }[preset]


def governed_models():
    """Models the role matrix governs: those of the registered entities."""
    from .views import ENTITIES

    return [e.model for e in ENTITIES if e.in_role_matrix]


class Access:
    """Per-user answers, cached on the user object (one request's lifetime)."""

    def __init__(self, user):
        self.user = user
        self._units = None
        self._shares = {}
        self._owners = {}

    # -- roles ---------------------------------------------------------------------------
    @property
    def roles(self):
        """The user's Role records (one query, then cached)."""
        if not hasattr(self, "_roles"):
            self._roles = list(self.user.roles.all()) if self.user.pk else []
        return self._roles

    @property
    def levels(self):
        """{(entity label, action): widest level of the user's roles}."""
        if not hasattr(self, "_levels"):
            self._levels = {}
            if self.user.pk and self.user.is_active:
                from .models import RolePermission

                for entity, action, level in RolePermission.objects.filter(role__users=self.user).values_list(
                        "entity", "action", "level"):
                    key = (entity, action)
                    self._levels[key] = max(level, self._levels.get(key, Level.NONE))
        return self._levels

    def level(self, model, action):
        if not self.user.is_active:
            return Level.NONE
        if self.user.is_superuser:
            return Level.ORGANIZATION
        return self.levels.get((entity_key(model), action), Level.NONE)

    @property
    def administers(self):
        """Manages users, roles and units: superusers and holders of an administering role."""
        return self.user.is_active and (self.user.is_superuser or any(r.administers for r in self.roles))

    def may(self, model, action):
        """Holds <action> on `model` at any level (e.g. may create accounts somewhere)."""
        return self.level(model, action) > Level.NONE

    # -- unit grants and shares --------------------------------------------------------------
    def unit_ids(self, model, action):
        """Units whose records of `model` the user may <action> (his business-unit and
        division grants), from one query for every entity and action."""
        if self._units is None:
            self._units = {}
            if self.user.pk:
                rows = BusinessUnitUserObjectPermission.objects.filter(user=self.user).values_list(
                    "permission__codename", "content_object_id")
                for codename, unit_id in rows:
                    self._units.setdefault(codename, set()).add(unit_id)
        return self._units.get(grant_codename(model, action), set())

    def own_unit_ids(self):
        if not hasattr(self, "_own_units"):
            self._own_units = set(self.user.business_units.values_list("pk", flat=True)) if self.user.pk else set()
        return self._own_units

    def shared_ids(self, model, action):
        """The records shared with the user or his units for <action>: a list of ids when
        they are few (the query then uses the primary key index), else two subqueries."""
        key = (entity_key(model), action)
        if key not in self._shares:
            codename = f"{action}_{model._meta.model_name}"
            by_user = get_user_obj_perms_model(model).objects.filter(
                user=self.user, permission__codename=codename).values("content_object_id")
            by_group = get_group_obj_perms_model(model).objects.filter(
                group__in=self.user.groups.all(), permission__codename=codename).values("content_object_id")
            found = [row["content_object_id"] for row in by_user.union(by_group)[: INLINE_SHARES + 1]]
            self._shares[key] = found if len(found) <= INLINE_SHARES else (by_user, by_group)
        return self._shares[key]

    def shared_condition(self, model, action):
        shared = self.shared_ids(model, action)
        if isinstance(shared, list):
            return Q(pk__in=shared) if shared else None
        return Q(pk__in=shared[0]) | Q(pk__in=shared[1])

    # -- the rule ------------------------------------------------------------------------------
    def condition(self, model, action):
        """A Q for the records of `model` the user may <action>, or None for all of them."""
        level = self.level(model, action)
        if level == Level.ORGANIZATION:
            return None
        if not is_owned(model):
            return Q(pk__in=[])
        cond = Q(pk__in=[])
        if level >= Level.USER:
            cond |= Q(owner_id=self.user.pk)
        if level >= Level.BUSINESS_UNIT:
            units = self.unit_ids(model, action)
            if units:
                cond |= Q(business_unit_id__in=sorted(units))
        if action in ("view", "change") and self.user.is_active:
            shared = self.shared_condition(model, action)
            if shared is not None:
                cond |= shared
        return cond

    def can(self, action, obj):
        """May the user <action> this record? Answered in Python where the cached grants
        tell, with one query at most (shares)."""
        model = type(obj)
        if hasattr(obj, "allows"):  # its own rule for one record, e.g. an activity follows its record
            return obj.allows(self.user, action)
        if hasattr(model, "restrict_queryset"):
            return restrict(model._default_manager.filter(pk=obj.pk), self.user, action).exists()
        level = self.level(model, action)
        if level == Level.ORGANIZATION:
            return True
        if not is_owned(model):
            return False
        if level >= Level.USER and obj.owner_id == self.user.pk:
            return True
        if level >= Level.BUSINESS_UNIT and obj.business_unit_id in self.unit_ids(model, action):
            return True
        if action not in ("view", "change") or not self.user.is_active:
            return False
        shared = self.shared_ids(model, action)
        if isinstance(shared, list):
            return obj.pk in shared
        return model._default_manager.filter(self.shared_condition(model, action), pk=obj.pk).exists()

    # -- placement: where may a record be created or assigned to -------------------------------
    def placement_unit_ids(self, model, action="create"):
        """Units a record of `model` may be placed in by <action> ("create" or "assign"); None: any."""
        level = self.level(model, action)
        if level == Level.ORGANIZATION:
            return None
        if level == Level.NONE:
            return set()
        return self.own_unit_ids() | self.unit_ids(model, action)

    def placement_units(self, model, action="create"):
        from .models import BusinessUnit

        ids = self.placement_unit_ids(model, action)
        units = BusinessUnit.objects.all()
        return units if ids is None else units.filter(pk__in=ids)

    def placement_owners(self, model, action="create"):
        """Users who may be made owners: himself at user level, members of the placement
        units at business-unit and division level, anyone active at organization level."""
        from django.contrib.auth import get_user_model

        users = get_user_model().objects.filter(is_active=True)
        level = self.level(model, action)
        if level == Level.ORGANIZATION:
            return users
        if level == Level.NONE:
            return users.none()
        if level == Level.USER:
            return users.filter(pk=self.user.pk)
        return users.filter(Q(pk=self.user.pk) | Q(business_units__in=self.placement_unit_ids(model, action))).distinct()

    def placement_owner_ids(self, model, action="create"):
        key = (entity_key(model), action)
        if key not in self._owners:
            self._owners[key] = set(self.placement_owners(model, action).values_list("pk", flat=True))
        return self._owners[key]

    def may_place(self, model, owner, unit, action="create"):
        """May the user put a record of `model` in `unit` owned by `owner`? Answered from
        cached sets, so an import asks it per row for free."""
        level = self.level(model, action)
        if level == Level.ORGANIZATION:
            return owner is not None and unit is not None
        if owner is None or unit is None or level == Level.NONE:
            return False
        if unit.pk not in self.placement_unit_ids(model, action):
            return False
        return owner.pk == self.user.pk or (level >= Level.BUSINESS_UNIT and owner.pk in self.placement_owner_ids(model, action))

    def placement_error(self, instance, before=None):
        """The ValidationError of placing `instance` where it is: a new record is checked
        against the Create level; an existing one whose owner or unit changed (`before`:
        its (owner id, unit id) as loaded) is an Assign. The one check of the forms, the
        import and the admin."""
        model = type(instance)
        if instance.business_unit_id is None:
            return ValidationError({"business_unit": "This field is required."})
        if instance.owner_id is None:
            return ValidationError({"owner": "This field is required."})
        if before is not None:
            if before == (instance.owner_id, instance.business_unit_id):
                return None
            loaded = model(pk=instance.pk, owner_id=before[0], business_unit_id=before[1])
            if not self.can("assign", loaded):
                return ValidationError({"owner": "You may not change the owner or unit of this record (Assign)."})
        action = "create" if before is None else "assign"
        if not self.may_place(model, instance.owner, instance.business_unit, action):
            return ValidationError(
                {"owner": f"You may not place records owned by {instance.owner.username} in {instance.business_unit}."})
        return None

    # -- what filters may offer ----------------------------------------------------------------
    def visible_unit_ids(self, model):
        """Units a filter of `model`'s grid may offer: None (all) at organization level."""
        if self.level(model, "view") == Level.ORGANIZATION:
            return None
        return self.own_unit_ids() | self.unit_ids(model, "view")


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


def prefixed(q, field):
    """`q` with every lookup taken through the relation `field` (owner_id -> customer__owner_id)."""
    out = Q()
    out.connector, out.negated = q.connector, q.negated
    out.children = [prefixed(child, field) if isinstance(child, Q) else (f"{field}__{child[0]}", child[1])
                    for child in q.children]
    return out


def restrict_through(queryset, field, model, user, action="view"):
    """Rows that follow a parent record (a customer's locations): those whose `field` is a
    `model` record the user may <action>. The parent's condition is applied through the join,
    not as `field IN (every record he may see)`, so the cost follows the page, not the table."""
    cond = access(user).condition(model, action)
    return queryset if cond is None else queryset.filter(prefixed(cond, field))


def get_or_404(queryset, user, action, **lookup):
    """A record the user may not <action> is a 404 when he cannot even see it, else a 403.
    A model with a rule for one record (`allows`) is looked up, then asked."""
    if hasattr(queryset.model, "allows"):
        obj = queryset.filter(**lookup).first()
        if obj is not None and not obj.allows(user, "view"):
            obj = None
    else:
        obj = restrict(queryset, user, "view").filter(**lookup).first()
    if obj is None:
        raise Http404("No such record.")
    if action != "view" and not access(user).can(action, obj):
        raise PermissionDenied(f"You may not {action} this record.")
    return obj
