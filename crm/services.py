"""Writes that touch more than one row or model. Each is one transaction."""
import csv
import io
from dataclasses import dataclass, field

import tablib
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
from .models import ACTION_LABELS, ACTIONS, BusinessUnit, BusinessUnitUserObjectPermission, Level, Role, RolePermission

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
            for obj in allowed:
                obj._history_user = user
                obj.delete()
                count += 1
    except ProtectedError as e:
        names = ", ".join(sorted({str(o) for o in list(e.protected_objects)[:5]}))
        return 0, f"Cannot delete: still referenced by {names}."
    return count, None


def assign_records(queryset, owner, unit, user):
    """Reassign records to a new owner and unit (mass Assign)."""
    if restrict(queryset, user, "assign").count() != queryset.count():
        raise PermissionDenied("You may not assign some of the selected records.")
    if not access(user).may_place(queryset.model, owner, unit, "assign"):
        raise PermissionDenied(f"You may not give records to {owner} in {unit}.")
    with transaction.atomic():
        objs = list(queryset.select_for_update())
        for obj in objs:
            obj.owner, obj.business_unit = owner, unit
        bulk_update_with_history(
            objs, queryset.model, ["owner", "business_unit"], default_user=user,
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


@dataclass
class RowError:
    row: int          # line in the file, the header being line 1 (as a spreadsheet shows it)
    column: str
    message: str


@dataclass
class ImportReport:
    total: int = 0
    new: int = 0
    update: int = 0
    skip: int = 0
    errors: list = field(default_factory=list)
    file_errors: list = field(default_factory=list)
    notes: list = field(default_factory=list)   # e.g. "3 accounts will be created"
    written: bool = False

    @property
    def ok(self):
        return not self.errors and not self.file_errors

    def error_rows(self):
        return len({e.row for e in self.errors})


def too_large_message(size):
    # Human sizes: a whole-MB format said "the limit is 0 MB" for any limit under 1 MB.
    return (f"The file is {filesizeformat(size)}; the limit is {filesizeformat(settings.CRM_IMPORT_MAX_BYTES)}."
            .replace("\xa0", " "))


def read_csv(data, resource):
    """Decode and split a CSV upload; raise CSVFileError for what makes the file unreadable."""
    if len(data) > settings.CRM_IMPORT_MAX_BYTES:
        raise CSVFileError(too_large_message(len(data)) + " Split it into smaller files.")
    if not data.strip():
        raise CSVFileError("The file is empty.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CSVFileError(
            f"The file is not UTF-8 encoded (line {line}, byte {e.start + 1}). "
            "Save it as 'CSV UTF-8' and upload it again."
        ) from None
    if "\x00" in text:
        raise CSVFileError("This is not a CSV text file.")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = list(reader)
    except csv.Error as e:
        raise CSVFileError(f"The file is not valid CSV (line {reader.line_num}): {e}.") from None
    headers = [h.strip() for h in rows[0]]
    expected = resource.headers()
    unknown = [h for h in headers if h not in expected]
    if unknown:
        raise CSVFileError(
            f"Unknown column(s): {', '.join(unknown) or '(blank)'}. The columns are: {', '.join(expected)}."
        )
    duplicated = sorted({h for h in headers if headers.count(h) > 1})
    if duplicated:
        raise CSVFileError(f"Column(s) given twice: {', '.join(duplicated)}.")
    missing = [h for h in resource.required_headers() if h not in headers]
    if missing:
        raise CSVFileError(f"Missing required column(s): {', '.join(missing)}.")
    body, errors = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(headers):
            errors.append(RowError(line, "", f"Has {len(row)} cells; the header has {len(headers)}."))
            continue
        body.append((line, [cell.strip() for cell in row]))
    if not body and not errors:
        raise CSVFileError("The file has a header but no rows.")
    return headers, body, errors


def import_csv(resource_class, data, user, dry_run=True):
    """Validate (dry_run) or import a CSV file: all rows or none.

    Rows go through import-export in batches inside one transaction; a dry run, or any
    invalid row, rolls the whole transaction back."""
    report = ImportReport()
    resource = resource_class(user=user)
    try:
        headers, body, report.errors = read_csv(data, resource)
    except CSVFileError as e:
        report.file_errors.append(str(e))
        return report
    report.total = len(body) + len(report.errors)
    columns = {f.attribute: f.column_name for f in resource.fields.values()}
    size = settings.CRM_IMPORT_BATCH_SIZE
    with transaction.atomic():
        resource.start_import(report, body, headers)
        for start in range(0, len(body), size):
            batch = body[start : start + size]
            lines = [line for line, _ in batch]
            dataset = tablib.Dataset(*[cells for _, cells in batch], headers=headers)
            try:
                with transaction.atomic():
                    result = resource.import_data(dataset, dry_run=False, use_transactions=False)
                    if result.has_errors() or result.has_validation_errors():
                        transaction.set_rollback(True)
            except Exception as e:  # a database error the row checks did not foresee
                report.file_errors.append(f"Rows {lines[0]}-{lines[-1]}: {e}")
                break
            for invalid in result.invalid_rows:
                for attr, messages in invalid.error_dict.items():
                    for message in messages:
                        report.errors.append(RowError(lines[invalid.number - 1], columns.get(attr, ""), message))
            for number, errs in result.row_errors():
                for err in errs:
                    report.errors.append(RowError(lines[number - 1], "", str(err.error)))
            for err in result.base_errors:
                report.file_errors.append(f"Rows {lines[0]}-{lines[-1]}: {err.error}")
            report.new += result.totals["new"]
            report.update += result.totals["update"]
            report.skip += result.totals["skip"]
        report.notes.extend(resource.finish_import(report))
        report.errors.sort(key=lambda e: e.row)
        if dry_run or not report.ok:
            transaction.set_rollback(True)
        else:
            report.written = True
    return report
