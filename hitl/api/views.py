"""The base classes every API endpoint inherits.

The organization (and project) come from the URL and the caller's membership or API
key, never from the body. The tenant scope is entered before the handler runs and left
when the response is rendered. Another tenant's organization, project or object answers
404, exactly like a missing one.

Subclasses may not override ``get_queryset`` or ``get_object``: they implement
``safely_get_queryset(queryset)``, which receives a queryset already limited to the
tenant (and project), so forgetting to scope is not possible.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.http import HttpRequest, HttpResponseBase
from rest_framework import exceptions, viewsets
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.serializers import Serializer

from hitl import tenancy
from hitl.audit import Actor
from projects.models import ALL_ROLES, MANAGE_ROLES, ApiKey, Membership, Organization, Project


def validated(request: Request, serializer_class: type[Serializer]) -> dict[str, Any]:
    """The request body as ``serializer_class`` accepts it; a 400 in the error shape, with
    the reason per field, when it does not."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def actor_for(request: Request) -> Actor:
    api_key: ApiKey | None = getattr(request, "api_key", None)
    if api_key is not None:
        return Actor(api_key_id=api_key.pk, api_key_prefix=api_key.prefix, source="api")
    return Actor(user=request.user, source="web")


class OrganizationScopedViewSet(viewsets.GenericViewSet):
    """Base of endpoints under ``/api/orgs/<org_slug>/``."""

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

    _scoping_base: ClassVar[bool] = True
    lookup_value_regex = r"\d+"
    scoped_model: ClassVar[type[models.Model] | None] = None
    allow_api_keys: ClassVar[bool] = False
    read_roles: ClassVar[frozenset[str]] = ALL_ROLES
    write_roles: ClassVar[frozenset[str]] = MANAGE_ROLES
    action_roles: ClassVar[dict[str, frozenset[str]]] = {}
    action_api_key_scopes: ClassVar[dict[str, str]] = {}

    organization: Organization
    membership: Membership | None

    # --- request lifecycle -------------------------------------------------------
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with tenancy.scope_boundary():
            response = super().dispatch(request, *args, **kwargs)
            # Render inside the scope: the browsable renderer may still query.
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            return response

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)  # authenticated
        self.resolve_tenant(request)

    @property
    def actor(self) -> Actor:
        return actor_for(self.request)

    def resolve_tenant(self, request: Request) -> None:
        org_slug = self.kwargs.get("org_slug")
        api_key: ApiKey | None = getattr(request, "api_key", None)
        if api_key is not None:
            if not self.allow_api_keys:
                raise exceptions.PermissionDenied(
                    "This endpoint needs a signed-in user, not an API key."
                )
            if api_key.organization.slug != org_slug:
                raise exceptions.NotFound()
            self.organization = api_key.organization
            self.membership = None
            tenancy.enter_tenant_scope(self.organization.pk)
            self._check_api_key_scope(api_key)
            return
        membership = (
            Membership.unscoped_across_tenants.select_related("organization")
            .filter(organization__slug=org_slug, user=request.user)
            .first()
        )
        if membership is None:
            raise exceptions.NotFound()
        self.organization = membership.organization
        self.membership = membership
        tenancy.enter_tenant_scope(self.organization.pk)
        if membership.role not in self.required_roles():
            raise exceptions.PermissionDenied(
                f"Your role ({membership.role}) does not allow this action."
            )

    def required_roles(self) -> frozenset[str]:
        action = getattr(self, "action", None)
        if action in self.action_roles:
            return self.action_roles[action]
        return self.read_roles if self.request.method in SAFE_METHODS else self.write_roles

    def required_api_key_scope(self) -> str | None:
        """The scope a key needs for this call; None lets any key of the project in."""
        action = getattr(self, "action", None)
        if action in self.action_api_key_scopes:
            return self.action_api_key_scopes[action]
        return "read" if self.request.method in SAFE_METHODS else "write"

    def _check_api_key_scope(self, api_key: ApiKey) -> None:
        scope = self.required_api_key_scope()
        if scope is not None and not api_key.has_scope(scope):
            raise exceptions.PermissionDenied(f"This API key lacks the '{scope}' scope.")

    # --- querysets -----------------------------------------------------------------
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

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["organization"] = getattr(self, "organization", None)
        return context


class ProjectScopedViewSet(OrganizationScopedViewSet):
    """Base of endpoints under ``/api/orgs/<org_slug>/projects/<project_slug>/``.

    Accepts API keys of that project; members narrowed to some projects see only those.
    """

    _scoping_base: ClassVar[bool] = True
    allow_api_keys = True
    project: Project

    def resolve_tenant(self, request: Request) -> None:
        super().resolve_tenant(request)
        project_slug = self.kwargs.get("project_slug")
        api_key: ApiKey | None = getattr(request, "api_key", None)
        if api_key is not None:
            if api_key.project.slug != project_slug:
                raise exceptions.NotFound()
            self.project = api_key.project
            return
        project = Project.objects.filter(slug=project_slug).first()
        if project is None or not membership_sees_project(self.membership, project):
            raise exceptions.NotFound()
        self.project = project

    def narrow_queryset(self, queryset: models.QuerySet) -> models.QuerySet:
        return queryset.filter(project=self.project)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["project"] = getattr(self, "project", None)
        return context


def membership_sees_project(membership: Membership | None, project: Project) -> bool:
    if membership is None:
        return False
    if membership.role in MANAGE_ROLES:
        return True
    narrowed = list(membership.projects.values_list("pk", flat=True))
    return not narrowed or project.pk in narrowed
