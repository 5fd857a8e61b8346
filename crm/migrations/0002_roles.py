from django.db import migrations

ROLES = ("Administrator", "Manager", "Sales Representative")


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    """The three roles. Their model permissions are granted after every migrate
    (crm.signals.sync_role_permissions), once Django has created the permissions."""

    dependencies = [("crm", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
