import django_filters as df
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from .access import access, restrict
from .models import BusinessUnit


def visible_units(request):
    if request is None:  # a FilterSet built without a request (global search) offers no choices
        return BusinessUnit.objects.none()
    acc = access(request.user)
    if acc.is_admin():
        return BusinessUnit.objects.all()
    ids = acc.unit_ids("view") | set(request.user.business_units.values_list("pk", flat=True))
    return BusinessUnit.objects.filter(pk__in=ids)


def visible_owners(request):
    """Owners offered as a filter: colleagues of units the user may see, never the whole company."""
    users = get_user_model().objects.all()
    if request is None:
        return users.none()
    if access(request.user).is_admin():
        return users
    return users.filter(Q(pk=request.user.pk) | Q(business_units__in=visible_units(request))).distinct()


def restricted(model):
    """A filter-choice queryset that offers only records the requesting user may see."""
    return lambda request: restrict(model._default_manager.all(), request.user, "view") if request else model._default_manager.none()


class CRMFilterSet(df.FilterSet):
    """Quick search over `search_fields`, plus the filters each app declares."""

    search_fields = ("name",)
    q = df.CharFilter(method="quick_search", label="Search")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for f in self.form.fields.values():
            w = f.widget
            if isinstance(w, (forms.Select, forms.SelectMultiple)):
                w.attrs.setdefault("class", "form-select form-select-sm")
            elif isinstance(w, forms.MultiWidget):
                for sub in w.widgets:
                    sub.attrs.setdefault("class", "form-control form-control-sm")
            else:
                w.attrs.setdefault("class", "form-control form-control-sm")

    def quick_search(self, queryset, name, value):
        cond = Q()
        for term in value.split():
            term_cond = Q()
            for path in self.search_fields:
                term_cond |= Q(**{f"{path}__ilike": term})
            cond &= term_cond
        return queryset.filter(cond).distinct() if any("__" in p for p in self.search_fields) else queryset.filter(cond)


class OwnedFilterSet(CRMFilterSet):
    owner = df.ModelMultipleChoiceFilter(queryset=visible_owners)
    business_unit = df.ModelMultipleChoiceFilter(queryset=visible_units)
    created = df.DateFromToRangeFilter(field_name="created_at", label="Created between",
                                       widget=df.widgets.DateRangeWidget(attrs={"type": "date"}))
