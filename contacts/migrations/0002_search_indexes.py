from django.db import migrations

from crm.lookups import trigram_indexes


class Migration(migrations.Migration):
    """Quick and global search match names, emails and phones anywhere in the text."""

    dependencies = [("contacts", "0001_initial")]
    operations = [trigram_indexes(
        ("contacts_contact", "first_name"),
        ("contacts_contact", "middle_name"),
        ("contacts_contact", "last_name"),
        ("contacts_contact", "email"),
        ("contacts_contact", "phone"),
        ("contacts_contactemail", "email"),
        ("contacts_contactphone", "phone"),
        ("contacts_contactgroup", "name"),
    )]
