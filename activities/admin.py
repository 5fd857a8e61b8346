from django.contrib import admin

from crm.admin import CRMAdmin

from .models import Activity
from .resources import ActivityResource


@admin.register(Activity)
class ActivityAdmin(CRMAdmin):
    resource_classes = [ActivityResource]
    list_display = ("__str__", "kind", "target_link", "created_by", "occurred_at", "due_date", "done")
    list_filter = ("kind", "done", "content_type", "occurred_at")
    list_select_related = ("created_by", "content_type")
    search_fields = ("subject", "body", "to_address")
    date_hierarchy = "occurred_at"
    readonly_fields = ("content_type", "object_id", "created_by", "created_at", "updated_at", "done_at")
    fields = ("kind", "subject", "body", "direction", "duration", "to_address", "occurred_at", "due_date", "done",
              "done_at", "content_type", "object_id", "created_by", "created_at", "updated_at")

    @admin.display(description="Record")
    def target_link(self, obj):
        return f"{obj.content_type.name} #{obj.object_id}"

    def has_add_permission(self, request):
        # An activity is logged from its record's page, which knows the record.
        return False
