import django_filters as df
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q

from accounts.models import Account
from crm.filters import CRMFilterSet, OwnedFilterSet, ids_or_subquery, search_terms, visible_owners
from crm.forms import AutocompleteSelectMultiple

from .models import Contact, ContactEmail, ContactGroup, ContactPhone
from .resources import with_visible_accounts

NAME_FIELDS = ("first_name", "middle_name", "last_name")


def having(model, **lookup):
    """EXISTS over a contact's child or link rows: filters without a join, so no DISTINCT."""
    return Exists(model.objects.filter(contact_id=OuterRef("pk"), **lookup))


class ContactFilter(OwnedFilterSet):
    """Filters of the contact grid. Email and phone match any of a contact's emails and
    phones; account choices are only the accounts the user may view."""

    search_fields = NAME_FIELDS + ("email", "phone")
    name = df.CharFilter(method="filter_name", label="Name")
    email = df.CharFilter(method="filter_email", label="Email")
    phone = df.CharFilter(method="filter_phone", label="Phone")
    account = df.ModelMultipleChoiceFilter(queryset=Account.objects.all(), method="filter_accounts", label="Account",
                                           widget=AutocompleteSelectMultiple("accounts:autocomplete"))
    group = df.ModelMultipleChoiceFilter(queryset=ContactGroup.objects.order_by("name"), method="filter_groups",
                                         label="Group")
    assigned_to = df.ModelMultipleChoiceFilter(queryset=get_user_model().objects.none(), label="Assigned to")
    source = df.MultipleChoiceFilter(choices=Contact.Source.choices)

    class Meta:
        model = Contact
        fields = ["name", "email", "phone", "account", "group", "owner", "assigned_to", "business_unit", "source"]

    def restrict_choices(self, user):
        super().restrict_choices(user)
        self.filters["assigned_to"].queryset = visible_owners(user, Contact)
        self.owner_autocomplete("assigned_to")

    @property
    def qs(self):
        """The filtered contacts with their accounts the user may view (one query for the
        page); an unbound filterset (the grid without parameters) gets them too."""
        if not hasattr(self, "_contacts_qs"):
            queryset = super().qs
            if self.request is not None:
                queryset = with_visible_accounts(queryset, self.request.user)
            self._contacts_qs = queryset
        return self._contacts_qs

    @staticmethod
    def name_condition(value):
        cond = Q()
        for term in search_terms(value):
            cond &= Q(first_name__ilike=term) | Q(middle_name__ilike=term) | Q(last_name__ilike=term)
        return cond

    def filter_name(self, queryset, name, value):
        return queryset.filter(self.name_condition(value))

    def filter_email(self, queryset, name, value):
        return queryset.filter(having(ContactEmail, email__ilike=value.strip()))

    def filter_phone(self, queryset, name, value):
        return queryset.filter(having(ContactPhone, phone__ilike=value.strip()))

    def filter_accounts(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(having(Contact.accounts.through, account__in=value))

    def filter_groups(self, queryset, name, value):
        if not value:
            return queryset
        return queryset.filter(having(Contact.groups.through, contactgroup__in=value))

    def quick_search(self, queryset, name, value):
        """Each word in a name part, or in any of the contact's emails or phones (their
        matching contact ids, so the database ORs index lookups on the contact table)."""
        cond = Q()
        for term in search_terms(value):
            cond &= (self.name_condition(term) | Q(email__ilike=term) | Q(phone__ilike=term)
                     | Q(pk__in=ids_or_subquery(ContactEmail.objects.filter(email__ilike=term), "contact_id"))
                     | Q(pk__in=ids_or_subquery(ContactPhone.objects.filter(phone__ilike=term), "contact_id")))
        return queryset.filter(cond)


class ContactGroupFilter(CRMFilterSet):
    search_fields = ("name", "description")
    name = df.CharFilter(lookup_expr="ilike", label="Name contains")

    class Meta:
        model = ContactGroup
        fields = ["name"]
