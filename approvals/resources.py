"""CSV exports of purchase requests and approvals (no import: the rules create them)."""
from django.db.models import Case, CharField, Value, When
from import_export import fields, widgets

from contacts.resources import contact_name
from crm.exports import CHAR_FIELDS, MONEY, Column, choice, datetime_kind
from crm.resources import CRMResource

from .models import ApprovalRequest, PurchaseRequest, Status


class TextWidget(widgets.Widget):
    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)

    def export_column(self, path, field):
        # A related record is written as its str(): the resource says how (export_columns).
        return Column(path) if isinstance(field, CHAR_FIELDS) else None


class StatusWidget(widgets.Widget):
    def render(self, value, obj=None, **kwargs):
        return Status(value).label if value else ""

    def export_column(self, path, field):
        return Column(choice(path, Status.choices))


class AmountWidget(widgets.Widget):
    def render(self, value, obj=None, **kwargs):
        return "" if value is None else f"{value:.2f}"

    def export_column(self, path, field):
        return Column(path, MONEY)


class DateTimeWidget(widgets.Widget):
    def render(self, value, obj=None, **kwargs):
        from django.utils import timezone

        return "" if value is None else timezone.localtime(value).strftime("%Y-%m-%d %H:%M")

    def export_column(self, path, field):
        return Column(path, datetime_kind("%Y-%m-%d %H:%M"))


class PurchaseRequestResource(CRMResource):
    customer = fields.Field(attribute="customer__name", column_name="Customer", widget=TextWidget())
    title = fields.Field(attribute="title", column_name="Title", widget=TextWidget())
    requester = fields.Field(attribute="requester", column_name="Requester", widget=TextWidget())
    total = fields.Field(attribute="total", column_name="Amount", widget=AmountWidget())
    currency = fields.Field(attribute="currency", column_name="Currency", widget=TextWidget())
    status = fields.Field(attribute="current_status", column_name="Status", widget=StatusWidget())
    comment = fields.Field(attribute="comment", column_name="Comment", widget=TextWidget())
    created = fields.Field(attribute="created_at", column_name="Created", widget=DateTimeWidget())

    required_columns = ()

    class Meta(CRMResource.Meta):
        model = PurchaseRequest
        fields = ("id", "customer", "title", "requester", "total", "currency", "status", "comment", "created")
        export_order = fields

    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("customer", "requester")

    def export_columns(self):
        return {"requester": Column(contact_name("requester__"))}


class ApprovalResource(CRMResource):
    customer = fields.Field(attribute="customer__name", column_name="Customer", widget=TextWidget())
    title = fields.Field(attribute="purchase_request__title", column_name="Title", widget=TextWidget())
    requester = fields.Field(attribute="requester", column_name="Requester", widget=TextWidget())
    amount = fields.Field(attribute="purchase_request__total", column_name="Amount", widget=AmountWidget())
    currency = fields.Field(attribute="purchase_request__currency", column_name="Currency", widget=TextWidget())
    status = fields.Field(attribute="current_status", column_name="Status", widget=StatusWidget())
    expires = fields.Field(attribute="expires_at", column_name="Expires", widget=DateTimeWidget())
    decided_by = fields.Field(attribute="decided_by", column_name="Decided By", widget=TextWidget())
    created = fields.Field(attribute="created_at", column_name="Created", widget=DateTimeWidget())

    required_columns = ()

    class Meta(CRMResource.Meta):
        model = ApprovalRequest
        fields = ("id", "customer", "title", "requester", "amount", "currency", "status", "expires", "decided_by",
                  "created")
        export_order = fields

    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("customer", "requester", "purchase_request", "decided_by")

    def export_columns(self):
        decided_by = Case(When(decided_by__isnull=True, then=Value("")), default=contact_name("decided_by__"),
                          output_field=CharField())
        return {"requester": Column(contact_name("requester__")), "decided_by": Column(decided_by)}
