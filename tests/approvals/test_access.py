"""Purchase requests and approvals follow their customer: who may view the customer sees
them (grid, filters, export, record page), who may change it records requests and
decisions; nobody else learns anything of them."""
from decimal import Decimal

import pytest

import approvals.views  # noqa: F401  (declares the entities the suites look up)
from approvals.models import ApprovalRequest, PurchaseRequest, Status
from tests.toolkit import AccessSuite, QueryCountSuite, export_csv, grid_rows, token

from .factories import ApprovalFactory, PurchaseRequestFactory, b2b_customer, member


def lines_management(count=0):
    return {"lines-TOTAL_FORMS": str(count), "lines-INITIAL_FORMS": "0", "lines-MIN_NUM_FORMS": "0",
            "lines-MAX_NUM_FORMS": "100"}


def customer_of(org, owner, unit, name):
    user = org.user(owner)
    return b2b_customer(owner=user, unit=org.unit(unit) if unit else user.primary_unit, name=f"{name} Co")


class TestPurchaseRequestAccess(AccessSuite):
    namespace = "purchase_requests"
    factory = PurchaseRequestFactory
    name_field = "title"
    name_column = "Title"
    searchable = False

    def make(self, org, name, owner=None, unit=None):
        customer = customer_of(org, owner or "east_rep", unit, name)
        return PurchaseRequestFactory(customer=customer, title=name)

    def form_data(self, org, user, name):
        customer = b2b_customer(owner=user, name=f"{name} Co")
        admin = member(customer, "admin")
        return {"customer": customer.pk, "title": name, "requester": admin.pk, "currency": "USD", "total": "120.00",
                "comment": "", **lines_management()}

    def edit_data(self, org, user, obj, name):
        return {"title": name, "comment": "Edited"}


class TestApprovalAccess(AccessSuite):
    namespace = "approvals"
    factory = ApprovalFactory
    name_field = "title"
    name_column = "Title"
    searchable = False
    creators = ()  # the rules open approvals; nobody creates one by hand

    def make(self, org, name, owner=None, unit=None):
        customer = customer_of(org, owner or "east_rep", unit, name)
        approver = member(customer, "admin", email=f"{token()}@example.com")
        pr = PurchaseRequestFactory(customer=customer, title=name, approved=False)
        approval = ApprovalFactory(purchase_request=pr)
        approval.approvers.set([approver])
        return approval

    def form_data(self, org, user, name):
        return {}

    def edit_data(self, org, user, obj, name):
        return {"approver": obj.approvers.get().pk, "decision": "approve", "comment": name}

    def snapshot(self, obj):
        return (ApprovalRequest.objects.filter(pk=obj.pk).values().first(), obj.comments.count(),
                PurchaseRequest.objects.filter(pk=obj.purchase_request_id).values().first())

    def test_non_creator_is_refused(self, org, client_for, non_creator):
        user = org.user(non_creator)
        client = client_for(user)
        obj = self.make(org, f"{token()} Existing", owner=non_creator)
        before = self.snapshot(obj)
        assert client.get(self.url("create")).status_code == 403
        assert client.post(self.url("create"), {}).status_code == 403
        # Approvals are never deleted by hand (the purchase request's deletion takes its approval).
        assert client.get(self.url("delete", obj.pk)).status_code == 403
        assert client.post(self.url("delete", obj.pk), {"confirm": "1"}).status_code == 403
        assert client.post(self.url("mass_delete"), {"pk": [obj.pk], "confirm": "1"}).status_code == 403
        assert self.snapshot(obj) == before
        grid = client.get(self.url("list"))
        assert grid.status_code == 200 and grid.context["can_add"] is False

    def test_hidden_record_paths_are_404(self, org, client_for, hidden_case):
        super().test_hidden_record_paths_are_404(org, client_for, hidden_case)
        viewer, target, _, _ = self.setup_case(org, hidden_case)
        client = client_for(viewer)
        before = self.snapshot(target)
        assert client.post(self.url("comment", target.pk), {"body": "Hijacked"}).status_code == 404
        assert client.post(self.url("withdraw", target.pk)).status_code == 404
        assert self.snapshot(target) == before

    def test_readonly_record_is_403(self, org, client_for, readonly_case):
        super().test_readonly_record_is_403(org, client_for, readonly_case)
        viewer, target, _, _ = self.setup_case(org, readonly_case)
        client = client_for(viewer)
        before = self.snapshot(target)
        assert client.post(self.url("comment", target.pk), {"body": "Hijacked"}).status_code == 403
        assert client.post(self.url("withdraw", target.pk)).status_code == 403
        assert self.snapshot(target) == before

    def test_editable_record(self, org, client_for, editable_case):
        """Who may change the customer records a decision on the approver's behalf and comments."""
        viewer, target, _, word = self.setup_case(org, editable_case)
        client = client_for(viewer)
        response = client.get(self.url("detail", target.pk))
        assert response.status_code == 200 and response.context["can_change"]
        assert not response.context["can_delete"]
        _, rows = export_csv(client, self.namespace, {"q": word})
        assert str(target.pk) in {row[0] for row in rows}
        assert client.post(self.url("comment", target.pk), {"body": "Checked the offer"}).status_code == 302
        response = client.post(self.url("update", target.pk), self.edit_data(org, viewer, target, "Fine"))
        assert response.status_code == 302
        target = ApprovalRequest.objects.get(pk=target.pk)
        assert (target.status, target.recorded_by, target.decided_by) == (Status.APPROVED, viewer,
                                                                          target.approvers.get())
        assert target.purchase_request.approved
        record = target.history.first()
        assert record.history_user == viewer and "on his behalf" in record.history_change_reason
        assert [c.body for c in target.comments.all()] == ["Checked the offer", "Fine"]


def bulk_requests(org, count, prefix, owner="east_rep", approvals=False):
    user = org.user(owner)
    customer = b2b_customer(owner=user, name=f"Bulk buyer {token()}")
    requester = member(customer, "requester")
    prs = PurchaseRequest.objects.bulk_create([
        PurchaseRequest(customer=customer, requester=requester, title=f"{prefix} {i:05d}", total=Decimal(i + 1),
                        currency="USD", approved=not approvals) for i in range(count)], batch_size=500)
    if approvals:
        from django.utils import timezone

        ApprovalRequest.objects.bulk_create([
            ApprovalRequest(purchase_request=pr, customer=customer, requester=requester, reason="Requester's request",
                            expires_at=timezone.now()) for pr in prs], batch_size=500)


class NoImport:
    def test_import_queries_are_bounded(self):
        pytest.skip("no import: the rules create these records")

    def test_import_updates_queries_are_bounded(self):
        pytest.skip("no import: the rules create these records")

    def grid(self, client):
        response = client.get(self.list_url(), {"per_page": 250, "sort": "id"})
        assert response.status_code == 200
        return response

    def export(self, client):
        response = client.get(self.list_url() + "export/", {"sort": "id"})
        assert response.status_code == 200
        return b"".join(response.streaming_content)


class TestPurchaseRequestQueries(NoImport, QueryCountSuite):
    namespace = "purchase_requests"
    factory = PurchaseRequestFactory

    def list_url(self):
        return "/purchase-requests/"

    def bulk_make(self, org, count, prefix):
        bulk_requests(org, count, prefix)


class TestApprovalQueries(NoImport, QueryCountSuite):
    namespace = "approvals"
    factory = ApprovalFactory

    def list_url(self):
        return "/approvals/"

    def bulk_make(self, org, count, prefix):
        bulk_requests(org, count, prefix, approvals=True)


def test_hidden_customers_requests_stay_out_of_the_customer_page(org, client_for):
    """The customer page lists only that customer's requests, for who may view it."""
    east = client_for(org.user("east_rep"))
    word = token()
    mine = customer_of(org, "east_rep", None, word)
    PurchaseRequestFactory(customer=mine, title=f"{word} Mine")
    other = customer_of(org, "west_rep", None, f"{word} other")
    PurchaseRequestFactory(customer=other, title=f"{word} Theirs")
    page = east.get(f"/customers/{mine.pk}/").content.decode()
    assert f"{word} Mine" in page and f"{word} Theirs" not in page
    assert east.get(f"/customers/{other.pk}/").status_code == 404
    pks, body = grid_rows(east.get("/purchase-requests/", {"q": word}))
    assert f"{word} Theirs" not in body and len(pks) == 1


def test_the_approvals_grid_offers_no_delete(org, client_for):
    page = client_for(org.user("admin")).get("/approvals/").content.decode()
    assert "mass_delete" not in page and "/approvals/delete/" not in page
