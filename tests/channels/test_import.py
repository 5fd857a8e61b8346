"""Channel CSV import: choices by label or code, unique names within the file and
against the database, all rows or none, round trip with export."""
import pytest

from channels.models import Channel
from tests.factories import ChannelFactory
from tests.toolkit import confirm, csv_bytes, export_csv, job_of, report_of, row_errors, upload

HEADER = ["ID", "Name", "Type", "Status", "Entities"]


@pytest.fixture
def client(client_for, admin):
    return client_for(admin)


def test_valid_file_previews_then_confirm_creates(client):
    data = csv_bytes([HEADER, ["", "Direct", "Sales", "Active", "Business Customer"],
                      ["", "Shop", "commerce", "INACTIVE", "business_customer"],
                      ["", "Fairs", "", "", ""]])
    response = upload(client, "channels", data)
    assert report_of(response).ok, row_errors(response)
    assert report_of(response).new == 3
    assert not Channel.objects.exists()
    assert report_of(confirm(client, "channels", response)).written
    got = {c.name: (c.type, c.status, c.entities) for c in Channel.objects.all()}
    assert got["Direct"] == ("sales", "active", "business_customer")
    assert got["Shop"] == ("commerce", "inactive", "business_customer")
    assert got["Fairs"][:2] == ("sales", "active")  # blank cells: the model's defaults


def test_one_bad_row_in_a_hundred_writes_nothing(client):
    body = [["", f"Channel {i:03d}", "Sales", "Active", ""] for i in range(100)]
    body[55][2] = "Telepathy"  # file line 57
    response = upload(client, "channels", csv_bytes([HEADER] + body))
    assert not report_of(response).ok
    assert row_errors(response) == [(57, "Type", "Unknown type 'Telepathy'; use one of: Sales, Commerce.")]
    assert not Channel.objects.exists()


def test_duplicate_names_in_the_file_are_row_errors(client):
    data = csv_bytes([HEADER, ["", "Web", "", "", ""], ["", "Fairs", "", "", ""], ["", "WEB", "", "", ""]])
    response = upload(client, "channels", data)
    assert not report_of(response).ok
    assert row_errors(response) == [(4, "Name", "The name 'WEB' appears twice in the file.")]
    assert not Channel.objects.exists()


def test_duplicate_across_batches_is_found(client, settings):
    settings.CRM_IMPORT_BATCH_SIZE = 2
    data = csv_bytes([HEADER, ["", "One", "", "", ""], ["", "Two", "", "", ""], ["", "one", "", "", ""]])
    response = upload(client, "channels", data)
    assert row_errors(response) == [(4, "Name", "The name 'one' appears twice in the file.")]


def test_names_taken_in_the_database_are_row_errors_when_adding_only(client):
    taken = ChannelFactory(name="Web Store")
    # Add and update (the default): the row without an ID matches the channel of its name.
    response = upload(client, "channels", csv_bytes([HEADER, ["", "web store", "Commerce", "", ""]]))
    assert (report_of(response).new, report_of(response).update) == (0, 1), row_errors(response)
    # Add only: the name is taken.
    response = upload(client, "channels", csv_bytes([HEADER, ["", "web store", "", "", ""]]), mode="create")
    assert not report_of(response).ok
    assert row_errors(response) == [(2, "Name", f"A channel named 'Web Store' already exists (ID {taken.pk}).")]
    assert Channel.objects.count() == 1


def test_updating_by_id_may_keep_its_own_name_but_not_take_another(client):
    web, fairs = ChannelFactory(name="Web Store"), ChannelFactory(name="Fairs")
    data = csv_bytes([HEADER, [web.pk, "Web Store", "Commerce", "Inactive", ""]])
    response = upload(client, "channels", data)
    assert report_of(response).update == 1, row_errors(response)
    confirm(client, "channels", response)
    web.refresh_from_db()
    assert (web.type, web.status, web.entities) == ("commerce", "inactive", "")

    response = upload(client, "channels", csv_bytes([HEADER, [web.pk, "fairs", "", "", ""]]))
    assert row_errors(response) == [(2, "Name", f"A channel named 'fairs' already exists (ID {fairs.pk}).")]
    web.refresh_from_db()
    assert web.name == "Web Store"


def test_blank_type_and_status_keep_the_current_values(client):
    shop = ChannelFactory(name="Shop", type="commerce", status="inactive")
    response = upload(client, "channels", csv_bytes([HEADER, [shop.pk, "Shop renamed", "", "", "Business Customer"]]))
    confirm(client, "channels", response)
    shop.refresh_from_db()
    assert (shop.name, shop.type, shop.status) == ("Shop renamed", "commerce", "inactive")


def test_confirm_checks_again_and_writes_nothing_if_the_file_no_longer_fits(client, settings):
    settings.CRM_IMPORT_BATCH_SIZE = 1  # the clash is in the second batch: the first must not stay written
    response = upload(client, "channels", csv_bytes([HEADER, ["", "First", "", "", ""], ["", "Second", "", "", ""]]),
                      mode="create")
    assert response.status_code == 200
    ChannelFactory(name="Second")  # taken by someone else between validation and confirmation
    response = confirm(client, "channels", response)
    assert not report_of(response).ok
    assert [(e.row, e.column) for e in report_of(response).errors] == [(3, "Name")]
    assert list(Channel.objects.values_list("name", flat=True)) == ["Second"]


def test_unknown_id_is_an_error(client):
    response = upload(client, "channels", csv_bytes([HEADER, [424242, "Ghost", "", "", ""]]))
    assert row_errors(response) == [(2, "ID", "No record with ID 424242 that you may edit.")]


def test_export_then_reimport_changes_nothing(client):
    ChannelFactory(name="Direct Sales")
    ChannelFactory(name="Web Store", type="commerce", entities="")
    ChannelFactory(name="=cmd|' /C calc'!A0", status="inactive")
    before = list(Channel.objects.order_by("pk").values())
    headers, rows = export_csv(client, "channels")
    assert headers == HEADER
    assert sorted(r[1] for r in rows) == ["'=cmd|' /C calc'!A0", "Direct Sales", "Web Store"]
    assert {r[1]: r[2:] for r in rows}["Web Store"] == ["Commerce", "Active", ""]

    content = b"".join(client.get("/channels/export/").streaming_content)
    response = upload(client, "channels", content)
    assert (report_of(response).new, report_of(response).update, report_of(response).skip) == (0, 0, 3)
    confirm(client, "channels", response)
    assert list(Channel.objects.order_by("pk").values()) == before


def test_export_filters_like_the_grid(client):
    ChannelFactory(name="Active one")
    ChannelFactory(name="Sleeping one", status="inactive")
    _, rows = export_csv(client, "channels", {"status": "inactive"})
    assert [r[1] for r in rows] == ["Sleeping one"]
    _, rows = export_csv(client, "channels", {"q": "active"})
    assert [r[1] for r in rows] == ["Active one"]


def test_import_writes_history_by_the_importing_user(client, admin):
    job = job_of(confirm(client, "channels", upload(client, "channels", csv_bytes([HEADER, ["", "Logged", "", "", ""]]))))
    record = Channel.objects.get(name="Logged").history.get()
    assert (record.history_type, record.history_user, record.history_change_reason) == (
        "+", admin, f"CSV import (job #{job.pk})")
