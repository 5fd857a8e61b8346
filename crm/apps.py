import importlib

from django.apps import AppConfig, apps


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Organization"

    def ready(self):
        from . import checks, lookups, signals  # noqa: F401
        from .services import CRM_APPS

        # Entities register when their app's views module loads; load them all now so the
        # navigation, global search and tests see every entity before any URL is resolved.
        for label in CRM_APPS:
            if label != "crm" and apps.is_installed(label):
                importlib.import_module(f"{label}.views")
