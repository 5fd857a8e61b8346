import django_filters as df

from crm.filters import CRMFilterSet
from customers.models import CURRENCIES

from .models import ApprovalRequest, PurchaseRequest, Status


class PurchaseRequestFilter(CRMFilterSet):
    search_fields = ("title", "customer__name")

    title = df.CharFilter(lookup_expr="ilike", label="Title contains")
    customer = df.CharFilter(field_name="customer__name", lookup_expr="ilike", label="Customer contains")
    # The derived status (an expired approval reads Expired before the job has run).
    status = df.MultipleChoiceFilter(field_name="current_status", choices=Status.choices, label="Status")
    currency = df.ChoiceFilter(choices=CURRENCIES, empty_label="Any currency")
    created = df.DateFromToRangeFilter(field_name="created_at", label="Created between",
                                       widget=df.widgets.DateRangeWidget(attrs={"type": "date"}))

    class Meta:
        model = PurchaseRequest
        fields = ["title", "customer", "status", "currency"]


class ApprovalFilter(CRMFilterSet):
    search_fields = ("purchase_request__title", "customer__name")

    title = df.CharFilter(field_name="purchase_request__title", lookup_expr="ilike", label="Title contains")
    customer = df.CharFilter(field_name="customer__name", lookup_expr="ilike", label="Customer contains")
    status = df.MultipleChoiceFilter(field_name="current_status", choices=Status.choices, label="Status")
    expires = df.DateFromToRangeFilter(field_name="expires_at", label="Expires between",
                                       widget=df.widgets.DateRangeWidget(attrs={"type": "date"}))

    class Meta:
        model = ApprovalRequest
        fields = ["title", "customer", "status"]
