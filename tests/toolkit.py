"""Reusable checks every CRM entity must pass, declared once and run per entity.

An entity's test module declares a subclass; pytest collects it and runs every check
with the entity's spec:

    class TestAccountAccess(AccessSuite):
        namespace = "accounts"
        factory = AccountFactory

        def form_data(self, org, user, name):
            return {"name": name, "owner": user.pk, "business_unit": user.primary_unit_id}

    class TestAccountQueries(QueryCountSuite):
        namespace = "accounts"
        factory = AccountFactory

Cases name users of the test organization (tests.factories.USERS) and where the record
lives: (viewer, owner, unit), unit None meaning the owner's primary unit. Entities that
are not owned (organization-wide, like channels) ignore owner and unit.

Override `make` when a record needs more than name/owner/unit (e.g. a business customer
needs a channel and an account), `form_data` for the create form, `edit_data` when the
edit form differs, and `import_row` when the CSV needs more columns than ID and Name.
"""
import csv
import io
import uuid
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from crm.access import is_owned
from crm.services import RowError
from crm.views import ENTITIES

from .factories import USERS

# -- CSV and page helpers -----------------------------------------------------------------------


def csv_bytes(rows, bom=False, encoding="utf-8"):
    """rows (first the header) as the bytes of a CSV file."""
    out = io.StringIO(newline="")
    csv.writer(out).writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode(encoding)


def url(namespace, name, *args):
    return reverse(f"{namespace}:{name}", args=args)


def upload(client, namespace, data, filename="import.csv", mode=None):
    """Step 1 of an import: upload the file. Its validation job runs at once in tests, and
    the job page (the response returned) shows the preview: `report_of(response)`. A file the
    form refuses (too large, none) returns the import page itself."""
    payload = {"file": SimpleUploadedFile(filename, data, "text/csv")}
    if mode:
        payload["mode"] = mode
    response = client.post(url(namespace, "import"), payload)
    if response.status_code != 302:
        return response
    return client.get(response["Location"])


def job_of(response):
    job = response.context["job"]
    job.refresh_from_db()
    return job


def confirm(client, namespace, validated):
    """Step 2: start the import of the validated upload `validated` (the response of `upload`);
    returns the job page after it (the job runs at once in tests)."""
    return client.post(reverse("jobs:action", args=[job_of(validated).pk, "confirm"]), follow=True)


@dataclass
class JobReport:
    """An import job's outcome in the terms of crm.services.ImportReport."""

    job: object

    def __getattr__(self, name):
        job = self.__dict__["job"]
        report = job.report or {}
        values = {
            "total": job.total, "new": job.created, "update": job.updated, "skip": job.unchanged,
            "file_errors": report.get("file_errors", []), "notes": report.get("notes", []),
            "unmatched": report.get("unmatched", []),
            "errors": [RowError(*e) for e in report.get("errors", [])],
            "ok": job.state in ("ready", "imported"), "written": job.state == "imported",
        }
        if name not in values:
            raise AttributeError(name)
        return values[name]


def report_of(response):
    if "job" not in response.context:
        return response.context["report"]
    return JobReport(job_of(response))


def row_errors(response):
    """[(row, column, message)] of an import response."""
    return [(e.row, e.column, e.message) for e in report_of(response).errors]


def grid_rows(response):
    """(pks of the rows on the grid page, the rendered <tbody>): the search box echoes the
    query, so only the table body tells what the grid shows."""
    pks = [getattr(row.record, "pk", None) for row in response.context["table"].paginated_rows]
    html = response.content.decode()
    start = html.find("<tbody")
    return pks, html[start : html.find("</tbody>", start)] if start >= 0 else ""


def search_results(client, q):
    """{namespace: [pks]} the global search lists for `q`."""
    response = client.get("/search/", {"q": q})
    assert response.status_code == 200
    return {g["entity"].namespace: [r.pk for r in g["results"]] for g in response.context["groups"]}


def export_csv(client, namespace, params=None):
    """(headers, rows) of an export; rows are lists of cells."""
    response = client.get(url(namespace, "export"), params or {})
    assert response.status_code == 200, response.status_code
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff"), "the export starts with a BOM so spreadsheets read it as UTF-8"
    rows = list(csv.reader(io.StringIO(text[1:], newline="")))
    return rows[0], rows[1:]


def token():
    """A name fragment that occurs nowhere else in a page."""
    return "zq" + uuid.uuid4().hex[:10]


def case_id(case):
    viewer, owner, unit = case
    return f"{viewer}" if owner is None else f"{viewer}-on-{owner}@{unit or 'primary'}"


# -- the access suite ---------------------------------------------------------------------------


class AccessSuite:
    """Access checks for one entity. Subclass as `Test<Entity>Access` and set the spec,
    including `form_data(self, org, user, name)`: the POST data of the create form making a
    valid record named `name` for `user`."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A suite pytest collects must say how to fill its entity's form: fail at import, not mid-run.
        if cls.__name__.startswith("Test") and not callable(getattr(cls, "form_data", None)):
            raise TypeError(f"{cls.__name__} must define form_data(self, org, user, name)")

    namespace = None          # url namespace, e.g. "accounts"
    factory = None            # factory_boy factory of the model
    name_field = "name"       # model field holding the record's name
    name_column = "Name"      # its CSV column
    searchable = True         # listed by the global search /search/?q=
    creators = tuple(USERS)   # users who may create (and import) records

    # A viewer who must not even see a record of `owner` in `unit`: every path is a 404
    # and no list, filter, export, search or import reveals or touches it.
    hidden_cases = (
        ("east_manager", "west_rep", "West"),
        ("east_manager", "admin", "Acme Corp"),       # a Manager's grants reach down, never up
        ("east_rep", "west_rep", "West"),
        ("east_rep", "north_rep", "East-North"),      # a Sales Rep's unit view does not reach child units
        ("north_rep", "east_rep", "East"),           # ... nor up to the parent unit
        ("west_rep", "east_rep", "East"),
    )
    # A viewer who sees the record but may not change, delete, assign or share it (403).
    readonly_cases = (
        ("east_rep", "east_rep2", "East"),
        ("east_rep", "east_manager", "East"),
    )
    # A viewer who may view, edit and delete the record.
    editable_cases = (
        ("admin", "west_rep", "West"),
        ("east_manager", "east_rep", "East"),
        ("east_manager", "north_rep", "East-North"),  # Manager of East covers East-North
        ("east_rep", "east_rep", "East"),             # his own
        ("west_rep", "west_rep", "West"),
    )

    # -- the entity spec -------------------------------------------------------------------
    @property
    def model(self):
        return self.factory._meta.model

    @property
    def owned(self):
        return is_owned(self.model)

    @property
    def entity(self):
        return next(e for e in ENTITIES if e.model is self.model)

    def make(self, org, name, owner=None, unit=None):
        """A record named `name` of user `owner` (a username) in `unit` (a unit name, None:
        the owner's primary unit)."""
        if not self.owned:
            return self.factory(**{self.name_field: name})
        user = org.user(owner)
        return self.factory(**{
            self.name_field: name, "owner": user,
            "business_unit": org.unit(unit) if unit else user.primary_unit,
        })

    def edit_data(self, org, user, obj, name):
        """POST data of the edit form renaming `obj` to `name`."""
        return self.form_data(org, user, name)

    def import_row(self, org, user, obj, name):
        """{column: value} of a CSV row updating `obj` (None: creating) with the name `name`."""
        return {"ID": obj.pk if obj is not None else "", self.name_column: name}

    # -- helpers -----------------------------------------------------------------------------
    def url(self, name, *args):
        return url(self.namespace, name, *args)

    def name_of(self, obj):
        return getattr(obj, self.name_field)

    def snapshot(self, obj):
        """Everything an unauthorised request could change about `obj`: its row and its shares."""
        row = self.model._default_manager.filter(pk=obj.pk).values().first()
        shares = None
        if self.owned:
            shares = (
                get_user_obj_perms_model(self.model).objects.filter(content_object_id=obj.pk).count(),
                get_group_obj_perms_model(self.model).objects.filter(content_object_id=obj.pk).count(),
            )
        return row, shares

    def import_file(self, org, user, obj, name):
        row = self.import_row(org, user, obj, name)
        return csv_bytes([list(row), list(row.values())])

    def setup_case(self, org, case):
        """(viewer, target record, viewer's own control record) for a case."""
        viewer_name, owner, unit = case
        viewer = org.user(viewer_name)
        word = token()
        target = self.make(org, f"{word} Target", owner=owner, unit=unit)
        control = self.make(org, f"{word} Control", owner=viewer_name)
        return viewer, target, control, word

    def pytest_generate_tests(self, metafunc):
        users = list(USERS)
        params = {
            "creator": (list(self.creators), "no role may create these records"),
            "non_creator": ([u for u in users if u not in self.creators], "every role may create these records"),
            "hidden_case": (list(self.hidden_cases), "every role sees every record"),
            "readonly_case": (list(self.readonly_cases), "no role only reads these records"),
            "editable_case": (list(self.editable_cases), "no role edits these records"),
        }
        for name, (values, reason) in params.items():
            if name not in metafunc.fixturenames:
                continue
            if values:
                ids = [case_id(v) if isinstance(v, tuple) else v for v in values]
                metafunc.parametrize(name, values, ids=ids)
            else:
                metafunc.parametrize(name, [pytest.param(None, marks=pytest.mark.skip(reason=reason))])

    # -- who may create ----------------------------------------------------------------------
    def test_crud(self, org, client_for, creator):
        user = org.user(creator)
        client = client_for(user)
        name, renamed = f"{token()} Created", f"{token()} Renamed"

        assert client.get(self.url("create")).status_code == 200
        response = client.post(self.url("create"), self.form_data(org, user, name))
        assert response.status_code == 302, response.context["form"].errors if response.context else response
        obj = self.model._default_manager.get(**{self.name_field: name})
        assert response.url == self.url("detail", obj.pk)
        if self.owned:
            assert (obj.owner, obj.business_unit) == (user, user.primary_unit)

        response = client.get(self.url("detail", obj.pk))
        assert response.status_code == 200 and name in response.content.decode()

        assert client.get(self.url("update", obj.pk)).status_code == 200
        response = client.post(self.url("update", obj.pk), self.edit_data(org, user, obj, renamed))
        assert response.status_code == 302, response.context["form"].errors if response.context else response
        obj.refresh_from_db()
        assert self.name_of(obj) == renamed

        assert client.get(self.url("delete", obj.pk)).status_code == 200
        assert self.model._default_manager.filter(pk=obj.pk).exists(), "GET of the delete page must not delete"
        response = client.post(self.url("delete", obj.pk), {"confirm": "1"})
        assert response.status_code == 302
        assert not self.model._default_manager.filter(pk=obj.pk).exists()

    def test_non_creator_is_refused(self, org, client_for, non_creator):
        user = org.user(non_creator)
        client = client_for(user)
        obj = self.make(org, f"{token()} Existing", owner=non_creator)
        before = self.snapshot(obj)
        name = f"{token()} New"

        assert client.get(self.url("create")).status_code == 403
        assert client.post(self.url("create"), self.form_data(org, user, name)).status_code == 403
        if self.entity.importable:
            assert client.get(self.url("import")).status_code == 403
            assert upload(client, self.namespace, self.import_file(org, user, None, name)).status_code == 403
        assert client.get(self.url("update", obj.pk)).status_code == 403
        assert client.post(self.url("update", obj.pk), self.edit_data(org, user, obj, name)).status_code == 403
        assert client.get(self.url("delete", obj.pk)).status_code == 403
        assert client.post(self.url("delete", obj.pk), {"confirm": "1"}).status_code == 403
        assert client.post(self.url("mass_delete"), {"pk": [obj.pk], "confirm": "1"}).status_code == 403

        assert not self.model._default_manager.filter(**{self.name_field: name}).exists()
        assert self.snapshot(obj) == before
        # Refused the writes, not the reading: the grid offers no New or Import button.
        grid = client.get(self.url("list"))
        assert grid.status_code == 200 and grid.context["can_add"] is False
        assert self.url("create") not in grid.content.decode()

    # -- records the user must not see -----------------------------------------------------
    def test_hidden_record_paths_are_404(self, org, client_for, hidden_case):
        viewer, target, control, _ = self.setup_case(org, hidden_case)
        client = client_for(viewer)
        before = self.snapshot(target)
        pk = target.pk

        assert client.get(self.url("detail", pk)).status_code == 404
        assert client.get(self.url("update", pk)).status_code == 404
        assert client.post(self.url("update", pk), self.edit_data(org, viewer, target, "Hijacked")).status_code == 404
        assert client.get(self.url("delete", pk)).status_code == 404
        assert client.post(self.url("delete", pk), {"confirm": "1"}).status_code == 404
        # A mass action mixing a visible record with a hidden one is refused as a whole.
        assert client.post(self.url("mass_delete"), {"pk": [control.pk, pk], "confirm": "1"}).status_code == 404
        assert self.model._default_manager.filter(pk=control.pk).exists()
        if self.owned:
            assert client.get(self.url("share", pk)).status_code == 404
            assert client.post(self.url("share", pk), {"user": viewer.pk, "level": "change"}).status_code == 404
            assert client.get(self.url("assign"), {"pk": pk}).status_code == 404
            assert client.post(self.url("assign"), {"pk": [pk], "owner": viewer.pk}).status_code == 404
            assert client.post(self.url("assign"), {"pk": [control.pk, pk], "owner": viewer.pk}).status_code == 404
        assert self.snapshot(target) == before

    def test_hidden_record_absent_from_grid(self, org, client_for, hidden_case):
        viewer, target, control, word = self.setup_case(org, hidden_case)
        client = client_for(viewer)
        hidden, shown = self.name_of(target), self.name_of(control)
        filters = self.entity.filterset_class.base_filters
        variants = [({}, True), ({"q": word}, True), ({"q": hidden}, False)]
        if "name" in filters:
            variants += [({"name": hidden}, False)]
        if self.owned:
            variants += [({"owner": target.owner_id}, False), ({"business_unit": target.business_unit_id}, False)]
        for params, control_expected in variants:
            response = client.get(self.url("list"), {**params, "per_page": 250})
            assert response.status_code == 200
            pks, body = grid_rows(response)
            assert target.pk not in pks and hidden not in body, f"{hidden} leaked into the grid filtered by {params}"
            if control_expected:
                assert control.pk in pks and shown in body, f"the own {shown} is missing from the grid ({params})"
        if self.owned:
            # Filter and form choices do not offer the hidden record's unit either.
            grid = client.get(self.url("list"))
            assert target.business_unit not in grid.context["filter"].form.fields["business_unit"].queryset
            if viewer.username in self.creators:
                form = client.get(self.url("create")).context["form"]
                assert target.business_unit not in form.fields["business_unit"].queryset

    def test_hidden_record_absent_from_export(self, org, client_for, hidden_case):
        viewer, target, control, word = self.setup_case(org, hidden_case)
        client = client_for(viewer)
        variants = [({}, True), ({"q": word}, True), ({"q": self.name_of(target)}, False)]
        if self.owned:
            variants += [({"owner": target.owner_id}, False), ({"business_unit": target.business_unit_id}, False),
                         ({"sort": "-name"}, True)]
        for params, control_expected in variants:
            headers, rows = export_csv(client, self.namespace, params)
            ids = {row[headers.index("ID")] for row in rows}
            names = {row[headers.index(self.name_column)] for row in rows}
            assert str(target.pk) not in ids and self.name_of(target) not in names, f"leaked by export {params}"
            if control_expected:
                assert str(control.pk) in ids, f"the viewer's own record is missing from export {params}"

    def test_hidden_record_absent_from_search(self, org, client_for, hidden_case):
        if not self.searchable:
            pytest.skip(f"{self.namespace} are not in the global search")
        viewer, target, control, word = self.setup_case(org, hidden_case)
        client = client_for(viewer)
        found = search_results(client, word)
        assert target.pk not in found.get(self.namespace, [])
        assert control.pk in found.get(self.namespace, [])
        assert search_results(client, self.name_of(target)) == {}
        # The results' links: the target's page is not linked from anywhere in the results.
        page = client.get("/search/", {"q": word}).content.decode()
        assert self.url("detail", target.pk) + '"' not in page

    def test_hidden_record_import_by_id_refused(self, org, client_for, hidden_case):
        if not self.entity.importable:
            pytest.skip(f"{self.namespace} have no import")
        viewer, target, control, _ = self.setup_case(org, hidden_case)
        client = client_for(viewer)
        before = self.snapshot(target)
        response = upload(client, self.namespace, self.import_file(org, viewer, target, "Hijacked"))
        self.assert_import_refused(response, viewer)
        assert self.snapshot(target) == before
        assert not self.model._default_manager.filter(**{self.name_field: "Hijacked"}).exists()

    def assert_import_refused(self, response, viewer):
        if viewer.username not in self.creators:
            assert response.status_code == 403
            return
        assert not report_of(response).ok
        errors = row_errors(response)
        assert [(row, column) for row, column, _ in errors] == [(2, "ID")], errors
        assert not report_of(response).ok, "an invalid file must not be offered for import"

    # -- records the user sees but may not touch -------------------------------------------
    def test_readonly_record_is_403(self, org, client_for, readonly_case):
        viewer, target, control, word = self.setup_case(org, readonly_case)
        client = client_for(viewer)
        before = self.snapshot(target)
        pk = target.pk

        response = client.get(self.url("detail", pk))
        assert response.status_code == 200
        assert not response.context["can_change"] and not response.context["can_delete"]
        assert pk in grid_rows(client.get(self.url("list"), {"q": word}))[0], "a record he may view is in his grid"
        assert str(pk) in [row[0] for row in export_csv(client, self.namespace, {"q": word})[1]]
        assert client.get(self.url("update", pk)).status_code == 403
        assert client.post(self.url("update", pk), self.edit_data(org, viewer, target, "Hijacked")).status_code == 403
        assert client.get(self.url("delete", pk)).status_code == 403
        assert client.post(self.url("delete", pk), {"confirm": "1"}).status_code == 403
        assert client.post(self.url("mass_delete"), {"pk": [control.pk, pk], "confirm": "1"}).status_code == 403
        if self.owned:
            assert client.get(self.url("share", pk)).status_code == 403
            assert client.post(self.url("share", pk), {"user": viewer.pk, "level": "change"}).status_code == 403
            assert client.get(self.url("assign"), {"pk": pk}).status_code == 403
            assert client.post(self.url("assign"), {"pk": [pk], "owner": viewer.pk}).status_code == 403
        if self.entity.importable:
            response = upload(client, self.namespace, self.import_file(org, viewer, target, "Hijacked"))
            self.assert_import_refused(response, viewer)
        assert self.snapshot(target) == before
        assert self.model._default_manager.filter(pk=control.pk).exists()

    # -- shares ---------------------------------------------------------------------------------
    share_case = ("east_rep", "west_rep")   # (owner who shares, user of another unit who gets it)

    def test_share_view_then_change_then_unshare(self, org, client_for):
        if not self.owned:
            pytest.skip(f"{self.namespace} are not owned records: nothing to share")
        owner_name, guest_name = self.share_case
        owner, guest = client_for(org.user(owner_name)), client_for(org.user(guest_name))
        guest_user = org.user(guest_name)
        word = token()
        obj = self.make(org, f"{word} Shared", owner=owner_name)
        detail = self.url("detail", obj.pk)
        assert guest.get(detail).status_code == 404

        assert owner.post(self.url("share", obj.pk), {"user": guest_user.pk, "level": "view"}).status_code == 302
        assert guest.get(detail).status_code == 200
        assert obj.pk in grid_rows(guest.get(self.url("list"), {"q": word}))[0]
        assert str(obj.pk) in [row[0] for row in export_csv(guest, self.namespace, {"q": word})[1]]
        assert guest.get(self.url("update", obj.pk)).status_code == 403

        assert owner.post(self.url("share", obj.pk), {"user": guest_user.pk, "level": "change"}).status_code == 302
        response = guest.post(self.url("update", obj.pk), self.edit_data(org, guest_user, obj, f"{word} Edited"))
        assert response.status_code == 302, response.context["form"].errors if response.context else response
        obj.refresh_from_db()
        assert self.name_of(obj) == f"{word} Edited"
        assert guest.post(self.url("delete", obj.pk), {"confirm": "1"}).status_code == 403

        assert owner.post(self.url("share", obj.pk), {"unshare_user": guest_user.pk}).status_code == 302
        assert guest.get(detail).status_code == 404
        assert guest.get(self.url("update", obj.pk)).status_code == 404

    # -- records the user may edit ----------------------------------------------------------
    def test_editable_record(self, org, client_for, editable_case):
        viewer, target, _, word = self.setup_case(org, editable_case)
        client = client_for(viewer)
        response = client.get(self.url("detail", target.pk))
        assert response.status_code == 200 and response.context["can_change"] and response.context["can_delete"]
        _, rows = export_csv(client, self.namespace, {"q": word})
        assert str(target.pk) in {row[0] for row in rows}

        renamed = f"{word} Renamed"
        response = client.post(self.url("update", target.pk), self.edit_data(org, viewer, target, renamed))
        assert response.status_code == 302, response.context["form"].errors if response.context else response
        target.refresh_from_db()
        assert self.name_of(target) == renamed

        if viewer.username in self.creators and self.entity.importable:
            response = upload(client, self.namespace, self.import_file(org, viewer, target, f"{word} Imported"))
            assert report_of(response).ok, row_errors(response)
            assert (report_of(response).update, report_of(response).new) == (1, 0)
            assert report_of(confirm(client, self.namespace, response)).written
            target.refresh_from_db()
            assert self.name_of(target) == f"{word} Imported"

        response = client.post(self.url("delete", target.pk), {"confirm": "1"})
        assert response.status_code == 302
        assert not self.model._default_manager.filter(pk=target.pk).exists()


# -- query counts ----------------------------------------------------------------------------


def count_queries(func):
    """(number of queries, result) of func()."""
    with CaptureQueriesContext(connection) as ctx:
        result = func()
    return len(ctx.captured_queries), result


class QueryCountSuite:
    """Grid, export and import must not issue a query per row. Subclass as
    `Test<Entity>Queries`; override `bulk_make` when a record needs related rows."""

    namespace = None
    factory = None
    name_field = "name"
    name_column = "Name"
    viewers = ("admin", "east_manager")   # an unrestricted and a restricted user
    owner = "east_rep"                    # whose records are counted
    import_slack = 30                     # queries 1,000 rows may add to 10 (batched writes)

    @property
    def model(self):
        return self.factory._meta.model

    def bulk_make(self, org, count, prefix):
        """`count` records in as few queries as possible."""
        kwargs = {}
        if is_owned(self.model):
            owner = org.user(self.owner)
            kwargs = {"owner": owner, "business_unit": owner.primary_unit}
        objs = [self.factory.build(**{self.name_field: f"{prefix} {i:05d}"}, **kwargs) for i in range(count)]
        self.model._default_manager.bulk_create(objs, batch_size=500)

    def import_rows(self, org, count, prefix):
        """Header and `count` rows of a valid CSV creating records."""
        header = ["ID", self.name_column]
        return [header] + [["", f"{prefix} {i:05d}"] for i in range(count)]

    def update_rows(self, org, objs, prefix):
        """Header and one row per record of `objs` renaming it."""
        return [["ID", self.name_column]] + [[obj.pk, f"{prefix} {i:05d}"] for i, obj in enumerate(objs)]

    def pytest_generate_tests(self, metafunc):
        if "viewer" in metafunc.fixturenames:
            metafunc.parametrize("viewer", list(self.viewers))

    def grid(self, client):
        response = client.get(url(self.namespace, "list"), {"per_page": 250, "sort": "name"})
        assert response.status_code == 200
        return response

    def export(self, client):
        response = client.get(url(self.namespace, "export"), {"sort": "name"})
        assert response.status_code == 200
        return b"".join(response.streaming_content)

    def test_grid_queries_do_not_grow_with_rows(self, org, client_for, viewer, django_assert_num_queries):
        client = client_for(org.user(viewer))
        self.bulk_make(org, 10, "Few")
        self.grid(client)  # warm the per-process caches (content types, sessions)
        few, response = count_queries(lambda: self.grid(client))
        assert len(response.context["table"].page.object_list) == 10
        self.bulk_make(org, 990, "Many")
        with django_assert_num_queries(few):
            response = self.grid(client)
        assert len(response.context["table"].page.object_list) == 250

    def test_export_queries_do_not_grow_with_rows(self, org, client_for, viewer, django_assert_num_queries):
        client = client_for(org.user(viewer))
        self.bulk_make(org, 10, "Few")
        self.export(client)
        few, content = count_queries(lambda: self.export(client))
        assert content.count(b"Few ") == 10
        self.bulk_make(org, 990, "Many")
        with django_assert_num_queries(few):
            content = self.export(client)
        assert content.count(b"Few ") + content.count(b"Many ") == 1000

    def test_import_queries_are_bounded(self, org, django_assert_max_num_queries):
        from crm.services import import_csv

        user = org.user("admin")
        resource = next(e for e in ENTITIES if e.model is self.model).resource_class

        def run(count, prefix):
            report = import_csv(resource, csv_bytes(self.import_rows(org, count, prefix)), user, dry_run=False)
            assert report.ok and report.new == count, (report.errors[:3], report.file_errors)
            return report

        run(3, "Warm")
        few, _ = count_queries(lambda: run(10, "Few"))
        with django_assert_max_num_queries(few + self.import_slack):
            run(1000, "Many")

    def test_import_updates_queries_are_bounded(self, org, django_assert_max_num_queries):
        """Rows with an ID load their records (and what the checks read of them) per batch."""
        from crm.services import import_csv

        user = org.user("admin")
        resource = next(e for e in ENTITIES if e.model is self.model).resource_class
        manager = self.model._default_manager

        def run(prefix, renamed):
            objs = list(manager.filter(**{f"{self.name_field}__startswith": f"{prefix} "}).order_by("pk"))
            data = csv_bytes(self.update_rows(org, objs, renamed))
            report = import_csv(resource, data, user, dry_run=False)
            assert report.ok and report.update == len(objs), (report.errors[:3], report.file_errors)

        self.bulk_make(org, 3, "Warm")
        self.bulk_make(org, 10, "Few")
        self.bulk_make(org, 1000, "Many")
        run("Warm", "Warmed")
        few, _ = count_queries(lambda: run("Few", "Fewer"))
        with django_assert_max_num_queries(few + self.import_slack):
            run("Many", "More")
        assert manager.filter(**{f"{self.name_field}__startswith": "More "}).count() == 1000
