from django import forms
from django.forms.models import BaseInlineFormSet, inlineformset_factory

from accounts.models import Account
from channels.models import BUSINESS_CUSTOMER, Channel
from crm.access import access
from crm.forms import BootstrapMixin, OwnedForm, use_autocomplete

from .models import BusinessCustomer, CustomerEmail, CustomerPhone, name_clash_message, name_clashes

# Sections of the form and of the record page: (title, fields).
FIELDSETS = [
    ("General", ["name", "channel", "account", "create_account", "primary_contact", "owner", "business_unit"]),
    ("Company details", ["legal_name", "registration_number", "registration_date", "tax_number", "industry",
                         "employees", "website", "lifetime_value", "currency"]),
    ("Billing address", ["billing_street", "billing_city", "billing_postal_code", "billing_region", "billing_country"]),
    ("Shipping address", ["shipping_street", "shipping_city", "shipping_postal_code", "shipping_region",
                          "shipping_country"]),
    ("Description", ["description"]),
]


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
        if str(account or "").isascii() and str(account or "").isdigit() and int(account) < 2**63:
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
        if name and channel:
            clash = name_clashes([(name, channel.pk)]).get((name.strip().lower(), channel.pk))
            if clash is not None and clash.pk != self.instance.pk:
                self.add_error("name", name_clash_message(clash, channel, self.user))
        return data
