from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.urls import path
from django.views import View
from django.views.generic import TemplateView

from crm.access import access
from crm.views import Entity, EntityMixin, ExportView, GridView, RecordFormView, RecordView
from customers.models import BusinessCustomer

from . import services
from .filters import ApprovalFilter, PurchaseRequestFilter
from .forms import CommentForm, DecisionForm, PurchaseRequestForm, RespondForm
from .models import ApprovalRequest, PurchaseRequest, Status
from .resources import ApprovalResource, PurchaseRequestResource
from .tables import ApprovalTable, PurchaseRequestTable


class CustomerChildEntity(Entity):
    """Follows its customer: recorded by whoever may change some customer (each form and
    write checks the customer at hand)."""

    in_role_matrix = False
    importable = False
    searchable = False

    @classmethod
    def can_create(cls, user):
        return access(user).may(BusinessCustomer, "change")

    @classmethod
    def may_view(cls, user):
        return access(user).may(BusinessCustomer, "view")


class PurchaseRequestEntity(CustomerChildEntity):
    model = PurchaseRequest
    namespace = "purchase_requests"
    form_class = PurchaseRequestForm
    table_class = PurchaseRequestTable
    filterset_class = PurchaseRequestFilter
    resource_class = PurchaseRequestResource
    detail_template = "approvals/purchaserequest_detail.html"
    form_template = "approvals/purchaserequest_form.html"
    list_select_related = ("customer", "requester")
    icon = "bi-cart"

    @classmethod
    def form_kwargs(cls, request):
        initial = {"customer": request.GET["customer"]} if request.GET.get("customer") else {}
        return {"user": request.user, "initial": initial, "base_url": request.build_absolute_uri("/")}

    @classmethod
    def save(cls, form, user):
        return services.save_purchase_request(form, user, base_url=form.base_url)

    @classmethod
    def detail_context(cls, request, obj):
        approval = ApprovalRequest.objects.filter(purchase_request=obj).select_related("decided_by").first()
        return {"lines": list(obj.lines.all()), "approval": approval,
                "approvers": list(approval.approvers.all()) if approval else []}


class ApprovalEntity(CustomerChildEntity):
    """Opened by the rules, never created or deleted by hand; its "edit" page records a
    decision on an approver's behalf."""

    model = ApprovalRequest
    namespace = "approvals"
    form_class = DecisionForm
    table_class = ApprovalTable
    filterset_class = ApprovalFilter
    resource_class = ApprovalResource
    detail_template = "approvals/approvalrequest_detail.html"
    list_select_related = ("customer", "requester", "purchase_request")
    icon = "bi-check2-square"
    deletable = False

    @classmethod
    def can_create(cls, user):
        return False

    @classmethod
    def can(cls, user, action, obj):
        return action != "delete" and super().can(user, action, obj)

    @classmethod
    def restricted(cls, user, action="view"):
        queryset = super().restricted(user, action)
        return queryset.none() if action == "delete" else queryset

    @classmethod
    def detail_context(cls, request, obj):
        can_change = cls.can(request.user, "change", obj)
        return {"approvers": list(obj.approvers.order_by("last_name", "first_name")),
                "comments": services.comments_of(obj), "request_lines": list(obj.purchase_request.lines.all()),
                "decision_form": DecisionForm(approval=obj) if can_change and obj.is_open else None,
                "comment_form": CommentForm() if can_change else None}

    @classmethod
    def urls(cls):
        from crm.views import DeleteView

        kw = {"entity": cls}
        return [
            path("", GridView.as_view(**kw), name="list"),
            path("new/", RecordFormView.as_view(**kw), name="create"),
            path("<int:pk>/", RecordView.as_view(**kw), name="detail"),
            path("<int:pk>/edit/", DecisionView.as_view(**kw), name="update"),
            path("<int:pk>/delete/", DeleteView.as_view(**kw), name="delete"),
            path("delete/", DeleteView.as_view(**kw), name="mass_delete"),
            path("export/", ExportView.as_view(**kw), name="export"),
            path("<int:pk>/comment/", CommentView.as_view(**kw), name="comment"),
            path("<int:pk>/withdraw/", WithdrawView.as_view(**kw), name="withdraw"),
            path("respond/<str:token>/", RespondView.as_view(), name="respond"),
        ], cls.namespace


class DecisionView(EntityMixin, TemplateView):
    """Staff record an approver's decision on his behalf."""

    entity = ApprovalEntity
    action = "change"
    template_name = "approvals/decision_form.html"

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(form=DecisionForm(approval=self.object),
                                                             object=self.object))

    def post(self, request, *args, **kwargs):
        form = DecisionForm(request.POST, approval=self.object)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.decide(self.object, data["decision"] == "approve", data["approver"], data["comment"],
                                user=request.user)
            except (services.LinkRefused, PermissionDenied) as e:
                form.add_error(None, str(e))
            else:
                messages.success(request, f"Decision of {data['approver']} recorded.")
                return redirect(self.object)
        return self.render_to_response(self.get_context_data(form=form, object=self.object), status=400)


class CommentView(EntityMixin, View):
    entity = ApprovalEntity
    action = "change"

    def post(self, request, *args, **kwargs):
        form = CommentForm(request.POST)
        if form.is_valid():
            services.add_comment(self.object, request.user, form.cleaned_data["body"])
            messages.success(request, "Comment added.")
        else:
            messages.error(request, "Write a comment first.")
        return redirect(f"{self.object.get_absolute_url()}#comments")


class WithdrawView(EntityMixin, View):
    entity = ApprovalEntity
    action = "change"

    def post(self, request, *args, **kwargs):
        try:
            services.withdraw(self.object, request.user, request.POST.get("comment", "").strip())
        except ValidationError as e:
            messages.error(request, " ".join(e.messages))
        else:
            messages.success(request, "The approval request was withdrawn (Closed).")
        return redirect(self.object)


class RespondView(TemplateView):
    """An approver's emailed link: no login. GET shows the request (and changes nothing, so
    mail scanners that open links do no harm); POST approves or declines, once."""

    template_name = "approvals/respond.html"

    def get(self, request, token):
        try:
            link, approval = services.read_link(token)
        except services.LinkRefused as e:
            return self.render_to_response({"refused": str(e)}, status=410)
        return self.render_to_response({"approval": approval, "approver": link.approver, "form": RespondForm(),
                                        "lines": list(approval.purchase_request.lines.all())})

    def post(self, request, token):
        form = RespondForm(request.POST)
        if not form.is_valid():
            try:
                link, approval = services.read_link(token)
            except services.LinkRefused as e:
                return self.render_to_response({"refused": str(e)}, status=410)
            return self.render_to_response({"approval": approval, "approver": link.approver, "form": form},
                                           status=400)
        approve = form.cleaned_data["decision"] == "approve"
        try:
            approval = services.respond(token, approve, form.cleaned_data["comment"].strip())
        except (services.LinkRefused, PermissionDenied) as e:
            return self.render_to_response({"refused": str(e)}, status=410)
        return self.render_to_response({"done": approval, "approved": approval.status == Status.APPROVED})
