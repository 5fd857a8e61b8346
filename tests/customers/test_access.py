"""Business customers are owned records: the access toolkit's full matrix applies."""
import customers.views  # noqa: F401  (declares the entity the suites look up)
from accounts.models import Account
from customers.models import BusinessCustomer
from tests.factories import AccountFactory, ChannelFactory
from tests.toolkit import AccessSuite, QueryCountSuite

from .factories import BusinessCustomerFactory


def formset_management(emails=0, phones=0):
    data = {}
    for prefix, initial in (("emails", emails), ("phones", phones)):
        data.update({f"{prefix}-TOTAL_FORMS": str(initial), f"{prefix}-INITIAL_FORMS": str(initial),
                     f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "20"})
    return data


class TestBusinessCustomerAccess(AccessSuite):
    namespace = "customers"
    factory = BusinessCustomerFactory

    def form_data(self, org, user, name):
        return {"name": name, "channel": ChannelFactory(name="Direct Sales").pk, "create_account": "on",
                "owner": user.pk, "business_unit": user.primary_unit_id, "lifetime_value": "0", "currency": "USD",
                **formset_management()}

    def edit_data(self, org, user, obj, name):
        return {"name": name, "channel": obj.channel_id, "account": obj.account_id, "lifetime_value": "10",
                "currency": "EUR", **formset_management()}

    def import_row(self, org, user, obj, name):
        if obj is None:
            return {"ID": "", "Name": name, "Channel": "Direct Sales", "Account": f"{name} Account"}
        return {"ID": obj.pk, "Name": name, "Channel": obj.channel.name, "Account": obj.account.name}


class TestBusinessCustomerQueries(QueryCountSuite):
    namespace = "customers"
    factory = BusinessCustomerFactory
    # SQLite binds at most 999 parameters a statement, so bulk writes of a ~35-column row
    # (the customer and its history row) go out in chunks of about 28 rows: 1,000 rows add
    # some 80 chunked statements (and the 4,000 predefined groups another 8), still a fixed
    # number per batch and none per row. On PostgreSQL each is one statement.
    import_slack = 100

    def bulk_make(self, org, count, prefix):
        owner = org.user(self.owner)
        channel = ChannelFactory(name="Direct Sales")
        account = AccountFactory(name=f"Holdings of {prefix}", owner=owner, business_unit=owner.primary_unit)
        BusinessCustomer.objects.bulk_create([
            BusinessCustomer(name=f"{prefix} {i:05d}", channel=channel, account=account, owner=owner,
                             business_unit=owner.primary_unit, primary_email=f"{prefix.lower()}{i}@example.com",
                             billing_city="Boston", billing_country="US", lifetime_value=i)
            for i in range(count)
        ], batch_size=500)

    def import_rows(self, org, count, prefix):
        ChannelFactory(name="Direct Sales")
        header = ["ID", "Name", "Channel", "Account", "Email", "Phone", "Billing Country", "Lifetime Value"]
        return [header] + [["", f"{prefix} {i:05d}", "Direct Sales", f"{prefix} Group {i % 7}",
                            f"{prefix.lower()}{i}@example.com", f"+1 555 {i:05d}", "Germany", f"{i}.50"]
                           for i in range(count)]

    def update_rows(self, org, objs, prefix):
        header = ["ID", "Name", "Channel", "Account", "Email", "Phone"]
        accounts = dict(Account.objects.filter(pk__in={o.account_id for o in objs}).values_list("pk", "name"))
        return [header] + [[obj.pk, f"{prefix} {i:05d}", "Direct Sales", accounts[obj.account_id],
                            f"{prefix.lower()}{i}@example.com", f"+44 20 {i:05d}"] for i, obj in enumerate(objs)]
