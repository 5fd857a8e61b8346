from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import get_object_or_404, redirect
from django.views import View

from activities.services import timeline
from crm.access import get_or_404, restrict
from crm.models import Level, Role
from crm.views import Entity

from . import services
from .filters import ContactFilter, ContactGroupFilter
from .forms import AssignmentForm, ContactForm, ContactGroupForm
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
        assignments = ContactCustomerAssignment.restrict_queryset(obj.customer_assignments.all(), user, "view")
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
            "assignments": list(assignments.select_related("customer__channel", "customer__account")),
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


class AssignCustomerView(LoginRequiredMixin, View):
    """Add a role of the contact for a business customer (from the contact's page)."""

    def post(self, request, pk):
        contact = get_or_404(ContactEntity.queryset(), request.user, "change", pk=pk)
        form = AssignmentForm(request.POST, contact=contact, user=request.user)
        if form.is_valid():
            assignment = services.assign_customer(form, request.user)
            messages.success(request, f"{contact} is now the {assignment.get_type_display().lower()} contact "
                                      f"of {assignment.customer}.")
        else:
            messages.error(request, " ".join(m for errors in form.errors.values() for m in errors))
        return redirect(f"{contact.get_absolute_url()}#customers")


class UnassignCustomerView(LoginRequiredMixin, View):
    def post(self, request, pk, assignment_pk):
        contact = get_or_404(ContactEntity.queryset(), request.user, "change", pk=pk)
        rows = ContactCustomerAssignment.restrict_queryset(contact.customer_assignments.all(), request.user, "change")
        assignment = get_object_or_404(rows.select_related("customer"), pk=assignment_pk)
        services.unassign_customer(assignment, request.user)
        messages.success(request, f"{contact} is no longer the {assignment.get_type_display().lower()} contact "
                                  f"of {assignment.customer}.")
        return redirect(f"{contact.get_absolute_url()}#customers")
