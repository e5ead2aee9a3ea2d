"""The base classes every API endpoint inherits: who may enter which tenant.

The organization (and project) come from the URL and the caller's membership or API
key, never from the body. The tenant scope is entered before the handler runs and left
when the response is rendered (``hitl.api.views.TenantViewSet``). Another tenant's
organization, project or object answers 404, exactly like a missing one. Which projects
a member sees is decided by :func:`projects.selectors.membership_sees_project`, the one
rule every path asks.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request

from hitl import tenancy
from hitl.api.views import TenantViewSet
from projects.models import ALL_ROLES, MANAGE_ROLES, ApiKey, Membership, Organization, Project
from projects.selectors import admission, membership_sees_project


class OrganizationScopedViewSet(TenantViewSet):
    """Base of endpoints under ``/api/orgs/<org_slug>/``."""

    _scoping_base: ClassVar[bool] = True
    lookup_value_regex = r"\d+"
    allow_api_keys: ClassVar[bool] = False
    read_roles: ClassVar[frozenset[str]] = ALL_ROLES
    write_roles: ClassVar[frozenset[str]] = MANAGE_ROLES
    action_roles: ClassVar[dict[str, frozenset[str]]] = {}
    action_api_key_scopes: ClassVar[dict[str, str]] = {}

    organization: Organization
    membership: Membership | None
    # The project the URL names (``project_slug``), read with the membership; None when
    # the URL names none, the organization has none by that slug, or a key called.
    admitted_project: Project | None = None

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)  # authenticated
        self.resolve_tenant(request)

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
        admitted = admission(request.user, org_slug, self.kwargs.get("project_slug"))
        if admitted is None:
            raise exceptions.NotFound()
        membership = admitted.membership
        self.admitted_project = admitted.project
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
        project = self.admitted_project  # read with the membership
        if project is None or not membership_sees_project(self.membership, project):
            raise exceptions.NotFound()
        self.project = project

    def narrow_queryset(self, queryset: Any) -> Any:
        return queryset.filter(project=self.project)

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["project"] = getattr(self, "project", None)
        return context
