import django_filters as df
from django_countries import countries

from channels.models import Channel
from crm.filters import CRMFilterSet, OwnedFilterSet
from crm.forms import AutocompleteSelect

from .models import CURRENCIES, BusinessCustomer, Location, LocationTag
from .tree import tree_ids


class BusinessCustomerFilter(OwnedFilterSet):
    search_fields = ("name", "primary_email", "primary_phone", "account__name")

    name = df.CharFilter(lookup_expr="ilike", label="Name contains")
    channel = df.ModelMultipleChoiceFilter(queryset=Channel.objects.all())
    account = df.CharFilter(field_name="account__name", lookup_expr="ilike", label="Account contains")
    primary_email = df.CharFilter(lookup_expr="ilike", label="Email contains")
    primary_phone = df.CharFilter(lookup_expr="ilike", label="Phone contains")
    billing_city = df.CharFilter(lookup_expr="ilike", label="Billing city contains")
    billing_country = df.ChoiceFilter(choices=list(countries), label="Billing country", empty_label="Any country")
    lifetime_value = df.RangeFilter(label="Lifetime value between",
                                    widget=df.widgets.RangeWidget(attrs={"type": "number", "step": "0.01"}))
    currency = df.ChoiceFilter(choices=CURRENCIES, empty_label="Any currency")
    # Restricted to the customers the user may view by restrict_choices: a hidden one is an
    # invalid choice, so nobody learns a hidden customer's tree through the grid.
    tree = df.ModelChoiceFilter(queryset=BusinessCustomer.objects.all(), method="in_tree", label="In the tree of",
                                widget=AutocompleteSelect("customers:autocomplete"))

    class Meta:
        model = BusinessCustomer
        fields = ["name", "channel", "account", "owner", "business_unit", "primary_email", "primary_phone",
                  "billing_city", "billing_country", "lifetime_value", "currency", "tree"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        low, high = self.form.fields["lifetime_value"].widget.widgets
        low.attrs["placeholder"], high.attrs["placeholder"] = "Min", "Max"

    def in_tree(self, queryset, name, value):
        """Customers of X's subsidiary tree (its root and every descendant), among those the grid shows."""
        return queryset.filter(pk__in=tree_ids(value.pk)) if value else queryset


class LocationFilter(CRMFilterSet):
    search_fields = ("name", "city")

    # Restricted to the customers the user may view by restrict_choices.
    customer = df.ModelChoiceFilter(queryset=BusinessCustomer.objects.all(),
                                    widget=AutocompleteSelect("customers:autocomplete"))
    type = df.MultipleChoiceFilter(choices=Location.Type.choices, label="Type")
    tag = df.ModelMultipleChoiceFilter(queryset=LocationTag.objects.all(), method="with_tags", label="Tag")
    country = df.ChoiceFilter(choices=list(countries), empty_label="Any country")

    class Meta:
        model = Location
        fields = ["customer", "type", "tag", "country"]

    def with_tags(self, queryset, name, value):
        """Locations with any of the tags: a semi-join on the link table, so no row repeats."""
        if not value:
            return queryset
        links = Location.tags.through.objects.filter(locationtag__in=value).values("location_id")
        return queryset.filter(pk__in=links)
