from datetime import timedelta

from django import forms
from django.utils import timezone

from crm.forms import BootstrapMixin

from .models import Activity

# The fields each kind of activity asks for, in form order.
FIELDS = {
    Activity.Kind.CALL: ["subject", "direction", "occurred_at", "duration", "body"],
    Activity.Kind.EMAIL: ["to_address", "subject", "body"],
    Activity.Kind.NOTE: ["subject", "body"],
    Activity.Kind.TASK: ["subject", "due_date", "body", "done"],
}
REQUIRED = {
    Activity.Kind.CALL: {"subject", "direction", "occurred_at"},
    Activity.Kind.EMAIL: {"to_address", "subject", "body"},
    Activity.Kind.NOTE: {"body"},
    Activity.Kind.TASK: {"subject"},
}
LABELS = {
    Activity.Kind.CALL: {"body": "Notes", "occurred_at": "When"},
    Activity.Kind.EMAIL: {"body": "Message"},
    Activity.Kind.NOTE: {"body": "Note"},
    Activity.Kind.TASK: {"body": "Description", "done": "Already done"},
}
TITLES = {
    Activity.Kind.CALL: ("Log call", "bi-telephone"),
    Activity.Kind.EMAIL: ("Send email", "bi-envelope"),
    Activity.Kind.NOTE: ("Add note", "bi-sticky"),
    Activity.Kind.TASK: ("Add task", "bi-check2-square"),
}


def recipients_of(target, user):
    """[(address, label)] the record offers for Send email: its own addresses, and those
    of related records the user may view where its model adds them (`activity_recipients(user)`)."""
    hook = getattr(target, "activity_recipients", None)
    return list(hook(user)) if callable(hook) else []


class ActivityForm(BootstrapMixin, forms.ModelForm):
    class Meta:
        model = Activity
        fields = ["subject", "direction", "occurred_at", "duration", "to_address", "due_date", "body", "done"]
        widgets = {
            "body": forms.Textarea(attrs={"rows": 5}),
            "occurred_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "due_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "direction": forms.RadioSelect,
        }

    def __init__(self, *args, kind, target, user, **kwargs):
        self.kind, self.target, self.user = kind, target, user
        super().__init__(*args, **kwargs)
        wanted = FIELDS[kind]
        for name in list(self.fields):
            if name not in wanted:
                del self.fields[name]
        self.order_fields(wanted)
        for name, f in self.fields.items():
            f.required = name in REQUIRED[kind]
            if name in LABELS.get(kind, {}):
                f.label = LABELS[kind][name]
        if "direction" in self.fields:
            self.fields["direction"].choices = Activity.Direction.choices
            self.fields["direction"].initial = Activity.Direction.OUTBOUND
        if "occurred_at" in self.fields:
            self.fields["occurred_at"].initial = timezone.localtime().replace(second=0, microsecond=0)
        if "duration" in self.fields:
            self.fields["duration"].widget.attrs.update(min=0, step=1)
        if "to_address" in self.fields:
            choices = recipients_of(target, user)
            self.fields["to_address"] = forms.ChoiceField(
                label="To", choices=[("", "— choose an address —")] + choices,
                widget=forms.Select(attrs={"class": "form-select"}),
                help_text="" if choices else "This record has no email address yet: add one first.",
            )

    def clean_subject(self):
        subject = self.cleaned_data.get("subject", "")
        # An email's subject is a header: a line break would end it (Django refuses to send it).
        if self.kind == Activity.Kind.EMAIL and ("\n" in subject or "\r" in subject):
            raise forms.ValidationError("A subject cannot contain line breaks.")
        return subject

    def clean_occurred_at(self):
        when = self.cleaned_data.get("occurred_at")
        if when and when > timezone.now() + timedelta(days=1):
            raise forms.ValidationError("A logged call cannot be in the future.")
        return when
