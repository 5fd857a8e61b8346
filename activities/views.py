"""One set of activity views for any record activities attach to.

The record is named in the URL as `<app_label>.<model>` and its id; it goes through the
same restricted lookup as the record page, so a record the user may not view is a 404
here too. Logging needs VIEW on the record (a Sales Representative logs calls on the
unit's customers he may see, as in Oro); marking a task done needs the activity's
"change" rule (its author, or who may change the record).
"""
import json
import logging

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.views.generic import TemplateView

from crm.access import get_or_404

from . import services

logger = logging.getLogger(__name__)
from .forms import TITLES, ActivityForm
from .models import Activity, target_model


def done_redirect(request, url):
    """Back to the record page. From a modal, an HX-Redirect to the same page with only a new
    #fragment would not reload it, so crm.js reloads on the crm-reload event instead."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Trigger"] = json.dumps({"crm-reload": {"url": url}})
        return response
    return redirect(url)


class ActivityCreateView(LoginRequiredMixin, TemplateView):
    """GET: the form (a modal body for htmx, else a page). POST: log it, back to the record."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        model = target_model(kwargs["target"])
        if model is None or kwargs["kind"] not in Activity.Kind.values:
            raise Http404("No such record.")
        self.kind = kwargs["kind"]
        self.target = get_or_404(model._default_manager.all(), request.user, "view", pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_template_names(self):
        return ["activities/_form.html" if self.request.htmx else "activities/activity_form.html"]

    def get_context_data(self, **kwargs):
        title, icon = TITLES[self.kind]
        return super().get_context_data(
            target=self.target, kind=self.kind, title=title, icon=icon,
            action=self.request.path, **kwargs)

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=ActivityForm(kind=self.kind, target=self.target, user=request.user)))

    def post(self, request, *args, **kwargs):
        form = ActivityForm(request.POST, kind=self.kind, target=self.target, user=request.user)
        if form.is_valid():
            data = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
            if self.kind == Activity.Kind.EMAIL:
                try:
                    services.send_email(self.target, request.user, data["to_address"], data["subject"], data["body"])
                except OSError:
                    # The mail server's error text means nothing to the sender; the log has it.
                    logger.exception("Sending an email activity failed")
                    form.add_error(None, "The mail server could not be reached, so the email was not sent and "
                                         "nothing was recorded. Try again later or tell an administrator.")
                else:
                    messages.success(request, f"Email sent to {data['to_address']}.")
                    return done_redirect(request, self.target.get_absolute_url() + "#activities")
            else:
                services.record_activity(self.target, request.user, self.kind, **data)
                messages.success(request, f"{Activity.Kind(self.kind).label} added to “{self.target}”.")
                return done_redirect(request, self.target.get_absolute_url() + "#activities")
        # htmx swaps only 2xx answers: the modal shows the errors in place.
        return self.render_to_response(self.get_context_data(form=form), status=200 if request.htmx else 400)


class ActivityMixin(LoginRequiredMixin):
    def get_activity(self, action):
        qs = Activity.objects.select_related("created_by", "content_type")
        activity = get_or_404(qs, self.request.user, action, pk=self.kwargs["pk"])
        return activity


class ActivityDetailView(ActivityMixin, TemplateView):
    template_name = "activities/activity_detail.html"

    def get_context_data(self, **kwargs):
        activity = self.get_activity("view")
        target = activity.target
        can_change = activity.allows(self.request.user, "change")
        return super().get_context_data(activity=activity, target=target, can_change=can_change, **kwargs)


class ActivityDoneView(ActivityMixin, TemplateView):
    """POST done=1 marks a task done, done=0 reopens it."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        activity = self.get_activity("change")
        if activity.kind != Activity.Kind.TASK:
            raise Http404("Only tasks can be marked done.")
        done = request.POST.get("done", "1") == "1"
        services.set_done(activity, request.user, done)
        messages.success(request, f"Task “{activity}” {'done' if done else 'reopened'}.")
        return done_redirect(request, activity.target.get_absolute_url() + "#activities")
