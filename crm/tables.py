import django_tables2 as tables


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

