from django.contrib import admin

from crm.access import access, restrict
from crm.admin import CRMAdmin, CRMInline, OwnedAdmin

from . import services
from .forms import BusinessCustomerAdminForm, EmailFormSet, PhoneFormSet
from .models import BusinessCustomer, CustomerEmail, CustomerGroup, CustomerPhone, Location
from .resources import BusinessCustomerResource, LocationResource


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
    form = BusinessCustomerAdminForm
    resource_classes = [BusinessCustomerResource]
    inlines = [EmailInline, PhoneInline]
    list_display = ("name", "channel", "account", "owner", "business_unit", "primary_email", "primary_phone",
                    "billing_city", "billing_country", "lifetime_value", "currency", "created_at")
    list_filter = ("channel", "business_unit", "currency", "billing_country", "owner", "created_at")
    list_select_related = ("channel", "account", "owner", "business_unit")
    search_fields = ("name", "legal_name", "primary_email", "primary_phone", "account__name")
    autocomplete_fields = ("owner", "account", "primary_contact", "parent")
    readonly_fields = ("primary_email", "primary_phone", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "channel", "account", "primary_contact", "owner", "business_unit")}),
        ("Company details", {"fields": ("legal_name", "registration_number", "registration_agency",
                                        "registration_date", "registration_country", "tax_number", "parent",
                                        "industry", "employees", "website", "lifetime_value", "currency")}),
        ("Purchasing", {"fields": ("purchase_limit", "monthly_budget", "approval_expiry_days",
                                   "assignment_propagation")}),
        ("Billing address", {"fields": ("billing_street", "billing_city", "billing_postal_code", "billing_region",
                                        "billing_country")}),
        ("Shipping address", {"fields": ("shipping_street", "shipping_city", "shipping_postal_code",
                                         "shipping_region", "shipping_country")}),
        ("Other", {"fields": ("description", "primary_email", "primary_phone", "created_at", "updated_at")}),
    )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.sync_primary_columns([form.instance])


@admin.register(CustomerGroup)
class CustomerGroupAdmin(CRMAdmin):
    """The predefined groups, created with a customer's first member and deleted with the
    customer by CASCADE: nobody adds, renames or deletes them here."""

    list_display = ("kind", "customer")
    list_filter = ("kind",)
    list_select_related = ("customer",)
    search_fields = ("customer__name",)
    readonly_fields = ("customer", "kind")

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Location)
class LocationAdmin(CRMAdmin):
    """A customer's locations, with the app's rules: listed for who may view the customer,
    added, changed and deleted by who may change it."""

    resource_classes = [LocationResource]
    list_display = ("name", "customer", "type", "city", "country", "email", "phone", "created_at")
    list_select_related = ("customer",)
    list_filter = ("type", "tags", "country", "created_at")
    search_fields = ("name", "city", "customer__name")
    autocomplete_fields = ("customer",)
    filter_horizontal = ("tags",)
    readonly_fields = ("created_at", "updated_at")

    def has_add_permission(self, request, *args):
        return access(request.user).may(BusinessCustomer, "change")

    def has_import_permission(self, request):
        # The resource checks each row's customer and ID.
        return access(request.user).may(BusinessCustomer, "change")

    def restrict_fields(self, request, form):
        if "customer" in form.fields:
            form.fields["customer"].queryset = restrict(BusinessCustomer.objects.all(), request.user, "change")
