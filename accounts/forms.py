from django import forms

from crm.forms import OwnedForm, use_autocomplete
from crm.ids import as_id

from .models import Account


class AccountForm(OwnedForm):
    """Which accounts and contacts the user may view is applied by crm.forms.restrict_form_fields
    (the generic form view and the admin), which keeps a current referrer or default contact
    he may not view; the form narrows only by what the fields mean."""

    class Meta:
        model = Account
        fields = ["name", "owner", "business_unit", "website", "industry", "referred_by", "default_contact",
                  "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        referrers = Account.objects.all()
        if self.instance.pk:
            referrers = referrers.exclude(pk=self.instance.pk)  # not itself
        self.fields["referred_by"].queryset = referrers.order_by("name")
        use_autocomplete(self.fields["referred_by"], "accounts:autocomplete")
        # The default contact is one of the account's own contacts, read through the contacts'
        # relation to accounts (accounts does not import contacts).
        # A subquery, not a join, so a record kept by restrict_form_fields is listed once.
        field = self.fields["default_contact"]
        if self.instance.pk:
            field.queryset = field.queryset.filter(pk__in=self.instance.contacts.values("pk"))
        else:
            field.queryset = field.queryset.none()
        if not self.instance.pk:
            field.help_text = "Link contacts to the account first, then pick one here."


class MergeForm(forms.Form):
    """The merge page's choices: the master and, per field, the account whose value is kept,
    each one of the selected accounts. A field left out keeps the master's value; a field the
    merge does not know means a crafted or outdated page, refused rather than ignored so that
    nothing is merged on choices the user did not see."""

    PREFIX = "field_"

    def __init__(self, data, *, accounts, fields):
        super().__init__(data)
        self.accounts = {a.pk: a for a in accounts}
        choices = [(str(a.pk), str(a)) for a in accounts]
        self.fields["master"] = forms.TypedChoiceField(
            choices=choices, coerce=int, error_messages={
                "required": "Choose the master account.",
                "invalid_choice": "Choose the master among the selected accounts."})
        self.merged = [f.name for f in fields]
        for f in fields:
            self.fields[self.PREFIX + f.name] = forms.TypedChoiceField(
                choices=choices, coerce=int, required=False, empty_value=None, label=f.verbose_name,
                error_messages={"invalid_choice": f"Keep the {f.verbose_name} of one of the selected accounts."})
        self.unknown = [key for key in (data or {}) if key.startswith(self.PREFIX) and key not in self.fields]

    def clean(self):
        data = super().clean()
        if self.unknown:
            raise forms.ValidationError("The page asked to merge a field accounts do not have. "
                                        "Reload it and choose the values again.")
        return data

    def chosen_master(self):
        """The master the page names when it is one of the accounts, else the first of them
        (the page is shown again with that master's defaults)."""
        return self.accounts.get(as_id((self.data or {}).get("master")), next(iter(self.accounts.values())))

    def choices(self):
        """{field: account id} for services.merge_accounts; a field left out keeps the master's."""
        master = self.cleaned_data["master"]
        return {name: self.cleaned_data.get(self.PREFIX + name) or master for name in self.merged}
