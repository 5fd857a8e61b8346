import django_filters as df

from crm.filters import CRMFilterSet

from .models import ENTITY_CHOICES, Channel


class ChannelFilter(CRMFilterSet):
    name = df.CharFilter(lookup_expr="icontains")
    type = df.MultipleChoiceFilter(choices=Channel.Type.choices)
    status = df.ChoiceFilter(choices=Channel.Status.choices)
    entities = df.ChoiceFilter(choices=ENTITY_CHOICES, lookup_expr="contains", label="Enables")

    class Meta:
        model = Channel
        fields = ["name", "type", "status", "entities"]
