import django_tables2 as tables

from crm.tables import OwnedTable

from .models import Account


class AccountTable(OwnedTable):
    name = tables.Column(linkify=True)

    class Meta(OwnedTable.Meta):
        model = Account
        fields = ("select", "name", "owner", "business_unit", "created_at", "actions")
