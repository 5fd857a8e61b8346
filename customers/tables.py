import django_tables2 as tables
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from crm.access import access
from crm.tables import CRMTable, DateTimeColumn, OwnedTable

from .models import BusinessCustomer, Location


class BusinessCustomerTable(OwnedTable):
    name = tables.Column(linkify=True)
    channel = tables.Column(accessor="channel__name", verbose_name="Channel", order_by=("channel__name",))
    account = tables.Column(accessor="account__name", verbose_name="Account", order_by=("account__name",))
    # The parent rows come by one prefetch per page (CustomerEntity.queryset); who may view one is answered from
    # the user's cached grants, so the column costs no query per row.
    parent = tables.Column(accessor="parent", verbose_name="Parent", order_by=("parent__name",))
    primary_email = tables.EmailColumn(verbose_name="Email")
    primary_phone = tables.Column(verbose_name="Phone")
    billing_city = tables.Column(verbose_name="City")
    # Read as the country's code, not through get_billing_country_display(): that walks the
    # 250 countries for every row.
    billing_country = tables.Column(verbose_name="Country", accessor="billing_country__code",
                                    order_by=("billing_country",))
    lifetime_value = tables.Column(verbose_name="Lifetime value", attrs={"td": {"class": "text-end text-nowrap"},
                                                                        "th": {"class": "text-end"}})
    created_at = DateTimeColumn(verbose_name="Created", format="Y-m-d")

    class Meta(OwnedTable.Meta):
        model = BusinessCustomer
        fields = ("select", "name", "channel", "account", "parent", "owner", "business_unit", "primary_email",
                  "primary_phone", "billing_city", "billing_country", "lifetime_value", "created_at", "actions")
        sequence = fields
        attrs = {"class": "table table-sm table-hover align-middle mb-0 text-nowrap"}

    def render_parent(self, value, record):
        request = getattr(self, "request", None)
        if request is not None and access(request.user).can("view", value):
            return format_html('<a href="{}">{}</a>', value.get_absolute_url(), value.name)
        return mark_safe('<span class="text-muted fst-italic">hidden</span>')

    def render_billing_country(self, value, record):
        return format_html('<span title="{}">{}</span>', record.billing_country.name, record.billing_country.code)

    def render_lifetime_value(self, value, record):
        return format_html("{} <span class=\"text-muted small\">{}</span>", intcomma(f"{value:.2f}"), record.currency)


def tag_badge(tag):
    return format_html('<span class="badge text-bg-light border fw-normal">{}</span>', tag.name)


class LocationTable(CRMTable):
    name = tables.Column(linkify=True)
    customer = tables.Column(accessor="customer__name", verbose_name="Customer", order_by=("customer__name",),
                             linkify=lambda record: record.customer.get_absolute_url())
    type = tables.Column(verbose_name="Type")
    # Prefetched with the page (LocationEntity.queryset): one query for every row's tags.
    tags = tables.ManyToManyColumn(verbose_name="Tags", orderable=False, separator=" ", transform=tag_badge)
    city = tables.Column(verbose_name="City")
    country = tables.Column(verbose_name="Country", accessor="country__code", order_by=("country",))
    email = tables.EmailColumn(verbose_name="Email")
    phone = tables.Column(verbose_name="Phone")

    class Meta(CRMTable.Meta):
        model = Location
        fields = ("select", "name", "customer", "type", "tags", "city", "country", "email", "phone", "actions")
        sequence = fields
        attrs = {"class": "table table-sm table-hover align-middle mb-0 text-nowrap"}
        order_by = ("customer__name", "name")

    def render_country(self, value, record):
        return format_html('<span title="{}">{}</span>', record.country.name, record.country.code)
