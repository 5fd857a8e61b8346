"""The approval rules, the expiry (derived before the job runs, persisted and mailed once by
it), the signed single-use links, decisions on behalf, and the customer page's section."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail, signing
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalLink, ApprovalRequest, PurchaseRequest, Status
from tests.toolkit import export_csv, grid_rows

from .factories import PurchaseRequestFactory, b2b_customer, member

LIMIT, BUDGET = Decimal("1000"), Decimal("5000")
# (group, amount, approved spend this month) -> (needs approval, only an Admin may approve)
RULES = [
    # role        below limit, within budget   above limit, within budget   below limit, over budget    above, over
    ("admin", "500", "0", (False, False)), ("admin", "1500", "0", (False, False)),
    ("admin", "500", "4800", (False, False)), ("admin", "1500", "4800", (False, False)),
    ("buyer", "500", "0", (False, False)), ("buyer", "1500", "0", (True, True)),
    ("buyer", "500", "4800", (True, False)), ("buyer", "1500", "4800", (True, True)),
    ("requester", "500", "0", (True, False)), ("requester", "1500", "0", (True, True)),
    ("requester", "500", "4800", (True, False)), ("requester", "1500", "4800", (True, True)),
]


@pytest.fixture
def shop(org):
    """A customer with a limit and a budget, one contact per group (all with email)."""
    customer = b2b_customer(owner=org.user("east_rep"), limit=LIMIT, budget=BUDGET, name="Shop Co")
    people = {kind: member(customer, kind, email=f"{kind}@shop.example", first_name=kind.capitalize())
              for kind in ("admin", "buyer", "requester", "contact")}
    return customer, people


def spend(customer, requester, amount):
    if Decimal(amount):
        PurchaseRequestFactory(customer=customer, requester=requester, total=Decimal(amount))


@pytest.mark.parametrize("kind,amount,spent,expected", RULES,
                         ids=[f"{k}-{a}-spent{s}" for k, a, s, _ in RULES])
def test_rule_table(shop, org, kind, amount, spent, expected):
    customer, people = shop
    spend(customer, people["admin"], spent)
    pr = services.create_purchase_request(customer, people[kind], total=amount, currency="USD",
                                          user=org.user("east_rep"))
    needs, admin_only = expected
    approval = ApprovalRequest.objects.filter(purchase_request=pr).first()
    assert (approval is not None) == needs
    assert pr.approved == (not needs)
    if needs:
        assert approval.admin_only == admin_only and approval.status_value() == Status.PENDING
        approvers = {c.pk for c in approval.approvers.all()}
        expected_approvers = {people["admin"].pk} if admin_only else {people["admin"].pk, people["buyer"].pk}
        assert approvers == expected_approvers - {people[kind].pk}
        assert approval.expires_at > timezone.now() + timedelta(days=6)
        assert sorted(m.to[0] for m in mail.outbox) == sorted(
            f"{k}@shop.example" for k in ("admin", "buyer") if people[k].pk in approvers)
    else:
        assert mail.outbox == []


def test_contact_group_may_not_request(shop, org):
    customer, people = shop
    with pytest.raises(ValidationError) as e:
        services.create_purchase_request(customer, people["contact"], total="10", user=org.user("east_rep"))
    assert "Contact group" in str(e.value.message_dict["requester"])
    assert not PurchaseRequest.objects.exists()


def test_other_currency_refused_when_limit_or_budget(shop, org):
    customer, people = shop
    with pytest.raises(ValidationError) as e:
        services.create_purchase_request(customer, people["buyer"], total="10", currency="EUR")
    assert "USD" in e.value.message_dict["currency"][0]
    plain = b2b_customer(owner=org.user("east_rep"))
    pr = services.create_purchase_request(plain, member(plain, "buyer"), total="10", currency="EUR")
    assert pr.approved


def test_above_limit_without_admin_is_refused(org):
    customer = b2b_customer(owner=org.user("east_rep"), limit=100)
    buyer, _ = member(customer, "buyer"), member(customer, "buyer")
    with pytest.raises(ValidationError) as e:
        services.create_purchase_request(customer, buyer, total="500")
    assert "add an Admin contact" in str(e.value)
    assert not PurchaseRequest.objects.exists()


def test_approval_group_takes_precedence(shop):
    customer, people = shop
    outsider = member(customer, "buyer")
    customer.approvers.set([outsider, people["admin"]])
    pr = services.create_purchase_request(customer, people["requester"], total="100")
    assert set(pr.approval.approvers.all()) == {outsider, people["admin"]}
    pr = services.create_purchase_request(customer, people["requester"], total="1500")
    assert set(pr.approval.approvers.all()) == {people["admin"]}  # above the limit: only Admins of the group


def test_month_spend_counts_approved_requests_of_this_month(shop):
    customer, people = shop
    services.create_purchase_request(customer, people["admin"], lines=[("Desk", 2, "300.00"), ("Lamp", 1, "50")])
    old = services.create_purchase_request(customer, people["admin"], total="700")
    PurchaseRequest.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    services.create_purchase_request(customer, people["requester"], total="900")  # pending: not spent
    assert services.month_spend(customer) == Decimal("650.00")


def test_form_errors_are_shown_where_they_happen(shop, org, client_for):
    customer, people = shop
    client = client_for(org.user("east_rep"))
    data = {"customer": customer.pk, "title": "Chairs", "requester": people["contact"].pk, "currency": "EUR",
            "total": "", "lines-TOTAL_FORMS": "1", "lines-INITIAL_FORMS": "0", "lines-MIN_NUM_FORMS": "0",
            "lines-MAX_NUM_FORMS": "100", "lines-0-item": "Chair", "lines-0-quantity": "4",
            "lines-0-unit_price": "50"}
    response = client.post("/purchase-requests/new/", data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "Contact group" in errors["requester"][0] and "USD" in errors["currency"][0]
    assert not PurchaseRequest.objects.exists()
    data.update(requester=people["buyer"].pk, currency="USD")
    response = client.post("/purchase-requests/new/", data)
    assert response.status_code == 302
    pr = PurchaseRequest.objects.get()
    assert (pr.total, pr.approved, pr.lines.count()) == (Decimal("200.00"), True, 1)


# -- expiry -----------------------------------------------------------------------------------

def pending(shop, amount="1500"):
    customer, people = shop
    return services.create_purchase_request(customer, people["requester"], total=amount).approval


def test_expired_shows_everywhere_before_the_job_runs(shop, org, client_for):
    approval = pending(shop)
    ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert ApprovalRequest.objects.get(pk=approval.pk).status == Status.PENDING  # stored: the job has not run
    client = client_for(org.user("east_rep"))
    assert ApprovalRequest.objects.get(pk=approval.pk).current_status == Status.EXPIRED
    pks, body = grid_rows(client.get("/approvals/", {"status": "pending"}))
    assert approval.pk not in pks
    pks, body = grid_rows(client.get("/approvals/", {"status": "expired"}))
    assert pks == [approval.pk] and "Pending" not in body
    headers, rows = export_csv(client, "approvals")
    assert rows[0][headers.index("Status")] == "Expired"
    assert {"ID", "Customer", "Requester", "Amount", "Currency", "Status", "Expires"} <= set(headers)
    page = client.get(f"/approvals/{approval.pk}/").content.decode()
    assert 'data-status="expired"' in page and 'data-status="pending"' not in page
    page = client.get(f"/purchase-requests/{approval.purchase_request_id}/").content.decode()
    assert 'data-status="pending"' not in page
    page = client.get(f"/customers/{approval.customer_id}/").content.decode()
    assert 'data-status="expired"' in page and 'data-status="pending"' not in page
    # Nor can it still be decided.
    response = client.post(f"/approvals/{approval.pk}/edit/",
                           {"approver": approval.approvers.first().pk, "decision": "approve"})
    assert response.status_code == 400
    assert ApprovalRequest.objects.get(pk=approval.pk).status == Status.PENDING


def test_the_job_persists_expiry_and_mails_the_requester_once(shop):
    approval = pending(shop)
    fresh = pending(shop, "1200")
    ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    mail.outbox.clear()
    call_command("expire_approvals", stdout=open("/dev/null", "w"))
    approval = ApprovalRequest.objects.get(pk=approval.pk)
    assert approval.status == Status.EXPIRED and approval.expiry_notified_at is not None
    assert ApprovalRequest.objects.get(pk=fresh.pk).status == Status.PENDING
    assert [m.to for m in mail.outbox] == [["requester@shop.example"]] and "expired" in mail.outbox[0].body
    assert approval.history.first().history_change_reason == "Expired without a decision"
    assert services.expire_approvals() == 0
    assert len(mail.outbox) == 1


# -- signed links -----------------------------------------------------------------------------

def link_of(approval, email):
    body = next(m.body for m in mail.outbox if m.to == [email])
    start = body.index("/approvals/respond/")
    return body[start: body.index("\n", start)].strip()


def test_link_works_once(shop, client):
    approval = pending(shop)
    url = link_of(approval, "admin@shop.example")
    page = client.get(url)
    assert page.status_code == 200 and "1,500.00" in page.content.decode()
    assert ApprovalRequest.objects.get(pk=approval.pk).status == Status.PENDING  # GET changes nothing
    mail.outbox.clear()
    response = client.post(url, {"decision": "approve", "comment": "Go ahead"})
    assert response.status_code == 200 and "You approved" in response.content.decode()
    approval = ApprovalRequest.objects.get(pk=approval.pk)
    assert approval.status == Status.APPROVED and approval.decided_by.first_name == "Admin"
    assert approval.purchase_request.approved and approval.recorded_by is None
    assert [c.body for c in approval.comments.all()] == ["Go ahead"]
    assert [m.to for m in mail.outbox] == [["requester@shop.example"]] and "approved" in mail.outbox[0].subject
    for response in (client.get(url), client.post(url, {"decision": "decline"})):
        assert response.status_code == 410 and "already been used" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=approval.pk).status == Status.APPROVED


def test_link_refused_after_expiry(shop, client):
    approval = pending(shop)
    url = link_of(approval, "admin@shop.example")
    ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(url, {"decision": "approve"})
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=approval.pk).status == Status.PENDING


def test_link_refused_when_altered(shop, client):
    approval = pending(shop)
    url = link_of(approval, "admin@shop.example")
    token = url.rstrip("/").rsplit("/", 1)[1]
    altered = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    for bad in (altered, token[:-3], "garbage"):
        response = client.post(f"/approvals/respond/{bad}/", {"decision": "approve"})
        assert response.status_code == 410 and "not valid" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=approval.pk).status == Status.PENDING


def test_link_refused_for_another_approval(shop, client):
    first, second = pending(shop), pending(shop, "1300")
    link = ApprovalLink.objects.get(approval=first, approver__first_name="Admin")
    # Correctly signed, but naming another approval than the link row it carries.
    forged = signing.dumps({"a": second.pk, "c": link.approver_id, "n": link.nonce}, salt=services.LINK_SALT)
    response = client.post(f"/approvals/respond/{forged}/", {"decision": "approve"})
    assert response.status_code == 410
    assert {a.status for a in ApprovalRequest.objects.all()} == {Status.PENDING}


def test_declined_link_and_withdrawn(shop, client, org, client_for):
    approval = pending(shop)
    response = client.post(link_of(approval, "admin@shop.example"), {"decision": "decline", "comment": "Too much"})
    assert response.status_code == 200
    approval = ApprovalRequest.objects.get(pk=approval.pk)
    assert approval.status == Status.DECLINED and not approval.purchase_request.approved
    mail.outbox.clear()
    other = pending(shop)
    staff = client_for(org.user("east_rep"))
    assert staff.post(f"/approvals/{other.pk}/withdraw/").status_code == 302
    assert ApprovalRequest.objects.get(pk=other.pk).status == Status.CLOSED
    response = client.post(link_of(other, "admin@shop.example"), {"decision": "approve"})
    assert response.status_code == 410 and "closed" in response.content.decode()


def test_customer_page_shows_limit_spend_and_requests(shop, org, client_for):
    customer, people = shop
    services.create_purchase_request(customer, people["admin"], total="1250", title="Laptops")
    services.create_purchase_request(customer, people["requester"], total="80", title="Pens")
    page = client_for(org.user("east_rep")).get(f"/customers/{customer.pk}/").content.decode()
    assert "1,000.00 USD per purchase" in page
    assert "1,250.00 USD</dd>" not in page and "1,250.00 USD of a 5,000.00 budget" in page
    assert 'aria-valuenow="25"' in page
    assert "Laptops" in page and "Pens" in page and 'data-status="pending"' in page
    assert "New purchase request" in page
