from django import forms

from crm.forms import BootstrapMixin

from .models import ENTITY_CHOICES, Channel


class ChannelForm(BootstrapMixin, forms.ModelForm):
    entities = forms.MultipleChoiceField(choices=ENTITY_CHOICES, required=False, label="Enabled entities",
                                         widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Channel
        fields = ["name", "type", "status", "entities"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["entities"] = self.instance.entity_list if self.instance.pk else [ENTITY_CHOICES[0][0]]

    def clean_entities(self):
        return ",".join(self.cleaned_data["entities"])
