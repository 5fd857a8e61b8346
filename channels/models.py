from django.db import models
from django.urls import reverse

from crm.models import History, TimeStampedModel

BUSINESS_CUSTOMER = "business_customer"
ENTITY_CHOICES = [(BUSINESS_CUSTOMER, "Business Customer")]


class ChannelQuerySet(models.QuerySet):
    def enabling(self, entity):
        """Channels new records of `entity` may be added to: active and enabling it."""
        return self.filter(status=Channel.Status.ACTIVE, entities__contains=entity)


class Channel(TimeStampedModel):
    """A source of customer information; an organization-wide setting."""

    class Type(models.TextChoices):
        SALES = "sales", "Sales"
        COMMERCE = "commerce", "Commerce"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"

    name = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.SALES)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    # Codes of the enabled entities, comma separated (few, fixed choices; filterable on any database).
    entities = models.CharField("enabled entities", max_length=200, default=BUSINESS_CUSTOMER, blank=True)
    history = History()

    objects = ChannelQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("channels:detail", args=[self.pk])

    @property
    def entity_list(self):
        return [code for code in self.entities.split(",") if code]

    def get_entities_display(self):
        labels = dict(ENTITY_CHOICES)
        return ", ".join(labels.get(code, code) for code in self.entity_list)

    def enables(self, entity):
        return self.status == self.Status.ACTIVE and entity in self.entity_list


def channel_refusal(channel, entity=BUSINESS_CUSTOMER):
    """Why new records of `entity` may not be added to `channel` (None: they may): the one
    rule of the customer's form, import and admin (through the model's clean). No query."""
    if channel.enables(entity):
        return None
    label = dict(ENTITY_CHOICES).get(entity, entity).lower()
    return f"The channel {channel} is inactive or does not enable {label}s."
