from django.db.models.functions import Lower
from import_export import fields, widgets

from crm.resources import CRMResource

from .models import ENTITY_CHOICES, Channel


class ChoiceWidget(widgets.Widget):
    """A choice by its label or code, case-insensitive; exported as the label."""

    def __init__(self, choices, label):
        super().__init__()
        self.choices = list(choices)
        self.label = label

    def clean(self, value, row=None, **kwargs):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        for code, label in self.choices:
            if text in (str(code).lower(), str(label).lower()):
                return code
        allowed = ", ".join(label for _, label in self.choices)
        raise ValueError(f"Unknown {self.label} '{value}'; use one of: {allowed}.")

    def render(self, value, obj=None, **kwargs):
        return dict(self.choices).get(value, value or "")


class EntitiesWidget(ChoiceWidget):
    """Several enabled entities separated by ';'."""

    def clean(self, value, row=None, **kwargs):
        parts = [p for p in str(value or "").split(";") if p.strip()]
        return ",".join(super(EntitiesWidget, self).clean(p) for p in parts)

    def render(self, value, obj=None, **kwargs):
        labels = dict(self.choices)
        return "; ".join(labels.get(code, code) for code in (value or "").split(",") if code)


class ChannelResource(CRMResource):
    name = fields.Field(attribute="name", column_name="Name", widget=widgets.CharWidget())
    # A blank Type or Status cell keeps the current value (the default for a new channel).
    type = fields.Field(attribute="type", column_name="Type", widget=ChoiceWidget(Channel.Type.choices, "type"),
                        saves_null_values=False)
    status = fields.Field(attribute="status", column_name="Status",
                          widget=ChoiceWidget(Channel.Status.choices, "status"), saves_null_values=False)
    entities = fields.Field(attribute="entities", column_name="Entities",
                            widget=EntitiesWidget(ENTITY_CHOICES, "entity"))

    class Meta(CRMResource.Meta):
        model = Channel
        fields = ("id", "name", "type", "status", "entities")

    def start_import(self, report, body, headers):
        self.seen_names = set()

    def check_unique(self, dataset):
        """Names are unique: duplicates in the file, or taken by another channel, are row errors."""
        ids = dataset["ID"] if "ID" in dataset.headers else [""] * len(dataset)
        names = [str(n or "").strip().lower() for n in dataset["Name"]]
        taken = dict(Channel.objects.annotate(key=Lower("name")).filter(key__in=set(names)).values_list("key", "pk"))
        for number, (pk, key, name) in enumerate(zip(ids, names, dataset["Name"]), start=1):
            if not key:
                continue
            if key in self.seen_names:
                self.batch_errors[number] = {"name": f"The name '{name}' appears twice in the file."}
            elif key in taken and str(taken[key]) != str(pk or "").strip():
                self.batch_errors[number] = {"name": f"A channel named '{name}' already exists (ID {taken[key]})."}
            self.seen_names.add(key)
