from django import forms
from django.contrib.auth import get_user_model

from .access import access
from .models import BusinessUnit


class BootstrapMixin:
    """Bootstrap classes on every widget, so templates render fields one way."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for f in self.fields.values():
            widget = f.widget
            if isinstance(widget, (forms.CheckboxInput,)):
                widget.attrs.setdefault("class", "form-check-input")
            elif isinstance(widget, (forms.Select, forms.SelectMultiple)):
                widget.attrs.setdefault("class", "form-select")
            elif isinstance(widget, forms.RadioSelect):
                continue
            else:
                widget.attrs.setdefault("class", "form-control")

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = widget.attrs.get("class", "") + " is-invalid"


class OwnedForm(BootstrapMixin, forms.ModelForm):
    """A record's form: owner and unit limited to where this user may place records."""

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        acc = access(user)
        if "owner" in self.fields:
            self.fields["owner"].queryset = acc.placement_owners().order_by("username")
            self.fields["owner"].initial = self.fields["owner"].initial or user.pk
            if self.instance.pk:
                # Fixed on edit; whoever may edit (e.g. through a share) need not be able to place it there.
                self.fields["owner"].queryset = get_user_model().objects.filter(pk=self.instance.owner_id)
                self.fields["owner"].disabled = True
                self.fields["owner"].help_text = "Use Assign on the record page to change the owner."
        if "business_unit" in self.fields:
            self.fields["business_unit"].queryset = acc.placement_units()
            self.fields["business_unit"].initial = self.fields["business_unit"].initial or user.primary_unit_id
            if self.instance.pk:
                self.fields["business_unit"].queryset = BusinessUnit.objects.filter(pk=self.instance.business_unit_id)
                self.fields["business_unit"].disabled = True

    def clean(self):
        data = super().clean()
        owner, unit = data.get("owner"), data.get("business_unit")
        if not self.instance.pk and owner and unit and not access(self.user).may_place(owner, unit):
            self.add_error("owner", f"{owner} cannot own records of {unit}.")
        return data


class AssignForm(BootstrapMixin, forms.Form):
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none())
    business_unit = forms.ModelChoiceField(queryset=BusinessUnit.objects.none(), required=False,
                                           help_text="Blank: the new owner's primary unit.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["owner"].queryset = access(user).placement_owners().order_by("username")
        self.fields["business_unit"].queryset = access(user).placement_units()

    def clean(self):
        data = super().clean()
        owner = data.get("owner")
        if owner and not data.get("business_unit"):
            data["business_unit"] = owner.primary_unit
        if owner and not data.get("business_unit"):
            self.add_error("business_unit", "The new owner has no primary unit; choose one.")
        elif owner and not access(self.user).may_place(owner, data["business_unit"]):
            self.add_error("owner", f"You may not give records to {owner} in {data['business_unit']}.")
        return data


class ShareForm(BootstrapMixin, forms.Form):
    user = forms.ModelChoiceField(queryset=get_user_model().objects.filter(is_active=True), required=False,
                                  label="With user")
    business_unit = forms.ModelChoiceField(queryset=BusinessUnit.objects.all(), required=False,
                                           label="Or with every member of unit")
    level = forms.ChoiceField(choices=[("view", "View"), ("change", "View and edit")], initial="view")

    def clean(self):
        data = super().clean()
        if bool(data.get("user")) == bool(data.get("business_unit")):
            raise forms.ValidationError("Choose either a user or a business unit.")
        data["target"] = data.get("user") or data.get("business_unit")
        return data


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file", widget=forms.ClearableFileInput(attrs={"class": "form-control", "accept": ".csv,text/csv"}))


class AutocompleteMixin:
    """A select of records that renders only the chosen ones plus a search box; typing
    fetches matching records the user may see from `<namespace>:autocomplete` (htmx), so
    a form stays small however many accounts or contacts there are."""

    def __init__(self, url_name, attrs=None):
        self.url_name = url_name
        super().__init__(attrs)

    def optgroups(self, name, value, attrs=None):
        iterator = self.choices
        chosen = [v for v in value if v not in ("", None)]
        field = iterator.field
        records = iterator.queryset.filter(pk__in=chosen) if chosen else iterator.queryset.none()
        self.choices = ([("", field.empty_label)] if getattr(field, "empty_label", None) is not None else []) + [
            (obj.pk, field.label_from_instance(obj)) for obj in records
        ]
        try:
            return super().optgroups(name, value, attrs)
        finally:
            self.choices = iterator

    def render(self, name, value, attrs=None, renderer=None):
        from django.urls import reverse
        from django.utils.html import format_html

        select = super().render(name, value, attrs, renderer)
        select_id = (attrs or {}).get("id") or self.attrs.get("id") or f"id_{name}"
        return format_html(
            '<div class="crm-autocomplete"><input type="search" class="form-control form-control-sm mb-1" '
            'name="q" placeholder="Type to search…" autocomplete="off" aria-label="Search {}" '
            'hx-get="{}" hx-trigger="input changed delay:250ms, search" hx-target="#{}" hx-swap="innerHTML" '
            'hx-include="#{}" hx-vals=\'{{"field": "{}", "multiple": "{}"}}\'>{}</div>',
            name, reverse(self.url_name), select_id, select_id, name, int(self.allow_multiple_selected), select,
        )


class AutocompleteSelect(AutocompleteMixin, forms.Select):
    pass


class AutocompleteSelectMultiple(AutocompleteMixin, forms.SelectMultiple):
    pass


def use_autocomplete(field, url_name):
    """Give a (multiple) model choice field the autocomplete widget, keeping its queryset."""
    kind = AutocompleteSelectMultiple if isinstance(field, forms.ModelMultipleChoiceField) else AutocompleteSelect
    attrs = dict(field.widget.attrs)
    attrs.setdefault("class", "form-select")
    field.widget = kind(url_name, attrs=attrs)
    field.widget.choices = field.choices
    return field
