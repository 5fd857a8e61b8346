from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.views import View

from activities.services import timeline
from crm.access import access, get_or_404, restrict
from crm.models import Level, Role
from crm.views import AutocompleteView, Entity
from customers.models import CustomerGroup
from customers.views import CustomerEntity

from . import services
from .filters import ContactFilter, ContactGroupFilter
from .forms import ApproversForm, AssignmentForm, ContactForm, ContactGroupForm, CustomerAssignmentForm
from .models import Contact, ContactCustomerAssignment, ContactGroup
from .resources import ContactGroupResource, ContactResource
from .tables import ContactGroupTable, ContactTable


class ContactEntity(Entity):
    model = Contact
    namespace = "contacts"
    form_class = ContactForm
    table_class = ContactTable
    filterset_class = ContactFilter
    resource_class = ContactResource
    detail_template = "contacts/contact_detail.html"
    form_template = "contacts/contact_form.html"
    list_select_related = ("owner", "business_unit", "assigned_to")
    icon = "bi-person-lines-fill"

    @classmethod
    def save(cls, form, user):
        return services.save_contact(form, user)

    @classmethod
    def detail_context(cls, request, obj):
        user = request.user
        boss = None
        if obj.reports_to_id:
            boss = restrict(Contact.objects.filter(pk=obj.reports_to_id), user, "view").first()
        reports = restrict(obj.direct_reports.all(), user, "view")
        ctx = {
            "accounts": restrict(obj.accounts.all(), user, "view").select_related("owner").order_by("name"),
            "emails": list(obj.emails.all()),
            "phones": list(obj.phones.all()),
            "addresses": list(obj.addresses.all()),
            "groups": list(obj.groups.order_by("name")),
            "boss": boss,
            "hidden_boss": obj.reports_to_id is not None and boss is None,
            "direct_reports": list(reports.order_by("last_name", "first_name")[:20]),
            "direct_report_count": reports.count(),
            "assignments": services.contact_assignments(obj, user),
            "assignment_form": AssignmentForm(contact=obj, user=user),
        }
        ctx.update(timeline(obj, user))
        return ctx


class ContactGroupEntity(Entity):
    """An organization-wide list: everyone sees the groups and puts contacts in them;
    Managers and Administrators add, rename, delete and import them (the seeded levels)."""

    model = ContactGroup
    namespace = "contact_groups"
    form_class = ContactGroupForm
    table_class = ContactGroupTable
    filterset_class = ContactGroupFilter
    resource_class = ContactGroupResource
    detail_template = "contacts/contactgroup_detail.html"
    icon = "bi-collection"
    searchable = False

    @classmethod
    def default_levels(cls, preset):
        levels = super().default_levels(preset)
        if preset == Role.Preset.MANAGER:
            levels.update(dict.fromkeys(("create", "change", "delete"), Level.ORGANIZATION))
        return levels

    @classmethod
    def detail_context(cls, request, obj):
        members = restrict(obj.contacts.all(), request.user, "view")
        return {"member_count": members.count(), "members": members.order_by("last_name", "first_name")[:10]}


def _form_errors(form):
    return " ".join(m for errors in form.errors.values() for m in errors)


def _given(assignments):
    """“billing, logistics contact of X” for the message after roles were given."""
    origins = [a for a in assignments if a.origin_id is None]
    roles = ", ".join(a.get_type_display().lower() for a in origins)
    copies = len(assignments) - len(origins)
    via = f" (copied to {copies} related customer{'s' if copies != 1 else ''})" if copies else ""
    return f"{roles} contact of {origins[0].customer}{via}"


class AssignCustomerView(LoginRequiredMixin, View):
    """Give the contact roles at a business customer (from the contact's page)."""

    def post(self, request, pk):
        contact = get_or_404(ContactEntity.queryset(), request.user, "change", pk=pk)
        form = AssignmentForm(request.POST, contact=contact, user=request.user)
        try:
            if form.is_valid():
                messages.success(request, f"{contact} is now the {_given(form.save())}.")
            else:
                messages.error(request, _form_errors(form))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        return redirect(f"{contact.get_absolute_url()}#customers")


class UnassignCustomerView(LoginRequiredMixin, View):
    """Remove one role of the contact (from the contact's page); its propagated copies go with it."""

    def post(self, request, pk, assignment_pk):
        contact = get_or_404(ContactEntity.queryset(), request.user, "view", pk=pk)
        assignment = _assignment_or_404(contact.customer_assignments.filter(pk=assignment_pk), request.user)
        services.unassign_roles([assignment], request.user)
        messages.success(request, f"{contact} is no longer the {assignment.get_type_display().lower()} contact "
                                  f"of {assignment.customer}.")
        return redirect(f"{contact.get_absolute_url()}#customers")


def _assignment_or_404(rows, user):
    """A role the user may remove: 404 if he may not see it, 403 if he may not change the customer."""
    row = ContactCustomerAssignment.restrict_queryset(rows, user, "view").select_related("customer").first()
    if row is None:
        raise Http404("No such role.")
    if not access(user).can("change", row.customer):
        raise PermissionDenied("Only who may edit the customer changes its contacts.")
    return row


class CustomerContactsMixin(LoginRequiredMixin):
    """Writes of the customer page's contacts section: the customer must be one the user may
    change (404 if he may not see it, 403 if only see it); a contact named in the URL must be
    one he may see (404)."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.customer = get_or_404(CustomerEntity.queryset(), request.user, "change", pk=kwargs["customer_pk"])
        self.contact = None
        if "contact_pk" in kwargs:
            self.contact = get_or_404(ContactEntity.queryset(), request.user, "view", pk=kwargs["contact_pk"])
        return super().dispatch(request, *args, **kwargs)

    def back(self):
        return redirect(f"{self.customer.get_absolute_url()}#contacts")


class CustomerAssignView(CustomerContactsMixin, View):
    """Give a contact roles at the customer (from the customer's page)."""

    def post(self, request, customer_pk):
        form = CustomerAssignmentForm(request.POST, customer=self.customer, user=request.user)
        try:
            if form.is_valid():
                messages.success(request, f"{form.cleaned_data['contact']} is now the {_given(form.save())}.")
            else:
                messages.error(request, _form_errors(form))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        return self.back()


class CustomerUnassignView(CustomerContactsMixin, View):
    """Remove a contact's roles at the customer: the one named by `type`, or all of them."""

    def post(self, request, customer_pk, contact_pk):
        rows = self.customer.contact_assignments.filter(contact=self.contact)
        role = request.POST.get("type", "")
        if role:
            rows = rows.filter(type=role)
        rows = list(ContactCustomerAssignment.restrict_queryset(rows, request.user, "change"))
        if not rows:
            raise Http404("No such role.")
        services.unassign_roles(rows, request.user)
        what = f"the {rows[0].get_type_display().lower()} contact" if role else "a contact"
        messages.success(request, f"{self.contact} is no longer {what} of {self.customer}.")
        return self.back()


class CustomerGroupMoveView(CustomerContactsMixin, View):
    """Move a contact into another of the customer's groups (Admin, Buyer, Requester, Contact)."""

    def post(self, request, customer_pk, contact_pk):
        kind = request.POST.get("kind", "")
        if kind not in CustomerGroup.Kind.values:
            messages.error(request, "Choose one of the groups Admin, Buyer, Requester or Contact.")
            return self.back()
        try:
            member = services.move_to_group(self.customer, self.contact, kind, request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return self.back()
        messages.success(request, f"{self.contact} is now in the {member.group.name} group of {self.customer}.")
        return self.back()


class ApproversView(CustomerContactsMixin, View):
    """The customer's approval group."""

    def post(self, request, customer_pk):
        form = ApproversForm(request.POST, instance=self.customer, user=request.user)
        if form.is_valid():
            form.save()
            messages.success(request, f"Approval group of {self.customer} saved.")
        else:
            messages.error(request, _form_errors(form))
        return self.back()


class AssignableContactsView(AutocompleteView):
    """The customer page's contact search: contacts of the customer's account the user may change."""

    entity = ContactEntity

    def get(self, request, customer_pk):
        customer = get_or_404(CustomerEntity.queryset(), request.user, "change", pk=customer_pk)
        self.queryset = services.assignable_contacts(customer, request.user)
        return super().get(request)
