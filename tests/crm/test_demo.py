"""seed_demo: the demo organization, safe to run twice, with users who can log in."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from accounts.models import Account
from channels.models import Channel
from crm.management.commands.seed_demo import DEFAULT_PASSWORD, USERS
from crm.models import BusinessUnit

pytestmark = pytest.mark.django_db


def seed(monkeypatch):
    monkeypatch.delenv("CRM_DEMO_PASSWORD", raising=False)
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts():
    models = [get_user_model(), BusinessUnit, Group, Account, Channel, Account.history.model]
    return {m.__name__: m.objects.count() for m in models}


def test_seed_demo_twice_changes_nothing(monkeypatch):
    first = seed(monkeypatch)
    after_first = counts()
    assert after_first["User"] == len(USERS) and after_first["Account"] > 0 and after_first["Channel"] > 0
    second = seed(monkeypatch)
    assert counts() == after_first
    assert "created" in first and "created" not in second
    for username, *_ in USERS:
        assert username in second, "the users are listed on every run"
    assert DEFAULT_PASSWORD in second


@pytest.mark.parametrize("username", [u[0] for u in USERS])
def test_demo_users_log_in_with_the_default_password(monkeypatch, username):
    seed(monkeypatch)
    client = Client()
    response = client.post("/login/", {"username": username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302 and response.url == "/"
    response = client.get("/")
    assert response.status_code == 200 and response.context["user"].username == username
    bad = Client().post("/login/", {"username": username, "password": "wrong"})
    assert bad.status_code == 200 and not bad.context["user"].is_authenticated


def test_demo_password_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CRM_DEMO_PASSWORD", "another-secret-42")
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert DEFAULT_PASSWORD not in out.getvalue()
    assert Client().login(username="east_rep", password="another-secret-42")


def test_demo_organization_follows_the_access_rules(monkeypatch):
    seed(monkeypatch)
    east_rep = get_user_model().objects.get(username="east_rep")
    client = Client()
    client.force_login(east_rep)
    visible = {a.name for a in client.get("/accounts/", {"per_page": 250}).context["table"].data}
    west = set(Account.objects.filter(business_unit__name="West").values_list("name", flat=True))
    east = set(Account.objects.filter(business_unit__name="East").values_list("name", flat=True))
    assert west and east
    assert visible == east


def test_demo_has_the_b2b_company(monkeypatch, mailoutbox):
    from approvals.models import ApprovalRequest, Status
    from customers.models import BusinessCustomer, CustomerGroupMember

    seed(monkeypatch)
    company = BusinessCustomer.objects.get(name="Globex Online")
    assert company.purchase_limit and company.monthly_budget
    assert list(company.children.values_list("name", flat=True)) == ["Globex Online Europe"]
    assert company.locations.count() == 2
    assert set(company.groups.values_list("kind", flat=True)) == {"admin", "buyer", "requester", "contact"}
    kinds = set(CustomerGroupMember.objects.filter(customer=company).values_list("group__kind", flat=True))
    assert {"admin", "buyer", "requester"} <= kinds
    shown = list(ApprovalRequest.objects.filter(customer=company).values_list("current_status", flat=True))
    assert sorted(shown) == [Status.EXPIRED, Status.PENDING]
    links = [m for m in mailoutbox if "/approvals/respond/" in m.body]
    assert links, "the pending approval's approvers are mailed when the demo is created"
    sent = len(mailoutbox)
    seed(monkeypatch)
    assert len(mailoutbox) == sent, "a second run mails nothing"
    assert ApprovalRequest.objects.filter(customer=company).count() == 2
