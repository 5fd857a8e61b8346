"""Background jobs: imports (validate, import, undo) and large exports.

Jobs run through Django's tasks API: the task code only names the job, so any backend
(the database one by default, Celery or Redis through the TASKS setting) can run it, on
any machine that shares the database and Django's default storage.

Live progress goes to a small file in the default storage, not to the job's row: an
import is one transaction (all or nothing), and a row written inside it would stay
invisible to the page that polls until the import ended. The file is also the heartbeat:
a running job whose file has not moved for CRM_JOB_STALE_SECONDS lost its worker.
"""
import json
import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError
from django.db.models import Max, OuterRef, Subquery
from django.http import QueryDict
from django.utils import timezone
from django.utils.html import conditional_escape
from simple_history.models import registered_models
from simple_history.utils import bulk_update_with_history

from .access import access
from .models import Job

try:  # Django 6 ships the tasks framework; 5.2 has it as the django-tasks backport.
    from django.tasks import task
except ImportError:  # pragma: no cover - depends on the Django version
    from django_tasks import task

logger = logging.getLogger(__name__)

FIRST_ERRORS = 100  # errors kept on the job page; the error report has them all


class JobStateError(Exception):
    """The step asked for does not follow from where the job is (e.g. a second click)."""


def entity_of(job):
    from .views import ENTITIES  # the registry fills as the apps' views load

    for entity in ENTITIES:
        if entity.namespace == job.entity:
            return entity
    raise LookupError(f"No entity {job.entity!r}.")


def jobs_for(user):
    """The jobs a user sees: his own; administrators see everyone's."""
    jobs = Job.objects.select_related("user")
    return jobs if access(user).administers else jobs.filter(user=user)


# -- progress ---------------------------------------------------------------------------------

def _progress_name(job):
    return f"jobs/{job.pk}/progress.json"


def write_progress(job, done, total):
    name = _progress_name(job)
    data = json.dumps({"done": done, "total": total, "at": time.time()}).encode()
    default_storage.delete(name)  # save() would pick another name rather than overwrite
    default_storage.save(name, ContentFile(data))


def read_progress(job):
    """{done, total, at, rate (rows/s), left (seconds)} of the running step, or None."""
    try:
        with default_storage.open(_progress_name(job), "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError):  # not written yet, or caught between delete and save
        return None
    started = job.started_at.timestamp() if job.started_at else data["at"]
    elapsed = max(data["at"] - started, 0.001)
    data["rate"] = data["done"] / elapsed if data["done"] else 0
    data["left"] = (data["total"] - data["done"]) / data["rate"] if data["rate"] else None
    data["percent"] = min(100, round(100 * data["done"] / data["total"])) if data["total"] else 0
    return data


def fail_stale(jobs):
    """Mark running jobs whose worker stopped showing signs of life as failed (or, for an
    undo, back to imported): their transaction never committed, so the data is as before."""
    limit = settings.CRM_JOB_STALE_SECONDS
    now = time.time()
    for job in jobs:
        if not job.running or job.started_at is None:
            continue  # still waiting for a worker: not stale, just queued
        progress = read_progress(job)
        last = max(progress["at"] if progress else 0, job.started_at.timestamp())
        if now - last > limit:
            since = timezone.localtime(datetime.fromtimestamp(last, tz=dt_timezone.utc))
            _fail(job, f"The worker stopped without finishing (no sign of life since {since:%Y-%m-%d %H:%M:%S}).")


# -- creating jobs ----------------------------------------------------------------------------

def start_import(entity, user, upload, mode="create_update"):
    """Keep the uploaded file in the default storage and queue its validation."""
    if not entity.can_import(user):
        raise PermissionDenied("You may not import this kind of record.")
    with transaction.atomic():
        job = Job.objects.create(user=user, kind=Job.Kind.IMPORT, entity=entity.namespace,
                                 state=Job.State.VALIDATING, filename=upload.name[:255], mode=mode)
        job.source = default_storage.save(f"jobs/{job.pk}/upload.csv", upload)
        job.save(update_fields=["source"])
    _enqueue(job, "validate")
    return job


def start_export(entity, user, params, fmt):
    job = Job.objects.create(user=user, kind=Job.Kind.EXPORT, entity=entity.namespace, state=Job.State.EXPORTING,
                             filename=f"{entity.namespace}.{fmt}", params={"query": params.urlencode(), "format": fmt})
    _enqueue(job, "export")
    return job


def confirm_import(job, user, mode=None):
    """The validated file is imported (a job step of its own)."""
    _own(job, user)
    if job.kind != Job.Kind.IMPORT or job.state != Job.State.READY:
        raise JobStateError("This import is not waiting to be started.")
    if not entity_of(job).can_import(user):  # the right may have gone since the upload
        raise PermissionDenied("You may not import this kind of record.")
    job.mode = mode or job.mode
    # A conditional update, not a save: of two confirms at once (a double click, two tabs)
    # only one finds the job ready; the other is refused instead of queueing a second import.
    claimed = Job.objects.filter(pk=job.pk, state=Job.State.READY).update(
        state=Job.State.IMPORTING, started_at=None, message="", mode=job.mode)
    if not claimed:
        raise JobStateError("This import is not waiting to be started.")
    job.state, job.started_at, job.message = Job.State.IMPORTING, None, ""
    _enqueue(job, "import")


def revalidate(job, user, mapping, mode):
    """Validate the same file again with the columns mapped as the user chose."""
    _own(job, user)
    if job.state not in (Job.State.READY, Job.State.INVALID):
        raise JobStateError("Only a validated import can be validated again.")
    job.params = {**job.params, "mapping": mapping}
    job.mode = mode or job.mode
    job.state, job.started_at, job.message = Job.State.VALIDATING, None, ""
    job.save(update_fields=["params", "mode", "state", "started_at", "message"])
    _enqueue(job, "validate")


def request_undo(job, user):
    _own(job, user)
    if job.state != Job.State.IMPORTED:
        raise JobStateError("Only a finished import can be undone.")
    job.state, job.started_at, job.message = Job.State.UNDOING, None, ""
    job.save(update_fields=["state", "started_at", "message"])
    _enqueue(job, "undo")


def _own(job, user):
    if job.user_id != user.pk:
        raise PermissionDenied("Only the user who started this job may act on it.")


def _enqueue(job, step):
    # Requests run in autocommit, so the job row is committed before a worker can look.
    run_job.enqueue(job.pk, step)


# -- running them -----------------------------------------------------------------------------

EXPECTED = {"validate": Job.State.VALIDATING, "import": Job.State.IMPORTING, "undo": Job.State.UNDOING,
            "export": Job.State.EXPORTING}


@task()
def run_job(job_id, step):
    run(job_id, step)


def run(job_id, step):
    """One step of a job. A step queued twice, or for a job that moved on, does nothing."""
    job = Job.objects.filter(pk=job_id).select_related("user").first()
    if job is None or job.state != EXPECTED[step] or job.started_at is not None:
        return
    job.started_at = timezone.now()
    # Claimed by a conditional update: two workers given the same step run it once.
    if not Job.objects.filter(pk=job.pk, state=EXPECTED[step], started_at=None).update(started_at=job.started_at):
        return
    write_progress(job, 0, job.total)
    try:
        with transaction.atomic():  # whatever the step wrote goes if it fails half-way
            STEPS[step](job)
    except Exception as e:  # the job tells what happened; the worker goes on with the next
        logger.exception("Job %s (%s) failed", job.pk, step)
        try:
            _fail(Job.objects.get(pk=job.pk), _reason(e))
        except DatabaseError:
            connection.close()  # the connection broke with the step: the next query opens a new one
            _fail(Job.objects.get(pk=job.pk), _reason(e))
    finally:
        default_storage.delete(_progress_name(job))


def _reason(error):
    # The error's own text (a driver's message, "[<class 'decimal.InvalidOperation'>]") tells a
    # user nothing and may show internals: it goes to the log (run), the page says what to do.
    if isinstance(error, DatabaseError):
        from .services import database_error_message

        return f"The job could not finish: {database_error_message(error)}"
    return ("The job stopped on an unexpected error. Nothing was written; the administrators find the details "
            "in the server log.")


def _fail(job, message):
    if job.state == Job.State.UNDOING:
        job.state, job.message = Job.State.IMPORTED, f"Undo did not finish: {message}"
    else:
        job.state, job.message = Job.State.FAILED, message
    job.finished_at = timezone.now()
    job.save(update_fields=["state", "message", "finished_at"])


def _open_source(job):
    return default_storage.open(job.source, "rb")


def _import(job, dry_run):
    from .services import import_csv

    entity = entity_of(job)
    previewed = job.report.get("previewed_at") if not dry_run else None
    with _open_source(job) as data:
        report = import_csv(entity.resource_class, data, job.user, dry_run=dry_run, mode=job.mode or "create_update",
                            mapping=job.params.get("mapping") or None,
                            progress=lambda done, total: write_progress(job, done, total),
                            change_reason=job.change_reason,
                            changed_since=datetime.fromisoformat(previewed) if previewed else None)
    job.total, job.created, job.updated, job.unchanged = report.total, report.new, report.update, report.skip
    job.rejected = report.error_rows()
    job.report = {
        "file_errors": report.file_errors,
        "errors": [[e.row, e.column, e.message] for e in report.errors[:FIRST_ERRORS]],
        "error_count": len(report.errors),
        # Notes may carry links (format_html); anything else is text, escaped here once.
        "notes": [str(conditional_escape(note)) for note in report.notes],
        "unmatched": list(getattr(report, "unmatched", [])),
        "columns": dict(getattr(report, "columns", {})),
        # What the preview read was the database as of its start: the import refuses later changes.
        "previewed_at": job.started_at.isoformat() if dry_run else previewed,
    }
    if job.result:
        default_storage.delete(job.result)
        job.result = ""
    if report.errors:
        from .services import error_report_csv

        name = f"jobs/{job.pk}/errors.csv"
        default_storage.delete(name)
        with _open_source(job) as data, default_storage.open(name, "wb") as out:
            error_report_csv(data, report, out)
        job.result = name
    if report.ok:
        job.state = Job.State.IMPORTED if report.written else Job.State.READY
    else:
        job.state = Job.State.INVALID
    job.finished_at = timezone.now()
    job.save()


def _validate(job):
    _import(job, dry_run=True)


def _write(job):
    _import(job, dry_run=False)


def _export(job):
    from .exports import write_export

    entity = entity_of(job)
    fmt = job.params.get("format", "csv")
    params = QueryDict(job.params.get("query", ""))
    name = f"jobs/{job.pk}/{entity.namespace}.{fmt}"
    default_storage.delete(name)
    with default_storage.open(name, "wb") as out:
        job.total = write_export(entity, params, job.user, fmt, out,
                                 progress=lambda done, total: write_progress(job, done, total))
    job.result, job.state, job.finished_at = name, Job.State.EXPORTED, timezone.now()
    job.save(update_fields=["total", "result", "state", "finished_at"])


# -- undo ---------------------------------------------------------------------------------------

def _history_models():
    """Models with history, dependents first (a created customer goes before its new account)."""
    tracked = [m for m in registered_models.values() if hasattr(m, "history") and not m._meta.auto_created]
    order, seen = [], set()

    def visit(model):
        if model in seen:
            return
        seen.add(model)
        for other in tracked:  # whatever points at `model` must go before it
            if other is not model and any(f.related_model is model for f in other._meta.concrete_fields
                                          if f.is_relation):
                visit(other)
        order.append(model)

    for model in tracked:
        visit(model)
    return order


def _chunks(items, size=500):  # SQLite caps the parameters of one query
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _undo(job):
    """Created records are deleted and updated ones get their values from before the import
    back, in one transaction. A record someone changed (or deleted) since is left as it is,
    and the job page says which and by whom."""
    reason, undo_reason = job.change_reason, f"Undo of CSV import (job #{job.pk})"
    refused, deleted, restored = [], 0, 0
    done, total = 0, job.created + job.updated
    with transaction.atomic():
        for model in _history_models():
            history = model.history.model
            pk_name = model._meta.pk.attname
            ours = {row[pk_name]: row for row in history.objects.filter(history_change_reason=reason)
                    .values(pk_name, "history_id", "history_type")}
            if not ours:
                continue
            later = {}
            for ids in _chunks(ours):
                newest = (history.objects.filter(**{f"{pk_name}__in": ids}).values(pk_name)
                          .annotate(last=Max("history_id")))
                later.update({row[pk_name]: row["last"] for row in newest
                              if row["last"] != ours[row[pk_name]]["history_id"]})
            if later:
                changes = history.objects.filter(history_id__in=later.values()).select_related("history_user")
                for change in changes:
                    who = change.history_user.username if change.history_user else "someone"
                    what = "deleted" if change.history_type == "-" else "changed"
                    refused.append(f"{model._meta.verbose_name} #{getattr(change, pk_name)} “{change}”: "
                                   f"{what} by {who} on {timezone.localtime(change.history_date):%Y-%m-%d %H:%M}")
            created = [pk for pk, row in ours.items() if row["history_type"] == "+" and pk not in later]
            updated = [row["history_id"] for pk, row in ours.items() if row["history_type"] == "~" and pk not in later]
            deleted += _delete_created(model, created, job.user, undo_reason, refused)
            restored += _restore_updated(model, updated, job.user, undo_reason, refused)
            done += len(created) + len(updated)
            write_progress(job, min(done, total), total)
    job.state, job.finished_at = Job.State.UNDONE, timezone.now()
    job.report = {**job.report, "undo": {"deleted": deleted, "restored": restored, "refused": refused[:FIRST_ERRORS],
                                         "refused_count": len(refused)}}
    if refused:
        job.message = (f"{len(refused)} record{'s were' if len(refused) != 1 else ' was'} changed since the import "
                       "and left as they are.")
    job.save(update_fields=["state", "finished_at", "report", "message"])


def _delete_created(model, pks, user, reason, refused):
    count = 0
    history = model.history.model
    pk_name = model._meta.pk.attname
    for ids in _chunks(pks):
        since = timezone.now() - timedelta(seconds=1)
        try:
            with transaction.atomic():
                model._default_manager.filter(pk__in=ids).delete()
        except ProtectedError:
            # Someone made another record depend on one of these since: keep that one.
            kept = []
            for obj in model._default_manager.filter(pk__in=ids):
                try:
                    with transaction.atomic():
                        obj.delete()
                except ProtectedError as e:
                    users = ", ".join(sorted({str(o) for o in list(e.protected_objects)[:3]}))
                    refused.append(f"{model._meta.verbose_name} #{obj.pk} “{obj}”: still used by {users}")
                    kept.append(obj.pk)
            ids = [pk for pk in ids if pk not in kept]
        # Deletion writes its history rows through signals, without a reason or a user
        # outside a request: say whose undo it was, in one statement per chunk.
        history.objects.filter(**{f"{pk_name}__in": ids}, history_type="-", history_date__gte=since).update(
            history_user=user, history_change_reason=reason)
        count += len(ids)
    return count


def _restore_updated(model, history_ids, user, reason, refused):
    """Each record gets the values of its history row just before the import's."""
    history = model.history.model
    pk_name = model._meta.pk.attname
    fields = [f.name for f in model._meta.concrete_fields if not f.primary_key and f.name in
              {t.name for t in history.tracked_fields}]
    count = 0
    for ids in _chunks(history_ids):
        previous = history.objects.filter(history_id__in=ids).annotate(previous=Subquery(
            history.objects.filter(**{pk_name: OuterRef(pk_name)}, history_id__lt=OuterRef("history_id"))
            .order_by("-history_id").values("history_id")[:1])).values_list(pk_name, "previous")
        for pk, earlier in previous:
            if earlier is None:
                refused.append(f"{model._meta.verbose_name} #{pk}: its state before the import was never recorded")
        instances = [row.instance for row in history.objects.filter(history_id__in=[p for _, p in previous if p])]
        if not instances:
            continue
        if any(f.name == "updated_at" for f in model._meta.concrete_fields):
            now = timezone.now()
            for obj in instances:
                obj.updated_at = now
        if "version" in fields:
            # Undo restores values, never an old version: that would make an edit form
            # opened before the undo look current again.
            current = dict(model._base_manager.filter(pk__in=[o.pk for o in instances]).values_list("pk", "version"))
            for obj in instances:
                obj.version = current.get(obj.pk, obj.version) + 1
        bulk_update_with_history(instances, model, fields, default_user=user, default_change_reason=reason)
        resource = _resource_for(model)
        if resource is not None and hasattr(resource, "restore_children"):
            resource.restore_children(instances)
        count += len(instances)
    return count


def _resource_for(model):
    from .views import ENTITIES

    for entity in ENTITIES:
        if entity.model is model and entity.resource_class is not None:
            return entity.resource_class()
    return None


STEPS = {"validate": _validate, "import": _write, "undo": _undo, "export": _export}


def prune(days):
    """Forget finished jobs older than `days` with their files (upload, export, error report).
    Running jobs stay, unless their worker died: those are failed first, so a job nobody
    opens again does not stay "running" for ever. A pruned import can no longer be undone."""
    fail_stale(Job.objects.filter(state__in=Job.RUNNING))
    cutoff = timezone.now() - timedelta(days=days)
    old = Job.objects.filter(created_at__lt=cutoff).exclude(state__in=Job.RUNNING)
    count = 0
    for job in old.iterator():
        for name in (job.source, job.result, _progress_name(job)):
            if name:
                default_storage.delete(name)
        count += 1
    old.delete()
    return count
