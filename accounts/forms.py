from django import forms

from crm.access import restrict
from crm.forms import OwnedForm, use_autocomplete

from .models import Account


class AccountForm(OwnedForm):
    class Meta:
        model = Account
        fields = ["name", "owner", "business_unit", "website", "industry", "referred_by", "default_contact",
                  "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        referrers = restrict(Account.objects.all(), self.user, "view")
        if self.instance.pk:
            referrers = referrers.exclude(pk=self.instance.pk)
        self.fields["referred_by"].queryset = referrers.order_by("name")
        use_autocomplete(self.fields["referred_by"], "accounts:autocomplete")
        from contacts.models import Contact

        # The default contact is one of the account's own contacts the user may see.
        contacts = Contact.objects.filter(accounts=self.instance) if self.instance.pk else Contact.objects.none()
        self.fields["default_contact"].queryset = restrict(contacts, self.user, "view").order_by("last_name")
        if not self.instance.pk:
            self.fields["default_contact"].help_text = "Link contacts to the account first, then pick one here."
