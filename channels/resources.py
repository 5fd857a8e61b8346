from django.db.models.functions import Lower
from import_export import fields, widgets

from crm.exports import Column, choice
from crm.resources import CRMResource, chunked

from .models import ENTITY_CHOICES, Channel


class ChoiceWidget(widgets.Widget):
    """A choice by its label or code, case-insensitive; exported as the label."""

    checks_choices = True  # the model field need not check the code again

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

    def export_column(self, path, field):
        return Column(choice(path, self.choices))


class EntitiesWidget(ChoiceWidget):
    """Several enabled entities separated by ';'."""

    def clean(self, value, row=None, **kwargs):
        parts = [p for p in str(value or "").split(";") if p.strip()]
        return ",".join(super(EntitiesWidget, self).clean(p) for p in parts)

    def render(self, value, obj=None, **kwargs):
        labels = dict(self.choices)
        return "; ".join(labels.get(code, code) for code in (value or "").split(",") if code)

    def export_column(self, path, field):
        # Splitting a list of codes has no portable SQL: rendered in Python (channels are few).
        return Column(path, render=self.render)


class ChannelResource(CRMResource):
    name = fields.Field(attribute="name", column_name="Name", widget=widgets.CharWidget())
    # A blank Type or Status cell keeps the current value (the default for a new channel).
    type = fields.Field(attribute="type", column_name="Type", widget=ChoiceWidget(Channel.Type.choices, "type"),
                        saves_null_values=False)
    status = fields.Field(attribute="status", column_name="Status",
                          widget=ChoiceWidget(Channel.Status.choices, "status"), saves_null_values=False)
    entities = fields.Field(attribute="entities", column_name="Entities",
                            widget=EntitiesWidget(ENTITY_CHOICES, "entity"))

    natural_key = ("name",)
    natural_key_unique = True
    header_aliases = {"Name": ("Channel", "Channel Name")}

    class Meta(CRMResource.Meta):
        model = Channel
        fields = ("id", "name", "type", "status", "entities")

    def exists_message(self, record, by_id=False):
        if by_id:
            return super().exists_message(record, by_id)
        return f"A channel named '{record.name}' already exists (ID {record.pk})."

    def check_unique(self, batch):
        """Names are unique: a name twice in the file, or taken by another channel, is a row error."""
        names = [str(n or "").strip() for n in batch["Name"]]
        taken = {}
        for part in chunked(sorted({n.lower() for n in names if n})):
            taken.update(Channel.objects.annotate(key=Lower("name")).filter(key__in=part).values_list("key", "pk"))
        for number, (line, name) in enumerate(zip(batch.lines, names), start=1):
            key = name.lower()
            if not key or number in self.match_errors:
                continue
            if self.session.earlier_line((key,), key, line):
                self.batch_errors[number] = {"name": f"The name '{name}' appears twice in the file."}
            elif key in taken and str(taken[key]) != self.row_pk(number):
                self.batch_errors[number] = {"name": f"A channel named '{name}' already exists (ID {taken[key]})."}
