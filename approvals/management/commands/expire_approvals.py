from django.core.management.base import BaseCommand

from approvals.services import expire_approvals


class Command(BaseCommand):
    help = "Mark pending approval requests past their expiry as Expired and mail their requesters (once each)."

    def handle(self, *args, **options):
        count = expire_approvals()
        if count or options["verbosity"] > 1:  # quiet when run every minute with nothing to do
            self.stdout.write(f"Expired {count} approval request{'s' if count != 1 else ''}.")
