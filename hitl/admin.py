"""Admin bases: staff see only their organizations' rows; auditors only read.

Superusers (the people who run the installation) see and change everything. Any other
staff user sees the organizations where they may read the admin (the ``projects`` app
says which, through :func:`set_staff_organizations_resolver`), read-only, history
included. Every admin request runs inside the tenant scope of those organizations (see
:mod:`hitl.admin_site`), so whatever a page reads through a tenant manager (foreign-key
choices, list filters, inlines, widgets, history) is limited without per-class code.

Every tenant-owned model registers with :class:`TenantScopedAdmin`; its edit history is
on each object's history page and, with every other model's, in the site's change log
(:mod:`hitl.changelog`). History reads as people, not ids: a change names the
related objects, the acting user or API key and the source, and a JSON answer sheet
(``{"<config id>": answer}``) shows each answer before and after.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db.models import (
    Model,
    Q,
    QuerySet,
)
from django.http import Http404, HttpRequest, HttpResponse
from simple_history.admin import SimpleHistoryAdmin

from hitl.admin_site import admin_organization_ids, set_staff_organizations_resolver
from hitl.history import describe_actor, describe_history
from hitl.tenancy import TenantModel

__all__ = [
    "ReadOnlyForAuditorsMixin",
    "TenantScopedAdmin",
    "admin_organization_ids",
    "register_history",
    "set_staff_organizations_resolver",
]


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A filter on a relation offers what the related model's admin shows this user.

    Tenant-owned targets are limited by the request's scope already; this also limits
    targets that are not tenant-owned but have a scoped admin (organizations)."""

    def field_choices(self, field, request, model_admin):
        related_admin = model_admin.admin_site._registry.get(field.remote_field.model)
        if not isinstance(related_admin, ReadOnlyForAuditorsMixin):
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        visible = related_admin.get_queryset(request).values("pk")
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to=Q(pk__in=visible)
        )


# Every admin, present and future, filters relations this way.
admin.FieldListFilter.register(
    lambda field: bool(field.remote_field), ScopedRelatedFieldListFilter, take_priority=True
)


class ReadOnlyForAuditorsMixin:
    """View for scoped staff; add, change and delete for superusers only. An object
    outside the user's organizations answers 404, exactly like a missing one."""

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

    def get_readonly_fields(self, request, obj=None):
        if self.has_change_permission(request, obj):
            return super().get_readonly_fields(request, obj)
        # Read-only users get text, never a form: a select of a foreign key would list
        # rows no scope limits (users). Django does this on the change page; this covers
        # every other form view too (a historical version's page).
        excluded = set(self.get_exclude(request, obj) or ())
        opts = self.model._meta
        return [
            f.name
            for f in (*opts.fields, *opts.many_to_many)
            if f.editable and not f.auto_created and f.name not in excluded
        ]

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django redirects to the index with "doesn't exist"; an outsider gets a plain 404.
        raise Http404

    def delete_view(self, request, object_id, extra_context=None):
        # Django checks the delete permission before existence: look first, so another
        # organization's object answers 404 here too.
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404
        return super().delete_view(request, object_id, extra_context)


# --- history that reads as people --------------------------------------------------


class HistoryDescriptionMixin:
    """Hooks shared by the per-object history page and the change log."""

    def history_key_labels(self, field_name: str, keys: set[str]) -> dict[str, str]:
        """Names for the keys of a JSON dict field in history ({"12": "accuracy"}).
        Override where the keys are ids (an annotation's answers by config id)."""
        return {}

    @admin.display(description="by")
    def actor(self, record: Any) -> str:
        return describe_actor(record)


class TenantScopedAdmin(HistoryDescriptionMixin, ReadOnlyForAuditorsMixin, SimpleHistoryAdmin):
    """Admin of a tenant-owned model, with its per-object edit history."""

    history_list_display = ["actor"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The default manager reads inside the request's admin scope; the explicit
        # filter is a second lock on the same door.
        return self.scope_queryset(request, super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        # A tenant-owned row takes its organization from the product's services (the
        # column is not editable): the admin reads and corrects, it does not create.
        if issubclass(self.model, TenantModel):
            return False
        return super().has_add_permission(request, *args)

    @property
    def keeps_edit_history(self) -> bool:
        """Whether the model records its edits (``hitl.audit.history()``)."""
        return hasattr(self.model._meta, "simple_history_manager_attribute")

    def _guard_history(self, request: HttpRequest, object_id: str) -> None:
        if not self.keeps_edit_history:
            raise Http404
        # An id that is no id of the model (``abc``, ``1/change``) is not found, as the
        # admin's own change page says for it.
        pk = self.model._meta.pk
        try:
            object_id = pk.to_python(object_id)
        except (ValidationError, ValueError) as exc:
            raise Http404 from exc
        # The object may be deleted: judge by its last historical row.
        history = self.model.history.filter(**{pk.attname: object_id})
        latest = history.order_by("-history_date").first()
        if latest is None or not self.has_view_permission(request, latest):
            raise Http404

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        if not self.keeps_edit_history:
            # No edit history (traces, spans, leases...): Django's admin log, if any.
            return admin.ModelAdmin.history_view(self, request, object_id, extra_context)
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
        try:  # a version that is no version id is not found
            self.model.history.model._meta.pk.to_python(version_id)
        except (ValidationError, ValueError) as exc:
            raise Http404 from exc
        return super().history_form_view(request, object_id, version_id, extra_context)

    def set_history_delta_changes(self, request, historical_records, foreign_keys_are_objs=True):
        records = list(historical_records)
        described = describe_history(self, records)
        for record in records:
            record.history_delta_changes = [
                {"field": line.field, "old": "—" if line.old is None else line.old, "new": line.new}
                for line in described.get(record.history_id, [])
            ]


def register_history(model: type[Model], organization_field: str = "organization_id") -> None:
    """Declares that ``model`` keeps an edit history the admin shows: its changes are
    listed, with every other model's, in the site's change log (``admin:changelog``,
    :mod:`hitl.changelog`), and per object on the model admin's history page. No
    "Historical ..." admin is registered: the change log replaces them. Raises if the
    model keeps no history or its rows name no organization."""
    if not hasattr(model._meta, "simple_history_manager_attribute"):
        raise ValueError(f"{model._meta.label} keeps no edit history (hitl.audit.history())")
    names = {f.attname for f in model._meta.concrete_fields}
    if organization_field not in names:
        raise ValueError(f"{model._meta.label} has no {organization_field}")
