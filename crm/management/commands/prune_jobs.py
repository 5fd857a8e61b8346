from django.core.management.base import BaseCommand

from crm.jobs import prune


class Command(BaseCommand):
    help = "Delete finished import and export jobs older than --days, with their files."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30)

    def handle(self, *args, days, **options):
        count = prune(days)
        if count:
            self.stdout.write(f"Deleted {count} job{'s' if count != 1 else ''} older than {days} days.")
