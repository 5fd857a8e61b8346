"""Files no import should take, uploaded through the real import page of every entity that
has one (found in the URL configuration): each gets a message in words on the page, a 200
or 400 (never a 500), and writes nothing but the job that read it."""
import io
import zipfile

import pytest

from crm.views import ENTITIES
from tests.security.world import changed_tables, routes, snapshot
from tests.toolkit import csv_bytes, upload

# Written by every accepted upload by design: the job row and the task that ran it.
JOB_TABLES = {"crm_job", "django_tasks_database_dbtaskresult"}
EXCEPTION_WORDS = ("Traceback", "Error:", "<class", "codec can't", "line contains NUL", "field larger")


def import_namespaces():
    return sorted(r.name.split(":")[0] for r in routes() if r.name and r.name.endswith(":import"))


def test_every_entity_with_an_import_is_discovered():
    assert import_namespaces() == sorted(e.namespace for e in ENTITIES if e.importable)
    assert {"accounts", "channels", "contacts", "customers"} <= set(import_namespaces())


def headers_of(namespace, user):
    entity = next(e for e in ENTITIES if e.namespace == namespace)
    return entity.resource_class(user=user).headers()


def template_rows(namespace, user, *cells):
    """The entity's template header and rows with `cells` from its second column on."""
    header = headers_of(namespace, user)
    rows = [header]
    for values in cells:
        row = [""] + list(values)
        rows.append(row + [""] * (len(header) - len(row)))
    return rows


def xlsx_bytes():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return out.getvalue()


def png_bytes():
    return b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


# (case, file bytes from the header of the entity, file name, what the page says, status)
CASES = [
    ("latin-1", lambda h: csv_bytes([h, ["", "Café"]], encoding="latin-1"), "import.csv",
     "The file is not UTF-8 encoded (line 2, byte", 200),
    ("utf-16 with BOM", lambda h: "\ufeff".encode("utf-16-le") + csv_bytes([h, ["", "Café"]]).decode().encode(
        "utf-16-le"), "import.csv", "The file is UTF-16 encoded; imports expect UTF-8.", 400),
    ("utf-16 without BOM", lambda h: csv_bytes([h, ["", "Café"]], encoding="utf-16-le"), "import.csv",
     "The file is UTF-16 encoded; imports expect UTF-8.", 400),
    ("utf-16 big-endian", lambda h: csv_bytes([h, ["", "Café"]], encoding="utf-16-be"), "import.csv",
     "The file is UTF-16 encoded; imports expect UTF-8.", 400),
    ("NUL bytes", lambda h: csv_bytes([h, ["", "Row\x00one"]]), "import.csv", "This is not a CSV text file.", 200),
    ("binary renamed .csv", lambda h: png_bytes(), "photo.csv", "The file is not UTF-8 encoded", 200),
    ("XLSX named .csv", lambda h: xlsx_bytes(), "sheet.csv",
     "This is an Excel or other zipped file (XLSX), not a CSV file", 400),
    ("old Excel named .csv", lambda h: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "sheet.csv",
     "This is not a CSV file (it is an old Excel workbook", 400),
    ("wrong type", lambda h: csv_bytes([h, ["", "Row"]]), "import.xlsx", "Only CSV files can be imported", 400),
    ("PDF", lambda h: b"%PDF-1.4\n" + bytes(range(256)), "report.csv", "or a PDF", 400),
    ("empty", lambda h: b"", "import.csv", "The submitted file is empty.", 400),
    ("only a BOM", lambda h: b"\xef\xbb\xbf", "import.csv", "The file is empty.", 200),
    ("only blank lines", lambda h: b"\xef\xbb\xbf\r\n \r\n\n", "import.csv", "The file is empty.", 200),
    ("header only", lambda h: csv_bytes([h], bom=True), "import.csv", "The file has a header but no rows.", 200),
    ("broken quoting", lambda h: csv_bytes([h]) + b',"Row unterminated\n', "import.csv",
     "The file is not valid CSV (line 2)", 200),
    ("cell over the CSV field limit", lambda h: csv_bytes([h, ["", "B" * 200_000]]), "import.csv",
     "has a cell longer than", 200),
]


@pytest.fixture
def admin_client(client_for, admin):
    return client_for(admin)


def assert_refused(response, words, status, before):
    assert response.status_code == status, response.status_code
    page = response.content.decode()
    assert words in page, page[:3000]
    for word in EXCEPTION_WORDS:
        assert word not in page, f"the page shows an exception's text: {word!r}"
    if status == 200:
        assert "The file cannot be imported; nothing was written." in page
    assert set(changed_tables(before, snapshot())) <= JOB_TABLES
    return page


@pytest.mark.parametrize("namespace", import_namespaces())
@pytest.mark.parametrize("case, make, filename, words, status", CASES, ids=[c[0] for c in CASES])
def test_a_file_no_import_takes_is_refused_in_words(org, admin, admin_client, namespace, case, make, filename,
                                                     words, status):
    data = make(headers_of(namespace, admin))
    before = snapshot()
    assert_refused(upload(admin_client, namespace, data, filename=filename), words, status, before)


@pytest.mark.parametrize("namespace", import_namespaces())
def test_a_file_over_the_size_limit_is_refused_unread(org, admin, admin_client, namespace, settings):
    settings.CRM_IMPORT_MAX_BYTES = 1000
    data = csv_bytes(template_rows(namespace, admin, *[[f"Row {i}"] for i in range(400)]))
    assert len(data) > 1000
    before = snapshot()
    page = assert_refused(upload(admin_client, namespace, data), "the limit is 1000 bytes. Split it into smaller "
                                                                 "files.", 400, before)
    assert "Row 1" not in page
    # Far over the limit, the upload handler drops it while the request is read.
    data = data * 200
    assert len(data) > 64 * 1024 + 1000
    assert_refused(upload(admin_client, namespace, data), "the limit is 1000 bytes.", 400, before)


@pytest.mark.parametrize("namespace", import_namespaces())
def test_ragged_rows_are_row_errors_and_nothing_is_written(org, admin, admin_client, namespace):
    rows = template_rows(namespace, admin, ["Row fine"], ["Row fine too"])
    rows.insert(2, rows[1] + ["extra"])
    rows.insert(3, rows[1][:2])
    before = snapshot()
    page = assert_refused(upload(admin_client, namespace, csv_bytes(rows)), "Fix the rows below", 200, before)
    width = len(rows[0])
    assert f"Has {width + 1} cells; the header has {width}." in page
    assert f"Has 2 cells; the header has {width}." in page


@pytest.mark.parametrize("namespace", import_namespaces())
def test_a_cell_of_100000_characters_is_a_row_error_that_does_not_repeat_it(org, admin, admin_client, namespace):
    header = headers_of(namespace, admin)
    rows = [header, [""] + ["C" * 100_000] * (len(header) - 1)]
    before = snapshot()
    response = upload(admin_client, namespace, csv_bytes(rows))
    page = assert_refused(response, "Fix the rows below", 200, before)
    assert "C" * 301 not in page
    assert len(page) < 200_000
