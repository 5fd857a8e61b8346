"""The benchmark's data builder and its measuring code, on tiny data (on whichever engine
the suite runs), so neither can rot. The figures themselves come from `make bench`."""
import io
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import OutputWrapper
from django.db.models import Count, F, Max, Min, Q

from accounts.models import Account
from activities.models import Activity
from contacts.models import Contact, ContactAddress, ContactCustomerAssignment, ContactEmail, ContactPhone
from crm import bench
from crm.access import restrict
from crm.management.commands.bench import MEASUREMENTS, RolledBack, run
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


def test_the_benchmark_measures_two_sizes_and_prints_the_table():
    out = OutputWrapper(io.StringIO())
    # Two requests per page and user (no warm-up) keep this quick; `make bench` warms up, then
    # takes the median of 20.
    table = run([200, 400], repeat=1, databases=RolledBack(users_per_unit=3), out=out, warmup=False)
    for m in MEASUREMENTS:
        assert m.label in table
    for role, _ in bench.BENCH_USERS:
        assert role in table
    assert "200 customers" in table and "400 customers" in table
    assert "Target: a restricted user's page" in table and "Target: each page" in table
    # Left the test database as it was.
    assert not BusinessUnit.objects.filter(name=bench.ROOT_UNIT).exists()
