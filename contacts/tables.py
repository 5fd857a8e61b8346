import django_tables2 as tables
from django.utils.html import format_html, format_html_join

from crm.tables import CRMTable, DateTimeColumn, OwnedTable

from .models import Contact, ContactGroup


class ContactTable(OwnedTable):
    name = tables.Column(accessor="pk", verbose_name="Name", order_by=("last_name", "first_name"), linkify=True)
    job_title = tables.Column(verbose_name="Job title")
    email = tables.EmailColumn(verbose_name="Email")
    phone = tables.Column(verbose_name="Phone", attrs={"td": {"class": "text-nowrap"}})
    accounts = tables.Column(accessor="pk", verbose_name="Accounts", orderable=False)
    assigned_to = tables.Column(accessor="assigned_to__username", verbose_name="Assigned to",
                                order_by=("assigned_to__username",))
    created_at = DateTimeColumn(verbose_name="Created", format="Y-m-d", attrs={"td": {"class": "text-nowrap"}})

    class Meta(OwnedTable.Meta):
        model = Contact
        fields = ("select", "name", "job_title", "email", "phone", "accounts", "assigned_to", "owner",
                  "business_unit", "created_at", "actions")

    def render_name(self, record):
        # linkify wraps this in a link to the contact's page, escaping it.
        return str(record)

    def render_accounts(self, record):
        # Prefetched by the grid's filterset: only accounts the user may view.
        accounts = getattr(record, "visible_accounts", [])
        return format_html_join(", ", '<a href="{}">{}</a>',
                                ((a.get_absolute_url(), a.name) for a in accounts)) or "—"


class ContactGroupTable(CRMTable):
    name = tables.Column(linkify=True)
    description = tables.Column(orderable=False)
    created_at = DateTimeColumn(verbose_name="Created", format="Y-m-d")

    class Meta(CRMTable.Meta):
        model = ContactGroup
        fields = ("select", "name", "description", "created_at", "actions")
        order_by = ("name",)

    def render_description(self, value):
        return value if len(value) <= 120 else value[:119] + "…"
