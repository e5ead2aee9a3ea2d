"""The outbox in the admin: read-only, for superusers (the people running the site).

Messages are operational records, not an organization's data: staff auditors do not see
them. Every message carries its organization, which the list filters by.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from hitl.models import OutboxMessage


def _superuser(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_superuser)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "task",
        "organization",
        "state",
        "attempts",
        "created_at",
        "published_at",
        "done_at",
    )
    list_filter = ("state", "task", "organization")
    search_fields = ("task", "last_error")
    date_hierarchy = "created_at"
    # The secret arguments (an invitation token) are never shown.
    fields = (
        "task",
        "organization",
        "kwargs",
        "state",
        "attempts",
        "created_at",
        "available_at",
        "published_at",
        "claimed_at",
        "done_at",
        "last_error",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        if not _superuser(request):
            return OutboxMessage.unscoped_across_tenants.none()
        # Superusers read every organization's messages: the loudly named manager.
        return OutboxMessage.unscoped_across_tenants.select_related("organization")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _superuser(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return _superuser(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
