from django import forms
from django.forms.models import BaseInlineFormSet, inlineformset_factory

from accounts.models import Account
from channels.models import BUSINESS_CUSTOMER, Channel
from crm.access import access
from crm.forms import BootstrapMixin, OwnedForm, use_autocomplete
from crm.ids import as_id

from .models import (BusinessCustomer, CustomerEmail, CustomerPhone, Location, LocationTag, name_clash_message,
                     name_clashes)
from .tree import parent_refusal

# Sections of the form and of the record page: (title, fields).
FIELDSETS = [
    ("General", ["name", "channel", "account", "create_account", "primary_contact", "owner", "business_unit"]),
    ("Company details", ["legal_name", "registration_number", "registration_agency", "registration_date",
                         "registration_country", "tax_number", "parent", "industry", "employees", "website",
                         "lifetime_value", "currency"]),
    ("Purchasing", ["purchase_limit", "monthly_budget", "approval_expiry_days", "assignment_propagation"]),
    ("Billing address", ["billing_street", "billing_city", "billing_postal_code", "billing_region", "billing_country"]),
    ("Shipping address", ["shipping_street", "shipping_city", "shipping_postal_code", "shipping_region",
                          "shipping_country"]),
    ("Description", ["description"]),
]


def parent_error(customer, parent, channel):
    """Why `customer` may not have `parent` as its parent company, or None: the one rule of
    the form and the admin (the import applies parent_refusal to a whole file at once)."""
    if parent is None:
        return None
    if channel is not None and parent.channel_id != channel.pk:
        return f"The parent company must be a business customer of the same channel ({channel})."
    return parent_refusal(customer.pk, parent.pk)


def channel_move_error(customer, channel):
    """A customer with subsidiaries keeps its channel: its tree lives in one channel."""
    if customer.pk and channel is not None and channel.pk != customer.channel_id and customer.children.exists():
        return "This customer has subsidiaries in its channel; move them first or keep the channel."
    return None


class PrimaryFormSet(BaseInlineFormSet):
    """Phones or emails of a customer: no duplicates, and exactly one primary when there are
    any (the first one if none was ticked)."""

    value_field = None
    label = None

    def add_fields(self, form, index):
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].widget.attrs["class"] = "form-check-input"

    def kept_forms(self):
        return [f for f in self.forms
                if f.has_changed() or f.instance.pk
                if not (self.can_delete and self._should_delete_form(f))
                if f.cleaned_data.get(self.value_field)]

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        kept = self.kept_forms()
        seen = set()
        for f in kept:
            key = str(f.cleaned_data[self.value_field]).strip().lower()
            if key in seen:
                f.add_error(self.value_field, f"This {self.label} is listed twice.")
            seen.add(key)
        primaries = [f for f in kept if f.cleaned_data.get("is_primary")]
        if len(primaries) > 1:
            raise forms.ValidationError(f"Mark only one {self.label} as primary.")
        self.promoted = None
        if kept and not primaries:
            kept[0].cleaned_data["is_primary"] = True
            kept[0].instance.is_primary = True
            self.promoted = kept[0].instance

    def primary_value(self):
        for f in self.kept_forms():
            if f.cleaned_data.get("is_primary"):
                return f.cleaned_data[self.value_field]
        return ""


class EmailFormSet(PrimaryFormSet):
    value_field, label = "email", "email"


class PhoneFormSet(PrimaryFormSet):
    value_field, label = "phone", "phone"


class PointForm(BootstrapMixin, forms.ModelForm):
    @property
    def point(self):
        """The bound email or phone field, whichever this form edits."""
        return self[self._meta.fields[0]]


def point_formset(model, base, value_field):
    return inlineformset_factory(
        BusinessCustomer, model, form=PointForm, formset=base, fields=[value_field, "kind", "is_primary"],
        extra=1, can_delete=True, max_num=20, validate_max=True,
        widgets={"kind": forms.Select(attrs={"class": "form-select"})},
    )


EmailFormSetClass = point_formset(CustomerEmail, EmailFormSet, "email")
PhoneFormSetClass = point_formset(CustomerPhone, PhoneFormSet, "phone")


class BusinessCustomerForm(OwnedForm):
    """The customer with its emails and phones (inline formsets validated and saved with it).

    Its record choices (account, primary contact) are narrowed here only by what the form
    means; which of them the user may view is applied by crm.forms.restrict_form_fields
    (the generic form view and the admin), which also keeps a linked record he may not
    view. The customer's rules (channel, lifetime value) are the model's."""

    create_account = forms.BooleanField(
        required=False, label="Create a new account named after the customer",
        help_text="Instead of choosing an existing account.",
    )

    class Meta:
        model = BusinessCustomer
        fields = [f for _, names in FIELDSETS for f in names if f != "create_account"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "registration_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }

    fieldsets = FIELDSETS

    def __init__(self, data=None, *args, user, **kwargs):
        super().__init__(data, *args, user=user, **kwargs)
        channels = Channel.objects.enabling(BUSINESS_CUSTOMER)
        if self.instance.pk:
            # A customer keeps its channel after the channel is deactivated.
            channels = channels | Channel.objects.filter(pk=self.instance.channel_id)
            del self.fields["create_account"]
        self.fields["channel"].queryset = channels.order_by("name")
        self.fields["channel"].help_text = "Active channels that enable business customers."
        self.fields["account"].queryset = Account.objects.order_by("name")
        use_autocomplete(self.fields["account"], "accounts:autocomplete")
        self.fields["account"].required = False
        self.fields["website"] = forms.URLField(required=False, assume_scheme="https", label="Website",
                                                widget=forms.URLInput(attrs={"class": "form-control"}))
        self.fields["lifetime_value"].widget.attrs.update(step="0.01", min="0")
        for name in ("purchase_limit", "monthly_budget"):
            self.fields[name].widget.attrs.update(step="0.01", min="0")
            self.fields[name].help_text = ((self.fields[name].help_text + " ") if self.fields[name].help_text
                                           else "") + "In the customer's currency."
        # Left out of a post (older clients, scripts), they keep their value rather than fail.
        for name in ("approval_expiry_days", "assignment_propagation"):
            self.fields[name].required = False
        parent = self.fields["parent"]
        parent.queryset = BusinessCustomer.objects.exclude(pk=self.instance.pk).order_by("name")
        parent.help_text = "A business customer of the same channel, if this one is a subsidiary."
        use_autocomplete(parent, "customers:autocomplete", include=("#id_channel",))
        self.limit_primary_contact(data)
        self.formsets = {
            "emails": EmailFormSetClass(data, instance=self.instance, prefix="emails"),
            "phones": PhoneFormSetClass(data, instance=self.instance, prefix="phones"),
        }

    def limit_primary_contact(self, data):
        """The primary contact is one of the contacts of the customer's account (the one
        posted, else the current one), read through the contacts' own relation to accounts."""
        account = self.instance.account_id
        if data is not None:
            account = data.get(self.add_prefix("account")) or None
        field = self.fields["primary_contact"]
        contacts = field.queryset  # the contacts app's model, from the field: customers does not import it
        account = as_id(account)
        if account is not None:
            # A subquery, not a join, so a record kept by restrict_form_fields is listed once.
            field.queryset = contacts.filter(pk__in=contacts.filter(accounts=account).values("pk"))
        else:
            field.queryset = contacts.none()
        field.error_messages["invalid_choice"] = "Choose one of the contacts of the customer's account."
        field.help_text = "One of the account's contacts." if account else "Once the customer has an account."

    def groups(self):
        """[(title, bound fields)] for the template."""
        return [(title, [self[n] for n in names if n in self.fields]) for title, names in self.fieldsets]

    def is_valid(self):
        valid = super().is_valid()
        return all([fs.is_valid() for fs in self.formsets.values()]) and valid

    def clean_approval_expiry_days(self):
        value = self.cleaned_data.get("approval_expiry_days")
        return self.instance.approval_expiry_days if value is None else value

    def clean_assignment_propagation(self):
        return self.cleaned_data.get("assignment_propagation") or self.instance.assignment_propagation

    def clean_primary_contact(self):
        """The current primary contact stays offered (crm.forms keeps a linked record), so a
        customer moved to another account is checked against that account's contacts."""
        contact, account = self.cleaned_data.get("primary_contact"), self.cleaned_data.get("account")
        if contact is not None and contact.pk == self.instance.primary_contact_id and (
                account is None or not contact.accounts.filter(pk=account.pk).exists()):
            raise forms.ValidationError(self.fields["primary_contact"].error_messages["invalid_choice"],
                                        code="invalid_choice", params={"value": contact.pk})
        return contact

    def clean(self):
        data = super().clean()
        if data.get("create_account"):
            if data.get("account"):
                self.add_error("account", "Choose an account or tick “create a new account”, not both.")
            elif not access(self.user).may(Account, "create"):
                self.add_error("create_account", "You may not create accounts.")
        elif not data.get("account") and "account" not in self.errors:
            self.add_error("account", "Choose the customer's account, or create a new one named after it.")
        name, channel = data.get("name"), data.get("channel")
        for field, error in (("parent", parent_error(self.instance, data.get("parent"), channel)),
                             ("channel", channel_move_error(self.instance, channel))):
            if error and field not in self.errors:
                self.add_error(field, error)
        if name and channel:
            clash = name_clashes([(name, channel.pk)]).get((name.strip().lower(), channel.pk))
            if clash is not None and clash.pk != self.instance.pk:
                self.add_error("name", name_clash_message(clash, channel, self.user))
        return data


class BusinessCustomerAdminForm(forms.ModelForm):
    """The admin's customer form: the form's company-structure rules."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("approval_expiry_days", "assignment_propagation"):
            if name in self.fields:
                self.fields[name].required = False

    clean_approval_expiry_days = BusinessCustomerForm.clean_approval_expiry_days
    clean_assignment_propagation = BusinessCustomerForm.clean_assignment_propagation

    def clean(self):
        data = super().clean()
        channel = data.get("channel", self.instance.channel if self.instance.channel_id else None)
        for field, error in (("parent", parent_error(self.instance, data.get("parent"), channel)),
                             ("channel", channel_move_error(self.instance, channel))):
            if error and field not in self.errors:
                self.add_error(field if field in self.fields else None, error)
        return data


LOCATION_CUSTOMER_REFUSED = "You may not change this customer, so you may not add or move locations to it."


class LocationForm(BootstrapMixin, forms.ModelForm):
    """A customer's location. Its customer is one the user may change: a location is part of
    the customer's record (crm.forms.restrict_form_fields already hides those he may not view)."""

    class Meta:
        model = Location
        fields = ["customer", "name", "type", "tags", "street", "city", "postal_code", "region", "country", "email",
                  "phone"]
        widgets = {"tags": forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
                   "street": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, data=None, *args, user, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.user = user
        self.fields["customer"].queryset = BusinessCustomer.objects.order_by("name")
        use_autocomplete(self.fields["customer"], "customers:autocomplete")
        self.fields["tags"].queryset = LocationTag.objects.order_by("name")
        self.fields["tags"].help_text = "What the location is used for; several may apply."

    def clean_customer(self):
        customer = self.cleaned_data.get("customer")
        if customer is not None and not access(self.user).can("change", customer):
            raise forms.ValidationError(LOCATION_CUSTOMER_REFUSED, code="customer_refused")
        return customer

    def clean(self):
        data = super().clean()
        customer, name = data.get("customer"), (data.get("name") or "").strip()
        if customer is not None and name:
            taken = Location.objects.filter(customer=customer, name__iexact=name).exclude(pk=self.instance.pk)
            if taken.exists():
                self.add_error("name", f"{customer} already has a location named “{name}”.")
        return data
