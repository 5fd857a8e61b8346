from django.contrib import admin

from crm.admin import OwnedAdmin

from .models import Account
from .resources import AccountResource


@admin.register(Account)
class AccountAdmin(OwnedAdmin):
    resource_classes = [AccountResource]
    list_display = ("name", "owner", "business_unit", "created_at")
    search_fields = ("name", "description")
    autocomplete_fields = ("owner", "referred_by", "default_contact")
