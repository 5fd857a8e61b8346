from django.db import migrations

from crm.lookups import trigram_indexes


class Migration(migrations.Migration):
    """Quick and global search look in the description too: without its own trigram index
    an OR with it made PostgreSQL scan every account."""

    dependencies = [("accounts", "0004_account_360")]
    operations = [trigram_indexes(("accounts_account", "description"))]
