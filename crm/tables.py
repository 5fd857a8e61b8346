import json

import django_tables2 as tables
from django.conf import settings
from django.core.paginator import Paginator
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.utils.functional import cached_property

from .models import Role, User


class CRMTable(tables.Table):
    """Grid base: a selection column for mass actions, a linked name and row actions."""

    select = tables.CheckBoxColumn(accessor="pk", attrs={
        "th__input": {"class": "form-check-input", "data-select-all": "1", "aria-label": "Select all"},
        "td__input": {"class": "form-check-input", "name": "pk", "form": "mass-form"},
    }, orderable=False)
    actions = tables.TemplateColumn(template_name="crm/_row_actions.html", orderable=False, verbose_name="",
                                    attrs={"td": {"class": "text-end text-nowrap"}})

    class Meta:
        attrs = {"class": "table table-sm table-hover align-middle mb-0"}
        template_name = "django_tables2/bootstrap5.html"
        order_by = ("-created_at",)


class OwnedTable(CRMTable):
    owner = tables.Column(accessor="owner__username", verbose_name="Owner", order_by=("owner__username",))
    business_unit = tables.Column(accessor="business_unit__name", verbose_name="Business unit",
                                  order_by=("business_unit__name",))
    created_at = tables.DateTimeColumn(verbose_name="Created", format="Y-m-d H:i")



class RoleTable(CRMTable):
    name = tables.Column(linkify=True)
    administers = tables.BooleanColumn(verbose_name="Administers")
    holders = tables.Column(verbose_name="Users", accessor="holder_count", orderable=True)

    class Meta(CRMTable.Meta):
        model = Role
        fields = ("select", "name", "description", "administers", "holders", "actions")
        order_by = ("name",)


class UserTable(CRMTable):
    username = tables.Column(linkify=True)
    full_name = tables.Column(verbose_name="Name", accessor="last_name", order_by=("last_name", "first_name"))
    primary_unit = tables.Column(verbose_name="Primary unit", accessor="primary_unit__name",
                                 order_by=("primary_unit__name",))
    roles = tables.ManyToManyColumn(verbose_name="Roles", orderable=False)
    is_active = tables.BooleanColumn(verbose_name="Active")
    last_login = tables.DateTimeColumn(verbose_name="Last login", format="Y-m-d H:i")

    class Meta(CRMTable.Meta):
        model = User
        fields = ("select", "username", "full_name", "email", "primary_unit", "roles", "is_active", "last_login",
                  "actions")
        order_by = ("username",)

    def render_full_name(self, record):
        return record.get_full_name() or "—"


def estimated_count(queryset):
    """The planner's row estimate of `queryset` on PostgreSQL (planning only, nothing is
    read), or None elsewhere."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    try:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
    except EmptyResultSet:  # a condition that matches nothing (e.g. no grants at all)
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def count(queryset):
    """(count, estimated): exact up to CRM_EXACT_COUNT_LIMIT rows; above it, on PostgreSQL,
    the planner's estimate. Counting every row a restricted user may see reads them all;
    a grid shows "about N" instead. The exact count stops after the limit, so deciding costs
    little, and the planner's guess for a table it has not analysed yet never shows."""
    limit = settings.CRM_EXACT_COUNT_LIMIT
    capped = queryset.order_by()[: limit + 1].count()
    if capped <= limit:
        return capped, False
    estimate = estimated_count(queryset)
    if estimate is None:
        return queryset.count(), False
    return max(int(float(f"{estimate:.2g}")), limit + 1), True   # "about 8,300", not 8,252


class CountingPaginator(Paginator):
    """A grid's paginator whose total is `count()`'s: exact when small, else estimated."""

    estimated = False

    @cached_property
    def count(self):
        queryset = getattr(getattr(self.object_list, "data", None), "data", None)
        if queryset is None or not hasattr(queryset, "query"):
            return super().count
        total, self.estimated = count(queryset)
        return total
