"""Purchase requests and their approvals: the rules, the writes (each one transaction, with
history rows) and the mails.

The rule table (also in the README):

    requester's group  | within limit and budget | over the budget | above the limit
    Admin              | approved                | approved        | approved
    Buyer              | approved                | approval        | approval by an Admin
    Requester          | approval                | approval        | approval by an Admin
    Contact (or none)  | refused                 | refused         | refused

Mail is sent after the transaction has committed, so a rolled-back write mails nobody.
"""
import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from contacts.models import Contact, ContactCustomerAssignment
from crm.access import access
from customers.models import BusinessCustomer, CustomerGroup, CustomerGroupMember
from customers.services import customer_section

from .models import ApprovalComment, ApprovalLink, ApprovalRequest, PurchaseLine, PurchaseRequest, Status

LINK_SALT = "approvals.respond"
CENTS = Decimal("0.01")


class LinkRefused(Exception):
    """Why an approver's link does nothing (shown to him as is)."""


# -- the rules -----------------------------------------------------------------------------------

def month_bounds(now=None):
    local = timezone.localtime(now or timezone.now())
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def month_spend(customer, now=None):
    """This calendar month's approved requests of the customer, in its currency."""
    start, end = month_bounds(now)
    total = (PurchaseRequest.objects.filter(customer=customer, approved=True, currency=customer.currency,
                                            created_at__gte=start, created_at__lt=end)
             .aggregate(total=Sum("total"))["total"])
    return total or Decimal("0")


def group_kind(customer, contact):
    """The contact's group at the customer (admin, buyer, requester, contact) or None."""
    return (CustomerGroupMember.objects.filter(customer=customer, contact=contact)
            .values_list("group__kind", flat=True).first())


def rule(kind, amount, limit, budget, spend):
    """(needs approval, only an Admin may approve, reason) for a request of `amount` by a
    contact of group `kind`; `limit` and `budget` None mean none set."""
    above_limit = limit is not None and amount > limit
    over_budget = budget is not None and spend + amount > budget
    reasons = []
    if above_limit:
        reasons.append(f"above the purchase limit of {limit:,.2f}")
    if over_budget:
        reasons.append(f"the month's approved spend would reach {spend + amount:,.2f} of a {budget:,.2f} budget")
    if kind == CustomerGroup.Kind.ADMIN:
        return False, False, "Requested by an Admin"
    if kind == CustomerGroup.Kind.BUYER:
        if not reasons:
            return False, False, "Within the purchase limit and the budget"
        return True, above_limit, "Buyer's request " + " and ".join(reasons)
    if kind == CustomerGroup.Kind.REQUESTER:
        return True, above_limit, "Requester's request" + (", " + " and ".join(reasons) if reasons else "")
    raise ValueError(f"contacts of group {kind!r} may not request")


def eligible_approvers(customer, admin_only, exclude=None):
    """The approval group if it has members, else the Admins and (within the limit) the
    Buyers; above the limit only Admins among them. The requester never approves his own."""
    members = CustomerGroupMember.objects.filter(customer=customer)
    admins = members.filter(group__kind=CustomerGroup.Kind.ADMIN).values("contact_id")
    group = list(customer.approvers.all())
    if group:
        if admin_only:
            group = list(customer.approvers.filter(pk__in=admins))
        found = group
    else:
        kinds = [CustomerGroup.Kind.ADMIN] if admin_only else [CustomerGroup.Kind.ADMIN, CustomerGroup.Kind.BUYER]
        found = list(Contact.objects.filter(pk__in=members.filter(group__kind__in=kinds).values("contact_id")))
    return sorted((c for c in found if exclude is None or c.pk != exclude.pk), key=lambda c: (c.last_name, c.pk))


def line_total(lines):
    return sum(((Decimal(q) * Decimal(p)).quantize(CENTS) for _, q, p in lines), Decimal("0"))


def request_errors(customer, requester, total, currency, user=None):
    """{field: message} of why this request cannot be recorded, plus the decision when it
    can: (errors, (needs approval, admin only, reason, approvers))."""
    errors = {}
    if user is not None and not access(user).can("change", customer):
        errors["customer"] = "You may not record purchase requests for this customer."
        return errors, None
    if requester is not None:
        if not ContactCustomerAssignment.objects.filter(customer=customer, contact=requester).exists():
            errors["requester"] = f"{requester} is not a contact of {customer}."
        else:
            kind = group_kind(customer, requester)
            if kind is None or kind == CustomerGroup.Kind.CONTACT:
                errors["requester"] = (f"{requester} is in the Contact group of {customer}, which may not request "
                                       "purchases: put him in the Admin, Buyer or Requester group first.")
    if currency and currency != customer.currency and (customer.purchase_limit is not None
                                                       or customer.monthly_budget is not None):
        errors["currency"] = (f"{customer} has its purchase limit and budget in {customer.currency}: "
                              f"enter the request in {customer.currency} (there are no exchange rates).")
    if total is not None and total <= 0:
        errors["total"] = "Enter a total above zero, or lines with a quantity and a unit price."
    if errors or requester is None or total is None:
        return errors, None
    spend = month_spend(customer)
    needs, admin_only, reason = rule(kind, total, customer.purchase_limit, customer.monthly_budget, spend)
    approvers = eligible_approvers(customer, admin_only, exclude=requester) if needs else []
    if needs and not approvers:
        if admin_only:
            errors["__all__"] = (f"This request is above the purchase limit, so only an Admin of {customer} may "
                                 "approve it, and it has none: add an Admin contact first.")
        else:
            errors["__all__"] = (f"This request needs an approval and {customer} has nobody to approve it: "
                                 "add an Admin or Buyer contact (or members to its approval group) first.")
        return errors, None
    return errors, (needs, admin_only, reason, approvers)


# -- writes --------------------------------------------------------------------------------------

def create_purchase_request(customer, requester, lines=None, total=None, currency=None, comment="", user=None,
                            title=None, base_url=None):
    """Record a request and apply the rules (approved at once, or Pending with an approval
    whose approvers are mailed). `lines`: [(item, quantity, unit price)]; without lines,
    `total`. Raises ValidationError ({field: message}) and writes nothing when refused."""
    lines = [(str(i), Decimal(str(q)), Decimal(str(p))) for i, q, p in (lines or [])]
    if lines:
        total = line_total(lines)
    total = None if total is None else Decimal(str(total)).quantize(CENTS)
    currency = currency or customer.currency
    title = title or (lines[0][0] if lines else "Purchase")
    with transaction.atomic():
        # Locked, so two requests at once cannot both fit in the rest of the budget.
        customer = BusinessCustomer.objects.select_for_update().get(pk=customer.pk)
        errors, decision = request_errors(customer, requester, total, currency, user)
        if total is None:
            errors.setdefault("total", "Enter the lines or a total.")
        if errors:
            raise ValidationError(errors)
        needs, admin_only, reason, approvers = decision
        now = timezone.now()
        pr = PurchaseRequest(customer=customer, requester=requester, title=title, total=total, currency=currency,
                             comment=comment or "", created_by=user, approved=not needs,
                             approved_at=None if needs else now)
        pr._history_user = user
        pr._change_reason = "Recorded: " + ("needs approval" if needs else "approved, no approval needed")
        pr.save()
        PurchaseLine.objects.bulk_create([PurchaseLine(request=pr, item=i, quantity=q, unit_price=p)
                                          for i, q, p in lines])
        mails = []
        if needs:
            approval = ApprovalRequest(purchase_request=pr, customer=customer, requester=requester,
                                       expires_at=now + timedelta(days=customer.approval_expiry_days),
                                       reason=reason[:300], admin_only=admin_only)
            approval._history_user = user
            approval._change_reason = reason[:100]
            approval.save()
            approval.approvers.set(approvers)
            if comment:
                ApprovalComment.objects.create(approval=approval, author_user=user, body=comment)
            mails = approver_mails(approval, approvers, base_url)
    send_all(mails)
    return pr


def save_purchase_request(form, user, base_url=None):
    """The generic form's save: a new request goes through the rules; an existing one only
    changes its title and comment (the rules have decided already)."""
    if form.instance.pk:
        with transaction.atomic():
            pr = form.save(commit=False)
            pr._history_user = user
            pr.save()
        return pr
    data = form.cleaned_data
    return create_purchase_request(data["customer"], data["requester"], lines=form.line_values(),
                                   total=data.get("total"), currency=data["currency"], comment=data.get("comment", ""),
                                   user=user, title=data["title"], base_url=base_url)


def _lock(approval):
    return ApprovalRequest.objects.select_for_update().get(pk=approval.pk)


def decide(approval, approve, approver, comment="", user=None, link=None):
    """Approve or decline a Pending approval as `approver` (one of its eligible approvers):
    through his link (`link`), or recorded by staff `user` on his behalf."""
    with transaction.atomic():
        approval = _lock(approval)
        now = timezone.now()
        if approval.status_value(now) != Status.PENDING:
            raise LinkRefused(f"This approval request is already {Status(approval.status_value(now)).label.lower()}; "
                              "only a pending one can be decided.")
        if not approval.approvers.filter(pk=approver.pk).exists():
            raise PermissionDenied(f"{approver} is not an approver of this request.")
        approval.status = Status.APPROVED if approve else Status.DECLINED
        approval.decided_at, approval.decided_by, approval.recorded_by = now, approver, user
        verb = "Approved" if approve else "Declined"
        approval._history_user = user
        approval._change_reason = (f"{verb} by {approver}, recorded by {user} on his behalf" if user
                                   else f"{verb} by {approver} through the emailed link")[:100]
        approval.save()
        ApprovalLink.objects.filter(approval=approval, approver=approver, used_at__isnull=True).update(used_at=now)
        if comment:
            ApprovalComment.objects.create(approval=approval, author_contact=approver, body=comment)
        pr = approval.purchase_request
        if approve:
            pr.approved, pr.approved_at = True, now
            pr._history_user = user
            pr._change_reason = approval._change_reason
            pr.save(update_fields=["approved", "approved_at", "updated_at"])
        mails = [requester_mail(approval, "decided")]
    send_all(mails)
    return approval


def withdraw(approval, user, comment=""):
    """Close a Pending approval on the requester's side (staff records it)."""
    with transaction.atomic():
        approval = _lock(approval)
        if approval.status_value() != Status.PENDING:
            raise ValidationError("Only a pending approval can be withdrawn.")
        approval.status = Status.CLOSED
        approval.recorded_by = user
        approval._history_user = user
        approval._change_reason = "Withdrawn by the requester's side"
        approval.save()
        if comment:
            ApprovalComment.objects.create(approval=approval, author_user=user, body=comment)
    return approval


def add_comment(approval, user, body):
    if not access(user).can("change", approval):
        raise PermissionDenied("You may not comment on this approval.")
    return ApprovalComment.objects.create(approval=approval, author_user=user, body=body)


def expire_approvals(now=None):
    """Persist Expired on Pending approvals past their expiry and mail their requesters,
    each once (the next run no longer finds them). Returns how many expired."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(ApprovalRequest.objects.due(now).select_for_update())
        for approval in due:
            approval.status, approval.expiry_notified_at = Status.EXPIRED, now
        if due:
            bulk_update_with_history(due, ApprovalRequest, ["status", "expiry_notified_at"],
                                     default_change_reason="Expired without a decision")
        loaded = list(ApprovalRequest.objects.filter(pk__in=[a.pk for a in due])
                      .select_related("purchase_request", "requester", "customer"))
        mails = [requester_mail(a, "expired") for a in loaded]
    send_all(mails)
    return len(due)


# -- signed links -------------------------------------------------------------------------------

def make_link(approval, approver):
    link, _ = ApprovalLink.objects.get_or_create(approval=approval, approver=approver,
                                                 defaults={"nonce": secrets.token_hex(16)})
    return signing.dumps({"a": approval.pk, "c": approver.pk, "n": link.nonce}, salt=LINK_SALT)


def read_link(token):
    """(link, approval) of a token, or LinkRefused saying why it does nothing: altered, not
    one we issued, used, or past the approval's expiry."""
    try:
        payload = signing.loads(token, salt=LINK_SALT)
    except signing.BadSignature:
        raise LinkRefused("This link is not valid: it may have been altered or cut short. "
                          "Use the link from the email as it is.")
    if not isinstance(payload, dict):
        raise LinkRefused("This link is not valid.")
    link = (ApprovalLink.objects.select_related("approver")
            .filter(nonce=str(payload.get("n")), approval_id=payload.get("a"), approver_id=payload.get("c")).first())
    if link is None:
        raise LinkRefused("This link is not valid.")
    approval = (ApprovalRequest.objects.select_related("purchase_request", "customer", "requester")
                .get(pk=link.approval_id))
    try:
        signing.loads(token, salt=LINK_SALT,
                      max_age=max((approval.expires_at - link.created_at).total_seconds(), 0))
    except signing.SignatureExpired:
        raise LinkRefused("This link has expired: the approval request was not decided in time.")
    if link.used_at is not None:
        raise LinkRefused("This link has already been used; it works only once.")
    status = approval.status_value()
    if status == Status.EXPIRED:
        raise LinkRefused("This link has expired: the approval request was not decided in time.")
    if status != Status.PENDING:
        raise LinkRefused(f"This approval request is already {Status(status).label.lower()}; nothing was changed.")
    return link, approval


def respond(token, approve, comment=""):
    """The approver's answer through his link: once, while the approval is Pending."""
    with transaction.atomic():
        link, approval = read_link(token)
        ApprovalLink.objects.select_for_update().filter(pk=link.pk, used_at__isnull=True).first() or _used()
        return decide(approval, approve, link.approver, comment, link=link)


def _used():
    raise LinkRefused("This link has already been used; it works only once.")


def link_url(token, base_url=None):
    base = (base_url or settings.CRM_BASE_URL).rstrip("/")
    return base + reverse("approvals:respond", args=[token])


# -- mail ---------------------------------------------------------------------------------------

def approver_mails(approval, approvers, base_url=None):
    mails = []
    for approver in approvers:
        if not approver.email:
            continue  # staff can still record his decision on his behalf
        token = make_link(approval, approver)
        ctx = {"approval": approval, "request": approval.purchase_request, "approver": approver,
               "url": link_url(token, base_url)}
        subject = (f"Approval needed: {approval.purchase_request.title} "
                   f"({approval.purchase_request.total:,.2f} {approval.purchase_request.currency})")
        mails.append((subject, render_to_string("approvals/email/approver.txt", ctx), [approver.email]))
    return mails


def requester_mail(approval, event):
    requester = approval.requester
    if not requester.email:
        return None
    status = Status(approval.status).label.lower()
    subject = f"Your purchase request “{approval.purchase_request.title}” was {status}"
    body = render_to_string("approvals/email/requester.txt",
                            {"approval": approval, "request": approval.purchase_request, "event": event,
                             "status": status, "requester": requester})
    return subject, body, [requester.email]


def send_all(mails):
    for mail in mails:
        if mail:
            subject, body, to = mail
            send_mail(subject, body, None, to)


# -- the customer page --------------------------------------------------------------------------

@customer_section
def customer_purchasing(request, customer):
    """The customer page's purchasing section: limit, this month's approved spend against
    the budget, the latest requests with their statuses."""
    spend = month_spend(customer)
    budget = customer.monthly_budget
    percent = None
    if budget:
        percent = min(int(spend * 100 / budget), 100)
    requests = list(PurchaseRequest.objects.filter(customer=customer).select_related("requester")[:11])
    return {"purchasing": {
        "limit": customer.purchase_limit, "budget": budget, "spend": spend, "percent": percent,
        "over": budget is not None and spend > budget, "requests": requests[:10], "more": len(requests) > 10,
        "can_request": access(request.user).can("change", customer),
    }}


def comments_of(approval):
    """The thread, for whoever may view the approval (comments follow it)."""
    return list(approval.comments.select_related("author_user", "author_contact"))
