from django.db import migrations

from crm.lookups import trigram_indexes


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]
    operations = [trigram_indexes(
        ("customers_businesscustomer", "name"),
        ("customers_businesscustomer", "primary_email"),
        ("customers_businesscustomer", "primary_phone"),
        ("customers_businesscustomer", "billing_city"),
    )]
