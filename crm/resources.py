"""Base django-import-export Resources: human headers, batch-resolved names, restricted IDs.

Imports run through import-export's bulk path in batches (see services.import_csv):
instances by ID come from one query per batch over the *restricted* queryset, related
names from one query per batch and column, and rows are written with bulk_create /
bulk_update together with their history rows.
"""
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_countries import countries
from import_export import fields, resources, widgets
from import_export.instance_loaders import CachedInstanceLoader
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from .access import access, is_owned, restrict
from .models import BusinessUnit, Role

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """Cells that a spreadsheet would run as a formula get a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def unneutralise(value):
    if isinstance(value, str) and value[:1] == "'" and value[1:2] and value[1] in FORMULA_PREFIXES:
        return value[1:]
    return value


class NameWidget(widgets.ForeignKeyWidget):
    """A related record by a name column, resolved for a whole batch in one query.

    Lookups are case-insensitive. `queryset` may be a callable taking the resource
    (to restrict choices to what the importing user may see)."""

    def __init__(self, model, field="name", label=None, queryset=None, **kwargs):
        super().__init__(model, field=field, **kwargs)
        self.label = label or model._meta.verbose_name
        self.queryset_source = queryset
        self.cache = {}

    def base_queryset(self, resource):
        if callable(self.queryset_source):
            return self.queryset_source(resource)
        return self.model._default_manager.all()

    def prime(self, resource, values):
        keys = {str(v).strip().lower() for v in values if v not in (None, "") and str(v).strip()}
        self.cache = {}
        keys = sorted(keys)
        for i in range(0, len(keys), 500):  # SQLite caps the number of query parameters
            qs = self.base_queryset(resource).annotate(_key=Lower(self.field)).filter(_key__in=keys[i : i + 500])
            for obj in qs:
                self.cache.setdefault(getattr(obj, self.field).lower(), obj)

    def clean(self, value, row=None, **kwargs):
        if value is None or not str(value).strip():
            return None
        obj = self.cache.get(str(value).strip().lower())
        if obj is None:
            raise ValueError(f"Unknown {self.label} '{value}'.")
        return obj

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else getattr(value, self.field)


class CountryWidget(widgets.Widget):
    """A country by ISO 3166 code (alpha-2 or alpha-3) or English name; exported as alpha-2."""

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if not text:
            return ""
        code = countries.alpha2(text) or countries.by_name(text)
        if not code:
            raise ValueError(f"Unknown country '{text}': use an ISO code such as DE or an English name such as Germany.")
        return code

    def render(self, value, obj=None, **kwargs):
        return getattr(value, "code", value) or ""


def visible_users(resource):
    return get_user_model().objects.filter(is_active=True)


class CRMResource(resources.ModelResource):
    id = fields.Field(attribute="id", column_name="ID", widget=widgets.IntegerWidget())
    required_columns = ("Name",)

    class Meta:
        use_bulk = True
        batch_size = None  # write once per import batch (CRM_IMPORT_BATCH_SIZE): one batch size setting
        skip_unchanged = True
        report_skipped = True
        skip_html_diff = True
        # A list, not a tuple: import-export then accepts a file without an ID column
        # (every row creates) instead of refusing the whole file.
        import_id_fields = ["id"]
        instance_loader_class = CachedInstanceLoader
        clean_model_instances = False  # query-free field checks happen in validate_instance

    def __init__(self, user=None, **kwargs):
        super().__init__(**kwargs)
        self.user = user

    # -- what the user may touch -------------------------------------------------------
    def get_queryset(self):
        qs = super().get_queryset()
        # Rows by ID are compared and checked through their name columns' relations; load
        # those with the rows, or each updated row costs a query per relation.
        foreign_keys = {f.name for f in self._meta.model._meta.concrete_fields if f.is_relation}
        related = [f.attribute for f in self.name_fields() if f.attribute in foreign_keys]
        if related:
            qs = qs.select_related(*related)
        return restrict(qs, self.user, "change") if self.user is not None else qs

    def get_or_init_instance(self, instance_loader, row):
        instance, new = super().get_or_init_instance(instance_loader, row)
        if new and row.get("ID") not in (None, ""):
            raise ValidationError({"id": f"No record with ID {row['ID']} that you may edit."})
        if not new and is_owned(type(instance)):
            instance._placement = (instance.owner_id, instance.business_unit_id)
        return instance, new

    # -- the file as a whole ------------------------------------------------------------------
    def required_headers(self):
        return list(self.required_columns)

    def start_import(self, report, body, headers):
        """Hook before the first batch (the whole file is known)."""

    def finish_import(self, report):
        """Hook after the last batch; returns notes for the preview."""
        return []

    # -- batch preparation ---------------------------------------------------------------
    def name_fields(self):
        return [f for f in self.fields.values() if isinstance(f.widget, NameWidget)]

    def before_import(self, dataset, **kwargs):
        for i, row in enumerate(dataset):
            if any(isinstance(cell, str) and cell.startswith("'") for cell in row):
                dataset[i] = tuple(unneutralise(cell) for cell in row)
        for field in self.name_fields():
            if field.column_name in dataset.headers:
                field.widget.prime(self, dataset[field.column_name])
        self.batch_errors = {}  # {row number in the batch: {attribute: message}}
        self.check_unique(dataset)

    def check_unique(self, dataset):
        """Hook: find clashes of unique columns for the whole batch in one query and
        record them in `self.batch_errors`."""

    # -- per-row checks, all free of queries ------------------------------------------------
    def column_of(self, attribute):
        for field in self.fields.values():
            if field.attribute == attribute:
                return field.column_name
        return attribute

    def import_instance(self, instance, row, **kwargs):
        errors = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as e:
            errors = e.update_error_dict(errors)
        try:
            self.fill_defaults(instance)
            self.validate_row(instance, row)
        except ValidationError as e:
            errors = e.update_error_dict(errors)
        for attr, message in self.batch_errors.get(kwargs.get("row_number"), {}).items():
            errors.setdefault(attr, []).append(message)
        if errors:
            raise ValidationError(errors)

    def fill_defaults(self, instance):
        if is_owned(type(instance)) and self.user is not None:
            if instance.owner_id is None:
                instance.owner = self.user
            if instance.business_unit_id is None:
                instance.business_unit = instance.owner.primary_unit or self.user.primary_unit

    def validate_row(self, instance, row):
        relations = [f.name for f in instance._meta.fields if isinstance(f, models.ForeignKey)]
        instance.clean_fields(exclude=relations + ["id"])
        if is_owned(type(instance)) and self.user is not None:
            self.check_placement(instance)

    def check_placement(self, instance):
        """A new record goes where the user may place it; changing an existing record's
        owner or unit is an Assign (crm.access: the forms' and the admin's check too)."""
        error = access(self.user).placement_error(instance, getattr(instance, "_placement", None))
        if error is not None:
            raise error

    # -- writes: in batches, with their history ---------------------------------------------
    def bulk_create(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        if self.create_instances:
            try:
                bulk_create_with_history(
                    self.create_instances, self._meta.model, batch_size=batch_size,
                    default_user=self.user, default_change_reason="CSV import",
                )
            except Exception as e:
                self.handle_import_error(result, e, raise_errors)
            finally:
                self.create_instances.clear()

    def bulk_update(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        if self.update_instances:
            try:
                now = timezone.now()
                for obj in self.update_instances:
                    if hasattr(obj, "updated_at"):
                        obj.updated_at = now  # bulk_update bypasses auto_now
                bulk_update_with_history(
                    self.update_instances, self._meta.model, self.bulk_update_fields(),
                    batch_size=batch_size, default_user=self.user, default_change_reason="CSV import",
                )
            except Exception as e:
                self.handle_import_error(result, e, raise_errors)
            finally:
                self.update_instances.clear()

    def bulk_update_fields(self):
        names = {f.attribute for f in self.get_import_fields() if f.attribute and f.attribute != "id"}
        concrete = {f.name for f in self._meta.model._meta.concrete_fields}
        return sorted((names & concrete) | ({"updated_at"} & concrete))

    # -- export ---------------------------------------------------------------------------------
    @classmethod
    def export_queryset(cls, queryset):
        """Hook: select_related / prefetch_related so an export has no query per row."""
        return queryset

    def export_rows(self, queryset):
        """The rows the app's export writes: export_queryset's, plus whatever depends on the
        exporting user (e.g. what he may know about related records)."""
        return self.export_queryset(queryset)

    def export_row(self, obj):
        if not hasattr(self, "_export_fields"):
            self._export_fields = self.get_export_fields()  # the same for every row of a file
        return [neutralise(self.export_field(f, obj)) for f in self._export_fields]

    def export_resource(self, instance, selected_fields=None, **kwargs):
        # The admin's export goes through import-export's export(), not export_row().
        return [neutralise(value) for value in super().export_resource(instance, selected_fields, **kwargs)]

    def headers(self):
        return [f.column_name for f in self.get_export_fields()]


class OwnedResource(CRMResource):
    owner = fields.Field(
        attribute="owner", column_name="Owner",
        widget=NameWidget(get_user_model(), field="username", label="owner", queryset=visible_users),
    )
    business_unit = fields.Field(
        attribute="business_unit", column_name="Business Unit",
        widget=NameWidget(BusinessUnit, label="business unit"),
    )

    class Meta(CRMResource.Meta):
        pass

    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("owner", "business_unit")


class RoleResource(CRMResource):
    """Roles export (ID, Name, Description, Administers); roles are edited on their page."""

    name = fields.Field(attribute="name", column_name="Name", widget=widgets.CharWidget())
    description = fields.Field(attribute="description", column_name="Description", widget=widgets.CharWidget())
    administers = fields.Field(attribute="administers", column_name="Administers", widget=widgets.BooleanWidget())

    class Meta(CRMResource.Meta):
        model = Role
        fields = ("id", "name", "description", "administers")
        export_order = fields


class UserResource(CRMResource):
    """Users export: their units and roles by name, separated by ';'."""

    username = fields.Field(attribute="username", column_name="Username", widget=widgets.CharWidget())
    first_name = fields.Field(attribute="first_name", column_name="First Name", widget=widgets.CharWidget())
    last_name = fields.Field(attribute="last_name", column_name="Last Name", widget=widgets.CharWidget())
    email = fields.Field(attribute="email", column_name="Email", widget=widgets.CharWidget())
    primary_unit = fields.Field(attribute="primary_unit", column_name="Primary Unit",
                                widget=NameWidget(BusinessUnit, label="business unit"))
    business_units = fields.Field(attribute="business_units", column_name="Business Units",
                                  widget=widgets.ManyToManyWidget(BusinessUnit, separator=";", field="name"))
    roles = fields.Field(attribute="roles", column_name="Roles",
                         widget=widgets.ManyToManyWidget(Role, separator=";", field="name"))
    is_active = fields.Field(attribute="is_active", column_name="Active", widget=widgets.BooleanWidget())

    required_columns = ("Username",)

    class Meta(CRMResource.Meta):
        model = get_user_model()
        fields = ("id", "username", "first_name", "last_name", "email", "primary_unit", "business_units", "roles",
                  "is_active")
        export_order = fields

    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("primary_unit").prefetch_related("business_units", "roles")
