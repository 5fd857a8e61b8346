from django import forms

from crm.access import restrict
from crm.forms import OwnedForm

from .models import Account


class AccountForm(OwnedForm):
    class Meta:
        model = Account
        fields = ["name", "owner", "business_unit", "website", "industry", "referred_by", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        referrers = restrict(Account.objects.all(), self.user, "view")
        if self.instance.pk:
            referrers = referrers.exclude(pk=self.instance.pk)
        self.fields["referred_by"].queryset = referrers.order_by("name")
