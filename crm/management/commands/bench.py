"""Benchmarks of the grid, the export, the import and the access rule.

Runs in a throw-away test database (never the configured one), on whichever engine
DATABASE_URL selects. Figures are ratios between sizes, so they speak of how the code
scales rather than of this machine's speed."""
import time
import tracemalloc

from django.core.management.base import BaseCommand
from django.db import connection
from django.test.utils import setup_test_environment


def timed(fn, repeat=3):
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best


class Command(BaseCommand):
    help = "Measure grid, export, import and access-control costs at two table sizes."

    def add_arguments(self, parser):
        parser.add_argument("--small", type=int, default=1_000)
        parser.add_argument("--large", type=int, default=100_000)
        parser.add_argument("--import-rows", type=int, default=10_000)

    def handle(self, *args, **opts):
        setup_test_environment()
        old_name = connection.settings_dict["NAME"]
        test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        self.stdout.write(f"database: {connection.vendor} ({test_db})")
        try:
            self.run(opts)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)

    def run(self, opts):
        from django.test import Client

        from accounts.models import Account
        from accounts.resources import AccountResource
        from crm import services
        from crm.models import BusinessUnit, User
        from django.contrib.auth.models import Group

        root = BusinessUnit.objects.create(name="Org")
        units = [BusinessUnit.objects.create(name=f"Unit {i}", parent=root) for i in range(20)]
        admin = User.objects.create_superuser("bench_admin", password="x", primary_unit=root)
        rep = User.objects.create_user("bench_rep", password="x", primary_unit=units[0])
        rep.groups.add(Group.objects.get(name="Sales Representative"))
        owners = [User.objects.create_user(f"owner{i}", primary_unit=u) for i, u in enumerate(units)]

        def fill(total):
            have = Account.objects.count()
            batch = []
            for i in range(have, total):
                owner = owners[i % len(owners)]
                batch.append(Account(name=f"Account {i:07d}", owner=owner, business_unit=owner.primary_unit))
                if len(batch) == 5000:
                    Account.objects.bulk_create(batch)
                    batch = []
            Account.objects.bulk_create(batch)

        results = {}
        for size in (opts["small"], opts["large"]):
            fill(size)
            for who in (admin, rep):
                client = Client()
                client.force_login(who)
                grid = timed(lambda: client.get("/accounts/?sort=name&page=2"))
                results[("grid", who.username, size)] = grid

            client = Client()
            client.force_login(admin)

            def export():
                response = client.get("/accounts/export/")
                return sum(len(chunk) for chunk in response.streaming_content)

            tracemalloc.start()
            elapsed = timed(export, repeat=1)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            results[("export", size)] = (elapsed, peak)
            self.stdout.write(f"  filled {size} rows")

        small, large = opts["small"], opts["large"]
        self.stdout.write("\nGrid page (sorted by name, page 2), best of 3:")
        for who in ("bench_admin", "bench_rep"):
            a, b = results[("grid", who, small)], results[("grid", who, large)]
            self.stdout.write(f"  {who:<12} {small:>8} rows {a * 1000:7.1f} ms | {large:>8} rows {b * 1000:7.1f} ms | ratio {b / a:5.2f}")
        rep_cost = results[("grid", "bench_rep", large)] / results[("grid", "bench_admin", large)]
        self.stdout.write(f"  access rule cost at {large} rows (rep / admin): {rep_cost:.2f}x")

        self.stdout.write("\nExport (streamed CSV):")
        (ta, ma), (tb, mb) = results[("export", small)], results[("export", large)]
        self.stdout.write(f"  {small:>8} rows {ta:6.2f} s peak {ma / 1e6:6.1f} MB | {large:>8} rows {tb:6.2f} s peak {mb / 1e6:6.1f} MB")
        self.stdout.write(f"  rows/s at {large}: {large / tb:,.0f}; memory ratio {mb / ma:.2f} for {large / small:.0f}x rows")

        n = opts["import_rows"]
        lines = ["ID,Name,Owner,Business Unit,Description"] + [
            f",Imported {i:06d},owner{i % len(owners)},Unit {i % len(owners)},bench" for i in range(n)
        ]
        data = ("\n".join(lines) + "\n").encode()
        start = time.perf_counter()
        report = services.import_csv(AccountResource, data, admin, dry_run=True)
        validate = time.perf_counter() - start
        start = time.perf_counter()
        report = services.import_csv(AccountResource, data, admin, dry_run=False)
        write = time.perf_counter() - start
        assert report.written and report.new == n, report
        self.stdout.write(f"\nImport of {n} rows: validate {validate:.2f} s ({n / validate:,.0f} rows/s), "
                          f"import {write:.2f} s ({n / write:,.0f} rows/s)")
