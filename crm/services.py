"""Writes that touch more than one row or model. Each is one transaction."""
import csv
import io
from dataclasses import dataclass, field

import tablib
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import ProtectedError
from django.template.defaultfilters import filesizeformat
from guardian.shortcuts import assign_perm, remove_perm
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model
from simple_history.utils import bulk_update_with_history

from .access import ADMINISTRATOR, MANAGER, ROLE_RULES, ROLES, SALES_REP, SHARE_LEVELS, access, is_owned, restrict
from .models import ACTIONS, BusinessUnit, BusinessUnitUserObjectPermission

CRM_APPS = ("crm", "channels", "accounts", "customers", "contacts", "activities")


# -- roles and unit grants ---------------------------------------------------------------------

def sync_role_permissions():
    """Administrators hold every model permission of the CRM (they see everything);
    Managers and Sales Representatives may add owned records, the rest comes from units."""
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
    labels = [label for label in CRM_APPS if label in {a.label for a in apps.get_app_configs()}]
    admin_perms = Permission.objects.filter(content_type__app_label__in=labels + ["auth"])
    groups[ADMINISTRATOR].permissions.set(admin_perms)
    add_codenames = [
        f"add_{model._meta.model_name}"
        for label in labels
        for model in apps.get_app_config(label).get_models()
        if is_owned(model) or getattr(model, "addable_by_roles", False)
    ]
    add_perms = Permission.objects.filter(content_type__app_label__in=labels, codename__in=add_codenames)
    for role in (MANAGER, SALES_REP):
        groups[role].permissions.set(add_perms)


def set_roles(user, role_names):
    """Give `user` exactly the roles named (and recompute his grants)."""
    groups = Group.objects.filter(name__in=ROLES)
    user.groups.remove(*groups.exclude(name__in=role_names))
    user.groups.add(*groups.filter(name__in=role_names))
    sync_user_access(user)


def sync_user_access(user):
    """Recompute a user's unit-group memberships and unit grants from his role and units."""
    user._syncing_access = True
    try:
        with transaction.atomic():
            if user.primary_unit_id and not user.business_units.filter(pk=user.primary_unit_id).exists():
                user.business_units.add(user.primary_unit_id)
            units = list(user.business_units.all())
            unit_groups = Group.objects.filter(business_unit__isnull=False)
            user.groups.remove(*unit_groups.exclude(business_unit__in=units))
            user.groups.add(*[u.group_id for u in units])

            roles = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
            wanted = set()
            tree = BusinessUnit.descendants_map() if any(ROLE_RULES.get(r, {}).get("deep") for r in roles) else {}
            for role in roles & set(ROLE_RULES):
                rule = ROLE_RULES[role]
                covered = set()
                for unit in units:
                    covered |= tree.get(unit.pk, {unit.pk}) if rule["deep"] else {unit.pk}
                wanted |= {(f"{action}_records", unit_id) for action in rule["unit"] for unit_id in covered}

            grants = BusinessUnitUserObjectPermission.objects.filter(user=user, permission__codename__endswith="_records")
            have = set(grants.values_list("permission__codename", "content_object_id"))
            stale = have - wanted
            for codename, unit_id in stale:
                grants.filter(permission__codename=codename, content_object_id=unit_id).delete()
            perms = {p.codename: p for p in Permission.objects.filter(
                content_type__app_label="crm", codename__in=[f"{a}_records" for a in ACTIONS])}
            BusinessUnitUserObjectPermission.objects.bulk_create([
                BusinessUnitUserObjectPermission(user=user, permission=perms[codename], content_object_id=unit_id)
                for codename, unit_id in wanted - have
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


def delete_records(queryset, user):
    """Delete what the user may delete of `queryset`. Returns (deleted, refused message)."""
    allowed = restrict(queryset, user, "delete")
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
    if not access(user).may_place(owner, unit):
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
