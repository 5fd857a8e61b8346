"""Activities: logged from the record page, shown newest first, visible exactly to who may
view the record, by every path (timeline, their URLs, the admin, the generic selector)."""
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

import customers.views  # noqa: F401  (declares the entity)
from activities.models import Activity
from activities.services import activities_for, timeline
from crm.access import access, restrict
from tests.customers.factories import ActivityFactory, BusinessCustomerFactory, CustomerEmailFactory


def new_url(customer, kind):
    return f"/activities/customers.businesscustomer/{customer.pk}/new/{kind}/"


@pytest.fixture
def east_customer(org):
    return BusinessCustomerFactory(name="East Co", owner=org.user("east_rep"), business_unit=org.unit("East"))


def test_log_every_kind_and_see_them_newest_first(org, client_for, east_customer):
    CustomerEmailFactory(customer=east_customer, email="buyer@east.example", is_primary=True)
    client = client_for(org.user("east_rep"))
    when = (timezone.localtime() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    posts = [
        ("call", {"subject": "Intro call", "direction": "out", "occurred_at": when, "duration": "15", "body": "Nice."}),
        ("note", {"body": "Prefers email."}),
        ("task", {"subject": "Send quote", "due_date": "2030-01-31", "body": "Two options."}),
        ("email", {"to_address": "buyer@east.example", "subject": "Your quote", "body": "Attached."}),
    ]
    for kind, data in posts:
        assert client.get(new_url(east_customer, kind)).status_code == 200
        response = client.post(new_url(east_customer, kind), data)
        assert response.status_code == 302 and response.url == f"/customers/{east_customer.pk}/#activities"
    assert [m.to for m in mail.outbox] == [["buyer@east.example"]] and mail.outbox[0].subject == "Your quote"

    page = client.get(f"/customers/{east_customer.pk}/")
    kinds = [a.kind for a in page.context["activities"]]
    assert kinds == ["email", "task", "note", "call"]  # the call happened two hours ago
    html = page.content.decode()
    for text in ("Intro call", "Outbound", "15 min", "Send quote", "Mark done", "to buyer@east.example",
                 "Prefers email.", "Eddie" if org.user("east_rep").first_name == "Eddie" else org.user("east_rep").first_name):
        assert text in html, text
    call = Activity.objects.get(kind="call")
    assert (call.created_by, call.target, call.duration) == (org.user("east_rep"), east_customer, 15)


def test_htmx_form_is_a_modal_and_errors_stay_in_it(org, client_for, east_customer):
    client = client_for(org.user("east_rep"))
    response = client.get(new_url(east_customer, "call"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"modal-header" in response.content and b"<html" not in response.content
    response = client.post(new_url(east_customer, "call"), {"subject": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"is-invalid" in response.content
    response = client.post(new_url(east_customer, "note"), {"body": "Hi"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert json.loads(response["HX-Trigger"]) == {"crm-reload": {"url": f"/customers/{east_customer.pk}/#activities"}}


def test_email_only_to_the_records_addresses(org, client_for, east_customer):
    client = client_for(org.user("east_rep"))
    response = client.post(new_url(east_customer, "email"),
                           {"to_address": "attacker@evil.example", "subject": "x", "body": "y"})
    assert response.status_code == 400 and "to_address" in response.context["form"].errors
    assert not mail.outbox and not Activity.objects.exists()


def test_a_mail_server_failure_says_so_in_words_and_records_nothing(org, client_for, east_customer, monkeypatch):
    from activities import services

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused by smtp.internal:25")

    monkeypatch.setattr(services.EmailMessage, "send", refuse)
    CustomerEmailFactory(customer=east_customer, email="buyer@east.example", is_primary=True)
    client = client_for(org.user("east_rep"))
    response = client.post(new_url(east_customer, "email"),
                           {"to_address": "buyer@east.example", "subject": "Your quote", "body": "Hello"})
    html = response.content.decode()
    assert "could not be reached" in html and "smtp.internal" not in html and "Errno" not in html
    assert not Activity.objects.exists()


def test_task_can_be_marked_done_and_reopened(org, client_for, east_customer):
    task = ActivityFactory(target=east_customer, kind="task", subject="Follow up")
    client = client_for(org.user("east_rep"))
    assert client.post(f"/activities/{task.pk}/done/", {"done": "1"}).status_code == 302
    task.refresh_from_db()
    assert task.done and task.done_at
    client.post(f"/activities/{task.pk}/done/", {"done": "0"})
    task.refresh_from_db()
    assert not task.done and task.done_at is None
    # A colleague who only views the record may read the task but not complete it.
    colleague = client_for(org.user("east_rep2"))
    assert colleague.get(f"/activities/{task.pk}/").status_code == 200
    assert colleague.post(f"/activities/{task.pk}/done/", {"done": "1"}).status_code == 403


@pytest.mark.parametrize("viewer", ["west_rep", "north_rep"])
def test_activities_of_a_hidden_record_are_unreachable(org, client_for, east_customer, viewer):
    task = ActivityFactory(target=east_customer, kind="task", subject="Secret plan")
    user = org.user(viewer)
    client = client_for(user)
    for url in (f"/activities/{task.pk}/", new_url(east_customer, "call"), new_url(east_customer, "email")):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/activities/{task.pk}/done/", {"done": "1"}).status_code == 404
    assert client.post(new_url(east_customer, "note"), {"body": "Sneaky"}).status_code == 404
    task.refresh_from_db()
    assert not task.done and Activity.objects.count() == 1
    # The selector, its helpers and the generic check all agree.
    assert not restrict(Activity.objects.all(), user, "view").exists()
    assert not activities_for(east_customer, user).exists()
    assert timeline([east_customer], user)["activities"] == []
    assert not access(user).can("view", task)
    assert "Secret plan" not in client.get("/search/", {"q": "Secret"}).content.decode()


def test_activities_follow_shares_of_the_record(org, client_for, east_customer):
    from crm.services import share_record

    note = ActivityFactory(target=east_customer)
    west = org.user("west_rep")
    assert not access(west).can("view", note)
    share_record(east_customer, org.user("east_rep"), west, "view")
    west = type(west).objects.get(pk=west.pk)
    assert list(activities_for(east_customer, west)) == [note]
    assert client_for(west).get(f"/activities/{note.pk}/").status_code == 200


def test_admin_shows_activities_only_of_visible_records(org, client, east_customer):
    hidden = ActivityFactory(target=east_customer, subject="East only")
    west = org.user("west_rep")
    west.is_staff = True
    west.save()
    own = BusinessCustomerFactory(name="West Co", owner=west, business_unit=org.unit("West"))
    mine = ActivityFactory(target=own, subject="West note")
    client.force_login(west)
    # The admin lists the activities of records he may view, as the app does, and no others.
    listing = client.get("/admin/activities/activity/")
    assert listing.status_code == 200
    assert "West note" in listing.content.decode() and "East only" not in listing.content.decode()
    response = client.get(f"/admin/activities/activity/{hidden.pk}/change/")
    assert response.status_code in (302, 403, 404) and "East only" not in response.content.decode()
    # The customers' admin lists his records only, and the East customer's page does not exist for him.
    listing = client.get("/admin/customers/businesscustomer/").content.decode()
    assert "West Co" in listing and "East Co" not in listing
    response = client.get(f"/admin/customers/businesscustomer/{east_customer.pk}/change/")
    assert response.status_code == 302 and response.url == "/admin/"
    admin = org.user("admin")
    client.force_login(admin)
    listing = client.get("/admin/activities/activity/").content.decode()
    assert "East only" in listing and "West note" in listing
    assert client.get(f"/admin/activities/activity/{mine.pk}/change/").status_code == 200


def test_activities_for_several_records_in_one_query(org, django_assert_num_queries, east_customer):
    other = BusinessCustomerFactory(name="Other Co", owner=org.user("east_rep"), business_unit=org.unit("East"))
    hidden = BusinessCustomerFactory(name="West Co", owner=org.user("west_rep"), business_unit=org.unit("West"))
    for target in (east_customer, other, hidden):
        ActivityFactory.create_batch(3, target=target)
    user = org.user("east_rep")
    # Warm the per-request caches (roles, unit grants, shares): then records cost no query each.
    list(activities_for([east_customer, hidden], user))
    with django_assert_num_queries(1):
        found = list(activities_for([east_customer, other, hidden], user))
        names = [a.created_by.username for a in found]
    assert len(found) == 6 and set(names) == {"east_rep"}
    with django_assert_num_queries(2):  # the activities, then their records: one query per model
        found = list(activities_for([east_customer, other], user, with_targets=True))
        assert {a.target.name for a in found} == {"East Co", "Other Co"}


def test_deleting_a_record_deletes_its_activities(org, client_for, east_customer):
    ActivityFactory.create_batch(2, target=east_customer)
    response = client_for(org.user("east_rep")).post(f"/customers/{east_customer.pk}/delete/", {"confirm": "1"})
    assert response.status_code == 302
    assert not Activity.objects.exists()
