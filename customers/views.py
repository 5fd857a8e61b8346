from activities.services import timeline
from crm.access import access, restrict
from crm.views import Entity

from . import services
from .filters import BusinessCustomerFilter
from .forms import BusinessCustomerForm
from .models import BusinessCustomer
from .resources import BusinessCustomerResource
from .tables import BusinessCustomerTable


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
            "contacts": cls.contacts_of(request, obj),
            "primary_contact_visible": (obj.primary_contact_id is not None
                                        and access(user).can("view", obj.primary_contact)),
        }
        ctx.update(timeline(obj, user))
        return ctx

    @classmethod
    def contacts_of(cls, request, obj):
        """The contacts section: [(contact, [role labels])] the user may view, when the contacts
        app relates contacts to customers; None hides the list."""
        related = getattr(obj, "contact_assignments", None)
        if related is None:
            return None
        return related.model.of_customer(obj, request.user)[:50]
