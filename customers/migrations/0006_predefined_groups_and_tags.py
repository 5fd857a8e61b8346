from django.db import migrations

KINDS = ("admin", "buyer", "requester", "contact")
TAGS = ("billing", "shipping", "pickup", "delivery", "returns")


def forwards(apps, schema_editor):
    """Every existing customer gets its predefined groups, and its assigned contacts join
    Contact, as a customer created from now on would have them."""
    Customer = apps.get_model("customers", "BusinessCustomer")
    Group = apps.get_model("customers", "CustomerGroup")
    Member = apps.get_model("customers", "CustomerGroupMember")
    Assignment = apps.get_model("contacts", "ContactCustomerAssignment")
    Tag = apps.get_model("customers", "LocationTag")
    Tag.objects.bulk_create([Tag(name=name) for name in TAGS], ignore_conflicts=True)
    ids = list(Customer.objects.values_list("pk", flat=True))
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        Group.objects.bulk_create([Group(customer_id=pk, kind=kind) for pk in chunk for kind in KINDS],
                                  ignore_conflicts=True)
        contact_groups = dict(Group.objects.filter(customer_id__in=chunk, kind="contact").values_list("customer_id", "pk"))
        pairs = set(Assignment.objects.filter(customer_id__in=chunk).values_list("customer_id", "contact_id"))
        Member.objects.bulk_create([Member(customer_id=c, contact_id=p, group_id=contact_groups[c]) for c, p in pairs],
                                   ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("customers", "0005_b2b"),
                    ("contacts", "0004_b2b_assignments")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
