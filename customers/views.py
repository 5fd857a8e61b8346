from django.db.models import Prefetch

from activities.services import timeline
from crm.access import access, restrict
from crm.ids import as_id
from crm.views import Entity

from . import services
from .filters import BusinessCustomerFilter, LocationFilter
from .forms import BusinessCustomerForm, LocationForm
from .models import BusinessCustomer, Location
from .resources import BusinessCustomerResource, LocationResource
from .tables import BusinessCustomerTable, LocationTable
from .tree import tree_section


class CustomerEntity(Entity):
    model = BusinessCustomer
    namespace = "customers"
    form_class = BusinessCustomerForm
    table_class = BusinessCustomerTable
    filterset_class = BusinessCustomerFilter
    resource_class = BusinessCustomerResource
    detail_template = "customers/businesscustomer_detail.html"
    form_template = "customers/businesscustomer_form.html"
    list_select_related = ("channel", "account", "owner", "business_unit")
    icon = "bi-briefcase"
    protected_message = "This customer is still referenced by other records and cannot be deleted."

    @classmethod
    def queryset(cls):
        # The parent comes by a second query per page, not a join: joining it made PostgreSQL
        # walk the whole primary key for a search instead of the trigram indexes (measured: 1.7 s
        # instead of 40 ms at a million customers).
        parents = BusinessCustomer.objects.only("id", "name", "owner_id", "business_unit_id")
        return super().queryset().prefetch_related(Prefetch("parent", queryset=parents))

    @classmethod
    def save(cls, form, user):
        return services.save_customer(form, user)

    @classmethod
    def detail_context(cls, request, obj):
        user = request.user
        siblings = restrict(BusinessCustomer.objects.filter(account_id=obj.account_id).exclude(pk=obj.pk),
                            user, "view").select_related("channel", "owner")
        siblings = list(siblings.order_by("channel__name", "name")[:21])
        ctx = {
            "addresses": [("Billing", obj.address("billing")), ("Shipping", obj.address("shipping"))],
            "emails": list(obj.emails.all()),
            "phones": list(obj.phones.all()),
            "account_visible": access(user).can("view", obj.account),
            "siblings": siblings[:20],
            "more_siblings": len(siblings) > 20,
            "primary_contact_visible": (obj.primary_contact_id is not None
                                        and access(user).can("view", obj.primary_contact)),
        }
        ctx.update(timeline(obj, user))
        ctx.update(tree_section(obj, user))
        ctx.update(obj.contact_assignments.model.customer_section(request, obj))  # contacts' section, no import
        ctx.update(services.customer_sections(request, obj))
        ctx.update(location_section(request, obj))
        return ctx

    @classmethod
    def autocomplete_queryset(cls, request, queryset):
        """A parent company is chosen among the customers of the form's channel."""
        channel = as_id(request.GET.get("channel"))
        if channel is not None:
            return queryset.filter(channel_id=channel)
        return queryset


class LocationEntity(Entity):
    """A customer's locations (customers.models.CustomerChild): seen by who may view the
    customer, added, changed and removed by who may change it, so roles set no levels of
    their own for them."""

    model = Location
    namespace = "locations"
    form_class = LocationForm
    table_class = LocationTable
    filterset_class = LocationFilter
    resource_class = LocationResource
    detail_template = "customers/location_detail.html"
    list_select_related = ("customer",)
    icon = "bi-geo-alt"
    in_role_matrix = False
    searchable = False  # a substring search over every location would not use an index

    @classmethod
    def queryset(cls):
        return super().queryset().prefetch_related("tags")

    @classmethod
    def can_create(cls, user):
        # Some customer he may change; the form and the import check the customer at hand.
        return access(user).may(BusinessCustomer, "change")

    @classmethod
    def may_view(cls, user):
        return access(user).may(BusinessCustomer, "view")

    @classmethod
    def form_kwargs(cls, request):
        """`?customer=<pk>` (the customer page's "Add location") preselects the customer."""
        customer = as_id(request.GET.get("customer"))
        initial = {"customer": customer} if customer is not None else {}
        return {"user": request.user, "initial": initial}

    @classmethod
    def save(cls, form, user):
        return services.save_location(form, user)

    @classmethod
    def detail_context(cls, request, obj):
        return {"tags": list(obj.tags.all())}


LOCATIONS_ON_PAGE = 50


def location_section(request, customer):
    """The Locations section of the customer page: whoever sees the customer sees them all."""
    locations = list(customer.locations.prefetch_related("tags").order_by("name")[: LOCATIONS_ON_PAGE + 1])
    return {"locations": locations[:LOCATIONS_ON_PAGE], "more_locations": len(locations) > LOCATIONS_ON_PAGE,
            "can_add_location": access(request.user).can("change", customer)}
