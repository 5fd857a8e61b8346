from django.db import models
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
    description = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


AccountUserObjectPermission, AccountGroupObjectPermission = share_models(Account, __name__)
