"""Admin for the organization, and the mixin that gives every CRM admin page the app's
restricted querysets, import/export and guardian's object permission pages."""
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from guardian.admin import GuardedModelAdminMixin
from import_export.admin import ImportExportModelAdmin
from simple_history.admin import SimpleHistoryAdmin

from .access import ROLES, access, is_owned, restrict
from .models import BusinessUnit, User


class CRMAdmin(GuardedModelAdminMixin, ImportExportModelAdmin, SimpleHistoryAdmin):
    """Staff who are not superusers see and touch only what the app would let them."""

    def get_queryset(self, request):
        return restrict(super().get_queryset(request), request.user, "view")

    def _allowed(self, request, action, obj):
        if request.user.is_superuser:
            return True
        if obj is None:
            # Any role may open an owned model's list (it shows only his records) and view
            # organization-wide ones such as channels, as in the app.
            has_role = bool(access(request.user).roles)
            return access(request.user).has_model_perm(self.model, action) or (
                has_role and (is_owned(self.model) or action == "view")
            )
        return access(request.user).can(action, obj)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, "view", obj)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, "delete", obj)

    def get_resource_kwargs(self, request, *args, **kwargs):
        return {**super().get_resource_kwargs(request, *args, **kwargs), "user": request.user}

    def get_import_resource_kwargs(self, request, *args, **kwargs):
        return {**super().get_import_resource_kwargs(request, *args, **kwargs), "user": request.user}

    def get_export_resource_kwargs(self, request, *args, **kwargs):
        return {**super().get_export_resource_kwargs(request, *args, **kwargs), "user": request.user}

    def get_export_queryset(self, request):
        return restrict(super().get_export_queryset(request), request.user, "view")

    def save_model(self, request, obj, form, change):
        if not change and is_owned(type(obj)) and not getattr(obj, "owner_id", None):
            obj.owner = request.user
        super().save_model(request, obj, form, change)


class OwnedAdmin(CRMAdmin):
    list_filter = ("business_unit", "owner", "created_at")
    list_select_related = ("owner", "business_unit")
    autocomplete_fields = ("owner",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(BusinessUnit)
class BusinessUnitAdmin(GuardedModelAdminMixin, admin.ModelAdmin):
    list_display = ("name", "parent")
    search_fields = ("name",)
    list_filter = ("parent",)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "first_name", "last_name", "email", "primary_unit", "roles", "is_active")
    list_filter = ("is_active", "is_staff", "groups", "business_units")
    fieldsets = BaseUserAdmin.fieldsets + (
        ("Organization", {"fields": ("primary_unit", "business_units")}),
    )
    filter_horizontal = ("groups", "user_permissions", "business_units")

    @admin.display(description="Roles")
    def roles(self, obj):
        return ", ".join(g.name for g in obj.groups.all() if g.name in ROLES)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("primary_unit").prefetch_related("groups")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups":
            # Unit groups follow the user's units; only roles and other groups are chosen here.
            kwargs["queryset"] = Group.objects.filter(business_unit__isnull=True)
        return super().formfield_for_manytomany(db_field, request, **kwargs)
