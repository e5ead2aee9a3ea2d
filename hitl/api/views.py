"""The mechanism every API endpoint inherits: a tenant scope around the whole request.

The kernel knows how to hold a scope, not who may enter it. ``TenantViewSet`` wraps the
request in a scope boundary, renders inside it, and builds querysets only through the
tenant manager; subclasses may not override ``get_queryset`` or ``get_object``, they
implement ``safely_get_queryset(queryset)``, which receives a queryset already limited to
the tenant, so forgetting to scope is not possible.

Who may enter which organization (memberships, roles, API keys) is decided by the bases
in ``projects.api.bases``, which every endpoint uses.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.http import HttpRequest, HttpResponseBase
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.serializers import Serializer

from hitl import tenancy
from hitl.audit import Actor


def validated(request: Request, serializer_class: type[Serializer]) -> dict[str, Any]:
    """The request body as ``serializer_class`` accepts it; a 400 in the error shape, with
    the reason per field, when it does not."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def actor_for(request: Request) -> Actor:
    """The person or API key behind ``request``, for services and history rows."""
    api_key = getattr(request, "api_key", None)
    if api_key is not None:
        return Actor(api_key_id=api_key.pk, api_key_prefix=api_key.prefix, source="api")
    return Actor(user=request.user, source="web")


class TenantViewSet(viewsets.GenericViewSet):
    """Scope boundary, scoped querysets and the ban on overriding them."""

    _scoping_base: ClassVar[bool] = True
    scoped_model: ClassVar[type[models.Model] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_scoping_base"):
            return
        for forbidden in ("get_queryset", "get_object"):
            if forbidden in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} overrides {forbidden}(); implement "
                    "safely_get_queryset() instead so the tenant filter cannot be skipped"
                )

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with tenancy.scope_boundary():
            response = super().dispatch(request, *args, **kwargs)
            # Render inside the scope: the browsable renderer may still query.
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            return response

    @property
    def actor(self) -> Actor:
        return actor_for(self.request)

    def get_queryset(self) -> models.QuerySet:
        if self.scoped_model is None or not issubclass(self.scoped_model, tenancy.TenantModel):
            raise NotImplementedError(f"{type(self).__name__} must set a tenant scoped_model")
        if getattr(self, "swagger_fake_view", False):
            # Schema generation only needs the model, never rows.
            return self.scoped_model.unscoped_across_tenants.none()
        # The tenant manager filters by the organization in scope (and raises without one).
        queryset = self.scoped_model.objects.all()
        return self.safely_get_queryset(self.narrow_queryset(queryset))

    def narrow_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        return queryset

    def safely_get_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        return queryset
