import django_tables2 as tables
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.html import format_html

from crm.tables import OwnedTable

from .models import BusinessCustomer


class BusinessCustomerTable(OwnedTable):
    name = tables.Column(linkify=True)
    channel = tables.Column(accessor="channel__name", verbose_name="Channel", order_by=("channel__name",))
    account = tables.Column(accessor="account__name", verbose_name="Account", order_by=("account__name",))
    primary_email = tables.EmailColumn(verbose_name="Email")
    primary_phone = tables.Column(verbose_name="Phone")
    billing_city = tables.Column(verbose_name="City")
    billing_country = tables.Column(verbose_name="Country")
    lifetime_value = tables.Column(verbose_name="Lifetime value", attrs={"td": {"class": "text-end text-nowrap"},
                                                                        "th": {"class": "text-end"}})
    created_at = tables.DateTimeColumn(verbose_name="Created", format="Y-m-d")

    class Meta(OwnedTable.Meta):
        model = BusinessCustomer
        fields = ("select", "name", "channel", "account", "owner", "business_unit", "primary_email",
                  "primary_phone", "billing_city", "billing_country", "lifetime_value", "created_at", "actions")
        sequence = fields
        attrs = {"class": "table table-sm table-hover align-middle mb-0 text-nowrap"}

    def render_billing_country(self, value, record):
        return format_html('<span title="{}">{}</span>', record.billing_country.name, record.billing_country.code)

    def render_lifetime_value(self, value, record):
        return format_html("{} <span class=\"text-muted small\">{}</span>", intcomma(f"{value:.2f}"), record.currency)
