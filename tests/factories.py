"""factory_boy factories for the organization and the foundation's entities.

`UserFactory(role="Manager", units=[east])` gives a user his role group, his units and
(the first unit) as primary unit; the signals in crm.signals then grant him the unit
permissions his role carries, exactly as the admin's user page would.
"""
from dataclasses import dataclass, field

import factory
from factory.django import DjangoModelFactory

from accounts.models import Account
from channels.models import Channel
from crm.access import ADMINISTRATOR, MANAGER, PRESET_NAMES, SALES_REP
from crm.models import BusinessUnit, Role, User

ROLES = tuple(PRESET_NAMES.values())

PASSWORD = "test-password-123"


def seeded_role(name):
    """A seeded role (created after migrate, with its levels)."""
    if name not in ROLES:
        raise ValueError(f"Unknown role {name!r}; the roles are {', '.join(ROLES)}.")
    role = Role.objects.filter(name=name).first()
    if role is None:
        # A transactional test flushed the tables migrate filled: put the roles back.
        from crm.services import sync_roles

        sync_roles()
        role = Role.objects.get(name=name)
    return role


class BusinessUnitFactory(DjangoModelFactory):
    class Meta:
        model = BusinessUnit
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Unit {n}")
    parent = None


class UserFactory(DjangoModelFactory):
    """Extra arguments: `role` (a role name or a list of them) and `units` (business units;
    the first becomes the primary unit unless `primary_unit` is given)."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password(PASSWORD)

    @classmethod
    def _create(cls, model_class, *args, role=None, units=(), **kwargs):
        from crm.services import sync_user_access

        units = list(units)
        if units and kwargs.get("primary_unit") is None:
            kwargs["primary_unit"] = units[0]
        roles = [role] if isinstance(role, str) else list(role or ())
        user = model_class(*args, **kwargs)
        # The signals would recompute the grants after the save and after each membership
        # change; computing them once at the end gives the same result at a third of the cost.
        user._syncing_access = True
        try:
            user.save()
            if units:
                user.business_units.add(*units)
            if roles:
                user.roles.add(*[seeded_role(name) for name in roles])
        finally:
            user._syncing_access = False
        sync_user_access(user)
        return user


class ChannelFactory(DjangoModelFactory):
    class Meta:
        model = Channel
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Channel {n}")
    type = Channel.Type.SALES
    status = Channel.Status.ACTIVE
    entities = "business_customer"


class AccountFactory(DjangoModelFactory):
    """An account of `owner` (a new Sales Representative by default) in `business_unit`
    (the owner's primary unit by default)."""

    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")
    owner = factory.SubFactory(
        UserFactory, role="Sales Representative", units=factory.LazyFunction(lambda: [BusinessUnitFactory()])
    )
    business_unit = factory.LazyAttribute(lambda o: o.owner.primary_unit)
    description = ""


# The test organization, shaped like the demo one:
#
#     Acme Corp            admin (superuser, Administrator)
#     ├── East             east_manager (Manager), east_rep, east_rep2 (Sales Representatives)
#     │   └── East-North   north_rep (Sales Representative): a Manager's grants must reach child units
#     └── West             west_rep (Sales Representative)
UNITS = {"Acme Corp": None, "East": "Acme Corp", "East-North": "East", "West": "Acme Corp"}  # name: parent
USERS = {
    # username: (role, unit)
    "admin": (ADMINISTRATOR, "Acme Corp"),
    "east_manager": (MANAGER, "East"),
    "east_rep": (SALES_REP, "East"),
    "east_rep2": (SALES_REP, "East"),
    "north_rep": (SALES_REP, "East-North"),
    "west_rep": (SALES_REP, "West"),
}


@dataclass
class Org:
    units: dict = field(default_factory=dict)
    users: dict = field(default_factory=dict)

    def unit(self, name):
        return self.units[name]

    def user(self, name):
        return self.users[name]


def build_org():
    units = {}
    for name, parent in UNITS.items():
        units[name] = BusinessUnitFactory(name=name, parent=units[parent] if parent else None)
    users = {}
    for username, (role, unit) in USERS.items():
        superuser = username == "admin"
        users[username] = UserFactory(
            username=username, role=role, units=[units[unit]], is_superuser=superuser, is_staff=superuser
        )
    return Org(units=units, users=users)
