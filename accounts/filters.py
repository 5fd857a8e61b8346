import django_filters as df

from crm.filters import OwnedFilterSet

from .models import Account


class AccountFilter(OwnedFilterSet):
    search_fields = ("name", "description")
    name = df.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Account
        fields = ["name", "owner", "business_unit"]
