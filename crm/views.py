"""The generic grid, record, form, import and export views, written once.

An app declares an `Entity` (model, form, table, filterset, resource) in its views.py and
includes `Entity.urls()`; every path below goes through `restrict()` from crm.access.
"""
import csv
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.functional import classproperty
from django.views import View
from django.views.generic import TemplateView
from django_filters.views import FilterView
from django_tables2 import RequestConfig, SingleTableMixin

from . import services
from .access import access, get_or_404, is_owned, restrict
from .forms import AssignForm, ImportForm, ShareForm

ENTITIES = []  # every declared Entity, for the navigation and global search
PAGE_SIZES = (25, 50, 100, 250)


class Entity:
    """One entity's pieces. Subclass it in the app's views.py and include `urls()`."""

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
    search_fields = ("name",)        # global search and the grid's quick search
    extra_mass_actions = ()          # (url name, label, icon) posted the selected pks

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
    def queryset(cls):
        queryset = cls.model._default_manager.all()
        return queryset.select_related(*cls.list_select_related) if cls.list_select_related else queryset

    @classmethod
    def can_add(cls, user):
        opts = cls.model._meta
        return user.has_perm(f"{opts.app_label}.add_{opts.model_name}")

    @classmethod
    def detail_context(cls, request, obj):
        """Hook: extra sections of the record page."""
        return {}

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
            path("import/", ImportView.as_view(**kw), name="import"),
            path("import/template.csv", ImportTemplateView.as_view(**kw), name="import_template"),
            path("autocomplete/", AutocompleteView.as_view(**kw), name="autocomplete"),
        ]
        if cls.owned:
            patterns += [
                path("assign/", AssignView.as_view(**kw), name="assign"),
                path("<int:pk>/share/", ShareView.as_view(**kw), name="share"),
            ]
        return patterns, cls.namespace


class EntityMixin(LoginRequiredMixin):
    entity = None

    def records(self, action="view"):
        return restrict(self.entity.queryset(), self.request.user, action)

    def get_object(self, action="view"):
        return get_or_404(self.entity.queryset(), self.request.user, action, pk=self.kwargs["pk"])

    def url(self, name, *args):
        return reverse(f"{self.entity.namespace}:{name}", args=args)

    def selected(self, action):
        """The records picked in the grid (pk=... repeated), restricted to <action>."""
        pks = [int(pk) for pk in self.request.POST.getlist("pk") + self.request.GET.getlist("pk") if pk.isdigit()]
        self.selected_pks = sorted(set(pks))
        queryset = self.entity.model._default_manager.filter(pk__in=pks)
        if restrict(queryset, self.request.user, action).count() != len(set(pks)):
            if restrict(queryset, self.request.user, "view").count() != len(set(pks)):
                from django.http import Http404

                raise Http404("No such record.")
            raise PermissionDenied(f"You may not {action} some of the selected records.")
        return queryset

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs) if hasattr(super(), "get_context_data") else kwargs
        ctx.update(entity=self.entity, ns=self.entity.namespace, selected_pks=getattr(self, "selected_pks", []),
                   can_add=self.entity.can_add(self.request.user))
        return ctx


class GridView(EntityMixin, SingleTableMixin, FilterView):
    template_name = "crm/list.html"

    def get_queryset(self):
        return self.records("view")

    def get_filterset_class(self):
        return self.entity.filterset_class

    def get_table_class(self):
        return self.entity.table_class

    def get_table_pagination(self, table):
        size = self.request.GET.get("per_page", "")
        return {"per_page": int(size) if size.isdigit() and int(size) in PAGE_SIZES else PAGE_SIZES[0]}

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        params = self.request.GET.copy()
        params.pop("page", None)
        active = [k for k, v in self.request.GET.lists() if k not in ("page", "per_page", "sort", "q") and any(v)]
        ctx.update(page_sizes=PAGE_SIZES, query=params.urlencode(), active_filters=len(active))
        return ctx


class RecordView(EntityMixin, TemplateView):
    def get_template_names(self):
        return [self.entity.detail_template]

    def get_context_data(self, **kwargs):
        obj = self.get_object("view")
        acc = access(self.request.user)
        ctx = super().get_context_data(object=obj, **kwargs)
        ctx.update(
            can_change=acc.can("change", obj),
            can_delete=acc.can("delete", obj),
            can_assign=self.entity.owned and acc.can("assign", obj),
            can_share=self.entity.owned and acc.can("share", obj),
            history=history_of(obj, user=self.request.user),
        )
        ctx.update(self.entity.detail_context(self.request, obj))
        return ctx


def history_of(obj, limit=50, user=None):
    """Newest-first history entries with the fields each one changed.

    History keeps related records as ids and choices as codes; both are shown by name,
    related records only as far as `user` may see them (else as #id)."""
    if not hasattr(obj, "history"):
        return []
    records = list(obj.history.select_related("history_user").order_by("-history_date", "-history_id")[: limit + 1])
    entries, refs = [], []
    for newer, older in zip(records, records[1:] + [None]):
        changes = []
        if older is not None and newer.history_type == "~":
            delta = newer.diff_against(older)
            for change in delta.changes:
                field = obj._meta.get_field(change.field)
                change_row = [field.verbose_name, change.old, change.new]
                if field.many_to_one:
                    refs.append((change_row, field.related_model))
                elif field.choices:
                    labels = dict(field.flatchoices)
                    change_row[1:] = [labels.get(v, v) for v in change_row[1:]]
                changes.append(change_row)
        entries.append({"record": newer, "changes": changes})
    ids = {}
    for change_row, model in refs:
        ids.setdefault(model, set()).update(v for v in change_row[1:] if v is not None)
    names = {}
    for model, pks in ids.items():  # one query per related model
        related = model._default_manager.filter(pk__in=pks)
        if user is not None:
            related = restrict(related, user, "view")
        names[model] = {o.pk: str(o) for o in related}
    for change_row, model in refs:
        change_row[1:] = [None if v is None else names[model].get(v, f"#{v}") for v in change_row[1:]]
    return entries[:limit]


class RecordFormView(EntityMixin, TemplateView):
    def get_template_names(self):
        return [self.entity.form_template]

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.object = self.get_object("change") if "pk" in kwargs else None
        if self.object is None and not self.entity.can_add(request.user):
            raise PermissionDenied("You may not create this kind of record.")
        return super().dispatch(request, *args, **kwargs)

    def form(self, data=None):
        return self.entity.form_class(data, instance=self.object, **self.entity.form_kwargs(self.request))

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=self.form(), object=self.object))

    def post(self, request, *args, **kwargs):
        form = self.form(request.POST)
        if form.is_valid():
            obj = self.entity.save(form, request.user)
            messages.success(request, f"{self.entity.verbose_name.capitalize()} “{obj}” saved.")
            return redirect(self.url("detail", obj.pk))
        messages.error(request, "Please correct the errors below.")
        return self.render_to_response(self.get_context_data(form=form, object=self.object), status=400)


class DeleteView(EntityMixin, TemplateView):
    template_name = "crm/confirm_delete.html"

    def targets(self):
        if "pk" in self.kwargs:
            return self.entity.model._default_manager.filter(pk=self.get_object("delete").pk)
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
        count, refusal = services.delete_records(targets, request.user)
        if refusal:
            messages.error(request, getattr(self.entity, "protected_message", refusal))
            back = self.url("detail", self.kwargs["pk"]) if "pk" in self.kwargs else self.url("list")
            return redirect(back)
        messages.success(request, f"Deleted {count} {self.entity.verbose_name if count == 1 else self.entity.verbose_name_plural}.")
        return redirect(self.url("list"))


class AssignView(EntityMixin, TemplateView):
    template_name = "crm/assign.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            self.targets = self.selected("assign")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        form = AssignForm(user=request.user)
        return self.render_to_response(self.get_context_data(form=form, targets=self.targets[:20], count=self.targets.count()))

    def post(self, request, *args, **kwargs):
        form = AssignForm(request.POST if "owner" in request.POST else None, user=request.user)
        if form.is_bound and form.is_valid():
            n = services.assign_records(self.targets, form.cleaned_data["owner"], form.cleaned_data["business_unit"], request.user)
            messages.success(request, f"Assigned {n} record{'s' if n != 1 else ''} to {form.cleaned_data['owner']}.")
            if self.targets.count() == 1:
                return redirect(self.url("detail", self.targets.get().pk))
            return redirect(self.url("list"))
        return self.render_to_response(self.get_context_data(form=form, targets=self.targets[:20], count=self.targets.count()))


class ShareView(EntityMixin, TemplateView):
    template_name = "crm/share.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            self.object = self.get_object("share")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        return self.render_page(ShareForm())

    def render_page(self, form):
        return self.render_to_response(self.get_context_data(
            form=form, object=self.object, shares=services.shares_of(self.object)))

    def post(self, request, *args, **kwargs):
        from django.contrib.auth import get_user_model

        from .models import BusinessUnit

        if "unshare_user" in request.POST or "unshare_unit" in request.POST:
            if request.POST.get("unshare_user"):
                target = get_user_model().objects.filter(pk=request.POST["unshare_user"]).first()
            else:
                target = BusinessUnit.objects.filter(pk=request.POST.get("unshare_unit")).first()
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

        from .filters import CRMFilterSet

        records = self.records("view")
        chosen_ids = [v for v in request.GET.getlist(request.GET.get("field", "")) if v.isdigit()]
        chosen = list(records.filter(pk__in=chosen_ids)) if chosen_ids else []
        q = request.GET.get("q", "").strip()
        found = []
        if q:
            if hasattr(self.entity, "search"):
                matches = self.entity.search(records, q)
            else:
                finder = CRMFilterSet(queryset=records)
                finder.search_fields = self.entity.search_fields
                matches = finder.quick_search(records, "q", q)
            found = list(matches.exclude(pk__in=[o.pk for o in chosen]).order_by("pk")[: self.limit])
        options = mark_safe("" if request.GET.get("multiple") == "1" else '<option value="">---------</option>')
        options += format_html_join("", '<option value="{}" selected>{}</option>', ((o.pk, o) for o in chosen))
        options += format_html_join("", '<option value="{}">{}</option>', ((o.pk, o) for o in found))
        if q and not found:
            options += format_html('<option value="" disabled>No match for “{}”</option>', q)
        return HttpResponse(options)


class ExportView(EntityMixin, View):
    """The grid's filtered, sorted set as CSV, streamed row by row."""

    def get(self, request, *args, **kwargs):
        filterset = self.entity.filterset_class(request.GET, queryset=self.records("view"), request=request)
        queryset = filterset.qs if filterset.is_valid() else filterset.queryset.none()
        table = self.entity.table_class(queryset)
        RequestConfig(request, paginate=False).configure(table)
        ordered = table.data.data
        if not ordered.query.order_by:
            ordered = ordered.order_by("pk")
        resource = self.entity.resource_class(user=request.user)
        rows = self.entity.resource_class.export_queryset(ordered)

        class Echo:
            def write(self, value):
                return value

        writer = csv.writer(Echo())

        def stream():
            yield "\ufeff" + writer.writerow(resource.headers())
            for obj in rows.iterator(chunk_size=2000):
                yield writer.writerow(resource.export_row(obj))

        name = f"{self.entity.namespace}.csv"
        response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class ImportTemplateView(EntityMixin, View):
    def get(self, request, *args, **kwargs):
        resource = self.entity.resource_class(user=request.user)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{self.entity.namespace}-template.csv"'
        response.write("\ufeff")
        csv.writer(response).writerow(resource.headers())
        return response


class ImportView(EntityMixin, TemplateView):
    """Upload -> validation preview (nothing written) -> confirm (all rows or none)."""

    template_name = "crm/import.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not self.entity.can_add(request.user):
            raise PermissionDenied("You may not import this kind of record.")
        return super().dispatch(request, *args, **kwargs)

    def upload_dir(self):
        folder = Path(settings.MEDIA_ROOT) / "imports"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def forget_abandoned(self, max_age=24 * 3600):
        """Validated files nobody confirmed within a day are deleted at the next upload."""
        import time

        for path in self.upload_dir().glob("*.csv"):
            try:
                if time.time() - path.stat().st_mtime > max_age:
                    path.unlink()
            except FileNotFoundError:
                pass  # another request removed it first

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=ImportForm()))

    def post(self, request, *args, **kwargs):
        token = request.POST.get("token", "")
        pending = request.session.get("crm_imports", {})
        if token:
            name = pending.get(token)
            if name is None or not (self.upload_dir() / name).exists():
                messages.error(request, "This import has expired; upload the file again.")
                return redirect(self.url("import"))
            data = (self.upload_dir() / name).read_bytes()
            report = services.import_csv(self.entity.resource_class, data, request.user, dry_run=False)
            if report.written:
                (self.upload_dir() / name).unlink(missing_ok=True)
                pending.pop(token, None)
                request.session["crm_imports"] = pending
                messages.success(request, f"Imported: {report.new} created, {report.update} updated, {report.skip} unchanged.")
                return redirect(self.url("list"))
            return self.render_to_response(self.get_context_data(form=ImportForm(), report=report), status=400)

        form = ImportForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        upload = form.cleaned_data["file"]
        if upload.size > settings.CRM_IMPORT_MAX_BYTES:
            form.add_error("file", services.too_large_message(upload.size) + " Split it into smaller files.")
            return self.render_to_response(self.get_context_data(form=form), status=400)
        data = upload.read()
        self.forget_abandoned()
        report = services.import_csv(self.entity.resource_class, data, request.user, dry_run=True)
        ctx = {"form": ImportForm(), "report": report, "filename": upload.name}
        if report.ok:
            token = uuid.uuid4().hex
            (self.upload_dir() / f"{token}.csv").write_bytes(data)
            pending[token] = f"{token}.csv"
            request.session["crm_imports"] = pending
            ctx["token"] = token
        return self.render_to_response(self.get_context_data(**ctx), status=200 if report.ok else 400)


# -- pages that are not one entity's ---------------------------------------------------------

class HomeView(LoginRequiredMixin, TemplateView):
    template_name = "crm/home.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        cards = []
        for entity in ENTITIES:
            if getattr(entity, "in_navigation", True):
                cards.append({"entity": entity, "count": restrict(entity.model._default_manager.all(), self.request.user).count()})
        ctx["cards"] = cards
        return ctx


class SearchView(LoginRequiredMixin, TemplateView):
    """Global search over every entity, each restricted to what the user may see."""

    template_name = "crm/search.html"
    per_type = 20

    def get_context_data(self, **kwargs):
        from .filters import CRMFilterSet

        ctx = super().get_context_data(**kwargs)
        q = self.request.GET.get("q", "").strip()
        groups = []
        if q:
            for entity in ENTITIES:
                if not getattr(entity, "searchable", True):
                    continue
                qs = restrict(entity.queryset(), self.request.user, "view")
                finder = CRMFilterSet(queryset=qs)
                finder.search_fields = entity.search_fields
                found = entity.search(qs, q) if hasattr(entity, "search") else finder.quick_search(qs, "q", q)
                found = list(found.order_by("-pk")[: self.per_type + 1])
                if found:
                    groups.append({"entity": entity, "results": found[: self.per_type], "more": len(found) > self.per_type})
        ctx.update(q=q, groups=groups, total=sum(len(g["results"]) for g in groups))
        return ctx
