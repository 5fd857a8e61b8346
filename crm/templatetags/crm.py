from django import template
from django.utils.html import format_html

register = template.Library()

SKIP = {"id", "owner", "business_unit", "created_at", "updated_at"}


@register.filter
def web_url(value):
    """The URL when its scheme is http(s), else "": a stored website may come from an import
    or the admin, and any other scheme in an href (javascript:, data:) runs when clicked."""
    value = str(value or "").strip()
    return value if value.lower().startswith(("http://", "https://")) else ""


@register.simple_tag
def nav_entities(user):
    """The entities in the top bar: those the user's roles let him view at some level."""
    from crm.views import ENTITIES

    return [e for e in ENTITIES if e.in_navigation and e.may_view(user)]


@register.filter
def administers(user):
    """May the user open the Administration menu (users, roles)?"""
    from crm.access import access

    return access(user).administers


@register.filter
def display_fields(obj):
    """(label, value) of a record's plain fields, for a generic General section."""
    rows = []
    for f in obj._meta.fields:
        if f.name in SKIP or f.auto_created:
            continue
        display = getattr(obj, f"get_{f.name}_display", None)
        rows.append((f.verbose_name, display() if display else getattr(obj, f.name)))
    return rows


@register.simple_tag
def search_hint(obj):
    hint = getattr(obj, "search_hint", None)
    return format_html('<span class="text-muted small">· {}</span>', hint()) if callable(hint) and hint() else ""


@register.simple_tag
def grid_rows(table):
    """The rows of a grid's page (crm.tables.body_rows)."""
    from crm.tables import body_rows

    return body_rows(table)
