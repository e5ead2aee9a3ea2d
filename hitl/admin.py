"""Admin bases: staff see only their organizations' rows; auditors only read.

Superusers (the people who run the installation) see and change everything. Any other
staff user sees the organizations where they hold the owner, admin or auditor role,
read-only, history included. Every tenant-owned model registers with
:class:`TenantScopedAdmin`, and its edit history with :func:`register_history`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from simple_history.admin import SimpleHistoryAdmin

admin.site.site_header = "hitl administration"
admin.site.site_title = "hitl admin"
admin.site.index_title = "Organizations, projects, reviews and their history"


def admin_organization_ids(request: HttpRequest) -> set[int] | None:
    """The organizations this staff user may read; None means all (superuser)."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return set()
    if user.is_superuser:
        return None
    cached = getattr(request, "_hitl_admin_org_ids", None)
    if cached is None:
        from projects.models import ADMIN_SITE_ROLES, Membership

        cached = set(
            Membership.unscoped_across_tenants.filter(
                user=user, role__in=ADMIN_SITE_ROLES
            ).values_list("organization_id", flat=True)
        )
        request._hitl_admin_org_ids = cached
    return cached


class ReadOnlyForAuditorsMixin:
    """View for scoped staff; add, change and delete for superusers only."""

    organization_field = "organization_id"

    def _organization_of(self, obj: Model) -> int | None:
        return getattr(obj, self.organization_field, None)

    def has_module_permission(self, request: HttpRequest) -> bool:
        allowed = admin_organization_ids(request)
        return allowed is None or bool(allowed)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        allowed = admin_organization_ids(request)
        if allowed is None:
            return True
        if not allowed:
            return False
        return obj is None or self._organization_of(obj) in allowed

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def scope_queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        allowed = admin_organization_ids(request)
        if allowed is None:
            return queryset
        return queryset.filter(**{f"{self.organization_field}__in": allowed})


class TenantScopedAdmin(ReadOnlyForAuditorsMixin, SimpleHistoryAdmin):
    """Admin of a tenant-owned model, with its per-object edit history."""

    history_list_display = ["history_source", "history_api_key_prefix"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        manager = getattr(self.model, "unscoped_across_tenants", self.model._base_manager)
        return self.scope_queryset(request, manager.all())

    def _guard_history(self, request: HttpRequest, object_id: str) -> None:
        # The object may be deleted: judge by its last historical row.
        history = self.model.history.filter(**{self.model._meta.pk.attname: object_id})
        latest = history.order_by("-history_date").first()
        if latest is None or not self.has_view_permission(request, latest):
            raise Http404

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        self._guard_history(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(
        self,
        request: HttpRequest,
        object_id: str,
        version_id: str,
        extra_context: dict | None = None,
    ) -> HttpResponse:
        self._guard_history(request, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)


class HistoryBrowserAdmin(ReadOnlyForAuditorsMixin, admin.ModelAdmin):
    """Every change to one model, newest first, for audits across objects."""

    list_display = ["history_date", "history_type", "object_label", "changed_fields",
                    "history_user", "history_api_key_prefix", "history_source"]  # fmt: skip
    list_filter = ["history_type", "history_source", "history_date"]
    date_hierarchy = "history_date"
    list_select_related = ["history_user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scope_queryset(request, super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @admin.display(description="object")
    def object_label(self, record: Any) -> str:
        return f"{record.instance_type.__name__} #{record.pk_value}"

    @admin.display(description="changed")
    def changed_fields(self, record: Any) -> str:
        if record.history_type != "~":
            return {"+": "created", "-": "deleted"}.get(record.history_type, "")
        previous = record.prev_record
        if previous is None:
            return ""
        delta = record.diff_against(previous)
        return ", ".join(
            f"{change.field}: {change.old!r} → {change.new!r}" for change in delta.changes
        )


def register_history(model: type[Model], organization_field: str = "organization_id") -> None:
    """Registers the history browser of ``model`` (its HistoricalX model)."""
    historical = model.history.model
    pk_field = model._meta.pk.attname
    search = ["history_user__email", "history_api_key_prefix", "history_change_reason"]
    admin_class = type(
        f"{model.__name__}HistoryAdmin",
        (HistoryBrowserAdmin,),
        {
            "organization_field": organization_field,
            "search_fields": search,
            "pk_value": None,
        },
    )
    historical.pk_value = property(lambda record: getattr(record, pk_field))
    admin.site.register(historical, admin_class)
