"""Writes that touch more than one row or model. Each is one transaction."""
import csv
import io
import itertools
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import ProtectedError
from django.template.defaultfilters import filesizeformat
from guardian.shortcuts import assign_perm, remove_perm
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model
from import_export.tmp_storages import MediaStorage
from simple_history.utils import bulk_update_with_history

from .access import PRESET_NAMES, SHARE_LEVELS, access, entity_key, governed_models, grant_codename, restrict
from .lookups import array_literal
from .models import ACTION_LABELS, ACTIONS, BusinessUnit, BusinessUnitUserObjectPermission, Level, Role, RolePermission

logger = logging.getLogger(__name__)


class Sections:
    """Record-page context from apps above the page's own app: each registers a provider
    (a decorator), the page calls the registry with its arguments and gets every provider's
    context merged, without importing those apps (crm's layering)."""

    def __init__(self):
        self.providers = []

    def register(self, provider):
        if provider not in self.providers:
            self.providers.append(provider)
        return provider

    def __call__(self, *args):
        context = {}
        for provider in self.providers:
            context.update(provider(*args))
        return context


CRM_APPS = ("crm", "channels", "accounts", "customers", "contacts", "activities", "approvals")


# -- roles and unit grants ---------------------------------------------------------------------

def grant_permissions():
    """{(model, action): Permission} of the unit grants, created for entities new since the last run."""
    from django.contrib.contenttypes.models import ContentType

    unit_type = ContentType.objects.get_for_model(BusinessUnit)
    wanted = {grant_codename(model, action): (model, action) for model in governed_models() for action in ACTIONS}
    have = {p.codename: p for p in Permission.objects.filter(content_type=unit_type, codename__in=list(wanted))}
    missing = [Permission(content_type=unit_type, codename=codename,
                          name=f"Can {ACTION_LABELS[action].lower()} {model._meta.verbose_name_plural} of the unit"[:255])
               for codename, (model, action) in wanted.items() if codename not in have]
    if missing:
        Permission.objects.bulk_create(missing, ignore_conflicts=True)
        have = {p.codename: p for p in Permission.objects.filter(content_type=unit_type, codename__in=list(wanted))}
    return {wanted[codename]: perm for codename, perm in have.items()}


def sync_roles():
    """The seeded roles exist and have a cell for every entity (new entities get the
    entity's defaults; cells an administrator set are kept). Runs after every migrate."""
    from .views import ENTITIES

    with transaction.atomic():
        changed = []
        for preset, name in PRESET_NAMES.items():
            role = Role.objects.filter(preset=preset).first() or Role.objects.filter(name=name).first()
            if role is None:
                role = Role.objects.create(name=name, preset=preset, administers=preset == Role.Preset.ADMINISTRATOR)
            elif role.preset != preset:
                role.preset = preset
                role.save(update_fields=["preset"])
            have = {(p.entity, p.action) for p in role.permissions.all()}
            cells = [RolePermission(role=role, entity=entity_key(e.model), action=action, level=level)
                     for e in ENTITIES if e.in_role_matrix
                     for action, level in e.default_levels(preset).items()
                     if (entity_key(e.model), action) not in have]
            if cells:
                RolePermission.objects.bulk_create(cells)
                changed.append(role)
        grant_permissions()
        for role in changed:
            sync_role_holders(role)


def sync_role_holders(role):
    for user in role.users.all():
        sync_user_access(user)


def save_role(role, levels, user=None):
    """Save a role and its matrix ({(entity label, action): level}) and recompute the grants
    of its holders, in one transaction."""
    with transaction.atomic():
        role.save()
        have = {(p.entity, p.action): p for p in role.permissions.all()}
        new, changed = [], []
        for (entity, action), level in levels.items():
            cell = have.get((entity, action))
            if cell is None:
                new.append(RolePermission(role=role, entity=entity, action=action, level=level))
            elif cell.level != level:
                cell.level = level
                changed.append(cell)
        RolePermission.objects.bulk_create(new)
        RolePermission.objects.bulk_update(changed, ["level"])
        sync_role_holders(role)
    return role


def save_user(form, by):
    """Create or edit a user from the Users page: his account, units and roles, and his unit
    grants recomputed once at the end (one transaction)."""
    with transaction.atomic():
        user = form.save(commit=False)
        if form.cleaned_data.get("password1"):
            user.set_password(form.cleaned_data["password1"])
        user._syncing_access = True
        try:
            user.save()
            form.save_m2m()
        finally:
            user._syncing_access = False
        sync_user_access(user)
    return user


def deactivate_users(users, by):
    """Deactivated users can no longer log in; their records stay theirs."""
    with transaction.atomic():
        return users.filter(is_active=True).update(is_active=False)


def set_roles(user, role_names):
    """Give `user` exactly the roles named (and recompute his grants)."""
    with transaction.atomic():
        user._syncing_access = True
        try:
            user.roles.set(Role.objects.filter(name__in=role_names))
        finally:
            user._syncing_access = False
        sync_user_access(user)


def sync_user_access(user):
    """Recompute a user's unit-group memberships and unit grants from his roles and units:
    a guardian permission on each unit his business-unit and division levels reach, none
    for user and organization levels."""
    from .access import Access

    user._syncing_access = True
    try:
        with transaction.atomic():
            if user.primary_unit_id and not user.business_units.filter(pk=user.primary_unit_id).exists():
                user.business_units.add(user.primary_unit_id)
            units = set(user.business_units.values_list("pk", flat=True))
            unit_groups = Group.objects.filter(business_unit__isnull=False)
            user.groups.remove(*unit_groups.exclude(business_unit__in=units))
            user.groups.add(*Group.objects.filter(business_unit__in=units))

            levels = Access(user)  # fresh: not the request's cached answers
            perms = grant_permissions()
            tree = None
            wanted = set()
            for (model, action), perm in perms.items():
                level = levels.level(model, action)
                if level == Level.BUSINESS_UNIT:
                    covered = units
                elif level == Level.DIVISION:
                    tree = tree if tree is not None else BusinessUnit.descendants_map()
                    covered = set().union(*(tree.get(pk, {pk}) for pk in units)) if units else set()
                else:
                    continue
                wanted |= {(perm.pk, unit_id) for unit_id in covered}

            grants = BusinessUnitUserObjectPermission.objects.filter(user=user)
            have = set(grants.values_list("permission_id", "content_object_id"))
            for perm_id, unit_id in have - wanted:
                grants.filter(permission_id=perm_id, content_object_id=unit_id).delete()
            BusinessUnitUserObjectPermission.objects.bulk_create([
                BusinessUnitUserObjectPermission(user=user, permission_id=perm_id, content_object_id=unit_id)
                for perm_id, unit_id in wanted - have
            ])
    finally:
        user._syncing_access = False
    if hasattr(user, "_crm_access"):
        del user._crm_access


# -- record writes ----------------------------------------------------------------------------

def save_form(form, user):
    """Create or edit a record from a validated form; history records the user."""
    with transaction.atomic():
        obj = form.save(commit=False)
        obj._history_user = user
        obj.save()
        form.save_m2m()
    return obj


def save_edit(entity, form, user):
    """`entity.save(form, user)` for a validated record form; an existing record is locked
    first and the save refused (versions.StaleEdit, nothing written) when it is no longer at
    the version the form was opened at."""
    from . import versions

    with transaction.atomic():
        versions.check(form)
        return entity.save(form, user)


def delete_records(queryset, user, entity=None):
    """Delete `queryset`, all of which the user must be allowed to delete. Returns (deleted,
    refused message)."""
    allowed = entity.restricted(user, "delete") if entity else restrict(queryset.model._default_manager.all(), user, "delete")
    allowed = allowed.filter(pk__in=queryset.values("pk"))
    if allowed.count() != queryset.count():
        raise PermissionDenied("You may not delete some of the selected records.")
    try:
        with transaction.atomic():
            count = 0
            # Locked in pk order, as every multi-row write here, so two writers cannot deadlock.
            # A plain query: the entity's select_related joins cannot be locked on PostgreSQL.
            locked = queryset.model._base_manager.filter(pk__in=allowed.values("pk"))
            for obj in locked.select_for_update().order_by("pk"):
                obj._history_user = user
                obj.delete()
                count += 1
    except ProtectedError as e:
        # Only referencing records the user may view are named and counted; the hidden ones
        # are "other records you cannot see", so the refusal tells nothing of them. One
        # query per referencing model.
        from .views import ENTITIES

        entities = {e.model: e for e in ENTITIES}
        pks_by_model = {}
        for obj in e.protected_objects:
            pks_by_model.setdefault(type(obj), set()).add(obj.pk)
        parts, hidden = [], False
        for model, pks in sorted(pks_by_model.items(), key=lambda item: str(item[0]._meta.verbose_name_plural)):
            entity = entities.get(model)
            try:
                visible = entity.restricted(user) if entity else restrict(model._default_manager.all(), user)
            except PermissionDenied:
                visible = model._default_manager.none()
            names = sorted(str(o) for o in visible.filter(pk__in=sorted(pks)))
            hidden = hidden or len(names) < len(pks)
            if names:
                noun = model._meta.verbose_name if len(names) == 1 else model._meta.verbose_name_plural
                listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                parts.append(f"{len(names)} {noun} ({listed})")
        if hidden:
            parts.append("other records you cannot see")
        return 0, f"Cannot delete: still referenced by {'; '.join(parts)}."
    return count, None


def assign_records(queryset, owner, unit, user):
    """Reassign records to a new owner and unit (mass Assign)."""
    if restrict(queryset, user, "assign").count() != queryset.count():
        raise PermissionDenied("You may not assign some of the selected records.")
    if not access(user).may_place(queryset.model, owner, unit, "assign"):
        raise PermissionDenied(f"You may not give records to {owner} in {unit}.")
    from .versions import bump

    with transaction.atomic():
        objs = list(queryset.select_for_update().order_by("pk"))
        for obj in objs:
            obj.owner, obj.business_unit = owner, unit
        bulk_update_with_history(
            objs, queryset.model, bump(objs, ["owner", "business_unit"]), default_user=user,
            default_change_reason=f"Assigned to {owner.username} ({unit})",
        )
    return len(objs)


def share_record(obj, user, target, level="view"):
    """Share one record with a user or a business unit (all its members)."""
    if not access(user).can("share", obj):
        raise PermissionDenied("You may not share this record.")
    grantee = target.group if isinstance(target, BusinessUnit) else target
    model = obj._meta.model_name
    with transaction.atomic():
        # Two shares of one record at once would both remove and both add the same rows.
        type(obj)._base_manager.select_for_update().filter(pk=obj.pk).first()
        unshare_record(obj, user, target)
        for action in SHARE_LEVELS[level]:
            assign_perm(f"{action}_{model}", grantee, obj)


def unshare_record(obj, user, target):
    if not access(user).can("share", obj):
        raise PermissionDenied("You may not share this record.")
    grantee = target.group if isinstance(target, BusinessUnit) else target
    model = obj._meta.model_name
    with transaction.atomic():
        for action in ("view", "change"):
            remove_perm(f"{action}_{model}", grantee, obj)


def shares_of(obj):
    """[(target, level)] for the record page: users and units it is shared with."""
    model = obj._meta.model_name
    found = {}
    for row in get_user_obj_perms_model(obj).objects.filter(content_object=obj).select_related("user", "permission"):
        found.setdefault(row.user, set()).add(row.permission.codename)
    for row in (get_group_obj_perms_model(obj).objects.filter(content_object=obj, group__business_unit__isnull=False)
                .select_related("group__business_unit", "permission")):
        found.setdefault(row.group.business_unit, set()).add(row.permission.codename)
    return [(target, "change" if f"change_{model}" in codes else "view") for target, codes in found.items()]


# -- saved views of the grids ------------------------------------------------------------------

# Parameters of a grid's address that are not its state: the page it was on, the "plain
# grid" switch (crm.views.GridView.PLAIN) and a form's token.
NOT_GRID_STATE = ("page", "reset", "csrfmiddlewaretoken")
MAX_QUERY_LENGTH = 4000


def grid_query(params):
    """The canonical query string of a grid's state from its request parameters: without
    the page and blank values, the chosen columns as one `cols=a,b` value, keys sorted (so
    the grid recognises a saved view it is showing)."""
    from urllib.parse import urlencode

    pairs = []
    for key in sorted(params.keys()):
        if key in NOT_GRID_STATE:
            continue
        values = [v.strip() for v in params.getlist(key) if v.strip()]
        if key == "cols":
            names = [n.strip() for v in values for n in v.split(",") if n.strip()]
            values = [",".join(dict.fromkeys(names))] if names else []
        pairs += [(key, v) for v in values]
    query = urlencode(pairs)
    # Too long a state loses its last parameters whole, never half of one.
    return query if len(query) <= MAX_QUERY_LENGTH else query[:MAX_QUERY_LENGTH].rpartition("&")[0]


def visible_saved_views(user):
    """Saved views the user may apply: his own and those shared with one of his units."""
    from django.db.models import Q

    from .models import SavedView

    return SavedView.objects.filter(Q(owner=user) | Q(shared_with__in=user.business_units.all()))


def saved_views_for(user, grid):
    """The saved views of one grid the user may apply, his own first (one query)."""
    views = visible_saved_views(user).filter(grid=grid).select_related("owner", "shared_with")
    return sorted(views, key=lambda v: (v.owner_id != user.pk, v.name.lower(), v.pk))


def is_showing(view, params):
    """Is the grid with these request parameters showing the saved view?"""
    from django.http import QueryDict

    return grid_query(QueryDict(view.query)) == grid_query(params)


def save_view(view, user, share=None):
    """Create or change a saved view of `user` (its owner). `share`: True shares it with his
    primary unit, False stops sharing, None leaves it. A new default replaces his previous
    default of that grid, in the same transaction."""
    from django.http import QueryDict

    if view.owner_id is None:
        view.owner = user
    if view.owner_id != user.pk:
        raise PermissionDenied("Only its owner changes a saved view.")
    if share is not None:
        view.shared_with_id = user.primary_unit_id if share else None
    view.query = grid_query(QueryDict(view.query))  # as typed in the admin, too
    with transaction.atomic():
        if view.is_default:
            type(view).objects.filter(owner_id=user.pk, grid=view.grid, is_default=True).exclude(
                pk=view.pk).update(is_default=False)
        view.save()
    return view


def delete_view(view, user):
    if view.owner_id != user.pk:
        raise PermissionDenied("Only its owner deletes a saved view.")
    view.delete()


# -- CSV import ---------------------------------------------------------------------------------

class UploadStore(MediaStorage):
    """import-export's temporary storage on Django's default storage (shared by every web
    server and worker), in the `imports/` folder; also the admin import's (settings)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("MEDIA_FOLDER", "imports")
        super().__init__(**kwargs)

    def exists(self):
        return bool(self.name) and self._storage.exists(self.get_full_path())


def upload_store(name=None):
    return UploadStore(name=name)


def forget_abandoned_uploads(max_age=24 * 3600):
    """Validated files nobody confirmed within a day are deleted (at the next upload)."""
    from django.utils import timezone

    store = UploadStore()
    storage, folder = store._storage, store.MEDIA_FOLDER
    try:
        names = storage.listdir(folder)[1]
    except FileNotFoundError:
        return
    now = timezone.now()
    for name in names:
        path = f"{folder}/{name}"
        try:
            if (now - storage.get_modified_time(path)).total_seconds() > max_age:
                storage.delete(path)
        except FileNotFoundError:
            pass  # another request removed it first


class CSVFileError(Exception):
    """The file as a whole cannot be read; nothing was written."""


IMPORT_MODES = ("create", "create_update", "update")
READ_CHUNK = 1 << 16  # bytes read at a time: a pass over the file holds one chunk and one batch
KEEP_ERRORS = 5000    # row errors kept in memory; the rest wait in a temporary file


@dataclass(slots=True)
class RowError:
    row: int          # line in the file, the header being line 1 (as a spreadsheet shows it)
    column: str
    message: str


class ErrorList:
    """The row errors of an import, in row order, as a list. A million bad rows must not be
    held in memory: past the first KEEP_ERRORS they go to a temporary file and are read
    back when iterated (the error report), while the job reads only the first ones."""

    def __init__(self, errors=()):
        self._first, self._spill, self._count = [], None, 0
        for error in errors:
            self.append(error)

    def append(self, error):
        import pickle
        import tempfile

        self._count += 1
        if len(self._first) < KEEP_ERRORS:
            self._first.append(error)
            return
        if self._spill is None:
            self._spill = tempfile.TemporaryFile()
        self._spill.seek(0, io.SEEK_END)
        pickle.dump((error.row, error.column, error.message), self._spill)

    def extend(self, errors):
        for error in errors:
            self.append(error)

    def __len__(self):
        return self._count

    def __iter__(self):
        import pickle

        yield from list(self._first)
        if self._spill is not None:
            self._spill.seek(0)
            for _ in range(self._count - len(self._first)):
                yield RowError(*pickle.load(self._spill))

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(self._count)
            if stop <= len(self._first):
                return self._first[index]
            return list(self)[index]
        if index < 0:
            index += self._count
        if 0 <= index < len(self._first):
            return self._first[index]
        if not 0 <= index < self._count:
            raise IndexError("error index out of range")
        return list(self)[index]

    def __eq__(self, other):
        if isinstance(other, (ErrorList, list, tuple)):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    def __repr__(self):
        more = f", … {self._count - 3} more" if self._count > 3 else ""
        return f"ErrorList({self._first[:3]!r}{more})"


@dataclass
class ImportReport:
    total: int = 0
    new: int = 0
    update: int = 0
    skip: int = 0
    errors: ErrorList = field(default_factory=ErrorList)
    file_errors: list = field(default_factory=list)
    notes: list = field(default_factory=list)   # e.g. "3 accounts will be created"
    written: bool = False
    unmatched: list = field(default_factory=list)  # the file's headers matched to no column: ignored
    columns: dict = field(default_factory=dict)    # {the file's header: the column it was matched to}
    mode: str = "create_update"
    rejected: int = 0                              # rows with errors

    @property
    def ok(self):
        return not self.errors and not self.file_errors

    def error_rows(self):
        if self.rejected or not self.errors:
            return self.rejected
        return len({e.row for e in self.errors})


def not_csv_message(head):
    """Why the first bytes of an upload are not a UTF-8 CSV file, or None. Spreadsheets
    and Windows tools save other formats under a .csv name; saying which one tells the user
    what to change, where "not UTF-8" or "not a CSV text file" would leave him guessing."""
    if head.startswith(b"PK\x03\x04"):
        return ("This is an Excel or other zipped file (XLSX), not a CSV file: in the spreadsheet choose "
                "Save As > 'CSV UTF-8' and upload that file.")
    if head.startswith((b"\xd0\xcf\x11\xe0", b"%PDF")):
        return "This is not a CSV file (it is an old Excel workbook, a Word file or a PDF). Save it as 'CSV UTF-8'."
    sample = head[:200]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")) or (
            len(sample) >= 4 and sample.count(b"\x00") * 3 >= len(sample) and
            (sample[1::2].count(b"\x00") * 2 >= len(sample) // 2 or sample[0::2].count(b"\x00") * 2 >= len(sample) // 2)):
        return ("The file is UTF-16 encoded; imports expect UTF-8. Save it as 'CSV UTF-8' and upload it again.")
    return None


def too_large_message(size):
    # Human sizes: a whole-MB format said "the limit is 0 MB" for any limit under 1 MB.
    return (f"The file is {filesizeformat(size)}; the limit is {filesizeformat(settings.CRM_IMPORT_MAX_BYTES)}."
            .replace("\xa0", " "))


class CSVFile:
    """An uploaded CSV file (bytes, or a binary file open for reading) read record by record,
    as many times as the import needs, never held whole: each pass starts it again."""

    def __init__(self, data):
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = io.BytesIO(data)
        elif not data.seekable():  # a second pass must be able to start again: keep a copy
            import shutil
            import tempfile

            copy = tempfile.SpooledTemporaryFile(max_size=16 * READ_CHUNK)
            shutil.copyfileobj(data, copy)
            data = copy
        self.file = data
        size = getattr(data, "size", None)
        if size is None:
            data.seek(0, io.SEEK_END)
            size = data.tell()
        self.size = size

    def _raw_lines(self):
        # bytes.splitlines cuts at \n, \r\n and a lone \r (old Mac files) as csv expects; a CR
        # or LF byte never occurs inside a multi-byte UTF-8 character.
        self.file.seek(0)
        pending = b""
        while True:
            chunk = self.file.read(READ_CHUNK)
            if not chunk:
                break
            lines = (pending + chunk).splitlines(True)
            pending = lines.pop()
            if pending.endswith(b"\n"):  # complete; one ending in \r may still get its \n
                lines.append(pending)
                pending = b""
            yield from lines
        if pending:
            yield pending

    def lines(self):
        """The file's lines as text; CSVFileError at the first one that is not UTF-8 text."""
        self.file.seek(0)
        wrong = not_csv_message(self.file.read(512))
        if wrong:
            raise CSVFileError(wrong)
        offset = 0
        for number, raw in enumerate(self._raw_lines(), start=1):  # it starts again at the first byte
            start = 3 if number == 1 and raw.startswith(b"\xef\xbb\xbf") else 0
            try:
                text = raw[start:].decode("utf-8")
            except UnicodeDecodeError as e:
                raise CSVFileError(
                    f"The file is not UTF-8 encoded (line {number}, byte {offset + start + e.start + 1}). "
                    "Save it as 'CSV UTF-8' and upload it again."
                ) from None
            if "\x00" in text:
                raise CSVFileError("This is not a CSV text file.")
            offset += len(raw)
            yield text

    def records(self):
        """(record number, cells) of every CSV record, blank ones included: a spreadsheet
        numbers them too, so the header is row 1 and errors name the row the user sees."""
        reader = csv.reader(self.lines(), strict=True)
        try:
            for number, cells in enumerate(reader, start=1):
                yield number, cells
        except csv.Error as e:
            if "field limit" in str(e):
                raise CSVFileError(f"Line {reader.line_num} has a cell longer than {csv.field_size_limit():,} "
                                   "characters, far more than any column takes.") from None
            raise CSVFileError(f"The file is not valid CSV (line {reader.line_num}): {e}.") from None


def database_error_message(error):
    """A database error in words a user can act on; the error itself goes to the log."""
    from django.db import IntegrityError, OperationalError

    text = str(error).lower()
    if isinstance(error, OperationalError) and ("locked" in text or "busy" in text or "deadlock" in text):
        return ("the database was busy with another import or change for too long. Nothing was written: "
                "start the import again.")
    if isinstance(error, IntegrityError):
        return ("they clash with records saved by someone else during the import (a name or key that must be "
                "unique, or a related record deleted meanwhile). Nothing was written: validate the file again.")
    if isinstance(error, OperationalError):
        return "the database connection failed. Nothing was written: start the import again."
    return ("the database refused them (a value it cannot store). Nothing was written; the administrators "
            "find the details in the server log.")


MAX_MESSAGE = 300  # characters of a row error: a message quoting a 100,000-character cell says no more


def _blank(cells):
    return not any(map(str.strip, cells))


class ReadAhead:
    """An iterator that can read its next item early (`fetch`), while there is time to."""

    def __init__(self, items):
        self.items, self.early = iter(items), []

    def __iter__(self):
        return self

    def __next__(self):
        return self.early.pop() if self.early else next(self.items)

    def fetch(self):
        if not self.early:
            self.early.extend(itertools.islice(self.items, 1))


class Importer:
    """One run of import_csv. The file is read twice: a first pass checks that it can be read,
    matches its header, counts its rows and shows the resource what it must know of the whole
    file (crm.resources.ImportSession); then it is read batch by batch, each batch validated
    and written (so later rows see earlier ones) inside the one transaction of the import."""

    def __init__(self, resource, source, report, mapping=None, progress=None):
        self.resource, self.source, self.report = resource, source, report
        self.mapping, self.progress = mapping, progress

    # -- the first pass ---------------------------------------------------------------------
    def scan(self):
        resource, report = self.resource, self.report
        records = self.source.records()
        for number, cells in records:
            if not _blank(cells):
                self.header_line, headers = number, [cell.strip() for cell in cells]
                break
        else:
            raise CSVFileError("The file is empty.")
        self.width = len(headers)
        match = resource.match_headers(headers, self.mapping)
        if match.errors:
            raise CSVFileError(*match.errors)
        report.columns, report.unmatched = match.columns, match.unmatched
        if match.blank:
            report.notes.append(f"{match.blank} column{'s' if match.blank != 1 else ''} without a header "
                                f"{'were' if match.blank != 1 else 'was'} ignored.")
        self.positions = match.positions
        self.matched = self.picker(self.positions)
        self.headers = {column: header for header, column in match.columns.items()}
        session = resource.session
        session.headers = self.headers
        # The first pass reads only the columns the resource's file keys need.
        wanted = resource.file_key_columns() if resource.tracks_file_keys() else ()
        keyed = self.picker([(index, column) for index, column in self.positions if column in wanted])
        # IDs too: a second row with the same ID names the first (ImportSession.earlier_line).
        from .ids import as_id
        from .resources import id_key

        id_index = next((index for index, column in self.positions if column == "ID"), None)
        total = 0
        for number, cells in records:
            if _blank(cells):
                continue
            total += 1
            if len(cells) == self.width:
                if keyed[1]:
                    session.note_keys(resource.file_keys(self.row_of(cells, keyed)))
                if id_index is not None:
                    # as_id, not int(): a 5,000-digit cell made int() raise and the preview fail.
                    pk = as_id(cells[id_index].strip())
                    if pk is not None:
                        session.note_keys([id_key(pk)])
        if not total:
            raise CSVFileError("The file has a header but no rows.")
        session.end_scan()
        report.total = total

    @staticmethod
    def picker(positions):
        """(pick, columns) for row_of: `pick(cells)` gives the cells of `positions` ((index,
        column) pairs) as a tuple, picked in C (a file has a million rows of a few dozen cells)."""
        from operator import itemgetter

        indexes = [index for index, _ in positions]
        pick = (itemgetter(*indexes) if len(indexes) > 1  # itemgetter(i) gives no tuple
                else lambda cells: tuple(cells[index] for index in indexes))
        return pick, [column for _, column in positions]

    def row_of(self, cells, picker=None):
        """{column: cell} of the file's matched columns (or `picker`'s), stripped, formula
        quotes removed."""
        from .resources import unneutralise

        pick, columns = picker or self.matched
        values = [cell.strip() for cell in pick(cells)]
        # A cell that starts with a quote shows as "\0'" once joined: the file has no NUL.
        if "\x00'" in "\x00" + "\x00".join(values):
            values = [unneutralise(value) for value in values]
        return dict(zip(columns, values))

    # -- the second pass ----------------------------------------------------------------------
    def batches(self):
        """([(line, row)], [RowError of the rows with the wrong number of cells]) per batch."""
        size = settings.CRM_IMPORT_BATCH_SIZE
        rows, ragged = [], []
        for number, cells in self.source.records():
            if number <= self.header_line or _blank(cells):
                continue
            if len(cells) != self.width:
                ragged.append(RowError(number, "", f"Has {len(cells)} cells; the header has {self.width}."))
            else:
                rows.append((number, self.row_of(cells)))
            if len(rows) + len(ragged) >= size:
                yield rows, ragged
                rows, ragged = [], []
        if rows or ragged:
            yield rows, ragged

    def run(self, dry_run):
        from django.db import DatabaseError

        from .resources import Batch

        resource, report = self.resource, self.report
        done = 0
        with transaction.atomic():
            resource.start_import(report, self)
            self.pending = ReadAhead(self.batches())
            for rows, ragged in self.pending:
                errors = list(ragged)
                if rows:
                    try:
                        with transaction.atomic():  # a savepoint: a database error ends the import cleanly
                            errors += self.import_batch(Batch(rows, list(self.headers)))
                    except DatabaseError as e:
                        logger.exception("Import of rows %s-%s refused by the database", rows[0][0], rows[-1][0])
                        report.file_errors.append(f"Rows {rows[0][0]}-{rows[-1][0]}: {database_error_message(e)}")
                        break
                if errors:
                    errors.sort(key=lambda e: e.row)
                    report.errors.extend(errors)
                    report.rejected += len({e.row for e in errors})
                done += len(rows) + len(ragged)
                if self.progress is not None:
                    self.progress(done, report.total)
            report.notes.extend(resource.finish_import(report))
            if dry_run or not report.ok:
                transaction.set_rollback(True)
            else:
                report.written = True

    def import_batch(self, batch):
        import contextlib

        from django.core.exceptions import ValidationError

        resource, report = self.resource, self.report
        resource.prepare_batch(batch)
        created, updated, errors = [], [], []
        stream = resource.stream_new_records(len(batch))
        with stream or contextlib.nullcontext():
            for number, (line, row) in enumerate(batch.items, start=1):
                try:
                    instance, new = resource.matched_instance(number)
                    resource.import_instance(instance, row, row_number=number)
                except ValidationError as e:
                    errors += self.row_errors(line, e)
                    continue
                if new:
                    created.append(instance)
                    if stream is not None:
                        stream.write(instance)
                elif resource.has_changes(instance):
                    updated.append(instance)
                else:
                    report.skip += 1
            if stream is not None and hasattr(self, "pending"):
                # The database is still inserting this batch's records: read the next batch
                # from the file meanwhile, rather than after waiting for it.
                self.pending.fetch()
        resource.save_batch(created, updated)
        report.new += len(created)
        report.update += len(updated)
        return errors

    def row_errors(self, line, error):
        found = []
        for attr, messages in error.message_dict.items() if hasattr(error, "error_dict") else [("", error.messages)]:
            column = self.resource.error_column(attr)
            column = self.headers.get(column, column)  # the header as the file writes it
            found += [RowError(line, column, message if len(message) <= MAX_MESSAGE
                               else message[: MAX_MESSAGE - 1] + "…") for message in messages]
        return found


def import_csv(resource_class, data, user, dry_run=True, mode="create_update", mapping=None, progress=None,
               change_reason="CSV import", changed_since=None):
    """Validate (dry_run) or import a CSV file: all rows or none.

    `data` is bytes or a binary file; it is streamed. `mode`: "create" adds only, "update"
    updates only, "create_update" both; rows match by ID, else by the resource's natural key
    (crm.resources). `mapping` {file header: column name or "" to ignore} matches the headers
    the resource does not know. `progress(done, total)` is called after every batch. Every
    history row the import writes carries `change_reason` (Undo finds the import by it).

    The rows go through the resource batch by batch inside one transaction; a dry run, or
    any invalid row, rolls the whole transaction back. `changed_since` (the time of the
    preview): a row that would update a record changed after it is refused, not applied
    over a change the user never saw."""
    report = ImportReport(mode=mode)
    resource = resource_class(user=user)
    try:
        if mode not in IMPORT_MODES:
            raise CSVFileError(f"Unknown import mode '{mode}': use one of {', '.join(IMPORT_MODES)}.")
        source = CSVFile(data)
        if source.size > settings.CRM_IMPORT_MAX_BYTES:
            raise CSVFileError(too_large_message(source.size) + " Split it into smaller files.")
        resource.begin_session(mode=mode, change_reason=change_reason)
        resource.session.changed_since = changed_since
        resource.session.writer.rehearsal = dry_run
        importer = Importer(resource, source, report, mapping, progress)
        importer.scan()
    except CSVFileError as e:
        report.file_errors.extend(str(message) for message in e.args)
        return report
    importer.run(dry_run)
    return report


def error_report_csv(data, report, out):
    """The rejected rows of `data` as a CSV file written to the binary file `out`: the file's
    header and an Error column, then each rejected row as it was in the file with its
    messages ("Column: message", joined by "; "). UTF-8 with a BOM, for spreadsheets. Both
    the file and the errors are streamed, in row order."""
    source = CSVFile(data)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    errors = iter(report.errors)
    pending = next(errors, None)
    out.write(b"\xef\xbb\xbf")
    header_seen = False
    try:
        for number, cells in source.records():
            if not header_seen:
                if _blank(cells):
                    continue
                header_seen = True
                writer.writerow(cells + ["Error"])
                continue
            while pending is not None and pending.row < number:
                pending = next(errors, None)  # an error of no row of the file: nothing to attach it to
            if pending is None:
                break
            if pending.row != number:
                continue
            messages = []
            while pending is not None and pending.row == number:
                messages.append(f"{pending.column}: {pending.message}" if pending.column else pending.message)
                pending = next(errors, None)
            writer.writerow(cells + ["; ".join(messages)])
            if buffer.tell() > READ_CHUNK:
                out.write(buffer.getvalue().encode("utf-8"))
                buffer.seek(0)
                buffer.truncate()
    except CSVFileError:
        pass  # the import reported it; the rows read so far are in the report
    out.write(buffer.getvalue().encode("utf-8"))


# -- bulk writes of an import ---------------------------------------------------------------------

class BulkWriter:
    """The inserts and updates of an import batch with their history rows, in a few statements
    per batch whatever its size. On PostgreSQL: COPY (ids taken from the sequence first, so
    nothing is read back; new records even while the batch is checked, CopyStream), updates
    through a staging table and one UPDATE ... FROM, history rows and rows derived from the
    written records by INSERT ... SELECT. Elsewhere bulk_create and executemany. Every
    history row carries the importing user and the import's change reason."""

    BEFORE = "State before a CSV import"  # a baseline history row's reason (see update)
    # A dry run (the preview) writes the records, as later rows must see earlier ones, but
    # not what nothing reads before the rollback: history rows and rows derived from the
    # records (a customer's email and phone rows). A fifth of a preview's time.
    rehearsal = False

    def __init__(self, user=None, reason="CSV import"):
        from django.db import connection

        self.connection = connection
        self.user_id = getattr(user, "pk", None)
        self.reason = reason
        self.copy = connection.vendor == "postgresql"
        self._stages = set()
        self._plans = {}

    # -- what goes into the database ----------------------------------------------------------
    def plan(self, model):
        """(concrete fields, their attnames, a converter per field or None when the attribute's
        value goes to the database as it is, the relations as (attname, name, target attname),
        the timestamps a new row gets, those a changed row gets, whether no value needs a
        converter) of `model`."""
        if model not in self._plans:
            from django.db import models as m
            from django_countries.fields import CountryField

            plain = (m.AutoField, m.BigAutoField, m.CharField, m.TextField, m.EmailField, m.URLField,
                     m.IntegerField, m.PositiveIntegerField, m.PositiveSmallIntegerField, m.SmallIntegerField,
                     m.BigIntegerField, m.BooleanField, m.DecimalField, m.DateTimeField, m.DateField, m.ForeignKey,
                     m.OneToOneField)
            fields = list(model._meta.concrete_fields)
            convert = []
            for f in fields:
                simple = type(f) in plain or (isinstance(f, CountryField) and not f.multiple)
                convert.append(None if simple else f)
            relations = [(f.attname, f.name, f.target_field.attname) for f in fields if f.is_relation]
            stamped = [f.attname for f in fields if getattr(f, "auto_now", False)]
            stamped_new = stamped + [f.attname for f in fields if getattr(f, "auto_now_add", False)]
            self._plans[model] = (fields, [f.attname for f in fields], convert, relations, stamped_new, stamped,
                                  not any(convert))
        return self._plans[model]

    def values(self, model, source, plan=None):
        """The database values of one row from `source`, a dict of attname: value (an
        instance's __dict__, or a snapshot of it)."""
        plan = plan or self.plan(model)
        fields, names, convert, plain = plan[0], plan[1], plan[2], plan[6]
        if plain:
            return [source[name] for name in names]
        return [source[name] if c is None else c.get_db_prep_save(source[name], self.connection)
                for name, c in zip(names, convert)]

    def _copy(self, table, columns, rows):
        qn = self.connection.ops.quote_name
        sql = f"COPY {qn(table)} ({', '.join(qn(c) for c in columns)}) FROM STDIN"
        # psycopg's own errors, as Django's (an IntegrityError is a DatabaseError the import reports).
        with self.connection.wrap_database_errors, self.connection.cursor() as cursor:
            with cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)

    def _insert_many(self, table, fields, rows):
        """Rows of database values into `table`: COPY, or one executemany elsewhere."""
        if self.copy:
            return self._copy(table, [f.column for f in fields], rows)
        qn = self.connection.ops.quote_name
        sql = (f"INSERT INTO {qn(table)} ({', '.join(qn(f.column) for f in fields)}) "
               f"VALUES ({', '.join(['%s'] * len(fields))})")
        with self.connection.cursor() as cursor:
            cursor.executemany(sql, list(rows))

    def _next_ids(self, model, count):
        table = model._meta.db_table
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                           [table, model._meta.pk.column, count])
            return [row[0] for row in cursor.fetchall()]

    def _link_saved_relations(self, model, objs):
        """A relation assigned while its record was unsaved (a parent company created by the
        same batch) gets the record's id now, as Model.save and bulk_create would do."""
        relations = self.plan(model)[3]
        for obj in objs:
            d, cache = obj.__dict__, obj._state.fields_cache
            for attname, name, target in relations:
                if d[attname] is None:
                    related = cache.get(name)
                    if related is not None:
                        d[attname] = getattr(related, target)

    def _stamp(self, model, objs, now, created):
        """The auto_now (and for new rows auto_now_add) timestamps, which save() would set."""
        names = self.plan(model)[4 if created else 5]
        for obj in objs:
            d = obj.__dict__
            for name in names:
                d[name] = now

    # -- the writes ---------------------------------------------------------------------------
    def create(self, model, objs, history=True):
        """Insert `objs` (their pks set afterwards), with a "+" history row each."""
        from django.utils import timezone

        if not objs:
            return
        now = timezone.now()
        fresh = [obj for obj in objs if not getattr(obj, "_import_streamed", False)]  # not sent by a CopyStream
        if fresh:
            self._stamp(model, fresh, now, created=True)
            self._link_saved_relations(model, fresh)
            if self.copy:
                for obj, pk in zip(fresh, self._next_ids(model, len(fresh))):
                    obj.pk = pk
                plan = self.plan(model)
                self._copy(model._meta.db_table, [f.column for f in plan[0]],
                           (self.values(model, obj.__dict__, plan) for obj in fresh))
                for obj in fresh:
                    obj._state.adding, obj._state.db = False, "default"
            else:
                model._default_manager.bulk_create(fresh)
        if history and hasattr(model, "history"):
            self.history_of(model, objs, "+", now)

    def stream(self, model, count):
        """A CopyStream for the new records of a batch of `count` rows, or None where rows
        are written after the batch (not PostgreSQL)."""
        return CopyStream(self, model, count) if self.copy else None

    def update(self, model, objs, fields, before=None):
        """Write `fields` of `objs`, with a "~" history row each. `before` ({pk: snapshot of
        the record as loaded}) is the state Undo restores: where the record's newest history
        row does not hold it (no history yet, or a change that wrote none), a baseline history
        row with it goes in first."""
        from django.utils import timezone

        from .versions import bump

        if not objs:
            return
        now = timezone.now()
        self._stamp(model, objs, now, created=False)
        fields = bump(objs, fields)  # an edit form opened before the import is stale now
        tracked = hasattr(model, "history")
        if tracked and before:
            self.baseline(model, objs, before, now)
        if self.copy:
            self._update_by_copy(model, objs, fields)
        else:
            self._update_many(model, objs, fields)
        if tracked:
            self.history_of(model, objs, "~", now)

    def _update_by_copy(self, model, objs, fields):
        import zlib

        qn = self.connection.ops.quote_name
        meta = model._meta
        by_name = {f.name: f for f in meta.concrete_fields}
        columns = [meta.pk] + [by_name[name] for name in fields if name in by_name and not by_name[name].primary_key]
        table = meta.db_table
        stage = f"import_stage_{zlib.crc32(' '.join([table] + [f.column for f in columns]).encode()):08x}"
        with self.connection.cursor() as cursor:
            if stage not in self._stages:
                # Dropped with the transaction; its columns have the table's types, not its constraints.
                cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {qn(stage)} ON COMMIT DROP AS "
                               f"SELECT {', '.join(qn(f.column) for f in columns)} FROM {qn(table)} WITH NO DATA")
                self._stages.add(stage)
            cursor.execute(f"TRUNCATE {qn(stage)}")
        plan = self.plan(model)
        convert = dict(zip(plan[1], plan[2]))
        names = [f.attname for f in columns]
        self._link_saved_relations(model, objs)

        def rows():
            for obj in objs:
                d = obj.__dict__
                yield [d[n] if convert[n] is None else convert[n].get_db_prep_save(d[n], self.connection)
                       for n in names]

        self._copy(stage, [f.column for f in columns], rows())
        assignments = ", ".join(f"{qn(f.column)} = s.{qn(f.column)}" for f in columns[1:])
        with self.connection.cursor() as cursor:
            cursor.execute(f"UPDATE {qn(table)} AS t SET {assignments} FROM {qn(stage)} AS s "
                           f"WHERE t.{qn(meta.pk.column)} = s.{qn(meta.pk.column)}")

    def _update_many(self, model, objs, fields):
        """One executemany of UPDATE ... WHERE pk = %s (bulk_update's CASE statements would take
        a dozen statements a batch)."""
        qn = self.connection.ops.quote_name
        meta = model._meta
        by_name = {f.name: f for f in meta.concrete_fields}
        columns = [by_name[name] for name in fields if name in by_name and not by_name[name].primary_key]
        self._link_saved_relations(model, objs)
        sql = (f"UPDATE {qn(meta.db_table)} SET {', '.join(f'{qn(f.column)} = %s' for f in columns)} "
               f"WHERE {qn(meta.pk.column)} = %s")
        rows = [[f.get_db_prep_save(getattr(obj, f.attname), self.connection) for f in columns] + [obj.pk]
                for obj in objs]
        with self.connection.cursor() as cursor:
            cursor.executemany(sql, rows)

    def insert(self, model, objs):
        """Rows without history."""
        self.create(model, objs, history=False)

    def insert_from(self, model, objs, copied, constants=None, unless_blank=None):
        """Rows of `model` derived from `objs` (just written): {attname: attname of the
        object} copied, `constants` ({attname: value}) added, none for an object whose
        `unless_blank` attribute is blank. On PostgreSQL one INSERT ... SELECT from the
        objects' table, so nothing is built or sent per row."""
        if self.rehearsal:
            return
        constants = constants or {}
        if not self.copy:
            kept = [obj for obj in objs if unless_blank is None or getattr(obj, unless_blank)]
            return self.insert_values(model, list(copied) + list(constants),
                                      [[getattr(obj, name) for name in copied.values()] + list(constants.values())
                                       for obj in kept])
        source = type(objs[0]) if objs else None
        if source is None:
            return
        qn = self.connection.ops.quote_name
        columns = {f.attname: f.column for f in source._meta.concrete_fields}
        names, values = self._with_defaults(model, list(copied) + list(constants), [])
        selected = [qn(columns[name]) for name in copied.values()] + ["%s"] * (len(names) - len(copied))
        params = list(constants.values()) + values
        where = f"{qn(source._meta.pk.column)} = ANY(%s::bigint[])"
        if unless_blank is not None:
            where += f" AND {qn(columns[unless_blank])} <> ''"
        sql = (f"INSERT INTO {qn(model._meta.db_table)} "
               f"({', '.join(qn(model._meta.get_field(name).column) for name in names)}) "
               f"SELECT {', '.join(selected)} FROM {qn(source._meta.db_table)} WHERE {where}")
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params + [array_literal([obj.pk for obj in objs], "bigint")])

    def _with_defaults(self, model, attnames, values):
        """`attnames` and the other columns of `model` (not its pk) with the defaults they get
        (the database knows none of Django's): (all the attnames, the defaults' values)."""
        from django.utils import timezone

        now = timezone.now()
        rest = [f for f in model._meta.concrete_fields if not f.primary_key and f.attname not in attnames]
        defaults = [now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) else f.get_default()
                    for f in rest]
        return list(attnames) + [f.attname for f in rest], list(values) + defaults

    def insert_values(self, model, attnames, rows):
        """Rows without history nor instances, each a list of values for `attnames`; their
        ids come from the database, their other columns get their defaults."""
        names, tail = self._with_defaults(model, attnames, [])
        fields = [model._meta.get_field(name) for name in names]
        rows = (list(row) + tail for row in rows)
        if not self.copy:
            rows = ([f.get_db_prep_save(v, self.connection) for f, v in zip(fields, row)] for row in rows)
        self._insert_many(model._meta.db_table, fields, rows)

    def history_of(self, model, objs, history_type, now):
        """The import's history row of each of `objs` as the database now holds it: on
        PostgreSQL one INSERT ... SELECT from the table (nothing to build or send per row)."""
        if self.rehearsal:
            return
        if not self.copy:
            return self.history(model, [obj.__dict__ for obj in objs], history_type, now)
        qn = self.connection.ops.quote_name
        history = model.history.model
        tracked = [f.attname for f in history.tracked_fields]
        columns = {f.attname: f.column for f in model._meta.concrete_fields}
        extra = ["history_date", "history_type", "history_change_reason", "history_user_id"]
        target = [history._meta.get_field(name).column for name in tracked + extra]
        pk = model._meta.pk.column
        sql = (f"INSERT INTO {qn(history._meta.db_table)} ({', '.join(qn(c) for c in target)}) "
               f"SELECT {', '.join(qn(columns[name]) for name in tracked)}, %s, %s, %s, %s "
               f"FROM {qn(model._meta.db_table)} WHERE {qn(pk)} = ANY(%s::bigint[])")
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [now, history_type, self.reason, self.user_id,
                                 array_literal([obj.pk for obj in objs], "bigint")])

    def history(self, model, sources, history_type, now, reason=None, user_id=False):
        """One history row per source (a dict of attname: value) of `model`."""
        if self.rehearsal:
            return
        if not sources:
            return
        history = model.history.model
        tracked = [f.attname for f in history.tracked_fields]
        extra = {"history_date": now, "history_type": history_type,
                 "history_change_reason": self.reason if reason is None else reason,
                 "history_user_id": self.user_id if user_id is False else user_id}
        columns = [history._meta.get_field(name) for name in tracked + list(extra)]
        if self.copy:
            plan = self.plan(model)
            index = {name: i for i, name in enumerate(plan[1])}
            picks = [index[name] for name in tracked]
            tail = list(extra.values())
            rows = ([values[i] for i in picks] + tail for values in
                    (self.values(model, source, plan) for source in sources))
        else:
            rows = ([f.get_db_prep_save(value, self.connection) for f, value in
                     zip(columns, [source[name] for name in tracked] + list(extra.values()))] for source in sources)
        self._insert_many(history._meta.db_table, columns, rows)

    def _seq_scans(self, allowed):
        """Reads of a history table by record id go through its index whatever the planner's
        statistics say (off around them): a table loaded without history looks empty to
        them, and the import's own rows (not committed yet, so never counted) would be read
        in full batch after batch."""
        if self.copy:
            with self.connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL enable_seqscan = {'on' if allowed else 'off'}")

    def baseline(self, model, objs, before, now):
        """History rows holding the loaded state of the records whose newest history row
        differs from it (or that have none), so Undo finds it just before the import's row."""
        if self.rehearsal:
            return
        from django.db.models import Max

        history = model.history.model
        pk_name = model._meta.pk.attname
        compared = [f.attname for f in history.tracked_fields
                    if not (getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))]
        pks = [obj.pk for obj in objs]
        newest = {}
        self._seq_scans(False)
        try:
            for i in range(0, len(pks), 500):  # SQLite caps the number of query parameters
                last = (history.objects.filter(**{f"{pk_name}__any": pks[i : i + 500]}).values(pk_name)
                        .annotate(last=Max("history_id")).values("last"))
                for row in history.objects.filter(history_id__in=last).values(*compared):
                    newest[row[pk_name]] = row
        finally:
            self._seq_scans(True)
        plan = self.plan(model)
        index = {name: i for i, name in enumerate(plan[1])}
        stale = []
        for obj in objs:
            state = before[obj.pk]
            row = newest.get(obj.pk)
            if row is None:
                stale.append(state)
                continue
            values = self.values(model, state, plan)
            if any(row[name] != values[index[name]] for name in compared):
                stale.append(state)
        self.history(model, stale, "~", now, reason=self.BEFORE, user_id=None)


class CopyStream:
    """The new records of one batch sent to PostgreSQL (COPY) as soon as each is checked,
    while the batch's later rows are still being checked: the database inserts and indexes
    them meanwhile, instead of after the batch. Their ids are taken from the sequence at the
    first one. Any other query on the connection (a check that has to read something) first
    ends the COPY in progress; the next record starts another. BulkWriter.create then writes
    only their history rows."""

    def __init__(self, writer, model, count):
        from django.utils import timezone

        self.writer, self.model, self.count = writer, model, count
        self.plan = writer.plan(model)
        self.now = timezone.now()
        self.ids = None
        self.copy = None

    def write(self, obj):
        writer, model = self.writer, self.model
        if self.ids is None:
            self.ids = iter(writer._next_ids(model, self.count))
        writer._stamp(model, [obj], self.now, created=True)
        writer._link_saved_relations(model, [obj])
        obj.pk = next(self.ids)
        values = writer.values(model, obj.__dict__, self.plan)
        with writer.connection.wrap_database_errors:
            if self.copy is None:
                qn = writer.connection.ops.quote_name
                sql = (f"COPY {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in self.plan[0])}) "
                       "FROM STDIN")
                self.cursor = writer.connection.cursor()
                self.context = self.cursor.copy(sql)
                self.copy = self.context.__enter__()
            self.copy.write_row(values)
        obj._state.adding, obj._state.db = False, "default"
        obj._import_streamed = True

    def pause(self, error=None):
        if self.copy is None:
            return
        context, self.copy = self.context, None
        try:
            if error is None:
                with self.writer.connection.wrap_database_errors:
                    context.__exit__(None, None, None)
            else:
                try:
                    context.__exit__(type(error), error, error.__traceback__)  # abandons the COPY
                except Exception:
                    pass  # the error that stopped the batch is the one to report
        finally:
            self.cursor.close()

    def _before_query(self, execute, sql, params, many, context):
        self.pause()
        return execute(sql, params, many, context)

    def __enter__(self):
        self._wrapper = self.writer.connection.execute_wrapper(self._before_query)
        self._wrapper.__enter__()
        return self

    def __exit__(self, kind, error, traceback):
        try:
            self.pause(error)
        finally:
            self._wrapper.__exit__(kind, error, traceback)
