from django.contrib.contenttypes.fields import GenericRelation
from django.db import models
from django.urls import reverse

from crm.access import restrict
from crm.models import History, OwnedModel, share_models


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
    history = History()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("accounts:detail", args=[self.pk])

    def activity_recipients(self, user):
        """Send email on an account offers the primary emails of its contacts and customers
        that the user may view, read through their relations to the account (`contacts`,
        `customers`: accounts does not import the apps above it)."""
        found = []
        contacts = getattr(self, "contacts", None)
        if contacts is not None:
            contacts = restrict(contacts.exclude(email=""), user, "view").order_by("last_name", "first_name")
            found += [(c.email, f"{c.email} ({c})") for c in contacts[:100]]
        customers = getattr(self, "customers", None)
        if customers is not None:
            customers = restrict(customers.exclude(primary_email=""), user, "view").order_by("name")
            found += [(c.primary_email, f"{c.primary_email} ({c.name})") for c in customers[:100]]
        return found


AccountUserObjectPermission, AccountGroupObjectPermission = share_models(Account, __name__)
