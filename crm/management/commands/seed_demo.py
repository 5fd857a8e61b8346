"""Demo organization: Acme Corp with East and West, four users, channels and accounts.

Idempotent: records are looked up by name, so a second run changes nothing."""
import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from crm.access import ADMINISTRATOR, MANAGER, SALES_REP
from crm.models import BusinessUnit, Role
from crm.services import sync_roles

DEFAULT_PASSWORD = "demo-password-dev-only"

USERS = [
    # username, first, last, role, unit, superuser
    ("admin", "Ada", "Admin", ADMINISTRATOR, "Acme Corp", True),
    ("east_manager", "Erin", "Eastman", MANAGER, "East", False),
    ("east_rep", "Eddie", "Easton", SALES_REP, "East", False),
    ("west_rep", "Wendy", "Weston", SALES_REP, "West", False),
]


class Command(BaseCommand):
    help = "Create the demo organization, its users and sample records (safe to run twice)."

    def handle(self, *args, **options):
        password = os.environ.get("CRM_DEMO_PASSWORD") or DEFAULT_PASSWORD
        with transaction.atomic():
            sync_roles()  # the roles, should a flushed database have lost them
            root = self.unit("Acme Corp", None)
            units = {"Acme Corp": root, "East": self.unit("East", root), "West": self.unit("West", root)}
            users = {}
            User = get_user_model()
            for username, first, last, role, unit, superuser in USERS:
                user = User.objects.filter(username=username).first()
                if user is None:
                    user = User(username=username, first_name=first, last_name=last,
                                email=f"{username}@acme.example", is_staff=superuser, is_superuser=superuser,
                                primary_unit=units[unit])
                    user.set_password(password)
                    user.save()
                    user.business_units.add(units[unit])
                    user.roles.add(Role.objects.get(name=role))
                    self.stdout.write(f"  created user {username} ({role}, {unit})")
                users[username] = user
            from crm.demo import seed_records

            seed_records(users, units, self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Log in at http://127.0.0.1:8000/login/ as:"))
        for username, _, _, role, unit, _ in USERS:
            self.stdout.write(f"  {username:<13} {role} of {unit}")
        shown = "(from CRM_DEMO_PASSWORD)" if os.environ.get("CRM_DEMO_PASSWORD") else DEFAULT_PASSWORD
        self.stdout.write(f"  password: {shown}  -- development only")

    def unit(self, name, parent):
        unit = BusinessUnit.objects.filter(name=name).first()
        if unit is None:
            unit = BusinessUnit.objects.create(name=name, parent=parent)
        return unit
