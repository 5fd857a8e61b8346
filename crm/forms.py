from django import forms
from django.contrib.auth import get_user_model

from .access import access, entity_key, restrict
from .ids import as_id, parse_ids
from .models import ACTION_LABELS, ACTIONS, BusinessUnit, Job, Level, Role


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
        guard_id_choices(self.fields)
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                widget.attrs["class"] = widget.attrs.get("class", "") + " is-invalid"


def guard_id_choices(fields):
    """Make every record choice among `fields` (a form's, a filterset's) refuse a value that
    is not an id (crm.ids) as an invalid choice. Django hands such a value to the database:
    `pk__in` with an integer beyond 64 bits is an OverflowError on SQLite and a DataError on
    PostgreSQL, a 500 instead of a field error. Wrapping `clean` (once per field) catches
    fields whatever added them, however their queryset was set."""
    for field in fields.values():
        if isinstance(field, forms.ModelChoiceField) and not getattr(field, "guards_ids", False):
            field.clean = _refusing_non_ids(field, field.clean)
            field.guards_ids = True


def _keyed_by_integer(field):
    from django.db import models

    model = field.queryset.model
    key = model._meta.get_field(field.to_field_name) if field.to_field_name else model._meta.pk
    return isinstance(key, (models.IntegerField, models.AutoField))


def _refusing_non_ids(field, clean):
    def clean_ids(value):
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if (v not in field.empty_values and not hasattr(v, "_meta") and as_id(v) is None
                    and _keyed_by_integer(field)):
                raise forms.ValidationError(field.error_messages["invalid_choice"], code="invalid_choice",
                                            params={"value": str(v)[:50]})
        return clean(value)
    return clean_ids


def restricts_choices(model):
    """Choices of `model` in a form are narrowed to what the user may view: entity records
    and their children, not users, units or roles (those have rules of their own)."""
    from .access import governed_models

    return model in governed_models() or hasattr(model, "restrict_queryset")


HIDDEN_LABEL = "(a record you may not view)"


def restrict_form_fields(form, user):
    """Narrow every record choice of `form` to the records `user` may view (NetBox's
    restrict_form_fields): applied once, by the generic form view and the admin, so no form
    can forget it. Records already linked that he may not view stay linked: a single choice
    keeps them selected without naming them; a multiple choice keeps them out of sight and
    adds them back on save, so he can neither see nor remove them."""
    instance = getattr(form, "instance", None)
    for name, field in form.fields.items():
        if not isinstance(field, forms.ModelChoiceField) or not restricts_choices(field.queryset.model):
            continue
        base = field.queryset
        visible = restrict(base, user, "view")
        linked = linked_ids(instance, name)
        hidden = set(linked) - set(visible.filter(pk__in=linked).values_list("pk", flat=True)) if linked else set()
        multiple = isinstance(field, forms.ModelMultipleChoiceField)
        if hidden and not multiple:
            field.queryset = visible | base.model._default_manager.filter(pk__in=hidden)
            label = field.label_from_instance
            field.label_from_instance = lambda obj, label=label, hidden=hidden: (
                HIDDEN_LABEL if obj.pk in hidden else label(obj))
        else:
            field.queryset = visible
        if hidden and multiple:
            keep = base.model._default_manager.filter(pk__in=hidden)
            field.clean = _keeping(field.clean, keep)
            field.help_text = (field.help_text + " " if field.help_text else "") + (
                f"Also linked to {len(hidden)} record{'s' if len(hidden) != 1 else ''} you may not view (kept).")
        if hasattr(field.widget, "choices"):
            field.widget.choices = field.choices
    return form


def _keeping(clean, keep):
    def clean_and_keep(value):
        return clean(value) | keep
    return clean_and_keep


def linked_ids(instance, name):
    """Ids `instance` links to through its field `name` (a foreign key or many-to-many)."""
    if instance is None or instance.pk is None:
        return []
    try:
        field = instance._meta.get_field(name)
    except Exception:
        return []
    if field.many_to_many:
        return list(getattr(instance, name).values_list("pk", flat=True))
    if field.many_to_one:
        value = getattr(instance, field.attname)
        return [value] if value is not None else []
    return []


class OwnedForm(BootstrapMixin, forms.ModelForm):
    """A record's form: owner and unit limited to where this user may place records."""

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        acc = access(user)
        model = self._meta.model
        if "owner" in self.fields:
            self.fields["owner"].queryset = acc.placement_owners(model).order_by("username")
            self.fields["owner"].initial = self.fields["owner"].initial or user.pk
            if self.instance.pk:
                # Fixed on edit; whoever may edit (e.g. through a share) need not be able to place it there.
                self.fields["owner"].queryset = get_user_model().objects.filter(pk=self.instance.owner_id)
                self.fields["owner"].disabled = True
                self.fields["owner"].help_text = "Use Assign on the record page to change the owner."
        if "business_unit" in self.fields:
            self.fields["business_unit"].queryset = acc.placement_units(model)
            self.fields["business_unit"].initial = self.fields["business_unit"].initial or user.primary_unit_id
            if self.instance.pk:
                self.fields["business_unit"].queryset = BusinessUnit.objects.filter(pk=self.instance.business_unit_id)
                self.fields["business_unit"].disabled = True

    def clean(self):
        data = super().clean()
        if not self.instance.pk and data.get("owner") and data.get("business_unit"):
            self.instance.owner, self.instance.business_unit = data["owner"], data["business_unit"]
            error = access(self.user).placement_error(self.instance)
            if error is not None:
                self.add_error(None, error)
        return data


class AssignForm(BootstrapMixin, forms.Form):
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none())
    business_unit = forms.ModelChoiceField(queryset=BusinessUnit.objects.none(), required=False,
                                           help_text="Blank: the new owner's primary unit.")

    def __init__(self, *args, user, model, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.model = user, model
        self.fields["owner"].queryset = access(user).placement_owners(model, "assign").order_by("username")
        self.fields["business_unit"].queryset = access(user).placement_units(model, "assign")

    def clean(self):
        data = super().clean()
        owner = data.get("owner")
        if owner and not data.get("business_unit"):
            data["business_unit"] = owner.primary_unit
        if owner and not data.get("business_unit"):
            self.add_error("business_unit", "The new owner has no primary unit; choose one.")
        elif owner and not access(self.user).may_place(self.model, owner, data["business_unit"], "assign"):
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


IMPORT_MODES = Job.Mode.choices


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file", widget=forms.ClearableFileInput(attrs={"class": "form-control", "accept": ".csv,text/csv"}))
    mode = forms.ChoiceField(label="Rows", choices=IMPORT_MODES, initial="create_update", required=False,
                             widget=forms.Select(attrs={"class": "form-select"}))

    def clean_mode(self):
        return self.cleaned_data.get("mode") or "create_update"  # a client that sends no mode gets the default

    def clean_file(self):
        """A file that is plainly no CSV text (by its name, or its first bytes: a workbook,
        UTF-16 text) is refused on the page at once, with what to do instead; the rest is
        read by the import's validation."""
        from .services import not_csv_message

        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".txt")):
            raise forms.ValidationError(f"Only CSV files can be imported (named .csv); '{upload.name[:100]}' is not "
                                        "one. Save the sheet as 'CSV UTF-8' and upload that file.")
        upload.seek(0)
        wrong = not_csv_message(upload.read(512))
        upload.seek(0)
        if wrong:
            raise forms.ValidationError(wrong)
        return upload


class ImportModeForm(forms.Form):
    """The mode chosen again on the job page, before the import is started."""

    mode = forms.ChoiceField(choices=IMPORT_MODES, widget=forms.Select(attrs={"class": "form-select form-select-sm"}))


class AutocompleteMixin:
    """A select of records that renders only the chosen ones plus a search box; typing
    fetches matching records the user may see from `<namespace>:autocomplete` (htmx), so
    a form stays small however many accounts or contacts there are."""

    def __init__(self, url_name, attrs=None, url_args=(), include=()):
        # `include`: selectors of other fields sent with the search (e.g. the form's channel).
        self.url_name, self.url_args, self.include = url_name, tuple(url_args), tuple(include)
        super().__init__(attrs)

    def optgroups(self, name, value, attrs=None):
        iterator = self.choices
        chosen = parse_ids(str(v) for v in value)  # the value as posted, maybe no id at all
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
            'hx-include="{}" hx-vals=\'{{"field": "{}", "multiple": "{}"}}\'>{}</div>',
            name, reverse(self.url_name, args=self.url_args), select_id, ", ".join((f"#{select_id}",) + self.include),
            name, int(self.allow_multiple_selected), select,
        )


class AutocompleteSelect(AutocompleteMixin, forms.Select):
    pass


class AutocompleteSelectMultiple(AutocompleteMixin, forms.SelectMultiple):
    pass


def use_autocomplete(field, url_name, url_args=(), include=()):
    """Give a (multiple) model choice field the autocomplete widget, keeping its queryset."""
    kind = AutocompleteSelectMultiple if isinstance(field, forms.ModelMultipleChoiceField) else AutocompleteSelect
    attrs = dict(field.widget.attrs)
    attrs.setdefault("class", "form-select")
    field.widget = kind(url_name, attrs=attrs, url_args=url_args, include=include)
    field.widget.choices = field.choices
    return field


# -- administration: roles and users --------------------------------------------------------

class RoleForm(BootstrapMixin, forms.ModelForm):
    """A role and its matrix: one level select per entity and action, named
    `<entity namespace>__<action>` (e.g. `accounts__view`). Organization-wide entities
    (channels, contact groups) have no owner or unit, so only None and Organization apply
    to them, and nothing to assign or share."""

    action_labels = [ACTION_LABELS[a] for a in ACTIONS]

    class Meta:
        model = Role
        fields = ["name", "description", "administers"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.levels = self.instance.levels() if self.instance.pk else {}
        self.matrix = []  # [(entity, [bound field or None per action])]
        for entity in matrix_entities():
            cells = []
            for action in ACTIONS:
                if not entity.owned and action in ("assign", "share"):
                    cells.append(None)
                    continue
                choices = Level.choices if entity.owned else [(Level.NONE, "None"),
                                                              (Level.ORGANIZATION, "Organization")]
                name = cell_name(entity, action)
                # Not required: a cell left out of the POST keeps its level (None for a new role).
                self.fields[name] = forms.TypedChoiceField(
                    choices=choices, coerce=int, required=False, empty_value=None,
                    initial=self.levels.get((entity_key(entity.model), action), 0),
                    label=f"{ACTION_LABELS[action]} {entity.verbose_name_plural}",
                    widget=forms.Select(attrs={"class": "form-select form-select-sm"}))
                cells.append(name)
            self.matrix.append((entity, cells))

    def matrix_rows(self):
        return [(entity, [self[name] if name else None for name in cells]) for entity, cells in self.matrix]

    def cleaned_levels(self):
        levels = {}
        for entity, cells in self.matrix:
            for action, name in zip(ACTIONS, cells):
                if name:
                    key = (entity_key(entity.model), action)
                    value = self.cleaned_data.get(name)
                    levels[key] = self.levels.get(key, Level.NONE) if value is None else value
        return levels


def matrix_entities():
    from .views import ENTITIES

    return [e for e in ENTITIES if e.in_role_matrix]


def cell_name(entity, action):
    return f"{entity.namespace}__{action}"


class UserForm(BootstrapMixin, forms.ModelForm):
    """A user's account, units and roles. A new user gets a password here; an existing one
    keeps his unless a new one is typed."""

    password1 = forms.CharField(label="Password", required=False, strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label="Password again", required=False, strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    class Meta:
        model = get_user_model()
        fields = ["username", "first_name", "last_name", "email", "primary_unit", "business_units", "roles",
                  "is_active", "is_staff"]
        labels = {"business_units": "Business units", "is_active": "Active (may log in)",
                  "is_staff": "May open the Django admin"}
        widgets = {"business_units": forms.SelectMultiple(attrs={"size": 6}),
                   "roles": forms.SelectMultiple(attrs={"size": 6})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["primary_unit"].required = True
        self.fields["business_units"].help_text = "The primary unit is always one of them."
        if not self.instance.pk:
            self.fields["password1"].required = self.fields["password2"].required = True
        else:
            self.fields["password1"].help_text = "Leave blank to keep the current password."

    def clean(self):
        from django.contrib.auth import password_validation

        data = super().clean()
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 or p2:
            if p1 != p2:
                self.add_error("password2", "The two passwords differ.")
            else:
                try:
                    password_validation.validate_password(p1, self.instance)
                except forms.ValidationError as e:
                    self.add_error("password1", e)
        return data
