"""Locations follow their customer: who may view the customer sees its locations (grid,
filters, export, record page, customer page, admin), who may change it adds, edits, deletes
and imports them; nobody else learns anything of them. CSV round trip and bad rows."""
import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

import customers.views  # noqa: F401  (declares the entities the suites look up)
from crm.services import import_csv
from customers.models import BusinessCustomer, Location
from customers.resources import LocationResource
from tests.factories import ChannelFactory
from tests.toolkit import (AccessSuite, QueryCountSuite, confirm, count_queries, csv_bytes, export_csv, grid_rows,
                           report_of, row_errors, token, upload)

from .factories import BusinessCustomerFactory, LocationFactory, location_tag

HEADERS = ["ID", "Customer", "Name", "Type", "Tags", "Street", "City", "Postal Code", "Region", "Country", "Email",
           "Phone"]


def customer_of(org, owner, unit=None, name=None):
    user = org.user(owner)
    return BusinessCustomerFactory(name=name or f"{token()} Co", owner=user,
                                   business_unit=org.unit(unit) if unit else user.primary_unit)


def tag_ids(location):
    return sorted(location.tags.values_list("pk", flat=True))


class TestLocationAccess(AccessSuite):
    namespace = "locations"
    factory = LocationFactory
    searchable = False

    def make(self, org, name, owner=None, unit=None):
        return LocationFactory(customer=customer_of(org, owner or "east_rep", unit, f"{name} Co"), name=name,
                               tags=["billing"])

    def form_data(self, org, user, name):
        customer = BusinessCustomerFactory(owner=user, name=f"{name} Co")
        return {"customer": customer.pk, "name": name, "type": "store", "tags": [location_tag("billing").pk],
                "street": "Main St 1", "city": "Boston", "country": "US", "email": "store@example.com"}

    def edit_data(self, org, user, obj, name):
        return {"customer": obj.customer_id, "name": name, "type": "office", "city": "Paris", "country": "FR",
                "tags": [location_tag("shipping").pk]}

    def import_row(self, org, user, obj, name):
        if obj is None:
            customer = BusinessCustomerFactory(owner=user, name=f"{name} Co")
            return {"ID": "", "Customer": customer.name, "Name": name, "Type": "Warehouse"}
        return {"ID": obj.pk, "Customer": obj.customer.name, "Name": name, "Type": "Store", "Tags": "shipping; pickup"}

    def snapshot(self, obj):
        return Location.objects.filter(pk=obj.pk).values().first(), tag_ids(obj)

    # -- what follows the customer besides the generic paths --------------------------------
    def test_hidden_customer_offers_nothing(self, org, client_for, hidden_case):
        viewer, target, control, word = self.setup_case(org, hidden_case)
        client = client_for(viewer)
        customer = target.customer
        # As a grid filter the hidden customer is no valid choice: no rows, nothing named.
        pks, body = grid_rows(client.get(self.url("list"), {"customer": customer.pk, "per_page": 250}))
        assert target.pk not in pks and target.name not in body
        _, rows = export_csv(client, self.namespace, {"customer": customer.pk})
        assert rows == []
        # Nor a choice of the form: posting it is refused at the field and writes nothing.
        response = client.post(self.url("create"), {**self.edit_data(org, viewer, target, f"{word} Sneaked"),
                                                    "customer": customer.pk})
        assert response.status_code == 400 and "customer" in response.context["form"].errors
        assert customer not in response.context["form"].fields["customer"].queryset
        assert not Location.objects.filter(name=f"{word} Sneaked").exists()
        # A file naming the customer treats it as unknown, without naming it back.
        response = upload(client, self.namespace, csv_bytes([["Customer", "Name"], [customer.name, f"{word} Sneaked"]]))
        assert not report_of(response).ok
        [(row, column, message)] = row_errors(response)
        assert (row, column) == (2, "Customer") and message.startswith("Unknown customer")
        assert client.get(f"/customers/{customer.pk}/").status_code == 404
        assert client.get(self.url("create"), {"customer": customer.pk}).context["form"]["customer"].value() in (
            customer.pk, None)
        assert target.name not in client.get(self.url("create"), {"customer": customer.pk}).content.decode()

    def test_readonly_customer_page_offers_no_add(self, org, client_for, readonly_case):
        viewer, target, _, word = self.setup_case(org, readonly_case)
        client = client_for(viewer)
        page = client.get(f"/customers/{target.customer_id}/")
        assert page.status_code == 200
        html = page.content.decode()
        assert target.name in html and 'data-testid="add-location"' not in html
        # Adding one to a customer he only views is refused at the field.
        response = client.post(self.url("create"), {**self.edit_data(org, viewer, target, f"{word} Added")})
        assert response.status_code == 400
        assert response.context["form"].errors["customer"] == [
            "You may not change this customer, so you may not add or move locations to it."]
        response = upload(client, self.namespace, csv_bytes([["Customer", "Name"], [target.customer.name, "Added"]]))
        assert [(r, c) for r, c, _ in row_errors(response)] == [(2, "Customer")]
        assert not Location.objects.filter(customer=target.customer).exclude(pk=target.pk).exists()

    def test_editable_customer_page_adds_with_the_customer_chosen(self, org, client_for, editable_case):
        viewer, target, _, word = self.setup_case(org, editable_case)
        client = client_for(viewer)
        html = client.get(f"/customers/{target.customer_id}/").content.decode()
        add = f"/locations/new/?customer={target.customer_id}"
        assert 'data-testid="add-location"' in html and add in html
        form = client.get(add).context["form"]
        assert form["customer"].value() == target.customer_id
        assert f'value="{target.customer_id}" selected' in client.get(add).content.decode()

    def test_moving_to_a_customer_he_may_not_change_is_refused(self, org, client_for):
        client = client_for(org.user("east_rep"))
        mine = LocationFactory(customer=customer_of(org, "east_rep"))
        colleagues = customer_of(org, "east_rep2")  # he views it, may not change it
        response = client.post(self.url("update", mine.pk), {**self.edit_data(org, None, mine, mine.name),
                                                             "customer": colleagues.pk})
        assert response.status_code == 400 and "customer" in response.context["form"].errors
        mine.refresh_from_db()
        assert mine.customer_id != colleagues.pk


class TestLocationQueries(QueryCountSuite):
    namespace = "locations"
    factory = LocationFactory
    # SQLite binds at most 999 parameters a statement: 1,000 locations, their history rows,
    # tag links and the links' history rows go out in some 45 chunked inserts, a fixed
    # number per batch and none per row.
    import_slack = 60

    def bulk_make(self, org, count, prefix):
        customer = customer_of(org, self.owner, name=f"Buyer {token()}")
        locations = Location.objects.bulk_create([
            Location(customer=customer, name=f"{prefix} {i:05d}", type="office", city="Boston", country="US")
            for i in range(count)], batch_size=500)
        links = Location.tags.through
        billing, pickup = location_tag("billing"), location_tag("pickup")
        links.objects.bulk_create([links(location_id=loc.pk, locationtag_id=tag.pk)
                                   for loc in locations for tag in (billing, pickup)], batch_size=500)

    def import_rows(self, org, count, prefix):
        customer = customer_of(org, self.owner, name=f"Buyer {token()}")
        return [["ID", "Customer", "Name", "Type", "Tags", "City", "Country", "Email"]] + [
            ["", customer.name, f"{prefix} {i:05d}", "Warehouse", "billing; shipping", "Hamburg", "Germany",
             f"l{i}@example.com"] for i in range(count)]

    def update_rows(self, org, objs, prefix):
        names = dict(BusinessCustomer.objects.filter(pk__in={o.customer_id for o in objs}).values_list("pk", "name"))
        return [["ID", "Customer", "Name", "Tags"]] + [[o.pk, names[o.customer_id], f"{prefix} {i:05d}", "returns"]
                                                       for i, o in enumerate(objs)]


# -- CSV ----------------------------------------------------------------------------------------

def run_import(client, rows):
    """Validate then confirm; the (validation response, confirmation response)."""
    validated = upload(client, "locations", csv_bytes(rows))
    assert report_of(validated).ok, row_errors(validated)
    return validated, confirm(client, "locations", validated)


def test_export_columns_and_values(org, client_for):
    client = client_for(org.user("east_rep"))
    customer = customer_of(org, "east_rep")
    loc = LocationFactory(customer=customer, name="=Dock 1", type="headquarters", tags=["shipping", "billing"],
                          region="HH", email="dock@example.com", phone="+49 40 1234")
    headers, rows = export_csv(client, "locations", {"customer": customer.pk})
    assert headers == HEADERS
    assert rows == [[str(loc.pk), customer.name, "'=Dock 1", "Headquarters", "billing; shipping", "Hafenstraße 1",
                     "Hamburg", "20457", "HH", "DE", "dock@example.com", "'+49 40 1234"]]


def test_csv_round_trip(org, client_for):
    user = org.user("east_rep")
    client = client_for(user)
    customer = customer_of(org, "east_rep")
    word = token()
    a = LocationFactory(customer=customer, name=f"{word} A", tags=["billing", "pickup"])
    b = LocationFactory(customer=customer, name=f"{word} B", type="store", tags=[], email="b@example.com")
    headers, rows = export_csv(client, "locations", {"q": word})
    assert [r[2] for r in rows] == [f"{word} A", f"{word} B"]

    # Imported back unchanged: nothing to do.
    validated, done = run_import(client, [headers] + rows)
    assert (report_of(validated).new, report_of(validated).update, report_of(validated).skip) == (0, 0, 2)
    assert report_of(done).written

    # Edited in a spreadsheet: a tag removed, a type changed, a new row.
    rows[0][headers.index("Tags")] = "pickup"
    rows[1][headers.index("Type")] = "office"
    rows.append(["", customer.name, f"{word} C", "warehouse", "Returns;delivery", "Kai 3", "Kiel", "24103", "",
                 "Germany", "", ""])
    validated, done = run_import(client, [headers] + rows)
    assert (report_of(validated).new, report_of(validated).update, report_of(validated).skip) == (1, 2, 0)
    a.refresh_from_db()
    b.refresh_from_db()
    c = Location.objects.get(name=f"{word} C")
    assert [t.name for t in a.tags.all()] == ["pickup"]
    assert (b.type, [t.name for t in b.tags.all()]) == ("office", [])
    assert (c.customer, c.type, c.city, c.country.code) == (customer, "warehouse", "Kiel", "DE")
    assert sorted(t.name for t in c.tags.all()) == ["delivery", "returns"]
    # History: who imported it, with the tags as they were then.
    record = c.history.latest("history_id")
    assert record.history_user == user and sorted(t.locationtag.name for t in record.tags.all()) == [
        "delivery", "returns"]
    assert [t.locationtag.name for t in a.history.latest("history_id").tags.all()] == ["pickup"]

    # And out again exactly as it went in.
    rows[1][headers.index("Type")] = "Office"
    for column, value in (("ID", str(c.pk)), ("Type", "Warehouse"), ("Tags", "delivery; returns"), ("Country", "DE")):
        rows[2][headers.index(column)] = value
    assert export_csv(client, "locations", {"q": word}) == (headers, rows)


def test_a_file_with_only_some_columns_changes_only_those(org, client_for):
    client = client_for(org.user("east_rep"))
    loc = LocationFactory(customer=customer_of(org, "east_rep"), tags=["billing"], email="keep@example.com")
    run_import(client, [["ID", "Name"], [loc.pk, "Renamed dock"]])
    loc.refresh_from_db()
    assert (loc.name, loc.email, loc.type, tag_ids(loc)) == ("Renamed dock", "keep@example.com", "warehouse",
                                                              [location_tag("billing").pk])


def test_ambiguous_customer_names_carry_the_channel(org, client_for):
    """Two customers he may view share a name: the export says which (Name (Channel)), the
    import asks for it. A same-named customer he may not view changes nothing."""
    client = client_for(org.user("east_rep"))
    name = f"{token()} Globex"
    web = ChannelFactory(name=f"Web {token()}")
    ours = customer_of(org, "east_rep", name=name)
    theirs = BusinessCustomerFactory(name=name, channel=web, owner=org.user("east_rep2"),
                                     business_unit=org.unit("East"))
    LocationFactory(customer=ours, name="Dock")
    headers, rows = export_csv(client, "locations", {"customer": ours.pk})
    assert rows[0][1] == f"{name} ({ours.channel.name})"

    response = upload(client, "locations", csv_bytes([["Customer", "Name"], [name, "Yard"]]))
    [(row, column, message)] = row_errors(response)
    assert (row, column) == (2, "Customer") and "Several customers you may view" in message
    assert f"'{name} (Channel)'" in message
    run_import(client, [["Customer", "Name"], [f"{name} ({ours.channel.name})", "Yard"]])
    assert Location.objects.get(name="Yard").customer == ours

    # For a user who sees only one of them the name is plain, both ways.
    west = client_for(org.user("west_rep"))
    hidden_twin = BusinessCustomerFactory(name=f"{token()} Twin", owner=org.user("east_rep"),
                                          business_unit=org.unit("East"))
    visible_twin = BusinessCustomerFactory(name=hidden_twin.name, channel=web, owner=org.user("west_rep"),
                                           business_unit=org.unit("West"))
    LocationFactory(customer=visible_twin, name="Shed")
    _, rows = export_csv(west, "locations", {"customer": visible_twin.pk})
    assert rows[0][1] == visible_twin.name
    run_import(west, [["Customer", "Name"], [visible_twin.name, "Barn"]])
    assert Location.objects.get(name="Barn").customer == visible_twin
    assert theirs.locations.count() == 0


@pytest.mark.parametrize("column, value, expected", [
    ("Customer", "No Such Customer Ltd", "Unknown customer 'No Such Customer Ltd'"),
    ("Customer", "", "Name the location's customer."),
    ("Tags", "billing; roof", "Unknown tag 'roof': the tags are billing, delivery, pickup, returns, shipping."),
    ("Type", "Castle", "Unknown type 'Castle': use one of Headquarters, Office, Warehouse, Store."),
    ("Email", "not-an-email", "Enter a valid email address."),
    ("Phone", "call me", "Enter a phone number"),
    ("Country", "Atlantis", "Unknown country 'Atlantis'"),
    ("Name", "", "This field cannot be blank."),
])
def test_bad_rows_are_reported_where_they_are_and_write_nothing(org, client_for, column, value, expected):
    client = client_for(org.user("east_rep"))
    customer = customer_of(org, "east_rep")
    word = token()
    good = {"ID": "", "Customer": customer.name, "Name": f"{word} Good", "Type": "Office", "Tags": "billing",
            "Email": "ok@example.com", "Phone": "+1 555 0100", "Country": "US"}
    bad = {**good, "Name": f"{word} Bad", column: value}
    response = upload(client, "locations", csv_bytes([list(good), list(good.values()), list(bad.values())]))
    assert not report_of(response).ok
    errors = row_errors(response)
    assert [(r, c) for r, c, _ in errors] == [(3, column)], errors
    assert errors[0][2].startswith(expected), errors
    assert not report_of(response).ok
    assert not Location.objects.filter(name__startswith=word).exists()


def test_names_are_unique_per_customer_in_the_file_and_the_database(org, client_for):
    client = client_for(org.user("east_rep"))
    customer, other = customer_of(org, "east_rep"), customer_of(org, "east_rep")
    taken = LocationFactory(customer=customer, name="Main Dock")
    spare = LocationFactory(customer=customer, name="Spare Dock")
    response = upload(client, "locations", csv_bytes([
        ["ID", "Customer", "Name"],
        [spare.pk, customer.name, "main dock"],  # taken by another location of the customer
        ["", other.name, "Main Dock"],          # another customer: fine
        ["", other.name, "Yard"],
        ["", other.name, "YARD"],               # twice in the file
        [taken.pk, customer.name, "Main Dock"],  # itself: fine
    ]))
    assert row_errors(response) == [
        (2, "Name", f"{customer.name} already has a location named 'main dock' (ID {taken.pk})."),
        (5, "Name", f"The file names the location 'YARD' of {other.name} twice."),
    ]
    assert Location.objects.filter(customer=other).count() == 0


def test_form_reports_a_taken_name_at_the_field(org, client_for):
    client = client_for(org.user("east_rep"))
    loc = LocationFactory(customer=customer_of(org, "east_rep"), name="Main Dock")
    response = client.post("/locations/new/", {"customer": loc.customer_id, "name": "MAIN DOCK", "type": "office"})
    assert response.status_code == 400
    assert response.context["form"].errors == {"name": [f"{loc.customer} already has a location named “MAIN DOCK”."]}


def test_form_saves_tags_and_history(org, client_for):
    user = org.user("east_rep")
    client = client_for(user)
    customer = customer_of(org, "east_rep")
    response = client.post("/locations/new/", {"customer": customer.pk, "name": "Store 9", "type": "store",
                                               "tags": [location_tag("pickup").pk, location_tag("returns").pk]})
    assert response.status_code == 302
    loc = Location.objects.get(name="Store 9")
    assert sorted(t.name for t in loc.tags.all()) == ["pickup", "returns"]
    assert loc.history.latest("history_id").history_user == user
    page = client.get(f"/locations/{loc.pk}/").content.decode()
    assert "pickup" in page and customer.get_absolute_url() in page
    # The History tab names the tags, not their link rows.
    assert "→ pickup, returns" in " ".join(page[page.find('id="tab-history"'):].split())


def test_grid_filters(org, client_for):
    client = client_for(org.user("east_manager"))
    word = token()
    c1, c2 = customer_of(org, "east_rep"), customer_of(org, "north_rep", "East-North")
    a = LocationFactory(customer=c1, name=f"{word} A", type="store", tags=["billing"], country="DE", city="Köln")
    b = LocationFactory(customer=c2, name=f"{word} B", type="office", tags=["shipping", "pickup"], country="FR")
    c = LocationFactory(customer=c2, name=f"{word} C", type="store", tags=[], country="FR")

    def shown(**params):
        return set(grid_rows(client.get("/locations/", {"q": word, "per_page": 250, **params}))[0])

    assert shown() == {a.pk, b.pk, c.pk}
    assert shown(customer=c2.pk) == {b.pk, c.pk}
    assert shown(type="store") == {a.pk, c.pk}
    assert shown(tag=[location_tag("pickup").pk, location_tag("billing").pk]) == {a.pk, b.pk}
    assert shown(country="FR") == {b.pk, c.pk}
    assert set(grid_rows(client.get("/locations/", {"q": "Köln"}))[0]) == {a.pk}
    headers, rows = export_csv(client, "locations", {"q": word, "tag": location_tag("shipping").pk})
    assert [r[0] for r in rows] == [str(b.pk)]


def test_customer_page_lists_its_locations(org, client_for, django_assert_max_num_queries):
    client = client_for(org.user("east_rep"))
    customer, other = customer_of(org, "east_rep"), customer_of(org, "east_rep")
    LocationFactory(customer=customer, name="Dock A", tags=["billing", "shipping"], city="Bremen")
    LocationFactory(customer=other, name="Elsewhere")
    html = client.get(f"/customers/{customer.pk}/").content.decode()
    assert html.count('data-testid="location"') == 1
    assert "Dock A" in html and "Bremen" in html and "shipping" in html and "Elsewhere" not in html
    client.get(f"/customers/{customer.pk}/")
    for i in range(10):
        LocationFactory(customer=customer, tags=["pickup"])
    few, _ = count_queries(lambda: client.get(f"/customers/{customer.pk}/"))
    for i in range(10):
        LocationFactory(customer=customer, tags=["returns"])
    with django_assert_max_num_queries(few):
        client.get(f"/customers/{customer.pk}/")


def test_import_refuses_a_location_of_a_customer_he_may_only_view(org, client_for):
    """Updating by ID needs the right to change the location's customer."""
    loc = LocationFactory(customer=customer_of(org, "east_rep2"), name="Colleague's dock")
    before = Location.objects.filter(pk=loc.pk).values().first()
    report = import_csv(LocationResource, csv_bytes([["ID", "Name"], [loc.pk, "Mine now"]]), org.user("east_rep"),
                        dry_run=False)
    assert [(e.row, e.column) for e in report.errors] == [(2, "ID")]
    assert Location.objects.filter(pk=loc.pk).values().first() == before


# -- admin ----------------------------------------------------------------------------------------

@pytest.fixture
def staff_rep(org):
    user = org.user("east_rep")
    user.is_staff = True
    user.save()
    return user


def test_admin_follows_the_customer(org, client_for, staff_rep):
    client = client_for(staff_rep)
    mine = LocationFactory(customer=customer_of(org, "east_rep"), name="Mine")
    colleague = LocationFactory(customer=customer_of(org, "east_rep2"), name="Colleague's")
    west = LocationFactory(customer=customer_of(org, "west_rep"), name="West secret")
    listed = client.get("/admin/customers/location/")
    assert listed.status_code == 200
    assert {o.pk for o in listed.context["cl"].result_list} >= {mine.pk, colleague.pk}
    assert west.pk not in {o.pk for o in listed.context["cl"].result_list}
    assert "West secret" not in listed.content.decode()
    assert client.get(f"/admin/customers/location/{west.pk}/change/").status_code in (302, 404)
    assert client.get(f"/admin/customers/location/{mine.pk}/change/").status_code == 200
    response = client.post(f"/admin/customers/location/{colleague.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403 and Location.objects.filter(pk=colleague.pk).exists()
    form = client.get("/admin/customers/location/add/").context["adminform"].form
    assert set(form.fields["customer"].queryset) == {mine.customer}
    superuser = client_for(org.user("admin"))
    assert superuser.get(f"/admin/customers/location/{west.pk}/change/").status_code == 200
    assert superuser.get(f"/admin/customers/location/{west.pk}/history/").status_code == 200


def test_admin_import_checks_rows_like_the_app(org, client_for, staff_rep):
    client = client_for(staff_rep)
    mine, west = customer_of(org, "east_rep"), customer_of(org, "west_rep")
    data = csv_bytes([["ID", "Customer", "Name", "Tags"], ["", mine.name, "Dock", "billing;pickup"],
                      ["", west.name, "Sneaked", ""]])
    response = client.post("/admin/customers/location/import/", {
        "resource": "0", "format": "0", "import_file": SimpleUploadedFile("l.csv", data, "text/csv")})
    assert response.status_code == 200
    assert [row.number for row in response.context["result"].invalid_rows] == [2]
    data = csv_bytes([["ID", "Customer", "Name", "Tags"], ["", mine.name, "Dock", "billing;pickup"]])
    response = client.post("/admin/customers/location/import/", {
        "resource": "0", "format": "0", "import_file": SimpleUploadedFile("l.csv", data, "text/csv")})
    assert not response.context["result"].has_validation_errors()
    client.post("/admin/customers/location/process_import/", response.context["confirm_form"].initial)
    dock = Location.objects.get(name="Dock")
    assert (dock.customer, sorted(t.name for t in dock.tags.all())) == (mine, ["billing", "pickup"])
    assert not Location.objects.filter(name="Sneaked").exists()


def test_admin_export_is_the_apps(org, client_for, staff_rep):
    client = client_for(staff_rep)
    mine = LocationFactory(customer=customer_of(org, "east_rep"), name="Mine", tags=["returns", "billing"])
    LocationFactory(customer=customer_of(org, "west_rep"), name="West secret")
    response = client.get("/admin/customers/location/export/")
    fields = {name: "on" for name in response.context["form"].fields if name.startswith("locationresource_")}
    response = client.post("/admin/customers/location/export/", {"format": "0", "resource": "0", **fields})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [(r["Name"], r["Customer"], r["Type"], r["Tags"]) for r in rows] == [
        ("Mine", mine.customer.name, "Warehouse", "billing; returns")]
