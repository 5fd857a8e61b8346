"""Files the generic import refuses as a whole, or accepts despite their quirks, for every
entity with an import page. Nothing is ever written from a refused file."""
import pytest

from accounts.models import Account
from channels.models import Channel
from tests.toolkit import confirm, csv_bytes, report_of, row_errors, upload

MODELS = {"accounts": Account, "channels": Channel}
pytestmark = pytest.mark.parametrize("namespace", list(MODELS))


@pytest.fixture
def client(client_for, admin):
    return client_for(admin)


def file_errors(response):
    assert not report_of(response).ok
    return report_of(response).file_errors


def assert_nothing_written(namespace):
    assert not MODELS[namespace].objects.filter(name__startswith="Row").exists()


def test_bom_is_accepted(client, namespace):
    response = upload(client, namespace, csv_bytes([["ID", "Name"], ["", "Row Ünïcödé"]], bom=True))
    assert report_of(response).ok, (report_of(response).file_errors, row_errors(response))
    confirm(client, namespace, response)
    assert MODELS[namespace].objects.filter(name="Row Ünïcödé").exists()


def test_blank_lines_and_surrounding_spaces_are_ignored(client, namespace):
    data = b"ID,Name\r\n\r\n, Row one \r\n,,\r\n,Row two\r\n"
    response = upload(client, namespace, data)
    assert report_of(response).new == 2, (report_of(response).file_errors, row_errors(response))
    confirm(client, namespace, response)
    assert set(MODELS[namespace].objects.filter(name__startswith="Row").values_list("name", flat=True)) == {
        "Row one", "Row two"}


def test_latin1_file_is_refused_with_the_line(client, namespace):
    data = "ID,Name\n,Row Café\n".encode("latin-1")
    errors = file_errors(upload(client, namespace, data))
    assert errors == ["The file is not UTF-8 encoded (line 2, byte 17). Save it as 'CSV UTF-8' and upload it again."]
    assert_nothing_written(namespace)


def test_empty_file_is_refused(client, namespace):
    response = upload(client, namespace, b"")
    assert response.status_code == 400  # the upload form refuses it: no job is created
    assert response.context["form"].errors["file"] == ["The submitted file is empty."]
    assert file_errors(upload(client, namespace, b" \r\n\r\n")) == ["The file is empty."]


def test_header_only_file_is_refused(client, namespace):
    assert file_errors(upload(client, namespace, b"ID,Name\r\n")) == ["The file has a header but no rows."]


def test_unknown_column_is_listed_and_ignored(client, namespace):
    response = upload(client, namespace, csv_bytes([["ID", "Name", "Colour"], ["", "Row red", "red"]]))
    report = report_of(response)
    assert report.ok and report.unmatched == ["Colour"], (report.file_errors, row_errors(response))
    confirm(client, namespace, response)
    assert MODELS[namespace].objects.filter(name="Row red").exists()


def test_missing_name_column_is_refused(client, namespace):
    errors = file_errors(upload(client, namespace, csv_bytes([["ID"], ["1"]])))
    assert errors == ["Missing required column(s): Name."]


def test_column_given_twice_is_refused(client, namespace):
    errors = file_errors(upload(client, namespace, csv_bytes([["Name", "Name"], ["Row a", "Row b"]])))
    assert errors == ["Column(s) given twice: Name."]


def test_ragged_row_is_a_row_error_and_nothing_is_written(client, namespace):
    data = b"ID,Name\n,Row fine\n,Row ragged,extra\n,Row also fine\n"
    response = upload(client, namespace, data)
    assert not report_of(response).ok
    assert row_errors(response) == [(3, "", "Has 3 cells; the header has 2.")]
    assert not report_of(response).ok
    assert_nothing_written(namespace)


def test_broken_quoting_is_refused(client, namespace):
    errors = file_errors(upload(client, namespace, b'ID,Name\n,"Row unterminated\n'))
    assert len(errors) == 1 and errors[0].startswith("The file is not valid CSV")


def test_binary_file_is_refused(client, namespace):
    errors = file_errors(upload(client, namespace, b"ID,Name\n,\x00\x01\x02\n"))
    assert errors == ["This is not a CSV text file."]


def test_file_over_the_size_limit_is_refused(client, namespace, settings):
    settings.CRM_IMPORT_MAX_BYTES = 100
    data = csv_bytes([["ID", "Name"]] + [["", f"Row {i:03d}"] for i in range(20)])
    assert len(data) > 100
    response = upload(client, namespace, data)
    assert response.status_code == 400  # the upload form refuses it: no job is created
    (message,) = response.context["form"].errors["file"]
    assert message == f"The file is {len(data)} bytes; the limit is 100 bytes. Split it into smaller files."
    assert_nothing_written(namespace)
    # At the limit it is accepted.
    settings.CRM_IMPORT_MAX_BYTES = len(data)
    assert report_of(upload(client, namespace, data)).ok

