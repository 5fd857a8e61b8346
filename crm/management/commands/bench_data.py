"""Build the benchmark organization (crm.bench) into the configured database.

    python manage.py bench_data --customers 1000000

PostgreSQL loads with COPY (about a million customers in a few minutes), other engines
with bulk_create. Prints the time per table."""
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Build a realistic organization with N business customers (N/5 accounts, N/2 contacts, about N "
            "activities, 100 users, 10 units) into the configured database, for benchmarks.")

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=10_000, help="number of business customers (default 10000)")
        parser.add_argument("--seed", type=int, default=1, help="the same seed and size give the same data")

    def handle(self, *args, **opts):
        from crm.bench import build

        try:
            build(opts["customers"], out=self.stdout, seed=opts["seed"])
        except ValueError as e:
            raise CommandError(str(e)) from e
