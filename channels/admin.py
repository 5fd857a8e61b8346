from django.contrib import admin

from crm.admin import CRMAdmin

from .models import Channel
from .resources import ChannelResource


@admin.register(Channel)
class ChannelAdmin(CRMAdmin):
    resource_classes = [ChannelResource]
    list_display = ("name", "type", "status", "entities", "created_at")
    list_filter = ("type", "status")
    search_fields = ("name",)
