"""The generic grid, record, form, import and export views, written once.

An app declares an `Entity` (model, form, table, filterset, resource) in its views.py and
includes `Entity.urls()`; every path below goes through `restrict()` from crm.access.
"""
import csv

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.functional import classproperty
from django.views import View
from django.views.generic import TemplateView
from django_filters.views import FilterView
from django_tables2 import SingleTableMixin

from . import jobs, services, versions
from .access import access, default_levels, is_owned, restrict
from .filters import RoleFilter, UserFilter
from .forms import (AssignForm, BootstrapMixin, ImportForm, RoleForm, ShareForm, UserForm, restrict_form_fields,
                    restricts_choices)
from .ids import as_id, parse_ids
from .models import Job, Role, SavedView, User
from .resources import RoleResource, UserResource
from .tables import CountingPaginator, RoleTable, UserTable, count

ENTITIES = []  # every declared Entity, for the navigation, the role matrix and global search
PAGE_SIZES = (25, 50, 100, 250)


class Entity:
    """One entity's pieces and options. Subclass it in the app's views.py and include `urls()`.
    Every option is declared here with its default; crm.checks verifies the pieces."""

    model = None
    form_class = None
    table_class = None
    filterset_class = None
    resource_class = None
    namespace = None                 # url namespace and path segment, e.g. "accounts"
    detail_template = "crm/detail.html"
    form_template = "crm/form.html"
    list_select_related = ()
    icon = "bi-card-list"
    extra_mass_actions = ()          # (url name, label, icon) posted the selected pks
    in_navigation = True             # listed in the top bar and on the home page
    searchable = True                # listed by the global search
    in_role_matrix = True            # roles set its access levels (else: see `administration`)
    administration = False           # managed by administrators only (users, roles)
    importable = True                # has the import pages
    deletable = True                 # users may delete records (as their roles allow)
    protected_message = None         # why a record others still reference cannot be deleted

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.model is not None and cls not in ENTITIES:
            ENTITIES.append(cls)

    @classproperty
    def owned(cls):
        return is_owned(cls.model)

    @classproperty
    def verbose_name(cls):
        return cls.model._meta.verbose_name

    @classproperty
    def verbose_name_plural(cls):
        return cls.model._meta.verbose_name_plural

    @classmethod
    def default_levels(cls, preset):
        """{action: level} the seeded role `preset` gets on this entity when it first appears."""
        return default_levels(cls.owned, preset)

    @classmethod
    def queryset(cls):
        queryset = cls.model._default_manager.all()
        return queryset.select_related(*cls.list_select_related) if cls.list_select_related else queryset

    @classmethod
    def restricted(cls, user, action="view"):
        """The records the user may <action>: the only way views reach records."""
        if cls.administration:
            if not access(user).administers:
                raise PermissionDenied("Only administrators manage these.")
            return cls.queryset()
        return restrict(cls.queryset(), user, action)

    @classmethod
    def can(cls, user, action, obj):
        return access(user).administers if cls.administration else access(user).can(action, obj)

    @classmethod
    def can_create(cls, user):
        return access(user).administers if cls.administration else access(user).may(cls.model, "create")

    @classmethod
    def may_view(cls, user):
        """Views some of its records: listed in the top bar and on the home page."""
        return access(user).may(cls.model, "view")

    @classmethod
    def can_import(cls, user):
        """Import creates or updates: either right opens the import page (rows are checked one by one)."""
        return cls.importable and (cls.can_create(user) or access(user).may(cls.model, "change"))

    @classmethod
    def search(cls, queryset, q):
        """Records of `queryset` matching `q`: the grid's quick search, for global search and autocompletes."""
        return cls.filterset_class(queryset=queryset).quick_search(queryset, "q", q)

    @classmethod
    def detail_context(cls, request, obj):
        """Hook: extra sections of the record page."""
        return {}

    @classmethod
    def autocomplete_queryset(cls, request, queryset):
        """Hook: narrow an autocomplete's visible records by what the form sent along with
        the search (e.g. only customers of the chosen channel)."""
        return queryset

    @classmethod
    def form_kwargs(cls, request):
        return {"user": request.user}

    @classmethod
    def save(cls, form, user):
        return services.save_form(form, user)

    @classmethod
    def urls(cls):
        kw = {"entity": cls}
        patterns = [
            path("", GridView.as_view(**kw), name="list"),
            path("new/", RecordFormView.as_view(**kw), name="create"),
            path("<int:pk>/", RecordView.as_view(**kw), name="detail"),
            path("<int:pk>/edit/", RecordFormView.as_view(**kw), name="update"),
            path("<int:pk>/delete/", DeleteView.as_view(**kw), name="delete"),
            path("delete/", DeleteView.as_view(**kw), name="mass_delete"),
            path("export/", ExportView.as_view(**kw), name="export"),
            path("autocomplete/", AutocompleteView.as_view(**kw), name="autocomplete"),
        ]
        if cls.importable:
            patterns += [
                path("import/", ImportView.as_view(**kw), name="import"),
                path("import/template.csv", ImportTemplateView.as_view(**kw), name="import_template"),
            ]
        if cls.owned:
            patterns += [
                path("assign/", AssignView.as_view(**kw), name="assign"),
                path("<int:pk>/share/", ShareView.as_view(**kw), name="share"),
            ]
        return patterns, cls.namespace


class EntityMixin(LoginRequiredMixin):
    """Restrict once: a view declares the action it needs (`action`, or `get_action()`);
    `dispatch` computes the restricted queryset (`self.queryset`: what the user may view)
    and, for a URL with a pk, the record (`self.object`: 404 if he may not view it, 403 if
    he may view but not <action> it) before any handler runs."""

    entity = None
    action = "view"
    object = None

    def get_action(self):
        return self.action

    def check_permission(self):
        """Hook for rights that are not about one record (e.g. creating): raise
        PermissionDenied or Http404, or return a response (e.g. a redirect) to answer with."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.queryset = self.entity.restricted(request.user, "view")
        if "pk" in kwargs:
            self.object = self.queryset.filter(pk=kwargs["pk"]).first()
            if self.object is None:
                raise Http404("No such record.")
            action = self.get_action()
            if action != "view" and not self.entity.can(request.user, action, self.object):
                raise PermissionDenied(f"You may not {action} this record.")
        refused = self.check_permission()
        if refused is not None:
            return refused
        return super().dispatch(request, *args, **kwargs)

    def records(self, action="view"):
        return self.queryset if action == "view" else self.entity.restricted(self.request.user, action)

    def url(self, name, *args):
        return reverse(f"{self.entity.namespace}:{name}", args=args)

    def selected(self, action):
        """The records picked in the grid (pk=... repeated): all of them <action>-able, else
        404 when one is not even visible, 403 when one is visible but not <action>-able."""
        pks = parse_ids(self.request.POST.getlist("pk") + self.request.GET.getlist("pk"))
        self.selected_pks = pks
        queryset = self.entity.model._default_manager.filter(pk__in=pks)
        if self.records(action).filter(pk__in=pks).count() != len(pks):
            if self.queryset.filter(pk__in=pks).count() != len(pks):
                raise Http404("No such record.")
            raise PermissionDenied(f"You may not {action} some of the selected records.")
        return queryset

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs) if hasattr(super(), "get_context_data") else kwargs
        ctx.update(entity=self.entity, ns=self.entity.namespace, selected_pks=getattr(self, "selected_pks", []),
                   can_add=self.entity.can_create(self.request.user),
                   can_import=self.entity.can_import(self.request.user))
        return ctx


class GridView(EntityMixin, SingleTableMixin, FilterView):
    """A grid. Its whole state (filters, quick search, sort, page size, chosen columns) is
    its query string, so a saved view is only a query string: applied, it shows what the
    viewer may see. Opened without a query string, the user's default view of the grid
    applies; `?reset=1` (PLAIN) shows the plain grid."""

    template_name = "crm/list.html"
    PLAIN = "reset=1"
    NOT_FILTERS = ("page", "per_page", "sort", "q", "cols", "reset")

    def get(self, request, *args, **kwargs):
        self.saved_views = services.saved_views_for(request.user, self.entity.namespace)
        if not request.GET:
            default = next((v for v in self.saved_views if v.is_default and v.owner_id == request.user.pk), None)
            if default is not None and default.query:
                return redirect(f"{request.path}?{default.query}")
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return self.queryset

    def get_filterset_class(self):
        return self.entity.filterset_class

    def get_table_class(self):
        return self.entity.table_class

    def chosen_columns(self):
        """`cols=a,b` (or `cols` repeated) -> the names, None when the grid shows its default."""
        names = [n for v in self.request.GET.getlist("cols") for n in v.split(",") if n]
        return names or None

    def get_table_kwargs(self):
        return {"shown": self.chosen_columns()}

    def query_without(self, *keys):
        """The grid's query string without `keys` (and the page); never empty, as an empty
        one would apply the default view."""
        params = self.request.GET.copy()
        for key in ("page",) + keys:
            params.pop(key, None)
        return params.urlencode() or self.PLAIN

    def get_table_pagination(self, table):
        size = as_id(self.request.GET.get("per_page", ""))
        return {"per_page": size if size in PAGE_SIZES else PAGE_SIZES[0], "paginator_class": CountingPaginator,
                "page_sizes": PAGE_SIZES}

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        user, table = self.request.user, ctx["table"]
        params = self.request.GET.copy()
        params.pop("page", None)
        active = [k for k, v in self.request.GET.lists() if k not in self.NOT_FILTERS and any(v)]
        state = services.grid_query(self.request.GET)
        mine = [v for v in self.saved_views if v.owner_id == user.pk]
        choosable = dict(table.choosable_columns())
        ctx.update(
            page_sizes=PAGE_SIZES, query=params.urlencode(), active_filters=len(active),
            grid_state=state, plain_query=self.PLAIN,
            columns=[(c.name, c.header, c.visible) for c in table.columns.iterall() if c.name in choosable],
            columns_fixed=[c.header for c in table.columns.iterall()
                           if c.name in table.fixed_columns() and c.name not in table.always_shown],
            columns_chosen=self.chosen_columns() is not None,
            columns_visible=sum(1 for c in table.columns.iterall() if c.name in choosable and c.visible),
            columns_reset_query=self.query_without("cols"),
            saved_views_mine=mine, saved_views_shared=[v for v in self.saved_views if v.owner_id != user.pk],
            current_view=next((v for v in self.saved_views if services.is_showing(v, self.request.GET)), None),
            default_view=next((v for v in mine if v.is_default), None),
            share_unit=user.primary_unit,
        )
        return ctx


class RecordView(EntityMixin, TemplateView):
    def get_template_names(self):
        return [self.entity.detail_template]

    def get_context_data(self, **kwargs):
        obj, user, entity = self.object, self.request.user, self.entity
        ctx = super().get_context_data(object=obj, **kwargs)
        ctx.update(
            can_change=entity.can(user, "change", obj),
            can_delete=entity.can(user, "delete", obj),
            can_assign=entity.owned and entity.can(user, "assign", obj),
            can_share=entity.owned and entity.can(user, "share", obj),
            history=history_of(obj, user=user),
        )
        ctx.update(entity.detail_context(self.request, obj))
        return ctx


def history_of(obj, limit=50, user=None):
    """Newest-first history entries with the fields each one changed.

    History keeps related records as ids (many-to-many ones as link rows) and choices as
    codes; both are shown by name, related records only as far as `user` may see them (else
    as #id)."""
    if not hasattr(obj, "history"):
        return []
    records = list(obj.history.select_related("history_user").order_by("-history_date", "-history_id")[: limit + 1])
    entries, refs, many = [], [], []
    for newer, older in zip(records, records[1:] + [None]):
        changes = []
        if older is not None and newer.history_type == "~":
            delta = newer.diff_against(older)
            for change in delta.changes:
                field = obj._meta.get_field(change.field)
                change_row = [field.verbose_name, change.old, change.new]
                if field.many_to_one:
                    refs.append((change_row, field.related_model))
                elif field.many_to_many:
                    target = field.m2m_reverse_field_name()
                    change_row[1:] = [[link[target] for link in v or []] for v in change_row[1:]]
                    many.append((change_row, field.related_model))
                elif field.choices:
                    labels = dict(field.flatchoices)
                    change_row[1:] = [labels.get(v, v) for v in change_row[1:]]
                changes.append(change_row)
        entries.append({"record": newer, "changes": changes})
    ids = {}
    for change_row, model in refs:
        ids.setdefault(model, set()).update(v for v in change_row[1:] if v is not None)
    for change_row, model in many:
        ids.setdefault(model, set()).update(v for values in change_row[1:] for v in values)
    names = {}
    for model, pks in ids.items():  # one query per related model
        related = model._default_manager.filter(pk__in=pks)
        if user is not None and restricts_choices(model):  # records, not users or units
            related = restrict(related, user, "view")
        names[model] = {o.pk: str(o) for o in related}
    for change_row, model in refs:
        change_row[1:] = [None if v is None else names[model].get(v, f"#{v}") for v in change_row[1:]]
    for change_row, model in many:
        change_row[1:] = [", ".join(sorted(names[model].get(v, f"#{v}") for v in values)) or None
                          for values in change_row[1:]]
    return entries[:limit]


class RecordFormView(EntityMixin, TemplateView):
    def get_action(self):
        return "change" if "pk" in self.kwargs else "create"

    def check_permission(self):
        if self.object is None and not self.entity.can_create(self.request.user):
            raise PermissionDenied("You may not create this kind of record.")

    def get_template_names(self):
        return [self.entity.form_template]

    def form(self, data=None):
        form = self.entity.form_class(data, instance=self.object, **self.entity.form_kwargs(self.request))
        return versions.add_version_field(restrict_form_fields(form, self.request.user))

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=self.form(), object=self.object))

    def post(self, request, *args, **kwargs):
        form = self.form(request.POST)
        if form.is_valid():
            try:
                obj = services.save_edit(self.entity, form, request.user)
            except versions.StaleEdit as stale:
                return self.refuse_stale(form, stale)
            messages.success(request, f"{self.entity.verbose_name.capitalize()} “{obj}” saved.")
            return redirect(obj)
        messages.error(request, "Please correct the errors below.")
        return self.render_to_response(self.get_context_data(form=form, object=self.object), status=400)

    def refuse_stale(self, form, stale):
        """Someone saved the record since this form was opened: nothing was written. The form
        comes back with the user's values and the current version, beside what changed, so
        "Apply my changes again" saves them knowingly."""
        messages.error(self.request, str(stale))
        if stale.current is None:
            return redirect(self.url("list"))
        self.object = self.queryset.filter(pk=stale.pk).first()
        if self.object is None:  # moved out of his sight meanwhile
            raise Http404("No such record.")
        changes = versions.changes_since(self.object, stale.opened, form, self.request.user)
        again = self.form(versions.resubmit_data(form, stale.current))
        again.is_valid()  # its field errors, if the record now rejects his values, show at once
        return self.render_to_response(self.get_context_data(form=again, object=self.object, conflict=changes,
                                                             stale=stale), status=409)


class DeleteView(EntityMixin, TemplateView):
    template_name = "crm/confirm_delete.html"
    action = "delete"

    def targets(self):
        if self.object is not None:
            return self.entity.model._default_manager.filter(pk=self.object.pk)
        if not self.request.POST.getlist("pk") and not self.request.GET.getlist("pk"):
            raise PermissionDenied("Select the records to delete first.")
        return self.selected("delete")

    def get(self, request, *args, **kwargs):
        targets = self.targets()
        return self.render_to_response(self.get_context_data(targets=targets[:20], count=targets.count()))

    def post(self, request, *args, **kwargs):
        targets = self.targets()
        if "confirm" not in request.POST:
            return self.render_to_response(self.get_context_data(targets=targets[:20], count=targets.count()))
        count, refusal = services.delete_records(targets, request.user, self.entity)
        if refusal:
            messages.error(request, self.entity.protected_message or refusal)
            return redirect(self.object if self.object is not None else self.url("list"))
        noun = self.entity.verbose_name if count == 1 else self.entity.verbose_name_plural
        messages.success(request, f"Deleted {count} {noun}.")
        return redirect(self.url("list"))


class AssignView(EntityMixin, TemplateView):
    template_name = "crm/assign.html"
    action = "assign"

    def check_permission(self):
        self.targets = self.selected("assign")

    def assign_form(self, data=None):
        return AssignForm(data, user=self.request.user, model=self.entity.model)

    def render_page(self, form):
        return self.render_to_response(self.get_context_data(form=form, targets=self.targets[:20],
                                                             count=self.targets.count()))

    def get(self, request, *args, **kwargs):
        return self.render_page(self.assign_form())

    def post(self, request, *args, **kwargs):
        form = self.assign_form(request.POST if "owner" in request.POST else None)
        if form.is_bound and form.is_valid():
            n = services.assign_records(self.targets, form.cleaned_data["owner"], form.cleaned_data["business_unit"],
                                        request.user)
            messages.success(request, f"Assigned {n} record{'s' if n != 1 else ''} to {form.cleaned_data['owner']}.")
            if len(self.selected_pks) == 1:
                return redirect(self.targets.get())
            return redirect(self.url("list"))
        return self.render_page(form)


class ShareView(EntityMixin, TemplateView):
    template_name = "crm/share.html"
    action = "share"

    def get(self, request, *args, **kwargs):
        return self.render_page(ShareForm())

    def render_page(self, form):
        return self.render_to_response(self.get_context_data(
            form=form, object=self.object, shares=services.shares_of(self.object)))

    def post(self, request, *args, **kwargs):
        from django.contrib.auth import get_user_model

        from .models import BusinessUnit

        if "unshare_user" in request.POST or "unshare_unit" in request.POST:
            if "unshare_user" in request.POST:
                ids, model = parse_ids(request.POST.getlist("unshare_user")), get_user_model()
            else:
                ids, model = parse_ids(request.POST.getlist("unshare_unit")), BusinessUnit
            target = model._default_manager.filter(pk__in=ids[:1]).first()
            if target is not None:
                services.unshare_record(self.object, request.user, target)
                messages.success(request, f"No longer shared with {target}.")
            return redirect(self.url("share", self.object.pk))
        form = ShareForm(request.POST)
        if not form.is_valid():
            return self.render_page(form)
        services.share_record(self.object, request.user, form.cleaned_data["target"], form.cleaned_data["level"])
        messages.success(request, f"Shared with {form.cleaned_data['target']}.")
        return redirect(self.url("share", self.object.pk))


class AutocompleteView(EntityMixin, View):
    """<option>s for an autocomplete select: the records still chosen, then up to 20
    matches of `q`, all among the records the user may view."""

    limit = 20

    def get(self, request, *args, **kwargs):
        from django.utils.html import format_html, format_html_join
        from django.utils.safestring import mark_safe

        records = self.entity.autocomplete_queryset(request, self.queryset)
        chosen_ids = parse_ids(request.GET.getlist(request.GET.get("field", "")))
        chosen = list(records.filter(pk__in=chosen_ids)) if chosen_ids else []
        q = request.GET.get("q", "").strip()
        found = []
        if q:
            matches = self.entity.search(records, q)
            found = list(matches.exclude(pk__in=[o.pk for o in chosen]).order_by("pk")[: self.limit])
        options = mark_safe("" if request.GET.get("multiple") == "1" else '<option value="">---------</option>')
        options += format_html_join("", '<option value="{}" selected>{}</option>', ((o.pk, o) for o in chosen))
        options += format_html_join("", '<option value="{}">{}</option>', ((o.pk, o) for o in found))
        if q and not found:
            options += format_html('<option value="" disabled>No match for “{}”</option>', q)
        return HttpResponse(options)


class ExportView(EntityMixin, View):
    """The grid's filtered, sorted set (its query string) as a file: `?format=csv` (the
    default) streamed, `?format=xlsx` written to a temporary file, then sent. crm.exports
    writes both, the same way a background job does."""

    def export_format(self):
        return self.request.GET.get("format") or "csv"

    def export_count(self, limit=None):
        """Rows the export would write (counting stops after `limit` + 1 when given)."""
        from . import exports

        return exports.export_count(self.entity, self.request.GET, self.request.user, limit=limit)

    def get(self, request, *args, **kwargs):
        from . import exports

        fmt = self.export_format()
        if fmt not in exports.FORMATS:
            return HttpResponse(f"Unknown export format '{fmt}': use format=csv or format=xlsx.", status=400,
                                content_type="text/plain; charset=utf-8")
        limit = settings.CRM_EXPORT_JOB_ROWS
        if self.export_count(limit=limit) > limit:  # too long for one request: a job writes the file
            return redirect(jobs.start_export(self.entity, request.user, request.GET, fmt))
        return self.download(fmt)

    def download(self, fmt):
        import tempfile

        from django.http import FileResponse

        from . import exports

        name = f"{self.entity.namespace}.{fmt}"
        if fmt == "csv":
            chunks = exports.csv_stream(self.entity, self.request.GET, self.request.user)
            response = StreamingHttpResponse(chunks, content_type=exports.CONTENT_TYPES[fmt])
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        # A workbook is a zip file, written whole before it can be sent; on disk, not in memory.
        out = tempfile.TemporaryFile()
        try:
            exports.write_export(self.entity, self.request.GET, self.request.user, fmt, out)
        except BaseException:
            out.close()
            raise
        out.seek(0)
        return FileResponse(out, as_attachment=True, filename=name, content_type=exports.CONTENT_TYPES[fmt])


class ImportMixin(EntityMixin):
    def check_permission(self):
        if not self.entity.can_import(self.request.user):
            raise PermissionDenied("You may not import this kind of record.")


class ImportTemplateView(ImportMixin, View):
    def get(self, request, *args, **kwargs):
        resource = self.entity.resource_class(user=request.user)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{self.entity.namespace}-template.csv"'
        response.write("\ufeff")
        csv.writer(response).writerow(resource.headers())
        return response


class ImportView(ImportMixin, TemplateView):
    """Upload: the file goes to Django's storage (shared by web servers and workers) and
    its validation runs as a job; the job page shows the preview, starts the import and
    offers Undo (crm.jobs)."""

    template_name = "crm/import.html"

    def get_context_data(self, **kwargs):
        recent = jobs.jobs_for(self.request.user).filter(user=self.request.user, kind=Job.Kind.IMPORT,
                                                          entity=self.entity.namespace)[:5]
        resource = self.entity.resource_class(user=self.request.user)
        key = " + ".join(resource.column_of(name) for name in getattr(resource, "natural_key", ()))
        return super().get_context_data(recent_jobs=recent, natural_key=key, **kwargs)

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=ImportForm()))

    def post(self, request, *args, **kwargs):
        form = ImportForm(request.POST, request.FILES)
        skipped = getattr(request, "upload_too_large", None)  # crm.uploads dropped it unread
        if skipped is not None:
            form.is_valid()
            form.errors["file"] = form.error_class([services.too_large_message(skipped)
                                                    + " Split it into smaller files."])
        elif form.is_valid() and form.cleaned_data["file"].size > settings.CRM_IMPORT_MAX_BYTES:
            form.add_error("file", services.too_large_message(form.cleaned_data["file"].size)
                           + " Split it into smaller files.")
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        services.forget_abandoned_uploads()  # the admin import's files nobody confirmed
        job = jobs.start_import(self.entity, request.user, form.cleaned_data["file"], form.cleaned_data["mode"])
        return redirect(job)


# -- pages that are not one entity's ---------------------------------------------------------

class HomeView(LoginRequiredMixin, TemplateView):
    template_name = "crm/home.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        cards = []
        for entity in ENTITIES:
            if entity.in_navigation and not entity.administration and entity.may_view(self.request.user):
                total, estimated = count(entity.restricted(self.request.user))
                cards.append({"entity": entity, "count": total, "estimated": estimated})
        ctx["cards"] = cards
        return ctx


class SearchView(LoginRequiredMixin, TemplateView):
    """Global search over every entity, each restricted to what the user may see."""

    template_name = "crm/search.html"
    per_type = 20

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        q = self.request.GET.get("q", "").strip()
        groups = []
        if q:
            for entity in ENTITIES:
                if not entity.searchable or entity.administration:
                    continue
                found = entity.search(entity.restricted(self.request.user), q)
                found = list(found.order_by("-pk")[: self.per_type + 1])
                if found:
                    groups.append({"entity": entity, "results": found[: self.per_type], "more": len(found) > self.per_type})
        ctx.update(q=q, groups=groups, total=sum(len(g["results"]) for g in groups))
        return ctx


# -- administration: roles and users (the Administration menu) ----------------------------------

class RoleEntity(Entity):
    model = Role

    namespace = "roles"
    detail_template = "crm/role_detail.html"
    form_template = "crm/role_form.html"
    icon = "bi-shield-lock"
    in_navigation = searchable = in_role_matrix = importable = False
    administration = True
    protected_message = ("The seeded roles (Administrator, Manager, Sales Representative) cannot be deleted; "
                         "change their levels instead.")

    form_class = RoleForm
    table_class = RoleTable
    filterset_class = RoleFilter
    resource_class = RoleResource

    @classmethod
    def queryset(cls):
        from django.db.models import Count

        return super().queryset().annotate(holder_count=Count("users"))

    @classmethod
    def save(cls, form, user):
        role = form.save(commit=False)
        return services.save_role(role, form.cleaned_levels(), user)

    @classmethod
    def detail_context(cls, request, obj):
        from .forms import matrix_entities
        from .models import ACTION_LABELS, ACTIONS, Level

        levels = obj.levels()
        labels = dict(Level.choices)
        rows = [(e, [labels[levels.get((e.model._meta.label_lower, a), 0)]
                     if e.owned or a not in ("assign", "share") else None for a in ACTIONS])
                for e in matrix_entities()]
        return {"matrix": rows, "action_labels": [ACTION_LABELS[a] for a in ACTIONS],
                "holders": obj.users.order_by("username")[:100], "holder_count": obj.users.count()}


class UserEntity(Entity):
    model = User

    namespace = "users"
    detail_template = "crm/user_detail.html"
    list_select_related = ("primary_unit",)
    icon = "bi-people"
    in_navigation = searchable = in_role_matrix = importable = False
    administration = True
    extra_mass_actions = (("users:deactivate", "Deactivate", "bi-person-slash"),)
    protected_message = ("This user still owns or created records and cannot be deleted. "
                         "Deactivate him instead: he can no longer log in and his records stay.")

    form_class = UserForm
    table_class = UserTable
    filterset_class = UserFilter
    resource_class = UserResource

    @classmethod
    def queryset(cls):
        return super().queryset().prefetch_related("roles", "business_units")

    @classmethod
    def save(cls, form, user):
        return services.save_user(form, user)

    @classmethod
    def detail_context(cls, request, obj):
        return {"roles": list(obj.roles.all()), "units": list(obj.business_units.all())}


class DeactivateUsersView(EntityMixin, TemplateView):
    """Deactivate the users selected in the grid: they can no longer log in; what they own stays."""

    entity = UserEntity
    template_name = "crm/deactivate.html"
    action = "change"

    def post(self, request, *args, **kwargs):
        users = self.selected("change").exclude(pk=request.user.pk)
        if "confirm" not in request.POST:
            return self.render_to_response(self.get_context_data(targets=users[:20], count=users.count()))
        count = services.deactivate_users(users, request.user)
        messages.success(request, f"Deactivated {count} user{'s' if count != 1 else ''}.")
        return redirect("users:list")


# -- background jobs: /jobs/ ----------------------------------------------------------------------

class JobMixin(LoginRequiredMixin):
    """A job is its user's: anyone else gets a 404 (administrators see every job but act on none)."""

    def get_job(self):
        job = jobs.jobs_for(self.request.user).filter(pk=self.kwargs["pk"]).first()
        if job is None:
            raise Http404("No such job.")
        jobs.fail_stale([job])
        return job


class JobListView(LoginRequiredMixin, TemplateView):
    template_name = "crm/job_list.html"
    per_page = 25

    def get_context_data(self, **kwargs):
        from django.core.paginator import Paginator

        queryset = jobs.jobs_for(self.request.user)
        page = Paginator(queryset, self.per_page).get_page(self.request.GET.get("page"))
        jobs.fail_stale(page.object_list)
        return super().get_context_data(page=page, all_users=access(self.request.user).administers, **kwargs)


class JobView(JobMixin, TemplateView):
    """The job page; its status block re-renders itself every second while the job runs."""

    template_name = "crm/job_detail.html"

    def get_template_names(self):
        return ["crm/_job.html"] if self.request.htmx else [self.template_name]

    def get_context_data(self, **kwargs):
        from .forms import ImportModeForm

        job = self.get_job()
        ctx = super().get_context_data(job=job, **kwargs)
        entity = jobs.entity_of(job)
        ctx.update(entity=entity, progress=jobs.read_progress(job) if job.running else None,
                   mine=job.user_id == self.request.user.pk, mode_form=ImportModeForm(initial={"mode": job.mode}))
        if job.kind == Job.Kind.IMPORT and job.report.get("unmatched"):
            resource = entity.resource_class(user=self.request.user)
            matched = set(job.report.get("columns", {}).values())
            ctx["mappable"] = [h for h in resource.headers() if h not in matched]
        return ctx


class JobActionView(JobMixin, View):
    """POST-only steps of a job: start the validated import, validate again with mapped
    columns, undo a finished import."""

    def post(self, request, *args, **kwargs):
        from .forms import IMPORT_MODES

        job = self.get_job()
        action = kwargs["action"]
        mode = request.POST.get("mode") if request.POST.get("mode") in dict(IMPORT_MODES) else None
        try:
            if action == "confirm":
                jobs.confirm_import(job, request.user, mode)
            elif action == "undo":
                jobs.request_undo(job, request.user)
            elif action == "remap":
                mapping = {header: request.POST.get(f"map-{i}", "") for i, header in
                           enumerate(job.report.get("unmatched", []))}
                jobs.revalidate(job, request.user, mapping, mode)
            else:
                raise Http404("No such step.")
        except jobs.JobStateError as e:
            messages.warning(request, str(e))
        return redirect(job)


class JobFileView(JobMixin, View):
    """The finished export, or an import's error report."""

    def get(self, request, *args, **kwargs):
        from django.core.files.storage import default_storage
        from django.http import FileResponse

        job = self.get_job()
        if not job.result or not default_storage.exists(job.result):
            raise Http404("This job has no file (any more).")
        if job.kind == Job.Kind.EXPORT:
            name = job.filename
        else:
            name = f"{job.filename.rsplit('.', 1)[0] or 'import'}-errors.csv"
        return FileResponse(default_storage.open(job.result, "rb"), as_attachment=True, filename=name)


# -- saved views of the grids ------------------------------------------------------------------

def grid_entity(namespace, user):
    """The Entity whose grid is `namespace`, when the user may open that grid; else 404."""
    for entity in ENTITIES:
        if entity.namespace == namespace:
            if access(user).administers if entity.administration else entity.may_view(user):
                return entity
            break
    raise Http404("No such grid.")


def grid_url(view):
    """The grid with the saved view applied (the plain grid for a view of nothing)."""
    return f"{reverse(f'{view.grid}:list')}?{view.query or GridView.PLAIN}"


class SavedViewForm(BootstrapMixin, forms.ModelForm):
    share = forms.BooleanField(required=False)

    class Meta:
        model = SavedView
        fields = ["name", "is_default"]
        labels = {"is_default": "Make it my default for this grid"}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        unit = user.primary_unit
        if unit is None:  # nobody to share with
            del self.fields["share"]
        else:
            self.fields["share"].label = f"Share with {unit}"
            self.fields["share"].help_text = f"Members of {unit} see and apply it; only you change it."
            self.fields["share"].initial = self.instance.shared_with_id is not None
        self.fields["name"].widget.attrs.setdefault("placeholder", "e.g. Key accounts in Germany")


class SavedViewMixin(LoginRequiredMixin):
    template_name = "crm/saved_view_form.html"
    owner_only = True

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if "pk" in kwargs:
            # Another user's view that is not shared with one of my units does not exist for me.
            self.saved = services.visible_saved_views(request.user).filter(pk=kwargs["pk"]).first()
            if self.saved is None:
                raise Http404("No such saved view.")
            if self.owner_only and self.saved.owner_id != request.user.pk:
                raise PermissionDenied("Only its owner changes a saved view.")
            self.entity = grid_entity(self.saved.grid, request.user)
        return super().dispatch(request, *args, **kwargs)

    def render_form(self, form, status=200):
        return self.render_to_response(self.get_context_data(form=form, saved=form.instance, entity=self.entity,
                                                             grid_url=grid_url(form.instance)), status=status)

    def save(self, form):
        saved = services.save_view(form.save(commit=False), self.request.user, share=form.cleaned_data.get("share"))
        messages.success(self.request, f"Saved the view “{saved.name}”.")
        return redirect(grid_url(saved))


class SavedViewCreateView(SavedViewMixin, TemplateView):
    """Save the grid's current state (posted as `query` by the grid's Views menu) under a name."""

    def post(self, request, *args, **kwargs):
        from django.http import QueryDict

        self.entity = grid_entity(request.POST.get("grid", ""), request.user)
        query = services.grid_query(QueryDict(request.POST.get("query", "")))
        form = SavedViewForm(request.POST, user=request.user,
                             instance=SavedView(owner=request.user, grid=self.entity.namespace, query=query))
        if not form.is_valid():
            return self.render_form(form, status=400)
        return self.save(form)


class SavedViewEditView(SavedViewMixin, TemplateView):
    """Rename a view of mine, make it my default or not, share it or not."""

    def get(self, request, *args, **kwargs):
        return self.render_form(SavedViewForm(instance=self.saved, user=request.user))

    def post(self, request, *args, **kwargs):
        form = SavedViewForm(request.POST, instance=self.saved, user=request.user)
        if not form.is_valid():
            return self.render_form(form, status=400)
        return self.save(form)


class SavedViewApplyView(SavedViewMixin, View):
    """A saved view's own address (mine or shared with my units): the grid with it applied."""

    owner_only = False

    def get(self, request, *args, **kwargs):
        return redirect(grid_url(self.saved))


class SavedViewDefaultView(SavedViewMixin, View):
    """POST: make the view my default for its grid, or stop (`default=0`)."""

    def post(self, request, *args, **kwargs):
        self.saved.is_default = request.POST.get("default", "1") != "0"
        services.save_view(self.saved, request.user)
        messages.success(request, f"“{self.saved.name}” is {'now' if self.saved.is_default else 'no longer'} "
                                  f"your default for {self.entity.verbose_name_plural}.")
        return redirect(grid_url(self.saved))


class SavedViewDeleteView(SavedViewMixin, View):
    def post(self, request, *args, **kwargs):
        services.delete_view(self.saved, request.user)
        messages.success(request, f"Deleted the view “{self.saved.name}”.")
        return redirect(f"{reverse(f'{self.entity.namespace}:list')}?{GridView.PLAIN}")


class OwnerAutocompleteView(LoginRequiredMixin, View):
    """<option>s for a grid's owner filter (an autocomplete: an organization has too many
    users for one select): the users that filter may offer (crm.filters.visible_owners)
    still chosen, then up to 20 whose name, username or email holds every word of `q`."""

    limit = 20

    def get(self, request, grid):
        from django.db.models import Q
        from django.utils.html import format_html, format_html_join
        from django.utils.safestring import mark_safe

        from .filters import search_terms, visible_owners

        users = visible_owners(request.user, grid_entity(grid, request.user).model)
        chosen_ids = parse_ids(request.GET.getlist(request.GET.get("field", "")))
        chosen = list(users.filter(pk__in=chosen_ids)) if chosen_ids else []
        q = request.GET.get("q", "").strip()
        found = []
        if q:
            cond = Q()
            for term in search_terms(q):
                cond &= (Q(username__ilike=term) | Q(first_name__ilike=term) | Q(last_name__ilike=term)
                         | Q(email__ilike=term))
            found = list(users.filter(cond).exclude(pk__in=[u.pk for u in chosen]).order_by("username")[: self.limit])
        options = mark_safe("" if request.GET.get("multiple") == "1" else '<option value="">---------</option>')
        options += format_html_join("", '<option value="{}" selected>{}</option>', ((u.pk, u) for u in chosen))
        options += format_html_join("", '<option value="{}">{}</option>', ((u.pk, u) for u in found))
        if q and not found:
            options += format_html('<option value="" disabled>No match for “{}”</option>', q)
        return HttpResponse(options)
