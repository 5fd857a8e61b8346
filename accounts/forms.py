from django import forms

from crm.forms import OwnedForm, use_autocomplete

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
