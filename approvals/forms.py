from django import forms
from django.forms.models import BaseInlineFormSet, inlineformset_factory

from contacts.models import Contact
from crm.forms import BootstrapMixin, use_autocomplete
from crm.ids import as_id
from customers.models import BusinessCustomer

from . import services
from .models import PurchaseLine, PurchaseRequest


class LineForm(BootstrapMixin, forms.ModelForm):
    class Meta:
        model = PurchaseLine
        fields = ["item", "quantity", "unit_price"]
        widgets = {"quantity": forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
                   "unit_price": forms.NumberInput(attrs={"step": "0.01", "min": "0"})}

    def clean(self):
        data = super().clean()
        for name in ("quantity", "unit_price"):
            value = data.get(name)
            if value is not None and value <= 0:
                self.add_error(name, "Enter an amount above zero.")
        return data


class LineFormSet(BaseInlineFormSet):
    def add_fields(self, form, index):
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].widget.attrs["class"] = "form-check-input"

    def kept(self):
        return [f for f in self.forms if f.has_changed() and not self._should_delete_form(f)
                and f.cleaned_data.get("item")]


LineFormSetClass = inlineformset_factory(PurchaseRequest, PurchaseLine, form=LineForm, formset=LineFormSet,
                                         extra=1, can_delete=True, max_num=100, validate_max=True)


class PurchaseRequestForm(BootstrapMixin, forms.ModelForm):
    """A new request: customer, requester, lines (or a total), currency, comment; the rules
    (approvals.services) check it here and decide on save. An existing request changes only
    its title and comment."""

    class Meta:
        model = PurchaseRequest
        fields = ["customer", "title", "requester", "currency", "total", "comment"]
        widgets = {"comment": forms.Textarea(attrs={"rows": 3}),
                   "total": forms.NumberInput(attrs={"step": "0.01", "min": "0"})}

    def __init__(self, data=None, *args, user, base_url=None, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.user, self.base_url = user, base_url
        if self.instance.pk:
            for name in ("customer", "requester", "currency", "total"):
                del self.fields[name]
            self.lines = None
            return
        self.fields["total"].required = False
        self.initial.pop("total", None)  # the model's 0 would read as a total to match
        self.fields["total"].help_text = "Leave blank when you enter lines: their sum is the total."
        self.fields["currency"].required = False
        self.fields["currency"].help_text = "Blank: the customer's currency."
        customer = self.chosen_customer(data)
        self.fields["customer"].queryset = BusinessCustomer.objects.order_by("name")
        use_autocomplete(self.fields["customer"], "customers:autocomplete")
        requesters = Contact.objects.order_by("last_name", "first_name")
        if customer is not None:
            # The customer's members, so the select stays short; the rules check the group.
            self.fields["requester"].queryset = requesters.filter(
                pk__in=customer.group_members.values("contact_id"))
            self.initial.setdefault("currency", customer.currency)
        else:
            self.fields["requester"].queryset = requesters
            use_autocomplete(self.fields["requester"], "contacts:autocomplete")
        self.lines = LineFormSetClass(data, instance=self.instance, prefix="lines")

    def chosen_customer(self, data):
        value = (data or {}).get(self.add_prefix("customer")) or self.initial.get("customer")
        value = as_id(value)
        return BusinessCustomer.objects.filter(pk=value).first() if value is not None else None

    def is_valid(self):
        valid = super().is_valid()
        return (self.lines is None or self.lines.is_valid()) and valid

    def line_values(self):
        return [(f.cleaned_data["item"], f.cleaned_data["quantity"], f.cleaned_data["unit_price"])
                for f in self.lines.kept()] if self.lines is not None else []

    def clean(self):
        data = super().clean()
        if self.instance.pk or self.lines is None:
            return data
        customer, requester = data.get("customer"), data.get("requester")
        if not self.lines.is_valid():
            return data
        lines = self.line_values()
        total = services.line_total(lines) if lines else data.get("total")
        if lines and data.get("total") not in (None, 0, total):
            self.add_error("total", f"The lines add up to {total:,.2f}: leave the total blank or make it match.")
            return data
        if total is None:
            self.add_error("total", "Enter the lines or a total.")
            return data
        data["total"] = total
        if customer is None:
            return data
        data["currency"] = data.get("currency") or customer.currency
        errors, _ = services.request_errors(customer, requester, total, data["currency"], self.user)
        for field, message in errors.items():
            self.add_error(None if field == "__all__" else field, message)
        return data


class DecisionForm(BootstrapMixin, forms.Form):
    """Staff record an approver's decision on his behalf (history says so)."""

    approver = forms.ModelChoiceField(queryset=Contact.objects.none(), help_text="Whose decision this is.")
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("decline", "Decline")],
                                 widget=forms.RadioSelect)
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, approval=None, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if approval is not None:
            self.fields["approver"].queryset = approval.approvers.order_by("last_name", "first_name")


class CommentForm(BootstrapMixin, forms.Form):
    body = forms.CharField(label="Comment", widget=forms.Textarea(attrs={"rows": 2}), max_length=5000)


class RespondForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("decline", "Decline")])
    comment = forms.CharField(required=False, max_length=5000,
                              widget=forms.Textarea(attrs={"rows": 3, "class": "form-control"}))
