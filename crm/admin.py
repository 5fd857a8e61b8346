"""The Django admin applies the app's rules: for staff who are not superusers, the same
restricted querysets, form choices, placement checks, share rights and history as the app.

Every CRM admin page derives from CRMAdmin (records) or CRMInline (their parts); the
organization pages (users, roles, units) are for administrators.
"""
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from guardian.admin import GuardedModelAdminMixin
from import_export.admin import ImportExportModelAdmin
from simple_history.admin import SimpleHistoryAdmin

from . import services
from .access import access, is_owned, restrict
from .filters import visible_owners, visible_units
from .forms import restrict_form_fields
from .models import BusinessUnit, Role, RolePermission, User


class RestrictedChoicesFilter(admin.RelatedFieldListFilter):
    """An owner or unit list filter offering only the users or units of records the
    staff user may view, never the whole organization."""

    choices_of = None

    def field_choices(self, field, request, model_admin):
        choices = type(self).choices_of(request.user, model_admin.model)
        return [(obj.pk, str(obj)) for obj in choices]


class OwnerListFilter(RestrictedChoicesFilter):
    choices_of = staticmethod(visible_owners)


class UnitListFilter(RestrictedChoicesFilter):
    choices_of = staticmethod(visible_units)


def placement_form(form_class, user, model):
    """The admin's model form with the app's rules: record choices restricted, owner and
    unit offered and checked as the app's create form and Assign do."""

    class PlacedForm(form_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            restrict_form_fields(self, user)
            if not is_owned(model):
                return
            action = "assign" if self.instance.pk else "create"
            acc = access(user)
            if "owner" in self.fields:
                self.fields["owner"].queryset = acc.placement_owners(model, action).order_by("username")
            if "business_unit" in self.fields:
                self.fields["business_unit"].queryset = acc.placement_units(model, action)

        def clean(self):
            data = super().clean()
            if is_owned(model) and not self.errors:
                before = None
                if self.instance.pk:  # as it is now, not as an old version being reverted to says
                    before = model._default_manager.filter(pk=self.instance.pk).values_list(
                        "owner_id", "business_unit_id").first()
                error = access(user).placement_error(self.instance, before)
                if error is not None:
                    self.add_error(None, error)
            return data

    PlacedForm.__name__ = form_class.__name__
    return PlacedForm


class CRMAdmin(GuardedModelAdminMixin, ImportExportModelAdmin, SimpleHistoryAdmin):
    """Staff who are not superusers see and touch only what the app would let them."""

    def get_queryset(self, request):
        return restrict(super().get_queryset(request), request.user, "view")

    def _allowed(self, request, action, obj):
        acc = access(request.user)
        if obj is not None:
            return acc.can(action, obj)
        if hasattr(self.model, "restrict_queryset"):
            # Parts of records (activities, assignments): whoever holds a role opens the
            # list; each row is then checked against its record.
            return request.user.is_active and (request.user.is_superuser or bool(acc.roles))
        return acc.may(self.model, action)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, "view", obj)

    def has_add_permission(self, request, *args):
        return access(request.user).may(self.model, "create")

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, "delete", obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        return placement_form(super().get_form(request, obj, change=change, **kwargs), request.user, self.model)

    def get_list_filter(self, request):
        swap = {"owner": ("owner", OwnerListFilter), "business_unit": ("business_unit", UnitListFilter)}
        return [swap.get(f, f) if isinstance(f, str) else f for f in super().get_list_filter(request)]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and is_owned(self.model) and not access(request.user).can("assign", obj):
            fields += [f for f in ("owner", "business_unit") if f not in fields]
        return fields

    # -- import and export: the app's resources with the user, over the restricted rows ---
    def get_resource_kwargs(self, request, *args, **kwargs):
        return {**super().get_resource_kwargs(request, *args, **kwargs), "user": request.user}

    def get_import_resource_kwargs(self, request, *args, **kwargs):
        return {**super().get_import_resource_kwargs(request, *args, **kwargs), "user": request.user}

    def get_export_resource_kwargs(self, request, *args, **kwargs):
        return {**super().get_export_resource_kwargs(request, *args, **kwargs), "user": request.user}

    def get_export_queryset(self, request):
        return restrict(super().get_export_queryset(request), request.user, "view")

    def has_import_permission(self, request):
        return access(request.user).may(self.model, "create") or access(request.user).may(self.model, "change")

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def save_model(self, request, obj, form, change):
        obj._history_user = request.user
        super().save_model(request, obj, form, change)

    # -- history: of a record he may view; reverting needs edit on the record as it is now --
    def _current(self, request, object_id, action):
        obj = restrict(self.model._default_manager.all(), request.user, "view").filter(pk=object_id).first()
        if obj is None:
            raise Http404("No such record.")
        if action != "view" and not access(request.user).can(action, obj):
            raise PermissionDenied
        return obj

    def history_view(self, request, object_id, extra_context=None):
        self._current(request, object_id, "view")
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self._current(request, object_id, "change")
        return super().history_form_view(request, object_id, version_id, extra_context)

    # -- guardian's object permission pages: sharing, with the app's share rights ----------
    def _share_page(self, request, object_pk):
        if request.user.is_superuser:
            return None
        obj = self._current(request, object_pk, "share") if is_owned(self.model) else None
        if obj is None:
            raise PermissionDenied
        return redirect(obj.get_absolute_url() + "share/")

    def obj_perms_manage_view(self, request, object_pk):
        return self._share_page(request, object_pk) or super().obj_perms_manage_view(request, object_pk)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        return self._share_page(request, object_pk) or super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        return (self._share_page(request, object_pk)
                or super().obj_perms_manage_group_view(request, object_pk, group_id))


class CRMInline(admin.TabularInline):
    """Parts of a record (phones, emails, ...): shown with the record, changed by whoever may
    edit the record."""

    extra = 0

    def _parent_allows(self, request, obj, action):
        if obj is None:
            return access(request.user).may(self.parent_model, "create" if action == "change" else action)
        return access(request.user).can("view" if action == "view" else "change", obj)

    def has_view_permission(self, request, obj=None):
        return self._parent_allows(request, obj, "view")

    def has_add_permission(self, request, obj=None):
        return self._parent_allows(request, obj, "change")

    def has_change_permission(self, request, obj=None):
        return self._parent_allows(request, obj, "change")

    def has_delete_permission(self, request, obj=None):
        return self._parent_allows(request, obj, "change")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        user = request.user

        class Restricted(formset):
            def _construct_form(self, i, **kw):
                return restrict_form_fields(super()._construct_form(i, **kw), user)

            @property
            def empty_form(self):
                return restrict_form_fields(super().empty_form, user)

        Restricted.__name__ = formset.__name__
        return Restricted


class OwnedAdmin(CRMAdmin):
    list_filter = ("business_unit", "owner", "created_at")
    list_select_related = ("owner", "business_unit")
    readonly_fields = ("created_at", "updated_at")


# -- the organization: administrators only ---------------------------------------------------

class AdministrationMixin:
    def has_module_permission(self, request):
        return access(request.user).administers

    def has_view_permission(self, request, obj=None):
        return access(request.user).administers

    def has_add_permission(self, request, *args):
        return access(request.user).administers

    def has_change_permission(self, request, obj=None):
        return access(request.user).administers

    def has_delete_permission(self, request, obj=None):
        return access(request.user).administers


@admin.register(BusinessUnit)
class BusinessUnitAdmin(AdministrationMixin, admin.ModelAdmin):
    list_display = ("name", "parent")
    search_fields = ("name",)
    list_filter = ("parent",)


class RolePermissionInline(admin.TabularInline):
    model = RolePermission
    fields = ("entity", "action", "level")
    extra = 0


@admin.register(Role)
class RoleAdmin(AdministrationMixin, admin.ModelAdmin):
    list_display = ("name", "administers", "description")
    search_fields = ("name", "description")
    inlines = [RolePermissionInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.sync_role_holders(form.instance)  # a changed level applies to its holders


@admin.register(User)
class UserAdmin(AdministrationMixin, BaseUserAdmin):
    list_display = ("username", "first_name", "last_name", "email", "primary_unit", "role_names", "is_active")
    list_filter = ("is_active", "is_staff", "roles", "business_units")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Organization", {"fields": ("primary_unit", "business_units", "roles")}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser", "last_login", "date_joined")}),
    )
    filter_horizontal = ("business_units", "roles")
    readonly_fields = ("last_login", "date_joined")

    @admin.display(description="Roles")
    def role_names(self, obj):
        return ", ".join(r.name for r in obj.roles.all())

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("primary_unit").prefetch_related("roles")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:  # an administrator cannot make anyone (himself) a superuser
            fields.append("is_superuser")
        return fields
