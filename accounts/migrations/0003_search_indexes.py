from django.db import migrations

from crm.lookups import trigram_indexes


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_account_details")]
    operations = [trigram_indexes(("accounts_account", "name"))]
