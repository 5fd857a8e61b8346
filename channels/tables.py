import django_tables2 as tables
from django.utils.html import format_html

from crm.tables import CRMTable, DateTimeColumn

from .models import Channel


class ChannelTable(CRMTable):
    name = tables.Column(linkify=True)
    status = tables.Column()
    entities = tables.Column(verbose_name="Enabled entities", orderable=False)
    created_at = DateTimeColumn(verbose_name="Created", format="Y-m-d")

    class Meta(CRMTable.Meta):
        model = Channel
        fields = ("select", "name", "type", "status", "entities", "created_at", "actions")
        order_by = ("name",)

    def render_status(self, record):
        css = "success" if record.status == Channel.Status.ACTIVE else "secondary"
        return format_html('<span class="badge text-bg-{}">{}</span>', css, record.get_status_display())

    def render_entities(self, record):
        return record.get_entities_display()
