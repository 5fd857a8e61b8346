from django.contrib import admin

from crm.admin import CRMInline, OwnedAdmin

from . import services
from .forms import EmailFormSet, PhoneFormSet
from .models import BusinessCustomer, CustomerEmail, CustomerPhone
from .resources import BusinessCustomerResource


class EmailInline(CRMInline):
    model = CustomerEmail
    formset = EmailFormSet
    fields = ("email", "kind", "is_primary")


class PhoneInline(CRMInline):
    model = CustomerPhone
    formset = PhoneFormSet
    fields = ("phone", "kind", "is_primary")


@admin.register(BusinessCustomer)
class BusinessCustomerAdmin(OwnedAdmin):
    resource_classes = [BusinessCustomerResource]
    inlines = [EmailInline, PhoneInline]
    list_display = ("name", "channel", "account", "owner", "business_unit", "primary_email", "primary_phone",
                    "billing_city", "billing_country", "lifetime_value", "currency", "created_at")
    list_filter = ("channel", "business_unit", "currency", "billing_country", "owner", "created_at")
    list_select_related = ("channel", "account", "owner", "business_unit")
    search_fields = ("name", "legal_name", "primary_email", "primary_phone", "account__name")
    autocomplete_fields = ("owner", "account", "primary_contact")
    readonly_fields = ("primary_email", "primary_phone", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "channel", "account", "primary_contact", "owner", "business_unit")}),
        ("Company details", {"fields": ("legal_name", "registration_number", "registration_date", "tax_number",
                                        "industry", "employees", "website", "lifetime_value", "currency")}),
        ("Billing address", {"fields": ("billing_street", "billing_city", "billing_postal_code", "billing_region",
                                        "billing_country")}),
        ("Shipping address", {"fields": ("shipping_street", "shipping_city", "shipping_postal_code",
                                         "shipping_region", "shipping_country")}),
        ("Other", {"fields": ("description", "primary_email", "primary_phone", "created_at", "updated_at")}),
    )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.sync_primary_columns([form.instance])
