import json
import math
from functools import partial

import django_tables2 as tables
from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models.expressions import OrderBy
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django_tables2.rows import BoundRows
from django_tables2.utils import signature

from .models import Role, User


def stable_order(queryset):
    """`queryset` ordered as it is, then by the primary key: rows that tie on the sort key
    keep one order, so a record never shows on two pages or on none. The key follows the
    direction of the last sort key (newest first stays newest first among equals)."""
    query = queryset.query
    order = list(query.order_by) or (list(queryset.model._meta.ordering) if query.default_ordering else [])
    last = order[-1] if order else None
    if isinstance(last, str) and last.lstrip("-") in ("pk", "id"):
        return queryset
    descending = (last.startswith("-") if isinstance(last, str) else
                  isinstance(last, OrderBy) and last.descending)
    return queryset.order_by(*order, "-pk" if descending else "pk")


class DateTimeColumn(tables.Column):
    """A date and time in the given format and the current time zone. django-tables2's own
    compiles a template for every cell."""

    def __init__(self, *args, format="Y-m-d H:i", **kwargs):
        self.format = format
        super().__init__(*args, **kwargs)

    def render(self, value):
        from django.utils.formats import date_format
        from django.utils.timezone import template_localtime

        return date_format(template_localtime(value), self.format)


class RowActionsColumn(tables.Column):
    """View, Edit and Delete links of a row. Rendered here rather than by a template per row,
    which would copy the whole page's context 25 to 250 times."""

    def __init__(self, **kwargs):
        kwargs.setdefault("attrs", {"td": {"class": "text-end text-nowrap"}})
        super().__init__(accessor="pk", orderable=False, verbose_name="", **kwargs)

    def render(self, record, table):
        namespace = table.request.resolver_match.namespace
        return format_html(
            '<a class="btn btn-sm btn-link p-0 me-2" href="{}" title="View"><i class="bi bi-eye"></i></a>'
            '<a class="btn btn-sm btn-link p-0 me-2" href="{}" title="Edit"><i class="bi bi-pencil"></i></a>'
            '<a class="btn btn-sm btn-link p-0 text-danger" href="{}" title="Delete"><i class="bi bi-trash"></i></a>',
            record.get_absolute_url(), reverse(f"{namespace}:update", args=[record.pk]),
            reverse(f"{namespace}:delete", args=[record.pk]))


class CRMTable(tables.Table):
    """Grid base: a selection column for mass actions, a linked name and row actions.

    `shown`: the names of the columns to show (the column chooser); the selection column,
    the first column (the link to the record) and the row actions always show, unknown
    names are ignored, and None or no known name shows every column. Every ordering ends
    with the primary key (stable_order)."""

    always_shown = ("select", "actions")

    select = tables.CheckBoxColumn(accessor="pk", attrs={
        "th__input": {"class": "form-check-input", "data-select-all": "1", "aria-label": "Select all"},
        "td__input": {"class": "form-check-input", "name": "pk", "form": "mass-form"},
    }, orderable=False)
    actions = RowActionsColumn()

    class Meta:
        attrs = {"class": "table table-sm table-hover align-middle mb-0"}
        template_name = "crm/_table.html"
        order_by = ("-created_at",)

    def __init__(self, *args, shown=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.data.data = self.stable(self.data.data)
        if shown is not None:
            names = {name for name, _ in self.choosable_columns()}
            if names & set(shown):
                for name in names - set(shown):
                    self.columns.hide(name)

    @property
    def order_by(self):
        return tables.Table.order_by.fget(self)

    @order_by.setter
    def order_by(self, value):
        tables.Table.order_by.fset(self, value)
        self.data.data = self.stable(self.data.data)

    @staticmethod
    def stable(data):
        return stable_order(data) if hasattr(data, "query") else data

    def fixed_columns(self):
        """Columns the chooser cannot hide: selection, the record's link (the first data
        column) and the row actions."""
        names = [name for name in self.sequence if name in self.columns.columns and name not in self.exclude]
        first = next((name for name in names if name not in self.always_shown), None)
        return set(self.always_shown) | ({first} if first else set())

    def choosable_columns(self):
        """(name, header) of the columns a user may hide, in the grid's order."""
        fixed = self.fixed_columns()
        return [(c.name, c.header) for c in self.columns.iterall() if c.name not in fixed]


class OwnedTable(CRMTable):
    owner = tables.Column(accessor="owner__username", verbose_name="Owner", order_by=("owner__username",))
    business_unit = tables.Column(accessor="business_unit__name", verbose_name="Business unit",
                                  order_by=("business_unit__name",))
    created_at = DateTimeColumn(verbose_name="Created", format="Y-m-d H:i")



class RoleTable(CRMTable):
    name = tables.Column(linkify=True)
    administers = tables.BooleanColumn(verbose_name="Administers")
    holders = tables.Column(verbose_name="Users", accessor="holder_count", orderable=True)

    class Meta(CRMTable.Meta):
        model = Role
        fields = ("select", "name", "description", "administers", "holders", "actions")
        order_by = ("name",)


class UserTable(CRMTable):
    username = tables.Column(linkify=True)
    full_name = tables.Column(verbose_name="Name", accessor="last_name", order_by=("last_name", "first_name"))
    primary_unit = tables.Column(verbose_name="Primary unit", accessor="primary_unit__name",
                                 order_by=("primary_unit__name",))
    roles = tables.ManyToManyColumn(verbose_name="Roles", orderable=False)
    is_active = tables.BooleanColumn(verbose_name="Active")
    last_login = DateTimeColumn(verbose_name="Last login", format="Y-m-d H:i")

    class Meta(CRMTable.Meta):
        model = User
        fields = ("select", "username", "full_name", "email", "primary_unit", "roles", "is_active", "last_login",
                  "actions")
        order_by = ("username",)

    def render_full_name(self, record):
        return record.get_full_name() or "—"


def estimated_count(queryset):
    """The planner's row estimate of `queryset` on PostgreSQL (planning only, nothing is
    read), or None elsewhere."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    try:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:  # a condition that matches nothing (e.g. no grants at all)
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


# An estimate this many times the exact-count limit is believed without counting.
TRUSTED_ESTIMATE = 2


def count(queryset):
    """(count, estimated): exact up to CRM_EXACT_COUNT_LIMIT rows; above it, on PostgreSQL,
    the planner's estimate. Counting every row a restricted user may see reads them all;
    a grid shows "about N" instead. The exact count stops after the limit, so deciding costs
    little, and the planner's guess for a table it has not analysed yet never shows; but
    finding the limit's rows of a search that matches a few per cent of a million reads tens
    of thousands of them (150 ms), so an estimate far above the limit is believed at once."""
    limit = settings.CRM_EXACT_COUNT_LIMIT
    estimate = estimated_count(queryset)
    if estimate is not None and estimate > TRUSTED_ESTIMATE * limit:
        return int(float(f"{estimate:.2g}")), True   # "about 8,300", not 8,252
    capped = queryset.order_by()[: limit + 1].count()
    if capped <= limit:
        return capped, False
    if estimate is None:
        return queryset.count(), False
    return max(int(float(f"{estimate:.2g}")), limit + 1), True


class GridPage(Page):
    def end_index(self):
        # Its last row, counted: Django's answers the total on the last page, which is not the
        # last row where page numbers stop at the bound (or where the total is an estimate).
        return self.start_index() + len(self.object_list) - 1 if len(self.object_list) else 0


def max_grid_rows():
    """How deep page numbers reach: pages up to this many rows (CRM_GRID_MAX_ROWS)."""
    return settings.CRM_GRID_MAX_ROWS


class CountingPaginator(Paginator):
    """A grid's paginator: its total is `count()`'s (exact when small, else estimated),
    its pages reach `max_grid_rows()` rows and no further, and a page past the first reads
    the sort key alone before the page's rows.

    Why a bound: an OFFSET makes the database walk every row before it, and nobody pages
    through a million records; past the bound a filter or a sort finds them faster. Within
    it, the walk is cheap because it reads only the ids in the grid's order (no join, no
    column of the table but what the order and the access rule need), then the page's 25
    rows are fetched by id with their joins and prefetches.

    Page numbers are forgiving: junk is page 1, below 1 is page 1, past the last (or past
    the bound) is the last page; `requested` keeps what was asked, for the message."""

    estimated = False
    requested = None

    def __init__(self, object_list, per_page, *args, page_sizes=None, **kwargs):
        # RequestConfig hands over ?per_page= as given: only the grid's sizes are served.
        if page_sizes and per_page not in page_sizes:
            per_page = page_sizes[0]
        super().__init__(object_list, per_page, *args, **kwargs)

    @property
    def queryset(self):
        queryset = getattr(getattr(self.object_list, "data", None), "data", None)
        return queryset if hasattr(queryset, "query") else None

    @cached_property
    def count(self):
        if self.queryset is None:
            return super().count
        total, self.estimated = count(self.queryset)
        return total

    @cached_property
    def total_pages(self):
        """Pages of every row, ignoring the bound."""
        if self.count == 0 and not self.allow_empty_first_page:
            return 0
        return math.ceil(max(1, self.count - self.orphans) / self.per_page)

    @cached_property
    def max_pages(self):
        return max(1, max_grid_rows() // self.per_page)

    @cached_property
    def num_pages(self):
        return min(self.total_pages, self.max_pages)

    @property
    def bounded(self):
        """More rows than the pages reach."""
        return self.total_pages > self.max_pages

    @property
    def max_rows(self):
        return self.max_pages * self.per_page

    def validate_number(self, number):
        self.requested = number
        try:
            number = int(number)
        except (TypeError, ValueError):
            return 1
        return min(max(number, 1), max(self.num_pages, 1))

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        queryset = self.queryset
        if bottom == 0 or queryset is None:
            return self._get_page(self.object_list[bottom:top], number, self)
        ids = list(queryset.values_list("pk", flat=True)[bottom:top])
        if not ids and self.estimated:
            # The estimate promised more rows than there are: count them (fewer than
            # `bottom`, itself within the bound) and show the real last page.
            requested = self.requested
            self.__dict__.update(count=queryset.order_by()[:bottom].count(), estimated=False)
            for name in ("total_pages", "num_pages"):
                self.__dict__.pop(name, None)
            found = self.page(self.num_pages)
            self.requested = requested
            return found
        rows = BoundRows(data=queryset.filter(pk__in=ids), table=self.object_list.table,
                         pinned_data=self.object_list.pinned_data)
        return self._get_page(rows, number, self)

    def _get_page(self, *args, **kwargs):
        return GridPage(*args, **kwargs)

    @property
    def beyond(self):
        """The page asked for lies past the bound (not merely past the end)."""
        try:
            requested = int(self.requested)
        except (TypeError, ValueError):
            return False
        return self.bounded and requested > self.num_pages


# (args, name of the **kwargs catch-all) of the render functions of cells, by function: django-
# tables2 inspects a cell's render function for every cell (inspect.signature, 350 times a page).
_SIGNATURES = {}


def _call_render(row, bound_column, value=None):
    """What django-tables2's BoundRow._call_render does, with the render function's signature
    read once per function."""
    kwargs = row._optional_cell_arguments(bound_column, value)
    render = bound_column.render
    key = getattr(render, "__func__", render)
    wanted = _SIGNATURES.get(key)
    if wanted is None:
        if len(_SIGNATURES) > 1000:  # functions made per table (lambdas) must not pile up
            _SIGNATURES.clear()
        wanted = _SIGNATURES[key] = signature(render)
    args, catch_all = wanted
    if catch_all:
        content = render(**kwargs)
    elif any(arg not in kwargs for arg in args):
        return None
    else:
        content = render(**{name: kwargs[name] for name in args})
    return bound_column.link(content, **kwargs) if bound_column.link else content


def body_rows(table):
    """The `<tr>` rows of the table's page as one safe string: the markup of django-tables2's
    tbody template (row attributes, each column's td attributes, the cell escaped), built in
    Python. The template spent a third of a grid page looping over 350 cells."""
    from django.utils.html import conditional_escape
    from django.utils.safestring import mark_safe

    columns = list(table.columns)
    tds = None
    out = []
    for row in table.paginated_rows:
        cells = []
        for column in columns:
            column.current_record = row.record
            column.current_value = cell = row._get_and_render_with(column, render_func=partial(_call_render, row),
                                                                   default=column.default)
            cells.append(conditional_escape(cell))
        if tds is None:  # the grids' td attributes are constants (no callables)
            tds = [f"<td {column.attrs['td'].as_html()}>" for column in columns]
        out.append(f"<tr {row.attrs.as_html()}>" + "".join(f"{td}{cell}</td>" for td, cell in zip(tds, cells))
                   + "</tr>")
    return mark_safe("".join(out))
