"""The benchmark's data builder and its measuring code, on tiny data (on whichever engine
the suite runs), so neither can rot. The figures themselves come from `make bench`."""
import io
import sys
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError, OutputWrapper
from django.db.models import Count, F, Max, Min, Q

from accounts.models import Account
from activities.models import Activity
from channels.models import Channel
from contacts.models import Contact, ContactAddress, ContactCustomerAssignment, ContactEmail, ContactPhone
from crm import bench
from crm.access import restrict
from crm.management.commands.bench import MEASUREMENTS, QUICK_SIZES, BenchError, Plan, RolledBack, in_child, run
from crm.models import BusinessUnit, User
from customers.models import BusinessCustomer, BusinessCustomerUserObjectPermission, CustomerEmail, CustomerPhone

pytestmark = pytest.mark.django_db

FIXTURE = "Benchmark fixture."


def test_bench_data_builds_a_consistent_organization():
    out = io.StringIO()
    call_command("bench_data", "--customers", "300", stdout=out)
    assert "customers_businesscustomer" in out.getvalue()  # timings per table

    # Sizes: N customers, N/5 accounts, N/2 contacts, besides the named fixtures.
    customers = BusinessCustomer.objects.all()
    assert customers.exclude(description=FIXTURE).count() == 300
    assert Account.objects.exclude(description=FIXTURE).count() == 60
    assert Contact.objects.exclude(description=FIXTURE).count() == 150
    assert BusinessUnit.objects.count() == 10
    assert User.objects.count() == 100
    emea = BusinessUnit.objects.get(name="EMEA")
    assert emea.children.count() == 3 and emea.parent.parent is None

    # Every record has an account / owner, and sits in its owner's primary unit.
    total = customers.count()
    assert customers.filter(account__in=Account.objects.all(), owner__in=User.objects.all()).count() == total
    for model in (BusinessCustomer, Account, Contact):
        assert not model.objects.exclude(business_unit=F("owner__primary_unit")).exists()
    assert customers.values("business_unit").distinct().count() == 10
    assert customers.values("owner").distinct().count() > 50
    span = customers.aggregate(a=Min("created_at"), b=Max("created_at"))
    assert span["b"] - span["a"] > timedelta(days=3 * 365)

    # Primary emails and phones: one row each, copied on the record.
    for points, column in ((CustomerEmail, "email"), (CustomerPhone, "phone")):
        primaries = points.objects.filter(is_primary=True)
        assert primaries.count() == total
        assert not primaries.exclude(**{column: F(f"customer__primary_{column}")}).exists()
    contacts = Contact.objects.count()
    for points, column in ((ContactEmail, "email"), (ContactPhone, "phone")):
        primaries = points.objects.filter(is_primary=True)
        assert primaries.count() == contacts
        assert not primaries.exclude(**{column: F(f"contact__{column}")}).exists()
    assert ContactAddress.objects.filter(is_primary=True).count() == contacts
    assert not Contact.objects.annotate(n=Count("accounts")).filter(n=0).exists()
    assert ContactCustomerAssignment.objects.count() >= 150
    # A customer's primary contact is one of its account's contacts.
    with_primary = customers.exclude(primary_contact=None)
    assert with_primary.exists()
    assert with_primary.filter(primary_contact__accounts=F("account")).count() == with_primary.count()

    # Activities point at existing customers, accounts and contacts.
    assert Activity.objects.count() >= 300
    for model in (BusinessCustomer, Account, Contact):
        ct = ContentType.objects.get_for_model(model)
        mine = Activity.objects.filter(content_type=ct)
        assert mine.exists()
        assert mine.filter(object_id__in=model.objects.values("pk")).count() == mine.count()
    assert BusinessCustomerUserObjectPermission.objects.count() > 50

    # The named fixtures.
    busy = BusinessCustomer.objects.get(name=bench.BUSY_CUSTOMER)
    assert busy.activities.count() == 50
    assert busy.contact_assignments.count() == 10
    assert busy.phones.count() == 5
    big = Account.objects.get(name=bench.BIG_ACCOUNT)
    assert big.customers.count() == 20 and busy.account == big
    assert BusinessCustomer.objects.filter(name__icontains=bench.RARE_TERM).count() == 3
    assert Account.objects.filter(name__icontains=bench.RARE_TERM).count() == 2
    assert Contact.objects.filter(Q(first_name__icontains=bench.RARE_TERM) | Q(last_name__icontains=bench.RARE_TERM)).count() == 3
    assert customers.filter(name__icontains=bench.COMMON_WORD).exists()

    # The roles took: the Administrator sees everything, the others part, the busy customer included.
    admin, manager, rep = (User.objects.get(username=name) for _, name in bench.BENCH_USERS)
    assert restrict(BusinessCustomer.objects.all(), admin).count() == total
    for user in (manager, rep):
        seen = restrict(BusinessCustomer.objects.all(), user)
        assert 0 < seen.count() < total and seen.filter(pk=busy.pk).exists()
    assert busy.owner != rep and busy.business_unit == rep.primary_unit

    # A second build into the same database is refused, not half-written.
    with pytest.raises(ValueError, match="already has"):
        bench.build(50, users_per_unit=3)


def test_the_import_file_is_new_customers_the_product_imports():
    from crm.services import import_csv
    from customers.resources import BusinessCustomerResource

    bench.build(200, users_per_unit=3)
    file = bench.import_file(60)
    assert len(file) == 60 and file.headers == bench.IMPORT_HEADERS
    names = [row[0] for row in file.rows]
    assert len(set(names)) == 60
    assert not BusinessCustomer.objects.filter(name__in=names).exists()
    assert {row[1] for row in file.rows} <= set(Channel.objects.filter(status="active").values_list("name", flat=True))
    assert any(row[22] for row in file.rows) and any(row[23] for row in file.rows)  # parents, purchase limits
    # The same rows for COPY and for a stock resource.
    assert [r[0] for r in file.table_rows] == names
    stock = file.stock_dataset()
    assert stock.headers[:3] == ["name", "channel", "account"] and stock["name"] == names

    admin = User.objects.get(username=bench.BENCH_ADMIN)
    report = import_csv(BusinessCustomerResource, file.csv_bytes(), admin, dry_run=True)
    assert report.ok, (report.errors[:3], report.file_errors)
    assert report.new == 60 and report.update == 0


def test_the_benchmark_prints_every_part_beside_its_reference():
    out = io.StringIO()
    # --quick: tiny sizes built into the test database and rolled back, one request per page
    # and user, import and export once and in-process; `make bench` measures for real.
    call_command("bench", "--quick", stdout=out)
    table = out.getvalue()
    for m in MEASUREMENTS:
        assert m.stock_of or m.label in table
    assert table.count("the same on the stock view") == 4
    for role, _ in bench.BENCH_USERS:
        assert role in table
    assert "200 customers" in table and "400 customers" in table
    for section in ("GRID PAGES", "RECORD PAGES", "IMPORT:", "EXPORT:", "TARGETS"):
        assert section in table
    for reference in ("stock ModelResource.import_data", "stock Resource.export()", "product: CSV"):
        assert reference in table
    assert "[met]" in table or "[MISSED]" in table
    assert "a restricted user's page at most" in table and "faster than the stock view" in table
    # Left the test database as it was.
    assert not BusinessUnit.objects.filter(name=bench.ROOT_UNIT).exists()
    assert not BusinessCustomer.objects.exists()


def test_only_runs_the_parts_asked_for():
    out = OutputWrapper(io.StringIO())
    table = run([QUICK_SIZES[0]], repeat=1, databases=RolledBack(users_per_unit=3), out=out, warmup=False,
                parts=["records"], plan=Plan.quick())
    assert "RECORD PAGES" in table and "GRID PAGES" not in table and "IMPORT:" not in table
    with pytest.raises(CommandError, match="--only"):
        call_command("bench", "--quick", "--only", "grids,nonsense")


def allocate(meter, megabytes):
    """A benchmark task: its peak is the memory it touches."""
    meter.start()
    block = bytearray(megabytes * 2**20)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    return meter.peak()


def fail(meter):
    raise ValueError("no such row")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the peak is reset through /proc")
def test_a_child_process_reports_its_own_peak_memory():
    assert 60 <= in_child(allocate, 64) < 100
    assert in_child(allocate, 0) < 10  # its own work only, not the interpreter it starts in
    with pytest.raises(BenchError, match="ValueError: no such row"):
        in_child(fail)
    assert in_child(allocate, 64, isolate=False) is None  # in-process: no figure rather than a wrong one
