from django.db import models
from simple_history.models import HistoricalRecords

from crm.models import OwnedModel, share_models


class Account(OwnedModel):
    """A client: aggregates its business customers across channels."""

    name = models.CharField(max_length=200, db_index=True)
    description = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


AccountUserObjectPermission, AccountGroupObjectPermission = share_models(Account, __name__)
