from django.contrib.contenttypes.fields import GenericRelation
from django.db import models
from django.urls import reverse
from simple_history.models import HistoricalRecords

from crm.models import OwnedModel, share_models


class Account(OwnedModel):
    """A client: aggregates its business customers across channels."""

    name = models.CharField(max_length=200, db_index=True)
    website = models.URLField(blank=True)
    industry = models.CharField(max_length=100, blank=True)
    referred_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="referrals"
    )
    default_contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="default_for_accounts",
        help_text="One of the account's contacts.",
    )
    description = models.TextField(blank=True)
    activities = GenericRelation("activities.Activity")
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("accounts:detail", args=[self.pk])

    def activity_recipients(self, user):
        """Send email on an account offers the primary emails of its customers and contacts
        that the user may view."""
        from contacts.models import Contact
        from crm.access import restrict
        from customers.models import BusinessCustomer

        customers = restrict(BusinessCustomer.objects.filter(account=self), user, "view").exclude(primary_email="")
        contacts = restrict(Contact.objects.filter(accounts=self), user, "view").exclude(email="")
        return ([(c.email, f"{c.email} ({c})") for c in contacts.order_by("last_name", "first_name")[:100]]
                + [(c.primary_email, f"{c.primary_email} ({c.name})") for c in customers.order_by("name")[:100]])


AccountUserObjectPermission, AccountGroupObjectPermission = share_models(Account, __name__)
