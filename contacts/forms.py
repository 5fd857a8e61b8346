from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from accounts.models import Account
from crm.access import access, restrict
from crm.forms import BootstrapMixin, OwnedForm, restrict_form_fields, use_autocomplete
from customers.models import BusinessCustomer

from . import services
from .models import Contact, ContactAddress, ContactCustomerAssignment, ContactEmail, ContactGroup, ContactPhone


def colleagues(user, keep=None):
    """Users a contact may be assigned to: the user and members of units he may see
    (everyone for administrators), plus `keep` (the current assignee) so an edit never
    drops it."""
    users = get_user_model().objects.filter(is_active=True)
    units = access(user).visible_unit_ids(Contact)
    if units is not None:
        users = users.filter(Q(pk=user.pk) | Q(business_units__in=units))
    if keep:
        users = users | get_user_model().objects.filter(pk=keep)
    return users.distinct().order_by("username")


class ChildForm(BootstrapMixin, forms.ModelForm):
    pass


class EmailForm(ChildForm):
    class Meta:
        model = ContactEmail
        fields = ["email", "is_primary"]

    def clean_email(self):
        return self.cleaned_data["email"].strip().lower()


class PhoneForm(ChildForm):
    class Meta:
        model = ContactPhone
        fields = ["phone", "is_primary"]

    def clean_phone(self):
        return " ".join(self.cleaned_data["phone"].split())


class AddressForm(ChildForm):
    class Meta:
        model = ContactAddress
        fields = ["type", "is_primary", "street", "city", "postal_code", "region", "country"]

    def clean(self):
        data = super().clean()
        if not data.get("DELETE") and not any(str(data.get(p) or "").strip() for p in ContactAddress.PARTS):
            raise forms.ValidationError("Enter at least one part of the address, or remove it.")
        return data


class PrimaryFormSet(forms.BaseInlineFormSet):
    """Child rows of which exactly one is primary (the first one if none is ticked)."""

    value_field = None   # a field whose values must differ between rows, e.g. "email"
    noun = "entry"

    def kept_forms(self):
        # An untouched blank row has empty cleaned_data.
        return [f for f in self.forms if getattr(f, "cleaned_data", None) and not f.cleaned_data.get("DELETE")]

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        kept = self.kept_forms()
        primaries = [f for f in kept if f.cleaned_data.get("is_primary")]
        if len(primaries) > 1:
            raise forms.ValidationError(f"Mark only one {self.noun} as primary.")
        if kept and not primaries:
            kept[0].cleaned_data["is_primary"] = kept[0].instance.is_primary = True
        if self.value_field:
            seen = set()
            for f in kept:
                value = f.cleaned_data.get(self.value_field)
                if value in seen:
                    raise forms.ValidationError(f"The {self.noun} {value} is given twice.")
                seen.add(value)

    def add_fields(self, form, index):
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].widget.attrs["class"] = "form-check-input"

    def primary_form(self):
        return next((f for f in self.kept_forms() if f.cleaned_data.get("is_primary")), None)

    def primary_value(self):
        form = self.primary_form()
        return form.cleaned_data[self.value_field] if form is not None and self.value_field else ""

    def values(self):
        return [f.cleaned_data[self.value_field] for f in self.kept_forms()] if self.value_field else []


class EmailFormSet(PrimaryFormSet):
    value_field = "email"
    noun = "email"


class PhoneFormSet(PrimaryFormSet):
    value_field = "phone"
    noun = "phone"


class AddressFormSet(PrimaryFormSet):
    noun = "address"


def child_formset(model, form, formset):
    return forms.inlineformset_factory(Contact, model, form=form, formset=formset, extra=1, can_delete=True)


FORMSETS = {
    "emails": child_formset(ContactEmail, EmailForm, EmailFormSet),
    "phones": child_formset(ContactPhone, PhoneForm, PhoneFormSet),
    "addresses": child_formset(ContactAddress, AddressForm, AddressFormSet),
}


class ContactForm(OwnedForm):
    """The contact with its emails, phones and addresses (inline formsets).

    Which accounts and contacts the user may view is applied by crm.forms.restrict_form_fields
    (the generic form view and the admin): links to accounts he may not view are kept out of
    sight and kept on save, and a manager he may not view stays without being named. A new
    email that a contact the user may see already has stops the first submit with a list of
    those contacts and a "Create anyway" box."""

    create_anyway = forms.BooleanField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Contact
        fields = ["name_prefix", "first_name", "middle_name", "last_name", "name_suffix",
                  "job_title", "gender", "birthday", "source", "accounts", "groups", "reports_to", "assigned_to",
                  "linkedin_url", "twitter_url", "website", "description", "owner", "business_unit"]
        widgets = {
            "birthday": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "description": forms.Textarea(attrs={"rows": 3}),
            "accounts": forms.SelectMultiple(attrs={"size": 6}),
            "groups": forms.SelectMultiple(attrs={"size": 6}),
        }
        labels = {"name_prefix": "Prefix", "name_suffix": "Suffix"}

    def __init__(self, data=None, *args, user, **kwargs):
        super().__init__(data, *args, user=user, **kwargs)
        self.duplicates = []
        contact = self.instance
        self.fields["accounts"].queryset = Account.objects.order_by("name")
        use_autocomplete(self.fields["accounts"], "accounts:autocomplete")
        self.fields["groups"].queryset = ContactGroup.objects.order_by("name")
        self.fields["assigned_to"].queryset = colleagues(user, keep=contact.assigned_to_id)
        # Not the contact itself (a longer reporting loop is the model's rule).
        bosses = Contact.objects.exclude(pk=contact.pk) if contact.pk else Contact.objects.all()
        self.fields["reports_to"].queryset = bosses
        use_autocomplete(self.fields["reports_to"], "contacts:autocomplete")
        if not contact.pk:
            self.fields["create_anyway"].label = "Create anyway"
        else:
            self.fields["create_anyway"].label = "Save anyway"
        self.formsets = {
            prefix: formset(data, instance=contact, prefix=prefix) for prefix, formset in FORMSETS.items()
        }
        for formset in self.formsets.values():
            # A blank row to fill in only where there is none yet; "Add" gives more.
            formset.extra = 0 if formset.initial_form_count() else 1

    @property
    def emails(self):
        return self.formsets["emails"]

    @property
    def phones(self):
        return self.formsets["phones"]

    @property
    def addresses(self):
        return self.formsets["addresses"]

    def clean(self):
        data = super().clean()
        # The model's rules (a name or an email) read the primary email the formset holds.
        if self.emails.is_valid():
            self.instance.email = self.emails.primary_value()
        if self.phones.is_valid():
            self.instance.phone = self.phones.primary_value()
        return data

    def is_valid(self):
        valid = super().is_valid()
        valid = all([fs.is_valid() for fs in self.formsets.values()]) and valid
        if valid:
            self.check_duplicates()
        return valid and not self.errors

    def check_duplicates(self):
        emails = set(self.emails.values())
        if self.instance.pk:
            emails -= set(ContactEmail.objects.filter(contact=self.instance).values_list("email", flat=True))
        self.duplicates = services.visible_duplicates(emails, self.user, exclude_pk=self.instance.pk)
        if self.duplicates:
            self.fields["create_anyway"].widget = forms.CheckboxInput(attrs={"class": "form-check-input"})
        if self.duplicates and not self.cleaned_data.get("create_anyway"):
            several = len(self.duplicates) != 1
            label = self.fields["create_anyway"].label
            self.add_error(None, f"{len(self.duplicates)} contact{'s' if several else ''} you can see already "
                                 f"{'have' if several else 'has'} this email. Open {'them' if several else 'it'} "
                                 f"to check, or tick “{label}”.")

    def primary_values(self):
        return self.emails.primary_value(), self.phones.primary_value()


class ContactGroupForm(BootstrapMixin, forms.ModelForm):
    class Meta:
        model = ContactGroup
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)


class RolesField(forms.MultipleChoiceField):
    """The roles to give at once, as checkboxes (the field keeps the model's name, `type`)."""

    def __init__(self, **kwargs):
        super().__init__(choices=ContactCustomerAssignment.Type.choices, label="Roles",
                         widget=forms.CheckboxSelectMultiple, **kwargs)
        self.error_messages["required"] = "Tick at least one role."


class RolesForm(BootstrapMixin, forms.Form):
    """A contact, a customer and the roles to give him there; subclasses choose which side is fixed."""

    type = RolesField()
    contact = customer = None  # the side the page fixes; the other is a field of the subclass

    def pair(self, data):
        return self.contact or data.get("contact"), self.customer or data.get("customer")

    def clean(self):
        data = super().clean()
        contact, customer = self.pair(data)
        if contact is not None and customer is not None and data.get("type"):
            refusal = services.assignment_refusal(contact, customer, data["type"], self.user)
            if refusal:
                raise forms.ValidationError(refusal)
        return data

    def save(self):
        contact, customer = self.pair(self.cleaned_data)
        return services.assign_roles(contact, customer, self.cleaned_data["type"], self.user)


class AssignmentForm(RolesForm):
    """From the contact's page: roles at a business customer of one of its accounts that the
    user may change."""

    customer = forms.ModelChoiceField(queryset=BusinessCustomer.objects.none())
    field_order = ["customer", "type"]

    def __init__(self, *args, contact, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.contact, self.user = contact, user
        customers = BusinessCustomer.objects.filter(account__in=contact.accounts.values("pk"))
        field = self.fields["customer"]
        field.queryset = restrict(customers, user, "change").select_related("channel").order_by("name", "channel__name")
        field.label_from_instance = lambda c: f"{c.name} ({c.channel})"
        field.empty_label = "Choose a customer…"


class CustomerAssignmentForm(RolesForm):
    """From the customer's page: roles for a contact of the customer's account that the user may change."""

    contact = forms.ModelChoiceField(queryset=Contact.objects.none(),
                                     error_messages={"invalid_choice": "Choose one of the contacts of the "
                                                                       "customer's account that you may edit."})
    field_order = ["contact", "type"]

    def __init__(self, *args, customer, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer, self.user = customer, user
        self.fields["contact"].queryset = services.assignable_contacts(customer, user)
        use_autocomplete(self.fields["contact"], "contacts:assignable", url_args=[customer.pk])


class ApproversForm(BootstrapMixin, forms.ModelForm):
    """The customer's approval group, chosen among the contacts with a role at the customer."""

    class Meta:
        model = BusinessCustomer
        fields = ["approvers"]
        widgets = {"approvers": forms.CheckboxSelectMultiple}
        help_texts = {"approvers": "When it has members, they approve the customer's purchase requests."}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        customer = self.instance
        field = self.fields["approvers"]
        field.queryset = Contact.objects.filter(
            pk__in=ContactCustomerAssignment.objects.filter(customer=customer).values("contact_id")
        ).order_by("last_name", "first_name", "pk")
        field.error_messages["invalid_choice"] = "Choose contacts with a role at this customer."
        # Approvers the user may not see stay in the group without being named.
        restrict_form_fields(self, user)

    def save(self, commit=True):
        return services.set_approvers(self.instance, self.cleaned_data["approvers"], self.user)
