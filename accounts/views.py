from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.generic import TemplateView

from activities.services import timeline
from crm.access import access
from crm.views import Entity, EntityMixin

from . import services
from .filters import AccountFilter
from .forms import AccountForm, MergeForm
from .models import Account
from .resources import AccountResource
from .tables import AccountTable


class AccountEntity(Entity):
    model = Account
    namespace = "accounts"
    form_class = AccountForm
    table_class = AccountTable
    filterset_class = AccountFilter
    resource_class = AccountResource
    list_select_related = ("owner", "business_unit")
    icon = "bi-building"
    extra_mass_actions = (("accounts:merge", "Merge", "bi-union"),)
    detail_template = "accounts/account_detail.html"

    @classmethod
    def detail_context(cls, request, obj):
        user = request.user
        # One timeline: the account's own activities and those of its customers and contacts,
        # read through their relations to the account; the customers and contacts sections
        # come from those apps (services.account_section): accounts imports neither.
        related = [obj] + [getattr(obj, name).all() for name in ("customers", "contacts") if hasattr(obj, name)]
        acc = access(user)
        return {**services.account_sections(obj, user),
                **timeline(related, user, with_targets=True),
                "default_contact_visible": obj.default_contact_id and acc.can("view", obj.default_contact),
                "referred_by_visible": obj.referred_by_id and acc.can("view", obj.referred_by)}


class MergeView(EntityMixin, TemplateView):
    """Pick the master and each field's kept value for 2-5 accounts, then merge."""

    entity = AccountEntity
    template_name = "accounts/merge.html"
    action = "delete"

    def check_permission(self):
        self.accounts = list(self.selected("delete").select_related("owner", "business_unit").order_by("pk"))
        try:
            services.check_merge(self.accounts, self.request.user)
        except ValidationError as e:
            messages.error(self.request, e.messages[0])
            return redirect("accounts:list")

    def get(self, request, *args, **kwargs):
        master = self.accounts[0]
        return self.render_page(master, services.default_choices(master, self.accounts))

    def render_page(self, master, choices, form=None, status=200):
        rows = []
        for f in services.mergeable_fields():
            cells = [(a, getattr(a, f.name)) for a in self.accounts]
            differs = len({str(v) for _, v in cells}) > 1
            rows.append({"field": f, "cells": cells, "chosen": choices[f.name], "differs": differs})
        return self.render_to_response(self.get_context_data(accounts=self.accounts, master=master, rows=rows,
                                                             form=form), status=status)

    def post(self, request, *args, **kwargs):
        form = MergeForm(request.POST, accounts=self.accounts, fields=services.mergeable_fields())
        if "confirm" not in request.POST:  # from the grid, or a new master picked: its defaults
            master = form.chosen_master()
            return self.render_page(master, services.default_choices(master, self.accounts))
        if form.is_valid():
            master = form.accounts[form.cleaned_data["master"]]
            try:
                master = services.merge_accounts(master, self.accounts, form.choices(), request.user)
            except ValidationError as e:
                form.add_error(None, e.messages)
            else:
                messages.success(request, f"Merged {len(self.accounts) - 1} account(s) into “{master}”.")
                return redirect(master)
        master = form.chosen_master()
        return self.render_page(master, services.default_choices(master, self.accounts), form=form, status=400)
