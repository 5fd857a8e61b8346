from django import forms

from crm.forms import OwnedForm

from .models import Account


class AccountForm(OwnedForm):
    class Meta:
        model = Account
        fields = ["name", "owner", "business_unit", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}
