import django_filters as df
from django import forms
from django.core import validators
from django.contrib.auth import get_user_model
from django.db.models import Q

from .access import access, restrict
from .models import BusinessUnit, Role


def visible_units(user, model):
    """Units a grid of `model` may offer as a filter: those whose records he may view."""
    ids = access(user).visible_unit_ids(model)
    return BusinessUnit.objects.all() if ids is None else BusinessUnit.objects.filter(pk__in=ids)


def visible_owners(user, model):
    """Owners offered as a filter: colleagues of units he may see, never the whole company."""
    users = get_user_model().objects.all()
    ids = access(user).visible_unit_ids(model)
    if ids is None:
        return users
    return users.filter(Q(pk=user.pk) | Q(business_units__in=ids)).distinct()


class QuickSelectMixin:
    """A select whose options are written here rather than through Django's template per
    option: the 250 countries of a filter cost 7 ms that way, more than the grid's rows."""

    @classmethod
    def like(cls, widget):
        quick = cls(attrs=widget.attrs)
        quick.choices = widget.choices
        return quick

    def render(self, name, value, attrs=None, renderer=None):
        from django.forms.utils import flatatt
        from django.utils.html import escape
        from django.utils.safestring import mark_safe

        chosen = {str(v) for v in self.format_value(value)}
        final = self.build_attrs(self.attrs, attrs)
        if self.allow_multiple_selected:
            final["multiple"] = True

        def options(choices):
            for option_value, label in choices:
                if isinstance(label, (list, tuple)):
                    yield f'<optgroup label="{escape(option_value)}">{"".join(options(label))}</optgroup>'
                    continue
                option_value = "" if option_value is None else str(option_value)
                selected = " selected" if option_value in chosen else ""
                yield f'<option value="{escape(option_value)}"{selected}>{escape(label)}</option>'

        return mark_safe(f'<select name="{escape(name)}"{flatatt(final)}>{"".join(options(self.choices))}</select>')


class QuickSelect(QuickSelectMixin, forms.Select):
    pass


class QuickSelectMultiple(QuickSelectMixin, forms.SelectMultiple):
    pass


QUICK_SELECTS = {forms.Select: QuickSelect, forms.SelectMultiple: QuickSelectMultiple}


class CRMFilterSet(df.FilterSet):
    """Quick search over `search_fields`, plus the filters each app declares."""

    search_fields = ("name",)
    q = df.CharFilter(method="quick_search", label="Search")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.request is not None:
            self.restrict_choices(self.request.user)
        from .forms import guard_id_choices

        guard_id_choices(self.form.fields)
        for f in self.form.fields.values():
            if isinstance(f, forms.CharField) and f.max_length is None:
                # A text filter is a LIKE pattern too: the same bound as a search word.
                f.max_length = MAX_TERM_LENGTH
                f.validators.append(validators.MaxLengthValidator(MAX_TERM_LENGTH))
            if type(f.widget) in QUICK_SELECTS:
                f.widget = QUICK_SELECTS[type(f.widget)].like(f.widget)
            w = f.widget
            if isinstance(w, (forms.Select, forms.SelectMultiple)):
                w.attrs.setdefault("class", "form-select form-select-sm")
            elif isinstance(w, forms.MultiWidget):
                for sub in w.widgets:
                    sub.attrs.setdefault("class", "form-control form-control-sm")
            else:
                w.attrs.setdefault("class", "form-control form-control-sm")

    def restrict_choices(self, user):
        """Narrow every record-choice filter to the records `user` may view (before the form
        is built), as restrict_form_fields does for forms."""
        from .forms import restricts_choices

        for f in self.filters.values():
            if isinstance(f, (df.ModelChoiceFilter, df.ModelMultipleChoiceFilter)):
                queryset = f.get_queryset(self.request)
                if restricts_choices(queryset.model):
                    f.queryset = restrict(queryset, user, "view")

    def quick_search(self, queryset, name, value):
        """Every word in one of `search_fields`. Columns of the table are ILIKE (trigram
        indexes on PostgreSQL); a related path (`account__name`, `emails__email`) becomes the
        matching ids of that table, so the database ORs index lookups on one table instead
        of joining (a join or a subquery under OR defeats the indexes)."""
        cond = Q()
        for term in search_terms(value):
            term_cond = Q()
            for path in self.search_fields:
                term_cond |= search_condition(queryset.model, path, term)
            cond &= term_cond
        return queryset.filter(cond)


# Words of a search beyond these are ignored: each adds a condition per searched column, and
# a pasted paragraph would nest past SQLite's expression depth (a 500) and cost PostgreSQL a
# plan of thousands of ILIKEs; nobody narrows a search with a tenth word.
MAX_SEARCH_TERMS = 10
# Longer words are cut: SQLite refuses a LIKE pattern over 50,000 bytes ("pattern too
# complex", a 500), and no name, email or note is searched by a word of more than this.
MAX_TERM_LENGTH = 1000


def search_terms(value):
    """The words of a search that count (MAX_SEARCH_TERMS, each up to MAX_TERM_LENGTH)."""
    return [term[:MAX_TERM_LENGTH] for term in value.split()[:MAX_SEARCH_TERMS]]


# Up to this many ids of a related table's matches are inlined into the query.
INLINE_MATCHES = 1000


def ids_or_subquery(queryset, column):
    """The values of `column` in `queryset`: a list when few (an index lookup in the outer
    query), else the subquery itself."""
    queryset = queryset.order_by()  # any INLINE_MATCHES of them will do: no sort
    ids = list(queryset.values_list(column, flat=True)[: INLINE_MATCHES + 1])
    return ids if len(ids) <= INLINE_MATCHES else queryset.values(column)


def search_condition(model, path, term):
    head, _, rest = path.partition("__")
    if not rest:
        return Q(**{f"{path}__ilike": term})
    field = model._meta.get_field(head)
    related = field.related_model
    if field.many_to_one:
        return Q(**{f"{field.attname}__in": ids_or_subquery(
            related._default_manager.filter(search_condition(related, rest, term)), "pk")})
    if field.one_to_many:
        return Q(pk__in=ids_or_subquery(related._default_manager.filter(search_condition(related, rest, term)),
                                        field.field.attname))
    return Q(**{f"{path}__ilike": term})


class OwnedFilterSet(CRMFilterSet):
    # Choices depend on the user and the grid's model: set in __init__, none without a request.
    owner = df.ModelMultipleChoiceFilter(queryset=get_user_model().objects.none())
    business_unit = df.ModelMultipleChoiceFilter(queryset=BusinessUnit.objects.none())
    created = df.DateFromToRangeFilter(field_name="created_at", label="Created between",
                                       widget=df.widgets.DateRangeWidget(attrs={"type": "date"}))

    def restrict_choices(self, user):
        super().restrict_choices(user)
        self.filters["owner"].queryset = visible_owners(user, self._meta.model)
        self.filters["business_unit"].queryset = visible_units(user, self._meta.model)
        self.owner_autocomplete("owner")

    def owner_autocomplete(self, name):
        """Filter `name` (over users) picks from an autocomplete of the users it may offer:
        an organization has too many for one select, and it renders only those chosen."""
        from .forms import AutocompleteSelectMultiple
        from .views import ENTITIES

        grid = next((e.namespace for e in ENTITIES if e.model is self._meta.model), None)
        if grid is not None:
            self.filters[name].extra["widget"] = AutocompleteSelectMultiple("saved_views:owners", url_args=[grid])


class RoleFilter(CRMFilterSet):
    search_fields = ("name", "description")
    administers = df.BooleanFilter(label="Administers the organization")

    class Meta:
        model = Role
        fields = ["administers"]


class UserFilter(CRMFilterSet):
    search_fields = ("username", "first_name", "last_name", "email")
    is_active = df.BooleanFilter(label="Active")
    roles = df.ModelMultipleChoiceFilter(queryset=Role.objects.all(), label="Role")
    business_units = df.ModelMultipleChoiceFilter(queryset=BusinessUnit.objects.all(), label="Business unit",
                                                  distinct=True)

    class Meta:
        model = get_user_model()
        fields = ["is_active", "roles", "business_units"]
