"""The Django admin applies the app's rules: for staff who are not superusers, the same
restricted querysets, form choices, placement checks, share rights and history as the app.

Every CRM admin page derives from CRMAdmin (records) or CRMInline (their parts); the
organization pages (users, roles, units) are for administrators, guardian's raw
permission pages and Django's groups for superusers.

What each piece answers, all through crm.access:
- which rows a page, an export, an autocomplete or a delete action reaches: `restrict`
  (view), then `access(user).can(action, record)` for the record at hand;
- which records a form or a list filter offers: `restrict_form_fields` and the filters
  below, a current link he may not view staying without its name;
- where a record may be placed: the Create / Assign placement sets, checked with
  `placement_error` against the record as it is in the database (also for a revert);
- who shares: the app's Share page, where guardian's object-permission pages send him.
"""
import os

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import NestedObjects, flatten_fieldsets, get_fields_from_path, quote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.contrib.contenttypes import views as contenttype_views
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, router
from django.http import Http404
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from guardian.admin import GuardedModelAdminMixin
from import_export.admin import ImportExportModelAdmin
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from . import services, versions
from .access import access, is_owned, restrict
from .filters import visible_owners, visible_units
from .forms import HIDDEN_LABEL, restrict_form_fields, restricts_choices
from .ids import as_id
from .models import BusinessUnit, Job, Role, RolePermission, SavedView, User

# Files a user validated on an admin import page, kept in his session: only those can be
# confirmed (process_import), so nobody imports a file somebody else uploaded.
ADMIN_IMPORTS = "crm_admin_imports"


def parse_pk(value):
    return as_id(value.strip() if isinstance(value, str) else value)


def visible_ids(model, objs, user, action="view"):
    """Ids among `objs` (records of `model`) the user may <action>: answered from the cached
    grants for owned records, with one query for the others."""
    objs = list(objs)
    if not objs:
        return set()
    if hasattr(model, "restrict_queryset") or not is_owned(model):
        return set(restrict(model._default_manager.filter(pk__in=[o.pk for o in objs]), user, action)
                   .values_list("pk", flat=True))
    acc = access(user)
    return {o.pk for o in objs if acc.can(action, o)}


# -- list filters ----------------------------------------------------------------------------

class RestrictedRelatedFilter(admin.RelatedFieldListFilter):
    """A relation's list filter offering what the grid's filters would: for users and units
    those of records the staff user may view (never the whole organization), for records
    only those he may view."""

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        user = request.user
        if related is get_user_model():
            choices = visible_owners(user, model_admin.model)
        elif related is BusinessUnit:
            choices = visible_units(user, model_admin.model)
        elif restricts_choices(related):
            choices = restrict(related._default_manager.all(), user, "view")
        else:
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            choices = choices.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in choices]


# -- forms -------------------------------------------------------------------------------------

def attach_error(form, error):
    """Add a ValidationError to `form`, its messages for fields the form does not have (e.g.
    a read-only owner) going to the form as a whole."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error)


def placement_form(form_class, user, model, model_admin=None, request=None):
    """The admin's model form with the app's rules: record choices restricted, owner and
    unit offered from the Create placement (a new record) or the Assign placement (an
    existing one), and the placement checked by crm.access against the record as it is in
    the database, whatever the form's instance says (an old version being reverted to)."""

    class PlacedForm(form_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if versions.VERSION in self.fields and self.instance.pk is not None:
                # The record's version now, not the instance's: history shows old versions to revert to.
                self.fields[versions.VERSION].initial = versions.current_version(model, self.instance.pk)
            restrict_form_fields(self, user)
            if model_admin is not None:
                model_admin.restrict_fields(request, self)
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
            self.check_version()
            if is_owned(model):
                self.check_placement(data)
            return data

        def check_version(self):
            """Refuse a save over someone else's since the form was opened (the admin's change
            view is one transaction, so the row stays locked until this form is saved); the
            form comes back with the user's values and the current version: Save applies them."""
            try:
                versions.check(self)
            except versions.StaleEdit as stale:
                lines = [str(stale)]
                if stale.current is not None:
                    current = model._base_manager.get(pk=stale.pk)
                    lines += versions.describe(versions.changes_since(current, stale.opened, self, user))
                    lines.append("Your values are kept below: press Save again to apply them over the current version.")
                    self.data = versions.resubmit_data(self, stale.current)
                raise forms.ValidationError(lines)

        def check_placement(self, data):
            owner = data.get("owner") if "owner" in self.fields else self.instance.owner
            unit = data.get("business_unit") if "business_unit" in self.fields else self.instance.business_unit
            if owner is None or unit is None:
                return  # the field's own error says it
            before = None
            if self.instance.pk:
                before = model._default_manager.filter(pk=self.instance.pk).values_list(
                    "owner_id", "business_unit_id").first()
            placed = model(pk=self.instance.pk if before else None, owner=owner, business_unit=unit)
            error = access(user).placement_error(placed, before)
            if error is not None:
                attach_error(self, error)

    if versions.versioned(model):
        PlacedForm.base_fields[versions.VERSION] = versions.version_field(None)
    PlacedForm.__name__ = form_class.__name__
    return PlacedForm


class Hidden(str):
    """A delete page's line for a record the user may not view."""


def without_hidden_lines(nested, shown=None):
    """The delete page's nested list with hidden records neither named nor counted: one
    line per model says some of its records are hidden (however many), and what hangs under
    a hidden record beyond that line is listed one level up, so visible records stay named."""
    shown = set() if shown is None else shown
    out = []
    for item in nested:
        if isinstance(item, list):
            pruned = without_hidden_lines(item, shown)
            if out and isinstance(out[-1], Hidden) and out[-1] == "":
                out.pop()
                out.extend(pruned)
            elif pruned:
                out.append(pruned)
        elif isinstance(item, Hidden):
            if item in shown:
                out.append(Hidden(""))  # a placeholder its children replace, dropped below
            else:
                shown.add(item)
                out.append(item)
        else:
            out.append(item)
    return [item for item in out if item != ""]


class MaskedHistoryHelper(HistoricalRecordContextHelper):
    """History deltas name linked records only when the user may view them."""

    def __init__(self, model, record, user, **kwargs):
        super().__init__(model, record, **kwargs)
        self.user = user

    def prepare_delta_change_value(self, change, value):
        return self.mask(super().prepare_delta_change_value(change, value))

    def mask(self, value):
        if isinstance(value, (list, tuple)):
            return [self.mask(v) for v in value]
        if isinstance(value, models.Model) and restricts_choices(type(value)) and value.pk is not None:
            if not visible_ids(type(value), [value], self.user):
                return HIDDEN_LABEL
        return value


class CRMAdmin(GuardedModelAdminMixin, ImportExportModelAdmin, SimpleHistoryAdmin):
    """Staff who are not superusers see and touch only what the app would let them."""

    def get_queryset(self, request):
        return restrict(super().get_queryset(request), request.user, "view")

    # -- permissions: the record as it is now ------------------------------------------------
    def _now(self, request, obj):
        """The record as it is in the database when `obj` is an old version being shown or
        reverted (history), so rights never follow an old owner."""
        current = getattr(request, "_crm_current", None)
        if obj is not None and current is not None and type(obj) is type(current) and obj.pk == current.pk:
            return current
        return obj

    def _allowed(self, request, action, obj):
        acc = access(request.user)
        obj = self._now(request, obj)
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

    # -- forms -----------------------------------------------------------------------------
    def get_form(self, request, obj=None, change=False, **kwargs):
        # The version is the placed form's own field (not editable on the model, so the
        # model form factory must not be asked for it); the fieldsets still show it, hidden.
        fields = kwargs.pop("fields") if "fields" in kwargs else flatten_fieldsets(self.get_fieldsets(request, obj))
        if fields is not None:
            fields = [f for f in fields if f != versions.VERSION]
        form = super().get_form(request, obj, change=change, fields=fields, **kwargs)
        return placement_form(form, request.user, self.model, self, request)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if versions.versioned(self.model) and versions.VERSION not in flatten_fieldsets(fieldsets):
            name, options = fieldsets[0]
            fieldsets = [(name, {**options, "fields": [*options["fields"], versions.VERSION]}), *fieldsets[1:]]
        return fieldsets

    def restrict_fields(self, request, form):
        """Hook: narrow further fields of the admin's form (e.g. to users he may pick)."""

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if is_owned(self.model):
            initial.setdefault("owner", request.user.pk)
            if request.user.primary_unit_id:
                initial.setdefault("business_unit", request.user.primary_unit_id)
        return initial

    def get_autocomplete_fields(self, request):
        """Users are picked from a select of the placement set, not from the users' admin
        (administrators only); records keep their autocomplete (restricted by the target
        admin's get_queryset)."""
        fields = super().get_autocomplete_fields(request)
        if access(request.user).administers:
            return fields
        return [f for f in fields if self.model._meta.get_field(f).related_model is not get_user_model()]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        obj = self._now(request, obj)
        if obj is not None and is_owned(self.model) and not access(request.user).can("assign", obj):
            fields += [f for f in ("owner", "business_unit") if f not in fields]
        return fields

    def get_list_filter(self, request):
        return [self._restricted_filter(f) for f in super().get_list_filter(request)]

    def _restricted_filter(self, spec):
        if not isinstance(spec, str):
            return spec
        try:
            field = get_fields_from_path(self.model, spec)[-1]
        except Exception:
            return spec
        if getattr(field, "is_relation", False) and field.related_model is not None:
            return (spec, RestrictedRelatedFilter)
        return spec

    def save_model(self, request, obj, form, change):
        obj._history_user = request.user
        if change and versions.versioned(self.model):
            # Reverting to an old version (history) saves that version's instance: it goes on
            # from the current version, never back to the old one.
            obj.version = versions.current_version(self.model, obj.pk) or obj.version
        super().save_model(request, obj, form, change)

    # -- delete: never name what he may not view, never delete what he may not delete -----
    def get_deleted_objects(self, objs, request):
        try:
            first = objs[0]
        except IndexError:
            return [], {}, set(), []
        collector = NestedObjects(using=router.db_for_write(first._meta.model), origin=objs)
        collector.collect(objs)
        user, site = request.user, self.admin_site
        found = {}
        for model, instances in collector.model_objs.items():
            found.setdefault(model, set()).update(instances)
        for obj in collector.protected:
            found.setdefault(type(obj), set()).add(obj)
        seen = {model: visible_ids(model, objs_, user) for model, objs_ in found.items() if restricts_choices(model)}
        deletable = {model: visible_ids(model, objs_, user, "delete") for model, objs_ in found.items()
                     if site.is_registered(model) and isinstance(site.get_model_admin(model), CRMAdmin)}
        perms_needed = set()

        def describe(obj):
            model, opts = type(obj), obj._meta
            label = capfirst(opts.verbose_name)
            registered = site.is_registered(model)
            if registered:
                if model in deletable:
                    allowed = obj.pk in deletable[model]
                else:
                    allowed = site.get_model_admin(model).has_delete_permission(request, obj)
                if not allowed:
                    perms_needed.add(opts.verbose_name)
            if model in seen and obj.pk not in seen[model]:
                return Hidden(f"{label}: {HIDDEN_LABEL}")
            if registered:
                try:
                    url = reverse(f"{site.name}:{opts.app_label}_{opts.model_name}_change", None, (quote(obj.pk),))
                except NoReverseMatch:
                    return f"{label}: {obj}"
                return format_html('{}: <a href="{}">{}</a>', label, url, obj)
            return f"{label}: {obj}"

        to_delete = without_hidden_lines(collector.nested(describe))
        protected = without_hidden_lines([describe(obj) for obj in collector.protected])
        model_count = {}
        for model, objs_ in collector.model_objs.items():
            count = len(seen[model] & {o.pk for o in objs_}) if model in seen else len(objs_)
            if count:
                model_count[model._meta.verbose_name_plural] = count
        return to_delete, model_count, perms_needed, protected

    # -- import and export: the app's resources with the user, over the restricted rows ---
    export_template_name = "crm/admin_export.html"  # import-export's, without its inline handler (CSP)

    def export_action(self, request):
        try:
            return super().export_action(request)
        except IncorrectLookupParameters:
            # The list's filters come from the address; an unknown or malformed one is a
            # message on the list, as the list itself answers it, not an error page.
            messages.error(request, "The export's filters are not valid. Choose them again on the list.")
            return redirect(reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"))

    def get_resource_kwargs(self, request, *args, **kwargs):
        return {**super().get_resource_kwargs(request, *args, **kwargs), "user": request.user}

    def get_import_resource_kwargs(self, request, *args, **kwargs):
        return {**super().get_import_resource_kwargs(request, *args, **kwargs), "user": request.user}

    def get_export_resource_kwargs(self, request, *args, **kwargs):
        return {**super().get_export_resource_kwargs(request, *args, **kwargs), "user": request.user}

    def get_export_queryset(self, request):
        return restrict(super().get_export_queryset(request), request.user, "view")

    def get_valid_export_item_pks(self, request):
        # The posted ids are only a selection within the restricted export queryset; no
        # need to load every id of the table to validate them.
        return [pk for pk in map(parse_pk, request.POST.getlist("export_items")) if pk is not None]

    def has_import_permission(self, request):
        return access(request.user).may(self.model, "create") or access(request.user).may(self.model, "change")

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def get_import_data_kwargs(self, **kwargs):
        # A confirmed file is validated again with the user's rights of now: any invalid
        # row, and nothing is written (one transaction).
        return {**super().get_import_data_kwargs(**kwargs), "rollback_on_validation_errors": True}

    def _import_key(self, name):
        return f"{self.opts.label_lower}:{os.path.basename(name or '')}"

    def create_confirm_form(self, request, import_form=None):
        form = super().create_confirm_form(request, import_form)
        if import_form is not None and form.initial.get("import_file_name"):
            pending = request.session.get(ADMIN_IMPORTS, [])[-19:]
            request.session[ADMIN_IMPORTS] = pending + [self._import_key(form.initial["import_file_name"])]
        return form

    def process_import(self, request, **kwargs):
        key = self._import_key(request.POST.get("import_file_name"))
        pending = request.session.get(ADMIN_IMPORTS, [])
        if request.method == "POST" and key not in pending:
            raise PermissionDenied("Confirm only a file you validated on this page.")
        response = super().process_import(request, **kwargs)
        if request.method == "POST":
            request.session[ADMIN_IMPORTS] = [k for k in pending if k != key]
        return response

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            rows = ", ".join(str(row.number) for row in result.invalid_rows[:10])
            messages.error(request, "Nothing was imported: the file is no longer valid for you"
                           + (f" (rows {rows})." if rows else ".") + " Upload it again to see why.")
            return redirect(reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_import"))
        return super().process_result(result, request)

    # -- history: of a record he may view now; reverting is an edit of the record now ------
    def _current(self, request, object_id, action):
        pk = parse_pk(object_id)
        obj = None if pk is None else restrict(self.model._default_manager.all(), request.user, "view").filter(
            pk=pk).first()
        if obj is None:
            raise Http404("No such record.")
        if action != "view" and not access(request.user).can(action, obj):
            raise PermissionDenied
        return obj

    def history_view(self, request, object_id, extra_context=None):
        request._crm_current = self._current(request, object_id, "view")
        if not hasattr(self.model._meta, "simple_history_manager_attribute"):
            # No simple_history on the model (customer groups): Django's own log page, not a 500.
            return admin.ModelAdmin.history_view(self, request, object_id, extra_context)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        request._crm_current = self._current(request, object_id, "change" if request.method == "POST" else "view")
        # Models without simple_history (customer groups) have no versions: simple_history
        # would fail with a 500 on them.
        if parse_pk(version_id) is None or not hasattr(self.model._meta, "simple_history_manager_attribute"):
            raise Http404("No such version.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_historical_record_context_helper(self, request, historical_record):
        return MaskedHistoryHelper(self.model, historical_record, request.user)

    # -- guardian's object permission pages: sharing, with the app's share rights ----------
    def _share_page(self, request, object_pk):
        if request.user.is_superuser:
            return None
        obj = self._current(request, object_pk, "view")  # 404 when he may not even see it
        if not is_owned(self.model) or not access(request.user).can("share", obj):
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
    """Parts of a record (phones, emails, assignments, ...): shown with the record when he
    may view it, changed by whoever may edit the record; rows he may not view (e.g. an
    assignment to a customer of another unit) are left out and kept as they are."""

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

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if hasattr(self.model, "restrict_queryset"):
            queryset = restrict(queryset, request.user, "view")
        return queryset

    def get_autocomplete_fields(self, request):
        fields = super().get_autocomplete_fields(request)
        if access(request.user).administers:
            return fields
        return [f for f in fields if self.model._meta.get_field(f).related_model is not get_user_model()]

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


class RolePermissionInline(AdministrationMixin, admin.TabularInline):
    model = RolePermission
    fields = ("entity", "action", "level")
    extra = 0


@admin.register(Role)
class RoleAdmin(AdministrationMixin, admin.ModelAdmin):
    list_display = ("name", "administers", "description")
    search_fields = ("name", "description")
    inlines = [RolePermissionInline]

    def has_delete_permission(self, request, obj=None):
        # The seeded roles come back after every migrate: change their levels instead.
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.preset)

    def delete_queryset(self, request, queryset):
        for role in queryset:  # one by one: the model's delete() guards the seeded roles
            role.delete()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.sync_role_holders(form.instance)  # a changed level applies to its holders


@admin.register(User)
class UserAdmin(AdministrationMixin, BaseUserAdmin):
    """Administrators manage users, their units and roles. Raw Django permissions and
    groups are not on the form, superuser status is read-only for those who are not
    superusers, and a superuser's account is read-only to them (no password reset, no
    deactivation, no deletion)."""

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

    def _guards_superuser(self, request, obj):
        return obj is not None and obj.is_superuser and not request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not self._guards_superuser(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not self._guards_superuser(request, obj)


# Groups carry raw Django permissions: superusers only (units' member groups are managed
# with the units, roles are Role records).
admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin):
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser



@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    """Jobs as the Jobs page shows them: his own for a staff user, everyone's for an
    administrator; read-only, since steps (import, undo) are taken on the job page."""

    list_display = ("id", "kind", "entity", "filename", "state", "total", "created", "updated", "rejected", "user",
                    "created_at")
    list_filter = ("kind", "state", "entity")
    search_fields = ("filename",)
    list_select_related = ("user",)

    def get_queryset(self, request):
        from .jobs import jobs_for

        return jobs_for(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff


# -- saved views of the grids: each user his own ---------------------------------------------

@admin.register(SavedView)
class SavedViewAdmin(admin.ModelAdmin):
    """Superusers see every saved view; other staff only their own (another user's is a
    404, as in the app), owned by themselves and shared with their primary unit only."""

    list_display = ("name", "grid", "owner", "shared_with", "is_default", "updated_at")
    list_filter = ("grid", "is_default")
    search_fields = ("name", "query")
    list_select_related = ("owner", "shared_with")
    readonly_fields = ("created_at", "updated_at")

    def get_queryset(self, request):
        views = super().get_queryset(request)
        return views if request.user.is_superuser else views.filter(owner=request.user)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such saved view.")
        return obj

    def get_list_filter(self, request):
        return super().get_list_filter(request) + (("owner", "shared_with") if request.user.is_superuser else ())

    def get_exclude(self, request, obj=None):
        return () if request.user.is_superuser else ("owner",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if request.user.is_superuser:
            return form
        user = request.user

        class OwnForm(form):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.instance.owner = user  # before validation: names are unique per owner and grid
                units = BusinessUnit.objects.filter(pk=user.primary_unit_id)
                self.fields["shared_with"].queryset = units

        return OwnForm

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and (
            obj is None or request.user.is_superuser or obj.owner_id == request.user.pk)

    has_change_permission = has_delete_permission = has_view_permission

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def save_model(self, request, obj, form, change):
        services.save_view(obj, obj.owner)  # a new default replaces the owner's previous one


# -- "view on site": the same answer for a hidden record as for a missing one -------------

def restricted_shortcut(request, content_type_id, object_id):
    """The admin's /r/<type>/<id>/ redirect, for records the user may view through that
    model's admin: any other id, hidden, missing or no id at all, is the same 404."""
    content_type = ContentType.objects.filter(pk=as_id(content_type_id)).first() if as_id(content_type_id) else None
    model = content_type.model_class() if content_type is not None else None
    if model is None or not admin.site.is_registered(model):
        raise Http404("No such record.")
    pk_field = model._meta.pk
    if isinstance(pk_field, (models.IntegerField, models.AutoField)):
        pk = as_id(object_id)
    else:
        try:
            pk = pk_field.to_python(object_id)
        except ValidationError:
            pk = None
    model_admin = admin.site.get_model_admin(model)
    obj = None if pk is None else model_admin.get_queryset(request).filter(pk=pk).first()
    if obj is None or not model_admin.has_view_permission(request, obj):
        raise Http404("No such record.")
    return contenttype_views.shortcut(request, content_type.pk, obj.pk)


def _with_restricted_shortcut(get_urls):
    def urls():
        patterns = get_urls()
        for pattern in patterns:
            if getattr(pattern, "name", None) == "view_on_site":
                pattern.callback = admin.site.admin_view(restricted_shortcut)
        return patterns
    return urls


admin.site.get_urls = _with_restricted_shortcut(admin.site.get_urls)
