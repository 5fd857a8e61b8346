from django.db import migrations, models


class Migration(migrations.Migration):
    # Its own migration: the index is built after the data fix of 0004 has committed
    # (PostgreSQL refuses an index on a table with pending trigger events).
    dependencies = [("contacts", "0004_b2b_assignments")]

    operations = [
        migrations.AddConstraint(
            model_name='contactcustomerassignment',
            constraint=models.UniqueConstraint(condition=models.Q(('type', 'primary')), fields=('customer',), name='one_primary_contact', violation_error_message='This customer already has a primary contact.'),
        ),
    ]
