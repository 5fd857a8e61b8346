"""Exports at database speed: a grid's rows as CSV or XLSX, in constant memory.

`write_export(entity, params, user, fmt, out)` writes exactly the grid's filtered, sorted
set (`export_queryset`: FilterSet, table ordering, a primary-key tie-breaker) restricted to
what the user may view, with the Resource's headers and columns. A background job calls it
for large exports; ExportView streams it for direct downloads.

A Resource's export fields compile into one query of values (`compile_columns`): each field's
ORM expression comes from the resource (`export_columns()`: what a dehydrate method or the
exporting user decides), from its widget (`widget.export_column(path, model_field)`), or is
derived here for import-export's and crm's own widgets. The file is then written one of
three ways, fastest first:

    copy    (PostgreSQL) the database renders every cell as the widget would, neutralises
            formulas and streams the CSV: COPY (SELECT ...) TO STDOUT; Python relays bytes.
            For XLSX the database renders each row's worksheet XML the same way (numbers
            and dates stay numbers and dates) and Python deflates it into the workbook.
    values  the same query's native values rendered per column by small functions: other
            databases and a column that only Python renders (channels' Entities).
    python  the Resource's export_row over model instances, for a resource with a column
            that cannot be compiled (none of the project's today).

All three give the same bytes; tests/crm/test_exports.py compares them for every resource.
"""
import csv
import io
import re
from contextlib import nullcontext

from django.core.exceptions import EmptyResultSet, FieldDoesNotExist
from django.db import connections, transaction
from django.db.models import Case, CharField, F, Func, OuterRef, Subquery, TextField, Value, When
from django.db.models import fields as model_fields
from django.http import HttpRequest, QueryDict
from django.utils import timezone
from django_tables2 import RequestConfig
from import_export import widgets
from import_export.widgets import format_datetime

from . import xlsx
from .resources import FORMULA_PREFIXES, CountryWidget, NameWidget, neutralise

FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CHUNK_ROWS = 2000       # rows per database fetch and per write
PROGRESS_EVERY = 5000   # rows between progress(done, total) calls
XLSX_MAX_ROWS = 1_048_575  # a worksheet's rows below the header; more continue on the next sheet


# -- SQL building blocks ------------------------------------------------------------------------

def literal(text):
    """`text` as an SQL string literal (for the few constants written into the SQL itself)."""
    if "%" in text:  # the statement may go through client-side parameter merging
        raise ValueError("A literal written into the SQL cannot contain '%'.")
    return "'" + text.replace("'", "''") + "'"


# What Python's str.strip() removes: every character str.isspace() accepts (all below U+3001).
WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())


class Strip(Func):
    """str.strip() in SQL: leading and trailing whitespace as Python sees it, not only spaces."""

    output_field = TextField()

    def __init__(self, expression):
        super().__init__(expression, Value(WHITESPACE))

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="TRIM", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="BTRIM", **extra)


class Folded(Func):
    """A text as Python's str.lower() orders it: lower case, then compared by code point
    (the order of `sorted(..., key=str.lower)`). SQLite's LOWER() folds ASCII only, so there
    Python's own str.lower is registered on the connection."""

    function = "LOWER"
    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = super().as_sql(compiler, connection, **extra)
        return f'({sql}) COLLATE "C"', params

    def as_sqlite(self, compiler, connection, **extra):
        # Registered when compiled: the query runs on this connection right after.
        connection.ensure_connection()
        connection.connection.create_function("crm_lower", 1, _lower, deterministic=True)
        return super().as_sql(compiler, connection, function="crm_lower", **extra)


def _lower(value):
    return None if value is None else value.lower()


class Joined(Subquery):
    """Several values in one cell: the one column of `queryset` (ordered, correlated with
    OuterRef) joined by `separator`; '' when there are none. The subquery is bounded by the
    outer row, so its cost follows the rows exported."""

    output_field = TextField()

    def __init__(self, queryset, field, separator):
        item = F(field) if isinstance(field, str) else field
        super().__init__(queryset.values(export_item=item), output_field=TextField())
        self.separator = separator

    def as_sql(self, compiler, connection, **extra):
        # SQLite (before 3.44) has no ORDER BY inside an aggregate; GROUP_CONCAT reads the
        # ordered subquery in its order.
        template = "COALESCE((SELECT GROUP_CONCAT(\"export_item\", %%s) FROM (%(subquery)s)), '')"
        sql, params = super().as_sql(compiler, connection, template=template)
        return sql, (self.separator, *params)

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = super().as_sql(
            compiler, connection, template="COALESCE(ARRAY_TO_STRING(ARRAY(%(subquery)s), %%s), '')")
        return sql, (*params, self.separator)


# -- kinds of columns: one native value, its CSV text (Python and SQL) and its XLSX cell ------------

def _text(value):
    return "" if value is None else str(value)


def _neutralised_text(value):
    if value is None:
        return ""
    value = str(value)
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


# What a worksheet cannot hold (openpyxl refuses it: its ILLEGAL_CHARACTERS_RE).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _text_cell(value):
    if value is None:
        return None
    # Removed before neutralising, so a cell "\x01=cmd" cannot turn into a formula.
    value = CONTROL_CHARACTERS.sub("", str(value))
    return neutralise(value) if value else None


def _same(value):
    return value


STRFTIME_TO_CHAR = {"%Y": "YYYY", "%m": "MM", "%d": "DD", "%H": "HH24", "%M": "MI", "%S": "SS"}


def to_char_format(fmt):
    """PostgreSQL's to_char() pattern of a strftime format, or None when it has directives or
    letters to_char would read differently."""
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%":
            token = STRFTIME_TO_CHAR.get(fmt[i : i + 2])
            if token is None:
                return None
            out.append(token)
            i += 2
        elif fmt[i].isalnum() or fmt[i] in "\"'\\":
            return None
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


# XLSX cells in SQL: the XML crm.xlsx writes for a value, rendered by the database.
XLSX_EMPTY = "'<c/>'"
XLSX_NUMBER = "CASE WHEN {0} IS NULL THEN " + XLSX_EMPTY + " ELSE '<c><v>' || ({0})::text || '</v></c>' END"
XLSX_BOOLEAN = ("CASE WHEN {0} THEN '<c t=\"b\"><v>1</v></c>' WHEN NOT {0} THEN '<c t=\"b\"><v>0</v></c>' "
                "ELSE " + XLSX_EMPTY + " END")
XLSX_DATE = ("CASE WHEN {0} IS NULL THEN " + XLSX_EMPTY + f" ELSE '<c s=\"{xlsx.DATE_STYLE}\"><v>' || "
             "({0} - DATE '1899-12-30')::text || '</v></c>' END")
# Text: formulas neutralised, then XML-escaped, CR and LF as character references so that a row
# stays one line of COPY's output, and COPY's quote and delimiter (see xlsx_copy_statement) out.
# Control characters, which a worksheet cannot hold, are left for crm.xlsx to remove from the
# bytes (PostgreSQL's TRANSLATE costs microseconds a cell); neutralising looks past them, so
# "\x01=cmd" gets its quote as the Python cells give it.
XLSX_CONTROL = literal("".join(chr(c) for c in range(1, 32) if chr(c) not in "\t\n\r"))
XLSX_PREFIXES = ", ".join(str(ord(p)) for p in FORMULA_PREFIXES)
XLSX_TEXT = (
    "CASE WHEN {0} IS NULL OR {0} = '' THEN " + XLSX_EMPTY + " "
    "WHEN ASCII({0}) < 32 AND LTRIM({0}, " + XLSX_CONTROL + ") = '' THEN " + XLSX_EMPTY + " ELSE "
    "'<c t=\"inlineStr\"><is><t xml:space=\"preserve\">' || "
    "REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE("
    "CASE WHEN ASCII({0}) IN (" + XLSX_PREFIXES + ") OR ASCII({0}) < 32 AND ASCII(LTRIM({0}, " + XLSX_CONTROL
    + ")) IN (" + XLSX_PREFIXES + ") THEN '''' || {0} ELSE {0} END, "
    "'&', '&amp;'), '<', '&lt;'), '>', '&gt;'), CHR(10), '&#10;'), CHR(13), '&#13;'), CHR(1), ''), CHR(2), '') "
    "|| '</t></is></c>' END")


class Kind:
    """How a column's native value (what the values query reads) is written.

    text: value -> the CSV text the widget renders. sql: the same in SQL, `{}` standing for
    the value (None: not expressible; a callable: made at export time). cell: value -> the
    XLSX cell. formula: whether the text may start with a formula character (then it is
    neutralised). xlsx: the XLSX cell's XML in SQL, as `sql`; text kinds say `text_cell`
    instead (their cell is XLSX_TEXT of the value without control characters)."""

    def __init__(self, text, sql, cell, formula=True, xlsx=None, text_cell=False):
        self.text, self.sql, self.cell, self.formula = text, sql, cell, formula
        self.xlsx, self.text_cell = xlsx, text_cell


TEXT = Kind(_text, "{}", _text_cell, text_cell=True)
# Negative numbers start with '-': neutralised as text.
INTEGER = Kind(_text, "({})::text", _same, xlsx=XLSX_NUMBER)
# Keys and positive fields: never negative.
NATURAL = Kind(_text, "({})::text", _same, formula=False, xlsx=XLSX_NUMBER)
MONEY = Kind(lambda v: "" if v is None else f"{v:.2f}", "ROUND({}, 2)::text", _same, xlsx=XLSX_NUMBER)
BOOLEAN = Kind(lambda v: "" if v is None else ("1" if v else "0"),
               "CASE WHEN {0} THEN '1' WHEN NOT {0} THEN '0' END", _same, formula=False, xlsx=XLSX_BOOLEAN)


def integer_kind(field):
    """NATURAL for a field the database keeps non-negative (keys, positive integer fields),
    else INTEGER."""
    natural = (model_fields.AutoFieldMixin, model_fields.PositiveIntegerRelDbTypeMixin)
    return NATURAL if isinstance(field, natural) else INTEGER


def date_kind(fmt="%Y-%m-%d"):
    pattern = to_char_format(fmt)
    return Kind(lambda v: format_datetime(v, fmt) if v else "",
                None if pattern is None else f"TO_CHAR({{}}, {literal(pattern)})", _same, formula=False,
                xlsx=XLSX_DATE)


def datetime_kind(fmt="%Y-%m-%d %H:%M:%S"):
    """A moment, written in the current time zone (as timezone.localtime)."""
    pattern = to_char_format(fmt)

    def text(value):
        return format_datetime(timezone.localtime(value), fmt) if value else ""

    def cell(value):  # a worksheet has no time zones: the local wall-clock time
        return timezone.localtime(value).replace(tzinfo=None) if value else None

    def sql():  # the zone of the export's moment, not of the import of this module
        zone = timezone.get_current_timezone_name()
        return None if pattern is None else f"TO_CHAR({{}} AT TIME ZONE {literal(zone)}, {literal(pattern)})"

    def xlsx_sql():  # days since 1899-12-30 of the local wall-clock time, as crm.xlsx writes them
        zone = literal(timezone.get_current_timezone_name())
        return (f"CASE WHEN {{0}} IS NULL THEN {XLSX_EMPTY} ELSE '<c s=\"{xlsx.DATETIME_STYLE}\"><v>' || "
                f"(EXTRACT(EPOCH FROM ({{0}} AT TIME ZONE {zone})) / 86400 + 25569)::float8::text || '</v></c>' END")

    return Kind(text, sql, cell, formula=False, xlsx=xlsx_sql)


class Column:
    """One export column compiled to SQL: `value`, an ORM expression (or a field path) of the
    native value, written as its `kind` says. `render` replaces the kind's Python text (the
    column then has no SQL text: the export takes the values path). `relations`:
    FilteredRelations the expression reads, by alias."""

    def __init__(self, value, kind=TEXT, render=None, relations=None):
        self.value = F(value) if isinstance(value, str) else value
        self.kind = kind
        self.render = render
        self.relations = relations or {}

    @property
    def sql(self):
        if self.render is not None:
            return None
        return self.kind.sql() if callable(self.kind.sql) else self.kind.sql

    def text(self):
        """value -> its CSV cell (neutralised), as export_row writes it."""
        render = self.render or self.kind.text
        if self.render is None and not self.kind.formula:
            return render
        if render is _text:
            return _neutralised_text  # the common case in one call per cell
        return lambda value: neutralise(render(value))

    def cell(self):
        if self.render is not None:
            return lambda value: _text_cell(self.render(value))
        return self.kind.cell

    @property
    def xlsx_sql(self):
        """The XLSX cell's XML in SQL (`{}` the value), None when only Python renders it."""
        if self.render is not None:
            return None
        if self.kind.text_cell:
            return XLSX_TEXT
        return self.kind.xlsx() if callable(self.kind.xlsx) else self.kind.xlsx


def choice(path, choices, unknown=None):
    """A choice's label by its stored value (Case over `choices`); an unknown value is
    written as itself, or as `unknown` when given."""
    default = F(path) if unknown is None else Value(unknown)
    return Case(*[When(**{path: code}, then=Value(str(label))) for code, label in choices],
                default=default, output_field=CharField())


def joined(queryset, field, separator):
    return Column(Joined(queryset, field, separator))


# -- compiling a resource --------------------------------------------------------------------------

CHAR_FIELDS = (model_fields.CharField, model_fields.TextField)


def model_field(model, path):
    """The model field `path` (a__b__c) ends at, or None (an annotation, a property)."""
    field = None
    for part in path.split("__"):
        if model is None:
            return None
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        model = field.related_model
    return field


def widget_column(widget, path, model):
    """The Column of an export field from its widget, or None when the widget's rendering
    is not known to be expressible."""
    target = model_field(model, path)
    declared = getattr(widget, "export_column", None)
    if declared is not None:
        return declared(path, target)
    render = type(widget).render
    if isinstance(widget, NameWidget) and render is NameWidget.render:
        return Column(f"{path}__{widget.field}")
    if isinstance(widget, widgets.ManyToManyWidget) and render is widgets.ManyToManyWidget.render:
        if target is None or not target.many_to_many or target.auto_created or "__" in path:
            return None  # a forward many-to-many field of the model itself
        remote = target.related_model
        related = remote._default_manager.filter(**{target.related_query_name(): OuterRef("pk")})
        # As the widget lists them: in the related model's ordering (unique names), then by key.
        return joined(related.order_by(*remote._meta.ordering, "pk"), widget.field, widget.separator)
    if target is None or target.is_relation:
        return None
    if render is CountryWidget.render or render in (widgets.Widget.render, widgets.CharWidget.render):
        return Column(path) if isinstance(target, CHAR_FIELDS) else None
    if isinstance(widget, widgets.IntegerWidget) and render is widgets.NumberWidget.render:
        return Column(path, integer_kind(target)) if isinstance(target, model_fields.IntegerField) else None
    if render is widgets.BooleanWidget.render:
        return Column(path, BOOLEAN)
    if render is widgets.DateWidget.render:
        return Column(path, date_kind(widget.formats[0]))
    if render is widgets.DateTimeWidget.render:
        return Column(path, datetime_kind(widget.formats[0]))
    return None


def compile_columns(resource):
    """[Column] of the resource's export fields, in order, or None when one of them cannot
    be compiled (the export then takes the Python path)."""
    declared = resource.export_columns()
    model = resource._meta.model
    columns = []
    for field in resource.get_export_fields():
        name = resource.get_field_name(field)
        column = declared.get(name)
        if column is None:
            if callable(getattr(resource, field.get_dehydrate_method(name), None)):
                return None  # a dehydrate method only Python runs, and no declared column
            column = widget_column(field.widget, field.attribute, model) if field.attribute else None
        if column is None:
            return None
        columns.append(column)
    return columns


# -- the grid's rows --------------------------------------------------------------------------------

def as_querydict(params):
    if isinstance(params, QueryDict):
        return params
    query = QueryDict(mutable=True)
    for key, value in (params or {}).items():
        query.setlist(key, value if isinstance(value, (list, tuple)) else [value])
    return query


def stand_in_request(params, user):
    """What FilterSets and tables read of a request (its GET and user), for a background job."""
    request = HttpRequest()
    request.method = "GET"
    request.GET = params
    request.user = user
    return request


def tie_broken(queryset):
    """`queryset` ordered as it is, then by the primary key (in the direction of the last
    key), so rows that tie on the sort key come in one order. The grid orders the same way
    (crm.tables.stable_order); the export must not rely on the table doing it."""
    query = queryset.query
    order = list(query.order_by) or (list(queryset.model._meta.ordering) if query.default_ordering else [])
    last = order[-1] if order else None
    if isinstance(last, str) and last.lstrip("-") in ("pk", "id"):
        return queryset
    descending = getattr(last, "descending", False) if not isinstance(last, str) else last.startswith("-")
    return queryset.order_by(*order, "-pk" if descending else "pk")


def export_queryset(entity, params, user):
    """The grid's filtered, sorted set for `params` (its query string), restricted to what
    `user` may view: FilterSet, then the table's ordering, then the primary key."""
    params = as_querydict(params)
    request = stand_in_request(params, user)
    filterset = entity.filterset_class(params, queryset=entity.restricted(user, "view"), request=request)
    queryset = filterset.qs if filterset.is_valid() else filterset.queryset.none()
    table = entity.table_class(queryset)
    RequestConfig(request, paginate=False).configure(table)
    return tie_broken(table.data.data)


def export_count(entity, params, user, limit=None):
    """How many rows the export writes; with `limit`, counting stops after limit + 1 (enough
    to decide whether an export is large)."""
    queryset = export_queryset(entity, params, user).order_by()
    return (queryset[: limit + 1] if limit is not None else queryset).count()


# -- writing -----------------------------------------------------------------------------------------

# The first character's code against the prefixes' codes: measured a quarter cheaper than
# LEFT(t, 1) IN (...), which builds a text per cell (27 columns by a million rows).
NEUTRALISED_SQL = ("CASE WHEN ASCII({t}) IN (" + ", ".join(str(ord(p)) for p in FORMULA_PREFIXES)
                   + ") THEN '''' || {t} ELSE NULLIF({t}, '') END")


class Export:
    """One export of `queryset` through `resource`. `method` forces a way of writing
    ("copy", "values", "python"); by default the fastest the resource and database allow.
    `rows` counts the rows written so far."""

    def __init__(self, resource, queryset, method=None, progress=None):
        self.resource = resource
        self.queryset = queryset
        self.progress = progress
        self.headers = resource.headers()
        self.columns = compile_columns(resource)
        self.vendor = connections[queryset.db].vendor
        self.rows = 0
        self.total = None
        if method is None:
            if self.columns is None:
                method = "python"
            elif self.vendor == "postgresql" and all(c.sql is not None for c in self.columns):
                method = "copy"
            else:
                method = "values"
        if method != "python" and self.columns is None:
            raise ValueError(f"{type(resource).__name__} has an export column that cannot be compiled.")
        if method == "copy" and self.vendor != "postgresql":
            raise ValueError("COPY needs PostgreSQL.")
        self.method = method

    # -- counting -------------------------------------------------------------------------------
    def count_row(self, n=1):
        self.rows += n
        if self.progress is not None and (self.rows // PROGRESS_EVERY) != ((self.rows - n) // PROGRESS_EVERY):
            self.report_progress()

    def count_total(self):
        """The rows to come, for progress: counted before the rows are read (no other query
        may run on the connection while COPY streams)."""
        if self.progress is not None and self.total is None:
            self.total = self.queryset.order_by().count()

    def report_progress(self):
        if self.progress is not None:
            self.progress(self.rows, max(self.total or 0, self.rows))

    # -- the values query --------------------------------------------------------------------------
    def values_queryset(self):
        """One row of native values per record: `export_c<i>` per column."""
        queryset = self.queryset.select_related(None).prefetch_related(None)
        relations = {}
        for column in self.columns:
            relations.update(column.relations)
        if relations:
            queryset = queryset.alias(**relations)
        return queryset.values(**{f"export_c{i}": c.value for i, c in enumerate(self.columns)})

    def value_rows(self):
        names = [f"export_c{i}" for i in range(len(self.columns))]
        return self.values_queryset().values_list(*names).iterator(chunk_size=CHUNK_ROWS)

    def copy_statement(self):
        """(COPY (SELECT <each column's neutralised text> FROM (<values query>) q) TO STDOUT,
        its parameters); the statement is None when the set is empty. OFFSET 0 keeps the
        values query a separate step, so an expensive column (a subquery) is computed once,
        not once per use in the CASE."""
        try:
            inner, params = self.values_queryset().query.sql_with_params()
        except EmptyResultSet:
            return None, ()
        texts = []
        for i, column in enumerate(self.columns):
            text = column.sql.format(f'q."export_c{i}"')
            texts.append(NEUTRALISED_SQL.format(t=f"({text})") if column.kind.formula else text)
        fence = "" if self.queryset.query.is_sliced else " OFFSET 0"
        return (f"COPY (SELECT {', '.join(texts)} FROM ({inner}{fence}) AS q) TO STDOUT WITH (FORMAT csv)",
                params)

    # -- CSV -------------------------------------------------------------------------------------------
    def csv_chunks(self):
        """The CSV file (UTF-8 with BOM, CRLF line ends) as byte chunks."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(self.headers)
        yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
        self.count_total()
        if self.method == "copy":
            yield from self.copy_chunks()
        else:
            yield from self.text_chunks(buffer, writer)
        self.report_progress()

    def text_chunks(self, buffer, writer):
        for batch in self.text_batches():
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(batch)
            self.count_row(len(batch))
            yield buffer.getvalue().encode("utf-8")

    def text_batches(self):
        batch = []
        if self.method == "python":
            resource = self.resource
            rows = (resource.export_row(obj)
                    for obj in resource.export_rows(self.queryset).iterator(chunk_size=CHUNK_ROWS))
        else:
            texts = [c.text() for c in self.columns]
            rows = ([f(v) for f, v in zip(texts, values)] for values in self.value_rows())
        for row in rows:
            batch.append(row)
            if len(batch) == CHUNK_ROWS:
                yield batch
                batch = []
        if batch:
            yield batch

    def copy_chunks(self):
        batch = []
        # COPY sends one row per message, ending in LF; the CSV module (and so the other
        # paths) ends rows with CRLF. Line breaks inside quoted cells stay.
        for row in self.copy_rows(*self.copy_statement()):
            batch.append(row)
            if len(batch) == CHUNK_ROWS:
                self.count_row(len(batch))
                yield b"\r\n".join(batch) + b"\r\n"
                batch = []
        if batch:
            self.count_row(len(batch))
            yield b"\r\n".join(batch) + b"\r\n"

    def copy_rows(self, statement, params):
        """The rows COPY `statement` sends, without their final LF (bytes-like)."""
        if statement is None:
            return
        connection = connections[self.queryset.db]
        # A download abandoned half way closes this generator: psycopg then cancels the COPY,
        # which aborts the surrounding transaction; the savepoint (or transaction) rolls back
        # just the export, so the connection stays usable for whatever runs after it.
        with transaction.atomic(using=self.queryset.db), connection.cursor() as cursor:
            # Logged like any query (the query-count tests and the debug toolbar see it).
            debug = getattr(cursor, "debug_sql", None)
            with (debug(statement, params) if debug is not None else nullcontext()):
                with cursor.cursor.copy(statement, params or None) as copy:
                    for row in copy:
                        yield row[:-1]

    # -- XLSX ------------------------------------------------------------------------------------------
    def cell_rows(self):
        if self.method == "python":
            for batch in self.text_batches():
                for row in batch:
                    yield [_text_cell(v) for v in row]
        else:
            cells = [c.cell() for c in self.columns]
            for values in self.value_rows():
                yield [f(v) for f, v in zip(cells, values)]

    def xlsx_copy_statement(self):
        """(COPY of each row's worksheet XML, its parameters), or (None, ()) for an empty set.
        COPY's CSV format, with a delimiter and a quote character that no row holds (text
        cells drop them, CR and LF are references), sends every row as it is."""
        try:
            inner, params = self.values_queryset().query.sql_with_params()
        except EmptyResultSet:
            return None, ()
        cells = [column.xlsx_sql.format(f'q."export_c{i}"') for i, column in enumerate(self.columns)]
        fence = "" if self.queryset.query.is_sliced else " OFFSET 0"
        return (f"COPY (SELECT '<row>' || {' || '.join(cells)} || '</row>' FROM ({inner}{fence}) AS q) "
                "TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')", params)

    def write_xlsx(self, out, title):
        """A workbook streamed row by row (crm.xlsx), so memory stays flat. Numbers and dates
        are cells of their type, text is neutralised. On the copy path the database writes
        each row's XML."""
        self.count_total()
        rendered = self.method == "copy" and all(c.xlsx_sql is not None for c in self.columns)
        rows = self.copy_rows(*self.xlsx_copy_statement()) if rendered else self.cell_rows()
        xlsx.write_workbook(out, title, self.headers, rows, on_row=self.count_row, rows_per_sheet=XLSX_MAX_ROWS,
                            rendered=rendered)
        self.report_progress()


def start(entity, params, user, progress=None, method=None):
    """The Export of the grid's set for `params` (prepared now: a refusal or a bad query
    fails here, not in the middle of a download)."""
    resource = entity.resource_class(user=user)
    return Export(resource, export_queryset(entity, params, user), method=method, progress=progress)


def csv_stream(entity, params, user):
    """The CSV export as byte chunks, for a streamed response."""
    return start(entity, params, user).csv_chunks()


def write_export(entity, params, user, fmt, out, progress=None):
    """Write the export of the grid's set for `params` (a QueryDict or a dict) in `fmt`
    ("csv" or "xlsx") to the binary file `out`; progress(done, total) every few thousand
    rows. Returns the number of rows written."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}.")
    export = start(entity, params, user, progress=progress)
    if fmt == "csv":
        for chunk in export.csv_chunks():
            out.write(chunk)
    else:
        export.write_xlsx(out, str(entity.verbose_name_plural).capitalize())
    return export.rows
