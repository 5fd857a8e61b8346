from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Organization"

    def ready(self):
        from . import lookups, signals  # noqa: F401
