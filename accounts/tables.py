from crm.tables import LinkColumn, OwnedTable

from .models import Account


class AccountTable(OwnedTable):
    name = LinkColumn(url_name="accounts:detail")

    class Meta(OwnedTable.Meta):
        model = Account
        fields = ("select", "name", "owner", "business_unit", "created_at", "actions")
