"""Activities to and from CSV (the admin's import/export). The record an activity belongs
to is named by `Record Type` (app_label.model) and `Record ID`; an import row naming a
record the user may not view is refused, exactly like an unknown one."""
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db.models import CharField, F, Value
from django.db.models.functions import Concat
from import_export import fields, widgets

from channels.resources import ChoiceWidget
from crm.access import restrict
from crm.ids import as_id
from crm.exports import Column
from crm.resources import CRMResource, NameWidget, visible_users

from .models import Activity, target_model, target_models


class RecordTypeWidget(widgets.Widget):
    def clean(self, value, row=None, **kwargs):
        text = str(value or "").strip().lower()
        model = target_model(text) if text else None
        if model is None:
            allowed = ", ".join(m._meta.label_lower for m in target_models())
            raise ValueError(f"Unknown record type '{value}'; use one of: {allowed}.")
        return ContentType.objects.get_for_model(model)

    def render(self, value, obj=None, **kwargs):
        return f"{value.app_label}.{value.model}" if value else ""

    def export_column(self, path, field):
        return Column(Concat(F(f"{path}__app_label"), Value("."), F(f"{path}__model"), output_field=CharField()))


class OptionalChoiceWidget(ChoiceWidget):
    def clean(self, value, row=None, **kwargs):
        return super().clean(value, row, **kwargs) or ""


class ActivityResource(CRMResource):
    kind = fields.Field(attribute="kind", column_name="Kind", widget=ChoiceWidget(Activity.Kind.choices, "kind"))
    subject = fields.Field(attribute="subject", column_name="Subject", widget=widgets.CharWidget())
    body = fields.Field(attribute="body", column_name="Notes", widget=widgets.CharWidget())
    direction = fields.Field(attribute="direction", column_name="Direction",
                             widget=OptionalChoiceWidget(Activity.Direction.choices, "direction"))
    duration = fields.Field(attribute="duration", column_name="Duration (minutes)", widget=widgets.IntegerWidget())
    to_address = fields.Field(attribute="to_address", column_name="To", widget=widgets.CharWidget())
    occurred_at = fields.Field(attribute="occurred_at", column_name="When", widget=widgets.DateTimeWidget())
    due_date = fields.Field(attribute="due_date", column_name="Due Date", widget=widgets.DateWidget())
    done = fields.Field(attribute="done", column_name="Done", widget=widgets.BooleanWidget())
    created_by = fields.Field(
        attribute="created_by", column_name="Created By",
        widget=NameWidget(get_user_model(), field="username", label="user", queryset=visible_users),
    )
    content_type = fields.Field(attribute="content_type", column_name="Record Type", widget=RecordTypeWidget())
    object_id = fields.Field(attribute="object_id", column_name="Record ID", widget=widgets.IntegerWidget())

    required_columns = ("Kind", "Record Type", "Record ID")

    class Meta(CRMResource.Meta):
        model = Activity
        fields = ("id", "kind", "subject", "body", "direction", "duration", "to_address", "occurred_at", "due_date",
                  "done", "created_by", "content_type", "object_id")
        export_order = fields
        import_order = fields

    def prepare_rows(self, batch):
        # {(content type id, record id)} of the batch's records the user may view: one query per type.
        wanted = {}
        for label, pk in zip(batch["Record Type"], batch["Record ID"]):
            model = target_model(str(label or "").strip())
            pk = as_id(str(pk or "").strip())
            if model is not None and pk is not None:
                wanted.setdefault(model, set()).add(pk)
        self.visible_records = set()
        for model, pks in wanted.items():
            ct = ContentType.objects.get_for_model(model)
            seen = restrict(model._default_manager.filter(pk__in=pks), self.user, "view").values_list("pk", flat=True)
            self.visible_records |= {(ct.pk, pk) for pk in seen}

    def fill_defaults(self, instance):
        if instance.created_by_id is None and self.user is not None:
            instance.created_by = self.user

    def validate_row(self, instance, row):
        super().validate_row(instance, row)
        if (instance.content_type_id, instance.object_id) not in self.visible_records:
            raise ValidationError({"object_id": f"No record {row.get('Record Type')} #{row.get('Record ID')} "
                                                "that you may see."})

    @classmethod
    def export_queryset(cls, queryset):
        return queryset.select_related("created_by", "content_type")
