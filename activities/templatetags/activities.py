from django import template
from django.urls import reverse

from activities.forms import TITLES

register = template.Library()


@register.simple_tag
def activity_actions(obj):
    """[(label, icon, url)] of the More Actions entries that add an activity to `obj`."""
    target = obj._meta.label_lower
    return [(title, icon, reverse("activities:create", args=[target, obj.pk, kind]))
            for kind, (title, icon) in TITLES.items()]
