import django_filters as df
from django_countries import countries

from channels.models import Channel
from crm.filters import OwnedFilterSet

from .models import CURRENCIES, BusinessCustomer


class BusinessCustomerFilter(OwnedFilterSet):
    search_fields = ("name", "primary_email", "primary_phone", "account__name")

    name = df.CharFilter(lookup_expr="ilike", label="Name contains")
    channel = df.ModelMultipleChoiceFilter(queryset=Channel.objects.all())
    account = df.CharFilter(field_name="account__name", lookup_expr="ilike", label="Account contains")
    primary_email = df.CharFilter(lookup_expr="ilike", label="Email contains")
    primary_phone = df.CharFilter(lookup_expr="ilike", label="Phone contains")
    billing_city = df.CharFilter(lookup_expr="ilike", label="Billing city contains")
    billing_country = df.ChoiceFilter(choices=list(countries), label="Billing country", empty_label="Any country")
    lifetime_value = df.RangeFilter(label="Lifetime value between",
                                    widget=df.widgets.RangeWidget(attrs={"type": "number", "step": "0.01"}))
    currency = df.ChoiceFilter(choices=CURRENCIES, empty_label="Any currency")

    class Meta:
        model = BusinessCustomer
        fields = ["name", "channel", "account", "owner", "business_unit", "primary_email", "primary_phone",
                  "billing_city", "billing_country", "lifetime_value", "currency"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        low, high = self.form.fields["lifetime_value"].widget.widgets
        low.attrs["placeholder"], high.attrs["placeholder"] = "Min", "Max"
