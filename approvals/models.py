"""Purchase requests of business customers and the approval requests the rules open for them.

Both follow their customer for access (customers.models.CustomerChild). An approval's
stored `status` only changes by a decision, a withdrawal or the expiry job; what is shown
everywhere is `current_status`, derived in the queryset, so a Pending approval whose expiry
has passed reads Expired before the job has run.
"""
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.urls import reverse
from django.utils import timezone

from crm.models import History, TimeStampedModel
from customers.models import CURRENCIES, BusinessCustomer, CustomerChild


class Status(models.TextChoices):
    APPROVED = "approved", "Approved"
    PENDING = "pending", "Pending"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"
    CLOSED = "closed", "Closed"


STATUS_BADGES = {Status.APPROVED: "success", Status.PENDING: "warning", Status.DECLINED: "danger",
                 Status.EXPIRED: "secondary", Status.CLOSED: "dark"}


def derived_status(prefix="", now=None):
    """The status as shown: a Pending approval past its expiry is Expired."""
    now = now or timezone.now()
    return Case(When(Q(**{f"{prefix}status": Status.PENDING, f"{prefix}expires_at__lt": now}),
                     then=Value(Status.EXPIRED)),
                default=F(f"{prefix}status"), output_field=models.CharField())


class PurchaseRequestQuerySet(models.QuerySet):
    def with_status(self, now=None):
        """`current_status`: Approved when approved (automatically or by decision), else its approval's."""
        return self.annotate(current_status=Case(
            When(approved=True, then=Value(Status.APPROVED)),
            default=derived_status("approval__", now), output_field=models.CharField()))


class PurchaseRequestManager(models.Manager.from_queryset(PurchaseRequestQuerySet)):
    def get_queryset(self):
        return super().get_queryset().with_status()


class PurchaseRequest(CustomerChild, TimeStampedModel):
    """What a contact of the customer wants to buy, recorded by staff on his behalf."""

    customer = models.ForeignKey(BusinessCustomer, on_delete=models.CASCADE, related_name="purchase_requests")
    title = models.CharField(max_length=200, help_text="What is bought, in a few words.")
    requester = models.ForeignKey("contacts.Contact", on_delete=models.PROTECT, related_name="purchase_requests",
                                  help_text="A contact of the customer in its Admin, Buyer or Requester group.")
    total = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"),
                                help_text="Computed from the lines when there are any.")
    currency = models.CharField(max_length=3, choices=CURRENCIES)
    comment = models.TextField(blank=True)
    # Approved automatically by the rules or by an approver's decision: counts in the month's spend.
    approved = models.BooleanField(default=False, db_index=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    history = History()

    objects = PurchaseRequestManager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "purchase request"
        indexes = [models.Index(fields=["customer", "approved", "created_at"], name="purchase_spend_idx")]

    def __str__(self):
        return f"PR-{self.pk} {self.title}" if self.pk else self.title

    def get_absolute_url(self):
        return reverse("purchase_requests:detail", args=[self.pk])

    def status_value(self):
        status = getattr(self, "current_status", None)
        if status is None:
            status = PurchaseRequest.objects.filter(pk=self.pk).values_list("current_status", flat=True).first()
        return status

    def get_current_status_display(self):
        return Status(self.status_value()).label if self.status_value() else "—"


class PurchaseLine(models.Model):
    request = models.ForeignKey(PurchaseRequest, on_delete=models.CASCADE, related_name="lines")
    item = models.CharField(max_length=200)
    quantity = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("1"))
    unit_price = models.DecimalField("unit price", max_digits=16, decimal_places=2)

    class Meta:
        ordering = ["pk"]
        verbose_name = "line"

    def __str__(self):
        return self.item

    @property
    def amount(self):
        return (self.quantity * self.unit_price).quantize(Decimal("0.01"))


class ApprovalQuerySet(models.QuerySet):
    def with_status(self, now=None):
        return self.annotate(current_status=derived_status("", now))

    def due(self, now=None):
        """Pending approvals whose expiry has passed (the expiry job's work)."""
        return self.filter(status=Status.PENDING, expires_at__lt=now or timezone.now())


class ApprovalManager(models.Manager.from_queryset(ApprovalQuerySet)):
    def get_queryset(self):
        return super().get_queryset().with_status()


class ApprovalRequest(CustomerChild, TimeStampedModel):
    """The approval a purchase request needs: Pending until an eligible approver decides,
    the requester's side withdraws it (Closed), or it expires."""

    purchase_request = models.OneToOneField(PurchaseRequest, on_delete=models.CASCADE, related_name="approval")
    # The request's customer, copied so access and the grid read one row.
    customer = models.ForeignKey(BusinessCustomer, on_delete=models.CASCADE, related_name="approval_requests")
    requester = models.ForeignKey("contacts.Contact", on_delete=models.PROTECT, related_name="approval_requests")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    expires_at = models.DateTimeField("expires", db_index=True)
    reason = models.CharField(max_length=300, help_text="Why the rules ask for an approval.")
    admin_only = models.BooleanField("only an Admin may approve", default=False)
    approvers = models.ManyToManyField("contacts.Contact", related_name="approvals_to_decide",
                                       verbose_name="eligible approvers")
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey("contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name="decided by")
    # Set when staff recorded the decision on the approver's behalf.
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name="recorded by")
    expiry_notified_at = models.DateTimeField(null=True, blank=True)
    history = History()

    objects = ApprovalManager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "approval request"

    def __str__(self):
        return f"Approval #{self.pk}"

    def get_absolute_url(self):
        return reverse("approvals:detail", args=[self.pk])

    @property
    def title(self):
        return self.purchase_request.title

    @property
    def amount(self):
        return self.purchase_request.total

    @property
    def currency(self):
        return self.purchase_request.currency

    def status_value(self, now=None):
        """The status as shown (the annotation when loaded through the manager)."""
        if now is None and getattr(self, "current_status", None):
            return self.current_status
        if self.status == Status.PENDING and self.expires_at < (now or timezone.now()):
            return Status.EXPIRED
        return self.status

    def get_current_status_display(self):
        return Status(self.status_value()).label

    @property
    def is_open(self):
        return self.status_value() == Status.PENDING


class ApprovalComment(models.Model):
    """The approval's thread: by a staff user or by an approver (through his link)."""

    approval = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="comments")
    author_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    author_contact = models.ForeignKey("contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return self.body[:50]

    @property
    def author(self):
        return self.author_contact or self.author_user

    @classmethod
    def restrict_queryset(cls, queryset, user, action):
        from crm.access import restrict_through

        return restrict_through(queryset, "approval__customer", BusinessCustomer, user,
                                "view" if action == "view" else "change")


class ApprovalLink(models.Model):
    """One approver's emailed link to one approval: the signed token names this row, which
    makes the link single-use (used_at)."""

    approval = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="links")
    approver = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["approval", "approver"], name="one_link_per_approver")]

    def __str__(self):
        return f"Link of {self.approver} for {self.approval}"
