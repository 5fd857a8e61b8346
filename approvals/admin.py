"""Read-only admin pages: requests and approvals change only through the rules
(approvals.services), which keep their history and mail the people concerned."""
from django.contrib import admin

from crm.admin import CRMAdmin, CRMInline

from .models import ApprovalComment, ApprovalRequest, PurchaseLine, PurchaseRequest


class ReadOnlyMixin:
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LineInline(ReadOnlyMixin, CRMInline):
    model = PurchaseLine
    fields = ("item", "quantity", "unit_price")
    readonly_fields = fields


class CommentInline(ReadOnlyMixin, CRMInline):
    model = ApprovalComment
    fields = ("created_at", "author_user", "author_contact", "body")
    readonly_fields = fields


@admin.register(PurchaseRequest)
class PurchaseRequestAdmin(ReadOnlyMixin, CRMAdmin):
    list_display = ("id", "title", "customer", "requester", "total", "currency", "approved", "created_at")
    list_select_related = ("customer", "requester")
    list_filter = ("approved", "currency", "created_at")
    search_fields = ("title",)
    inlines = [LineInline]


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyMixin, CRMAdmin):
    list_display = ("id", "purchase_request", "customer", "requester", "status", "expires_at", "decided_by")
    list_select_related = ("purchase_request", "customer", "requester", "decided_by")
    list_filter = ("status", "expires_at")
    inlines = [CommentInline]
