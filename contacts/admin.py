from django.contrib import admin

from crm.access import access, restrict
from crm.admin import CRMAdmin, CRMInline, OwnedAdmin

from . import services
from .forms import AddressFormSet, EmailFormSet, PhoneFormSet, colleagues
from .models import Contact, ContactAddress, ContactCustomerAssignment, ContactEmail, ContactGroup, ContactPhone
from .resources import ContactGroupResource, ContactResource


class ChildInline(CRMInline):
    pass


class EmailInline(ChildInline):
    model = ContactEmail
    formset = EmailFormSet
    fields = ("email", "is_primary")


class PhoneInline(ChildInline):
    model = ContactPhone
    formset = PhoneFormSet
    fields = ("phone", "is_primary")


class AddressInline(ChildInline):
    model = ContactAddress
    formset = AddressFormSet
    fields = ("type", "is_primary", "street", "city", "postal_code", "region", "country")


class AssignmentInline(ChildInline):
    model = ContactCustomerAssignment
    fields = ("customer", "type")
    autocomplete_fields = ("customer",)


@admin.register(Contact)
class ContactAdmin(OwnedAdmin):
    resource_classes = [ContactResource]
    list_display = ("__str__", "job_title", "email", "phone", "owner", "business_unit", "created_at")
    list_select_related = ("owner", "business_unit")
    search_fields = ("first_name", "last_name", "email", "phone")
    list_filter = OwnedAdmin.list_filter + ("groups", "source")
    autocomplete_fields = ("owner", "assigned_to", "reports_to", "accounts")
    filter_horizontal = ("groups",)
    readonly_fields = ("email", "phone", "created_at", "updated_at")
    inlines = [EmailInline, PhoneInline, AddressInline, AssignmentInline]

    def restrict_fields(self, request, form):
        # Assigned to: himself and members of units he may see, as on the app's form.
        if "assigned_to" in form.fields and not access(request.user).administers:
            form.fields["assigned_to"].queryset = colleagues(request.user, keep=form.instance.assigned_to_id)

    def save_formset(self, request, form, formset, change):
        if issubclass(formset.model, (ContactEmail, ContactPhone, ContactAddress)):
            # The primary flag moves between rows the way the app's form moves it.
            services.save_children(formset, form.instance)
        elif formset.model is ContactCustomerAssignment:
            # New roles given here get what the app's assignment gives them: propagation, the Contact group.
            formset.save()
            for row in formset.new_objects:
                services.propagate(row.contact, row.customer, [row], request.user)
        else:
            super().save_formset(request, form, formset, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.refresh_primaries([form.instance.pk])


@admin.register(ContactGroup)
class ContactGroupAdmin(CRMAdmin):
    resource_classes = [ContactGroupResource]
    list_display = ("name", "description", "created_at")
    search_fields = ("name",)


@admin.register(ContactCustomerAssignment)
class ContactCustomerAssignmentAdmin(CRMAdmin):
    list_display = ("contact", "customer", "type", "created_at")
    list_select_related = ("contact", "customer")
    list_filter = ("type",)
    search_fields = ("contact__first_name", "contact__last_name", "customer__name")
    autocomplete_fields = ("contact", "customer")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            services.propagate(obj.contact, obj.customer, [obj], request.user)

    def has_add_permission(self, request, *args):
        # A contact's assignments are part of the contact: whoever may edit some contact.
        return access(request.user).may(Contact, "change")

    def has_import_permission(self, request):
        # No resource of the app's here (the default one knows no rules): superusers only.
        return request.user.is_active and request.user.is_superuser

    def restrict_fields(self, request, form):
        # The contact whose assignments change: one he may edit (the customer: one he may view).
        if "contact" in form.fields:
            form.fields["contact"].queryset = restrict(Contact.objects.all(), request.user, "change")
