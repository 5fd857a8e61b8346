"""Base django-import-export Resources: human headers, batch-resolved names, restricted IDs.

A Resource is the one declaration of an entity's columns, headers and value conversion
(export, import and admin use it). Imports (crm.services.import_csv) drive its fields and
widgets batch by batch without import-export's per-row machinery: per batch, related names
come from one query per column, the matched records (by ID, else by the natural key) from
one query over the *restricted* queryset, clashes of unique columns from one query; each
row is cleaned and checked without a query; the batch is written in a few statements with
its history rows (crm.services.BulkWriter). The admin's import goes through import-export
and reaches the same per-batch and per-row methods.
"""
import re
from array import array
from decimal import Decimal
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from itertools import pairwise

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import (DecimalValidator, EmailValidator, MaxLengthValidator, MaxValueValidator,
                                    MinValueValidator, RegexValidator, URLValidator)
from django.db import connection, models
from django.db.models.base import ModelState
from django.db.models.fields import NOT_PROVIDED
from django.db.models.signals import post_init, pre_init
from django.db.models.functions import Lower
from django_countries import countries
from import_export import fields, resources, widgets
from import_export.instance_loaders import ModelInstanceLoader

from .access import access, is_owned, restrict
from .ids import as_id
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


# -- import: headers, batches and what an import remembers ------------------------------------

CHUNK = 500  # SQLite caps the number of query parameters

# Headers that spreadsheets and other systems use for common columns (CRMResource.header_aliases).
EMAIL_HEADERS = ("E-mail", "Email Address", "E-mail Address")
PHONE_HEADERS = ("Phone Number", "Telephone", "Tel", "Tel.")
POSTAL_CODE_HEADERS = ("Zip", "ZIP Code", "Zip Code", "Postcode", "Post Code")
COUNTRY_HEADERS = ("Country Code", "Country Name")


def header_key(text):
    """A header as matching compares it: case, surrounding and repeated spaces ignored."""
    return " ".join(str(text or "").split()).lower()


# Plain shapes of an email address and a web address: a text of that shape passes Django's
# EmailValidator / URLValidator (the shapes are a strict part of what they accept), so an
# import checks it with one match; any other text still goes through the validator.
EMAIL_SHAPE = re.compile(r"[a-z0-9]+(?:[._+-][a-z0-9]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z",
                         re.IGNORECASE)
URL_SHAPE = re.compile(r"https?://(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(?:/[a-z0-9._~/-]*)?\Z",
                       re.IGNORECASE)


NUMBERS = (Decimal, int)  # what number widgets give (bool is no int here: type() is compared)


def number_check(field):
    """quick_check of a decimal or integer field: its value (the widget's Decimal or int) is
    within the field's bounds and, for a decimal, its digits, the checks of its validators
    (DecimalValidator's arithmetic: digits and decimal places as the value is written)."""
    low, high = [], []
    for validator in field.validators:
        if type(validator) is MinValueValidator and not callable(validator.limit_value):
            low.append(validator.limit_value)
        elif type(validator) is MaxValueValidator and not callable(validator.limit_value):
            high.append(validator.limit_value)
        elif type(validator) is not DecimalValidator:
            return None
    low, high = max(low, default=None), min(high, default=None)

    def in_bounds(value):
        return (low is None or value >= low) and (high is None or value <= high)

    if isinstance(field, models.DecimalField):
        max_digits, places = field.max_digits, field.decimal_places

        def check(value):
            if type(value) is not Decimal or not value.is_finite():
                return False
            _, digit_tuple, exponent = value.as_tuple()
            if exponent >= 0:
                digits, decimals = (len(digit_tuple) + exponent if digit_tuple != (0,) else 1), 0
            elif -exponent > len(digit_tuple):
                digits = decimals = -exponent
            else:
                digits, decimals = len(digit_tuple), -exponent
            return (digits <= max_digits and decimals <= places and digits - decimals <= max_digits - places
                    and in_bounds(value))
        return check
    return lambda value: type(value) is int and in_bounds(value)


def quick_check(field, choices_checked=False):
    """A function saying, with a length test and a match or two, that a text passes every
    check of the model field `field` (its validators, its choices when a widget checked them
    already); None when some check has no such shortcut. A text it does not vouch for goes
    through Field.clean, which says why it is wrong. Decimal and integer fields: number_check."""
    if field.choices and not choices_checked:
        return None
    if isinstance(field, (models.DecimalField, models.IntegerField)):
        return number_check(field)
    if not isinstance(field, (models.CharField, models.TextField)):
        return None
    length = field.max_length
    matches = []
    for validator in field.validators:
        if isinstance(validator, MaxLengthValidator) and validator.limit_value == length:
            continue
        if isinstance(validator, EmailValidator):
            matches.append(EMAIL_SHAPE.match)
        elif isinstance(validator, URLValidator) and {"http", "https"} <= set(validator.schemes):
            matches.append(URL_SHAPE.match)
        elif type(validator) is RegexValidator and not validator.inverse_match:
            matches.append(validator.regex.search)  # what the validator itself asks
        else:
            return None
    if length is None:
        return None
    if not matches:
        return lambda text: len(text) <= length
    if len(matches) == 1:  # an email or a website: one shape, called for every row
        match = matches[0]
        return lambda text: len(text) <= length and match(text) is not None
    return lambda text: len(text) <= length and all(match(text) for match in matches)


def chunk_size():
    """Values one query's IN list takes: SQLite caps a query's parameters, PostgreSQL does not."""
    from django.db import connection

    return CHUNK if connection.features.max_query_params else 20 * CHUNK


def chunked(values, size=None):
    size = size or chunk_size()
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i : i + size]


def id_key(pk):
    """The key of an ID among a file's keys (never equal to a natural key: those hold text)."""
    return ("#id", pk)


@dataclass
class HeaderMatch:
    positions: list = dataclass_field(default_factory=list)  # [(index of the cell, column)]
    columns: dict = dataclass_field(default_factory=dict)    # {the file's header: column}
    unmatched: list = dataclass_field(default_factory=list)  # the file's headers of no column
    blank: int = 0                                           # columns without a header
    errors: list = dataclass_field(default_factory=list)


class IdSet:
    """A set of record ids kept as bits, 8 KB per 65,536 consecutive ids in use: an import of
    a million rows remembers every record it touched in a few hundred KB."""

    def __init__(self):
        self.pages = {}

    def add(self, pk):
        page = self.pages.get(pk >> 16)
        if page is None:
            page = self.pages[pk >> 16] = bytearray(8192)
        page[(pk >> 3) & 8191] |= 1 << (pk & 7)

    def __contains__(self, pk):
        page = self.pages.get(pk >> 16)
        return page is not None and bool(page[(pk >> 3) & 8191] & (1 << (pk & 7)))


class ImportSession:
    """What the batches of one import share: the mode, the writer (with the change reason of
    every history row), the records earlier rows touched, and which keys occur more than once
    in the file, so that "twice in the file" is checked across batches while remembering only
    those keys, never every row's: memory does not grow with the file."""

    def __init__(self, user=None, mode="create_update", change_reason="CSV import"):
        from .services import BulkWriter

        self.mode, self.change_reason = mode, change_reason
        self.writer = BulkWriter(user, change_reason)
        self.touched = IdSet()  # records matched or created by earlier rows
        self.created = IdSet()  # records created by earlier batches
        self.headers = {}       # {column: the file's header for it}
        self._hashes = array("q")
        self.repeated = None    # hashes of the keys found more than once; None: remember every key
        self.first_lines = {}   # {key: the line it first appeared on}, for the repeated keys
        self.changed_since = None  # the preview's time: later changes of a matched record refuse its row

    def note_keys(self, keys):
        for key in keys:
            self._hashes.append(hash(key))

    def end_scan(self):
        ordered, self._hashes = sorted(self._hashes), array("q")
        self.repeated = {a for a, b in pairwise(ordered) if a == b}

    def earlier_line(self, file_key, key, line, claim=True):
        """The line where an earlier row had `key`, else None; `claim` remembers this row's.
        `file_key` is the key as file_keys gave it in the first pass (it may be coarser)."""
        if self.repeated is not None and hash(file_key) not in self.repeated:
            return None
        first = self.first_lines.get(key)
        if first is not None and first != line:
            return first
        if claim:
            self.first_lines[key] = line
        return None


class Batch:
    """The rows of one import batch ({column: cell} each, from line `line` of the file) and
    the file's columns. It reads by column like a tablib Dataset (batch["Name"], headers,
    len), so the admin's import (a Dataset) and the app's share the per-batch hooks."""

    def __init__(self, items, headers):
        self.items = items  # [(line, row)]
        self.headers = headers
        self.rows = [row for _, row in items]
        self.lines = [line for line, _ in items]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, column):
        return [row.get(column, "") for row in self.rows]

    def __iter__(self):
        for row in self.rows:
            yield tuple(row.get(column, "") for column in self.headers)


class NameWidget(widgets.ForeignKeyWidget):
    """A related record by a name column, resolved for a whole batch in one query.

    Lookups are case-insensitive. `queryset` may be a callable taking the resource
    (to restrict choices to what the importing user may see)."""

    def __init__(self, model, field="name", label=None, queryset=None, **kwargs):
        super().__init__(model, field=field, **kwargs)
        self.label = label or model._meta.verbose_name
        self.queryset_source = queryset
        self.cache, self.found = {}, {}

    def base_queryset(self, resource):
        if callable(self.queryset_source):
            return self.queryset_source(resource)
        return self.model._default_manager.all()

    # Records found by earlier batches are kept up to this many (owners, units and channels
    # repeat on every batch; a file naming a hundred thousand accounts must not be kept whole).
    KEEP = 5000

    def prime(self, resource, values):
        texts = {str(v).strip() for v in values if v not in (None, "") and str(v).strip()}
        if len(self.cache) > self.KEEP:
            self.cache, self.found = {}, {}  # {lower-case name: record}, {id: record} of every one found
        texts = {text for text in texts if text.lower() not in self.cache}
        # Names as written first: the column's index answers them (an export imported back
        # writes them so). Only the others are compared in lower case, which no index serves.
        for part in chunked(sorted(texts)):
            for obj in self.base_queryset(resource).filter(**{f"{self.field}__any": part}):
                self.cache.setdefault(getattr(obj, self.field).lower(), obj)
                self.found[obj.pk] = obj
        keys = sorted({text.lower() for text in texts} - set(self.cache))
        for part in chunked(keys):
            qs = self.base_queryset(resource).annotate(_key=Lower(self.field)).filter(_key__any=part)
            for obj in qs:
                self.cache.setdefault(getattr(obj, self.field).lower(), obj)
                self.found[obj.pk] = obj

    def lookup(self, text):
        """The primed record named `text`, or None (no query, no error)."""
        return self.cache.get(str(text).strip().lower())

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

    checks_choices = True  # what it returns is a valid code: the model field need not walk its choices

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.known = {}  # {text: code}: a file names few countries, each lookup walks them all

    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip()
        if not text:
            return ""
        code = self.known.get(text)
        if code is None:
            code = countries.alpha2(text) or countries.by_name(text)
            if not code:
                raise ValueError(f"Unknown country '{text}': use an ISO code such as DE or an English name such as "
                                 "Germany.")
            if len(self.known) < 1000:
                self.known[text] = code
        return code

    def render(self, value, obj=None, **kwargs):
        return getattr(value, "code", value) or ""


def visible_users(resource):
    return get_user_model().objects.filter(is_active=True)


class CRMResource(resources.ModelResource):
    id = fields.Field(attribute="id", column_name="ID", widget=widgets.IntegerWidget())
    required_columns = ("Name",)
    # Attributes that match a row without an ID to the record with the same values among
    # those the user may change, e.g. ("name", "channel"); () for none. Text compares
    # case-insensitively, relations by the record their name column resolves to.
    natural_key = ()
    natural_key_unique = False  # the database allows one record per key: a key twice in a file is an error
    # {column: other headers that mean it}, merged over the base classes; an alias of a
    # column the resource does not have is ignored.
    header_aliases = {"Email": EMAIL_HEADERS, "Phone": PHONE_HEADERS, "Postal Code": POSTAL_CODE_HEADERS,
                      "Country": COUNTRY_HEADERS}

    class Meta:
        use_bulk = True
        batch_size = None  # write once per import batch (CRM_IMPORT_BATCH_SIZE): one batch size setting
        skip_unchanged = True
        report_skipped = True
        skip_html_diff = True
        # A list, not a tuple: import-export then accepts a file without an ID column
        # (every row creates) instead of refusing the whole file.
        import_id_fields = ["id"]
        # Records are matched per batch (match_rows); the loader is never asked.
        instance_loader_class = ModelInstanceLoader
        clean_model_instances = False  # query-free field checks happen in validate_row

    def __init__(self, user=None, **kwargs):
        super().__init__(**kwargs)
        self.user = user
        self.session = None

    # -- what the user may touch -------------------------------------------------------
    def get_queryset(self):
        qs = super().get_queryset()
        # Matched rows are compared and checked through their name columns' relations: those
        # come with the rows, one query per relation for a whole batch (by id: a join would
        # make the database read every account to match a batch's customers).
        related = self.loaded_relations()
        if related:
            qs = qs.prefetch_related(*related)
        return restrict(qs, self.user, "change") if self.user is not None else qs

    def loaded_relations(self):
        """The relations loaded with the matched records: those of the name columns."""
        foreign_keys = {f.name for f in self._meta.model._meta.concrete_fields if f.is_relation}
        return [f.attribute for f in self.name_fields() if f.attribute in foreign_keys]

    # -- the file as a whole ------------------------------------------------------------------
    def begin_session(self, mode="create_update", change_reason="CSV import"):
        self.session = ImportSession(self.user, mode, change_reason)
        return self.session

    def required_headers(self):
        return list(self.required_columns)

    def import_columns(self):
        """{column: field} of the columns an import reads."""
        if not hasattr(self, "_import_columns"):
            self._import_columns = {f.column_name: f for f in self.get_import_fields()
                                    if f.attribute and not f.readonly}
        return self._import_columns

    @classmethod
    def all_header_aliases(cls):
        aliases = {}
        for klass in reversed(cls.__mro__):
            aliases.update(klass.__dict__.get("header_aliases") or {})
        return aliases

    def match_headers(self, headers, mapping=None):
        """The file's headers matched to the columns: by name ignoring case and spaces, by an
        alias, or as `mapping` ({file header: column, or "" to ignore it}) says. Headers that
        match nothing are listed and ignored; a column given twice, a mapping to no column or
        a required column missing are errors of the file."""
        columns = self.import_columns()
        by_key = {header_key(column): column for column in columns}
        aliases = {}
        for column, others in self.all_header_aliases().items():
            if column in columns:
                for other in others:
                    aliases.setdefault(header_key(other), column)
        chosen = {header_key(header): target for header, target in (mapping or {}).items()}
        match = HeaderMatch()
        given = {}  # {column: [the file's headers giving it]}
        for index, header in enumerate(headers):
            key = header_key(header)
            if key in chosen:
                target = str(chosen[key] or "").strip()
                if not target:
                    match.unmatched.append(header)
                    continue
                column = by_key.get(header_key(target))
                if column is None:
                    match.errors.append(f"The column '{header}' cannot be mapped to '{target}': the columns are "
                                        f"{', '.join(columns)}.")
                    continue
            elif not key:
                match.blank += 1
                continue
            else:
                column = by_key.get(key) or aliases.get(key)
                if column is None:
                    match.unmatched.append(header)
                    continue
            given.setdefault(column, []).append(header)
            match.positions.append((index, column))
            match.columns[header] = column
        twice = [column for column, found in given.items() if len(found) > 1]
        same = [column for column in twice if len({header_key(h) for h in given[column]}) == 1]
        if same:
            match.errors.append(f"Column(s) given twice: {', '.join(same)}.")
        for column in twice:
            if column not in same:
                names = " and ".join(f"'{h}'" for h in given[column])
                match.errors.append(f"The columns {names} both mean {column}: keep one, or map the other to "
                                    "another column or to none.")
        missing = [column for column in self.required_headers() if column not in given]
        if missing:
            match.errors.append(f"Missing required column(s): {', '.join(missing)}.")
        if not given and not match.errors:
            match.errors.append(f"None of the file's columns is known. The columns are: {', '.join(columns)}.")
        return match

    def start_import(self, report, importer):
        """Hook before the first batch (the header is matched and the rows counted)."""

    def finish_import(self, report):
        """Hook after the last batch; returns notes for the preview."""
        return []

    def tracks_file_keys(self):
        """Whether the first pass hashes each row's file_keys."""
        return self.natural_key_unique or type(self).file_keys is not CRMResource.file_keys

    def file_key_columns(self):
        """The columns file_keys reads."""
        return {self.column_of(attr) for attr in self.natural_key}

    def file_keys(self, row):
        """Keys a later row of the file may repeat, for the checks of "twice in the file":
        the first pass hashes every row's, so the batches remember only the repeated ones.
        They may be coarser than what the check compares (ImportSession.earlier_line)."""
        if not self.natural_key_unique:
            return ()
        key = self.file_key(row)
        return (key,) if key else ()

    def file_key(self, row):
        """The row's natural key as its cells write it (lower-case), or None."""
        parts = []
        for attr in self.natural_key:
            text = str(row.get(self.column_of(attr)) or "").strip().lower()
            if not text:
                return None
            parts.append(text)
        return tuple(parts)

    # -- batch preparation ---------------------------------------------------------------
    def name_fields(self):
        return [f for f in self.fields.values() if isinstance(f.widget, NameWidget)]

    def field_of(self, attribute):
        if not hasattr(self, "_fields_of"):
            self._fields_of = {}
            for field in reversed(self.fields.values()):  # the first field of an attribute wins
                if field.attribute:
                    self._fields_of[field.attribute] = field
        return self._fields_of[attribute]

    def before_import(self, dataset, **kwargs):
        """The admin's import (a tablib Dataset, one batch): the same preparation as the app's."""
        for i, row in enumerate(dataset):
            if any(isinstance(cell, str) and cell.startswith("'") for cell in row):
                dataset[i] = tuple(unneutralise(cell) for cell in row)
        if self.session is None:
            self.begin_session()
        headers = list(dataset.headers)
        rows = [{h: ("" if v is None else str(v).strip()) for h, v in zip(headers, values)} for values in dataset]
        self._saved_new, self._saved_changed = [], []
        self.prepare_batch(Batch(list(enumerate(rows, start=2)), headers))

    def before_import_row(self, row, **kwargs):
        self._row_number = kwargs.get("row_number")

    def get_or_init_instance(self, instance_loader, row):
        return self.matched_instance(self._row_number)

    def prepare_batch(self, batch):
        """Everything the rows of a batch need from the database, in a few queries for the
        whole batch: the related names, the records the rows match, the clashes of unique
        columns (check_unique), then the resource's own (prepare_rows)."""
        if self.session is None:
            self.begin_session()
        self.batch = batch
        self.batch_errors = {}  # {row number in the batch: {attribute: message}}
        self.plan_columns(batch.headers)
        for field in self.name_fields():
            if field.column_name in batch.headers:
                field.widget.prime(self, batch[field.column_name])
        self.match_rows(batch)
        self.refuse_changed_since_preview()
        self.check_unique(batch)
        self.prepare_rows(batch)

    def prepare_rows(self, batch):
        """Hook: what the resource reads for the batch once its rows are matched."""

    def check_unique(self, batch):
        """Hook: find clashes of unique columns for the whole batch in one query and
        record them in `self.batch_errors`."""

    def row_pk(self, number):
        """The id (text) of the record row `number` of the batch updates, "" for a new one."""
        instance = self.matches.get(number)
        return str(instance.pk) if instance is not None else ""

    # -- matching rows to records -----------------------------------------------------------
    def match_rows(self, batch):
        """The record each row of the batch updates: by ID among those the user may change,
        else by the natural key among them (a record an earlier row wrote does not count: a
        record is written once per import). The mode may refuse the match, or its absence.
        A query per batch for the IDs and one for the keys (per 500 of them on SQLite)."""
        session = self.session
        mode = session.mode
        self.matches, self.match_errors = {}, {}
        ids, keys = {}, {}
        for number, row in enumerate(batch.rows, start=1):
            text = str(row.get("ID") or "").strip()
            if text:
                pk = as_id(text)
                if pk is not None:
                    ids[number] = pk
                else:
                    # Quoted short: a cut 5,000-character message would lose what it says.
                    shown = text if len(text) <= 40 else text[:39] + "…"
                    self.match_errors[number] = {"id": f"'{shown}' is not a record ID: IDs are whole numbers."}
            elif self.natural_key:
                key = self.natural_key_of(row)
                if key is not None:
                    keys[number] = key
        found = self.load_by_id(sorted(set(ids.values())))
        candidates = self.load_by_natural_key(set(keys.values())) if keys else {}
        key_attr = self.natural_key[0] if self.natural_key else "id"
        for number in range(1, len(batch) + 1):  # in file order: the first row to claim a record has it
            if number in ids:
                pk = ids[number]
                instance = found.get(pk)
                earlier = session.earlier_line(id_key(pk), id_key(pk), batch.lines[number - 1])
                if instance is None:
                    self.match_errors[number] = {"id": f"No record with ID {pk} that you may edit."}
                elif pk in session.touched:
                    where = f" (row {earlier})" if earlier else ""
                    self.match_errors[number] = {
                        "id": f"Another row of this file{where} already changes the record with ID {pk}."}
                elif mode == "create":
                    self.match_errors[number] = {"id": self.exists_message(instance, by_id=True)}
                else:
                    session.touched.add(pk)
                    self.matches[number] = instance
            elif number in keys:
                records = [r for r in candidates.get(keys[number], []) if r.pk not in session.touched]
                if len(records) > 1:
                    ids_text = ", ".join(str(r.pk) for r in sorted(records, key=lambda r: r.pk)[:5])
                    self.match_errors[number] = {key_attr: (
                        f"Several {self._meta.model._meta.verbose_name_plural} you may edit have this "
                        f"{self.natural_key_label()} (IDs {ids_text}): give the row an ID to say which.")}
                elif records and mode == "create":
                    self.match_errors[number] = {key_attr: self.exists_message(records[0])}
                elif records:
                    session.touched.add(records[0].pk)
                    self.matches[number] = records[0]
        verbose = self._meta.model._meta.verbose_name
        if mode == "update":
            for number in range(1, len(batch) + 1):
                if number not in self.matches and number not in self.match_errors:
                    if self.natural_key and number in keys:
                        message = (f"No {verbose} you may edit has this {self.natural_key_label()}; the mode Update "
                                   "existing only does not create records.")
                    else:
                        message = "The row has no ID; the mode Update existing only does not create records."
                    self.match_errors[number] = {"id" if number not in keys else key_attr: message}
        if self.owned:
            for instance in self.matches.values():
                instance._placement = (instance.owner_id, instance.business_unit_id)

    def refuse_changed_since_preview(self):
        """An import started from a preview refuses the rows whose record someone changed
        after it (its history, or its modification time where a write kept no history): the
        user confirmed what the preview showed, not an overwrite of a change he never saw.
        One query per batch."""
        from django.utils import timezone

        since = self.session.changed_since
        model = self._meta.model
        if since is None or not self.matches:
            return
        by_pk = {instance.pk: number for number, instance in self.matches.items()}
        changed = {}  # {pk: (when, by whom)}
        if hasattr(model, "history"):
            history, pk_name = model.history.model, model._meta.pk.attname
            for part in chunked(by_pk):
                rows = (history.objects.filter(**{f"{pk_name}__any": part}, history_date__gt=since)
                        .order_by("history_id").values_list(pk_name, "history_date", "history_user__username"))
                changed.update((pk, (when, who)) for pk, when, who in rows)  # the newest change wins
        for pk, number in by_pk.items():
            stamp = getattr(self.matches[number], "updated_at", None)
            if pk not in changed and stamp is not None and stamp > since:
                changed[pk] = (stamp, None)
        verbose = model._meta.verbose_name
        for pk, (when, who) in changed.items():
            number = by_pk[pk]
            del self.matches[number]
            self.match_errors[number] = {"id": (
                f"This {verbose} (ID {pk}) was changed by {who or 'someone'} at "
                f"{timezone.localtime(when):%Y-%m-%d %H:%M:%S} since the preview at "
                f"{timezone.localtime(since):%Y-%m-%d %H:%M:%S}: validate the file again to review it.")}

    def exists_message(self, record, by_id=False):
        """Why a row of an "Add new only" import that matches `record` (which the user may
        edit, so may know of) is refused."""
        verbose = self._meta.model._meta.verbose_name
        if by_id:
            return f"ID {record.pk} is the existing {verbose} “{record}”; the mode Add new only does not change records."
        return f"The {verbose} “{record}” (ID {record.pk}) already exists; the mode Add new only does not change records."

    def natural_key_label(self):
        return " + ".join(self.column_of(attr) for attr in self.natural_key)

    def natural_key_of(self, row):
        """The row's natural key as records are compared with it (text in lower case, related
        records by id), or None when a part is blank or names no record."""
        parts = []
        for attr in self.natural_key:
            field = self.field_of(attr)
            text = str(row.get(field.column_name) or "").strip()
            if not text:
                return None
            if isinstance(field.widget, NameWidget):
                related = field.widget.lookup(text)
                if related is None:
                    return None
                parts.append(related.pk)
            else:
                parts.append(text.lower())
        return tuple(parts)

    def record_key(self, instance):
        return tuple(getattr(instance, f"{attr}_id") if isinstance(self.field_of(attr).widget, NameWidget)
                     else (getattr(instance, attr) or "").strip().lower() for attr in self.natural_key)

    def for_change(self, queryset):
        """The records a write will change, locked until it commits (in primary-key order, as
        every multi-row write takes its locks), so an edit saved meanwhile waits for the
        import instead of being overwritten by it. A preview locks nothing."""
        if self.session is None or self.session.writer.rehearsal or not connection.features.has_select_for_update:
            return queryset
        return queryset.select_for_update(of=("self",)).order_by("pk")

    def load_by_id(self, pks):
        found = {}
        for part in chunked(pks):
            found.update((obj.pk, obj) for obj in self.for_change(self.get_queryset().filter(pk__any=part)))
        return found

    # Natural-key parts stored in lower case (e.g. emails), compared without Lower() so their index serves.
    natural_key_lower_case = ()

    def load_by_natural_key(self, keys):
        """{key: [records the user may change with that natural key]}."""
        found = {}
        related = [isinstance(self.field_of(attr).widget, NameWidget) for attr in self.natural_key]
        for part in chunked(sorted(keys, key=str), size=max(1, chunk_size() // len(self.natural_key))):
            qs = self.get_queryset()
            for i, attr in enumerate(self.natural_key):
                values = sorted({key[i] for key in part}, key=str)
                if related[i]:
                    qs = qs.filter(**{f"{attr}_id__any": values})
                elif attr in self.natural_key_lower_case:
                    qs = qs.filter(**{f"{attr}__any": values})
                else:
                    qs = qs.alias(**{f"_key_{attr}": Lower(attr)}).filter(**{f"_key_{attr}__any": values})
            wanted = set(part)
            for obj in self.for_change(qs):
                key = self.record_key(obj)
                if key in wanted:
                    found.setdefault(key, []).append(obj)
        return found

    def matched_instance(self, number):
        """(instance, new) for row `number` of the batch; a ValidationError when matching refused it."""
        error = self.match_errors.get(number)
        if error:
            raise ValidationError(error)
        instance = self.matches.get(number)
        if instance is None:
            return self.init_instance(), True
        return instance, False

    # -- per-row checks, all free of queries ------------------------------------------------
    def column_of(self, attribute):
        if not hasattr(self, "_columns_of"):
            self._columns_of = {}
            for field in reversed(self.fields.values()):  # the first field of an attribute wins
                if field.attribute:
                    self._columns_of[field.attribute] = field.column_name
        return self._columns_of.get(attribute, attribute)

    def error_column(self, attribute):
        """The column an error of `attribute` belongs to, "" for the row as a whole."""
        if not hasattr(self, "_error_columns"):
            self._error_columns = {f.attribute: f.column_name for f in self.fields.values() if f.attribute}
        return self._error_columns.get(attribute, "")

    def plan_columns(self, headers):
        """What a row of these columns sets and which model fields that makes to check."""
        key = tuple(headers)
        if getattr(self, "_planned", None) == key:
            return
        self._planned = key
        present = set(headers)
        model = self._meta.model
        concrete = {f.name: f for f in model._meta.concrete_fields}
        self._row_fields, checked, validated = [], {}, {}
        for field in self.get_import_fields():
            attr = field.attribute
            if (not attr or attr == "id" or field.readonly or field.column_name not in present
                    or isinstance(field.widget, widgets.ManyToManyWidget)):
                continue
            # A plain CharWidget returns the cell as it is (the cells are text already).
            plain = type(field.widget) is widgets.CharWidget and field.default is NOT_PROVIDED
            model_field = concrete.get(attr)
            self._row_fields.append((field, field.column_name, attr, None if plain else field.widget,
                                     self.assigner(model_field, field)))
            if model_field is not None and not model_field.is_relation and not model_field.primary_key:
                validated[model_field.name] = model_field
                checked[model_field.name] = getattr(field.widget, "checks_choices", False)
        required = {f.name: f for f in model._meta.concrete_fields
                    if not (f.blank or f.is_relation or f.primary_key or f.has_default())}
        self._validated = [(f, f.attname, f.blank, checked[name], quick_check(f, checked[name]))
                           for name, f in validated.items()]
        self._validated_new = self._validated + [(f, f.attname, f.blank, False, quick_check(f, False))
                                                 for name, f in required.items() if name not in validated]
        self._passed = {f.name: set() for f, *_ in self._validated_new}  # {field: texts that passed its checks}
        self._attnames = [f.attname for f in model._meta.concrete_fields]
        self._compared = [f.attname for f in model._meta.concrete_fields
                          if not (getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))]

    @staticmethod
    def assigner(model_field, field):
        """A quicker way than setattr to set what `field`'s widget returns on the model field,
        or None: a related record (by name, so of the right model: the descriptor's checks
        would only say so again) and a country code (the widget's, which the field keeps as
        it is) go to the instance's attributes directly."""
        from django_countries.fields import CountryField

        if model_field is None:
            return None
        if isinstance(model_field, models.ForeignKey) and isinstance(field.widget, NameWidget):
            attname, target = model_field.attname, model_field.target_field.attname

            def assign_relation(instance, related):
                instance.__dict__[attname] = None if related is None else getattr(related, target)
                model_field.set_cached_value(instance, related)

            return assign_relation
        if isinstance(model_field, CountryField) and not model_field.multiple and isinstance(field.widget,
                                                                                            CountryWidget):
            name = model_field.attname

            def assign_country(instance, code):
                instance.__dict__[name] = code

            return assign_country
        return None

    def import_instance(self, instance, row, **kwargs):
        if not hasattr(self, "_row_fields"):
            self.plan_columns(list(row))
        errors = {}
        if instance.pk is not None:
            d = instance.__dict__
            instance._import_before = {name: d.get(name) for name in self._attnames}
        for field, column, attr, widget, assign in self._row_fields:
            if column not in row:
                continue
            if widget is None:
                value = row[column]
            else:
                try:
                    value = field.clean(row) if field.default is not NOT_PROVIDED else widget.clean(row[column], row=row)
                except ValueError as e:
                    errors[attr] = [str(e)]
                    continue
                except ArithmeticError:
                    # decimal's errors read "[<class 'decimal.InvalidOperation'>]": say what is wrong instead.
                    errors[attr] = [f"'{row[column][:40]}' is not a number this column can hold."]
                    continue
            if value is not None or field.saves_null_values:
                if assign is not None:
                    assign(instance, value)
                elif "__" in attr:
                    field.save(instance, row)
                else:
                    setattr(instance, attr, value)
        try:
            self.fill_defaults(instance)
            self.validate_row(instance, row)
        except ValidationError as e:
            for attr, messages in e.message_dict.items():
                errors.setdefault(attr, []).extend(messages)
        for attr, message in self.batch_errors.get(kwargs.get("row_number"), {}).items():
            errors.setdefault(attr, []).append(message)
        if errors:
            raise ValidationError(errors)

    def init_instance(self, row=None):
        """A new record with the model's defaults: a copy of a blank one (Model.__init__ sets
        forty fields one by one), when nothing listens to the model's init signals."""
        model = self._meta.model
        if not hasattr(self, "_blank"):
            self._blank = None
            if not (pre_init.has_listeners(model) or post_init.has_listeners(model)):
                self._blank = {k: v for k, v in model().__dict__.items() if k != "_state"}
                self._fresh = [f for f in model._meta.concrete_fields if f.has_default() and callable(f.default)]
        if self._blank is None:
            return model()
        instance = model.__new__(model)
        instance.__dict__.update(self._blank)
        instance._state = ModelState()
        for f in self._fresh:
            instance.__dict__[f.attname] = f.get_default()
        return instance

    @property
    def owned(self):
        if not hasattr(self, "_owned"):
            self._owned = is_owned(self._meta.model)
        return self._owned

    def fill_defaults(self, instance):
        if self.owned and self.user is not None:
            if instance.owner_id is None:
                instance.owner = self.user
            if instance.business_unit_id is None:
                instance.business_unit = instance.owner.primary_unit or self.user.primary_unit

    def validate_row(self, instance, row):
        self.clean_model_fields(instance)
        if self.owned and self.user is not None:
            self.check_placement(instance)

    def clean_model_fields(self, instance):
        """The model fields' own checks (length, format, validators, not blank) for the fields
        the row sets, and for a new record those that may not stay blank: the checks of
        Model.clean_fields without the relations (their widgets resolved them) and without
        walking again the choices a widget already checked (a country's are 250)."""
        errors = {}
        stored = instance.__dict__
        passed = self._passed
        for f, attname, blank, choices_checked, quick in (self._validated_new if instance.pk is None
                                                          else self._validated):
            raw = stored.get(attname)
            if quick is not None and (type(raw) is str and (raw or blank) or type(raw) in NUMBERS) and quick(raw):
                continue
            if type(raw) is str and raw in passed[f.name]:
                continue  # the same text passed them on an earlier row (websites repeat)
            raw = getattr(instance, f.attname)
            if f.blank and raw in f.empty_values:
                continue
            try:
                if choices_checked:
                    value = f.to_python(raw)
                    if not f.blank and value in f.empty_values:
                        raise ValidationError(f.error_messages["blank"], code="blank")
                    f.run_validators(value)
                else:
                    value = f.clean(raw, instance)
                setattr(instance, f.attname, value)
            except ValidationError as e:
                errors[f.name] = e.messages
            else:
                if type(raw) is str and value == raw:
                    known = passed[f.name]
                    if len(known) >= 10000:
                        known.clear()
                    known.add(raw)
        if errors:
            raise ValidationError(errors)

    def check_placement(self, instance):
        """A new record goes where the user may place it; changing an existing record's
        owner or unit is an Assign (crm.access: the forms' and the admin's check too)."""
        error = access(self.user).placement_error(instance, getattr(instance, "_placement", None))
        if error is not None:
            raise error

    def has_changes(self, instance):
        """Whether the row changes the record it matched (a new one always counts)."""
        before = getattr(instance, "_import_before", None)
        if before is None:
            return True
        d = instance.__dict__
        return any(d.get(name) != before[name] for name in self._compared) or self.other_changes(instance)

    def other_changes(self, instance):
        """Hook: changes beside the record's own columns (child rows, links)."""
        return False

    def skip_row(self, instance, original, row, import_validation_errors=None):
        if import_validation_errors or instance.pk is None:
            return False
        return not self.has_changes(instance)

    # -- writes: in batches, with their history ---------------------------------------------
    def save_batch(self, created, updated):
        """The batch's valid rows: new records, then changed ones, each with its history row
        (the import's reason), then what depends on them (after_save)."""
        self.save_new(created)
        self.save_changed(updated)
        self.after_save(created, updated)

    def stream_new_records(self, count):
        """Where the database can take them while the batch is checked (PostgreSQL), the
        batch's new records go to it one by one (crm.services.CopyStream); None: all at once
        in save_new."""
        return self.session.writer.stream(self._meta.model, count)

    def save_new(self, objs):
        self.session.writer.create(self._meta.model, objs)
        for obj in objs:
            self.session.touched.add(obj.pk)
            self.session.created.add(obj.pk)

    def save_changed(self, objs):
        self.session.writer.update(self._meta.model, objs, self.bulk_update_fields(),
                                   {obj.pk: obj._import_before for obj in objs})

    def after_save(self, created, updated):
        """Hook: rows that depend on the batch's written records (children, links)."""

    def restore_children(self, instances):
        """Hook for Undo: after `instances` got their fields back from history, put the rows
        derived from those fields (without history of their own) back in step."""

    def bulk_create(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        # The admin's import (import-export's bulk path) writes through the same methods.
        if self.create_instances:
            try:
                objs = list(self.create_instances)
                self.save_new(objs)
                self._saved_new += objs
            except Exception as e:
                self.handle_import_error(result, e, raise_errors)
            finally:
                self.create_instances.clear()

    def bulk_update(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        if self.update_instances:
            try:
                objs = list(self.update_instances)
                self.save_changed(objs)
                self._saved_changed += objs
            except Exception as e:
                self.handle_import_error(result, e, raise_errors)
            finally:
                self.update_instances.clear()

    def after_import(self, dataset, result, **kwargs):
        super().after_import(dataset, result, **kwargs)
        if not (result.has_errors() or result.has_validation_errors()):
            self.after_save(self._saved_new, self._saved_changed)

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

    def export_columns(self):
        """Hook: {field name: crm.exports.Column} for the export fields whose SQL neither their
        widget tells nor crm.exports derives: dehydrate methods, what depends on the exporting
        user (export_rows). They must write what export_row writes, byte for byte
        (tests/crm/test_exports.py); an export field left without a column sends the whole
        export through export_row."""
        return {}

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
    header_aliases = {"Owner": ("Owner Username", "Assigned To"), "Business Unit": ("Unit", "BU")}

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
