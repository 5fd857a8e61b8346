import django_tables2 as tables
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.html import format_html

from crm.tables import CRMTable, DateTimeColumn

from .models import STATUS_BADGES, ApprovalRequest, PurchaseRequest, Status

RIGHT = {"td": {"class": "text-end text-nowrap"}, "th": {"class": "text-end"}}


def status_badge(value):
    if not value:
        return "—"
    return format_html('<span class="badge text-bg-{}" data-status="{}">{}</span>', STATUS_BADGES.get(value, "light"),
                       value, Status(value).label)


class PurchaseRequestTable(CRMTable):
    id = tables.Column(verbose_name="ID", linkify=True)
    title = tables.Column(linkify=True)
    customer = tables.Column(accessor="customer__name", verbose_name="Customer", order_by=("customer__name",),
                             linkify=lambda record: record.customer.get_absolute_url())
    requester = tables.Column(order_by=("requester__last_name", "requester__first_name"))
    total = tables.Column(verbose_name="Amount", attrs=RIGHT)
    current_status = tables.Column(verbose_name="Status")
    created_at = DateTimeColumn(verbose_name="Created", format="Y-m-d H:i")

    class Meta(CRMTable.Meta):
        model = PurchaseRequest
        fields = ("select", "id", "title", "customer", "requester", "total", "current_status", "created_at",
                  "actions")
        sequence = fields

    def render_total(self, value, record):
        return format_html('{} <span class="text-muted small">{}</span>', intcomma(f"{value:.2f}"), record.currency)

    def render_current_status(self, value):
        return status_badge(value)


class ApprovalTable(CRMTable):
    id = tables.Column(verbose_name="ID", linkify=True)
    title = tables.Column(accessor="purchase_request__title", verbose_name="Request",
                          order_by=("purchase_request__title",),
                          linkify=lambda record: record.purchase_request.get_absolute_url())
    customer = tables.Column(accessor="customer__name", verbose_name="Customer", order_by=("customer__name",),
                             linkify=lambda record: record.customer.get_absolute_url())
    requester = tables.Column(order_by=("requester__last_name", "requester__first_name"))
    amount = tables.Column(accessor="purchase_request__total", verbose_name="Amount",
                           order_by=("purchase_request__total",), attrs=RIGHT)
    current_status = tables.Column(verbose_name="Status")
    expires_at = DateTimeColumn(verbose_name="Expires", format="Y-m-d H:i")
    actions = tables.Column(accessor="pk", orderable=False, verbose_name="", attrs={"td": {"class": "text-end"}})

    class Meta(CRMTable.Meta):
        model = ApprovalRequest
        fields = ("select", "id", "title", "customer", "requester", "amount", "current_status", "expires_at",
                  "actions")
        sequence = fields

    def render_amount(self, value, record):
        return format_html('{} <span class="text-muted small">{}</span>', intcomma(f"{value:.2f}"),
                           record.purchase_request.currency)

    def render_current_status(self, value):
        return status_badge(value)

    def render_actions(self, record):
        return format_html('<a class="btn btn-sm btn-link p-0" href="{}" title="View"><i class="bi bi-eye"></i></a>',
                           record.get_absolute_url())
