"""Bases for web pages under ``/orgs/<org_slug>/``: the same fail-closed rules as the API.

The organization comes from the URL and the signed-in user's membership; anything else
is a 404. The tenant scope covers the whole request, template rendering included.
``ProjectPageView`` adds the project under ``.../projects/<project_slug>/``, admitted by
the one visibility rule (``projects.selectors.membership_sees_project``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.views import View

from hitl import tenancy
from hitl.audit import Actor
from projects.models import ALL_ROLES, Membership, Organization, Project
from projects.selectors import admission, membership_sees_project


class OrganizationPageView(LoginRequiredMixin, View):
    allowed_roles: frozenset[str] = ALL_ROLES
    organization: Organization
    membership: Membership
    # The project the URL names (``project_slug``), read with the membership; None when
    # the URL names none or the organization has none by that slug.
    admitted_project: Project | None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        admitted = admission(request.user, kwargs.get("org_slug"), kwargs.get("project_slug"))
        if admitted is None:
            raise Http404
        membership = admitted.membership
        self.admitted_project = admitted.project
        if membership.role not in self.allowed_roles:
            raise PermissionDenied
        self.membership = membership
        self.organization = membership.organization
        if request.session.get("active_organization_slug") != self.organization.slug:
            # Written only when it changes: an unchanged session is not saved again.
            request.session["active_organization_slug"] = self.organization.slug
        with tenancy.tenant_scope(self.organization.pk):
            self.enter(**kwargs)
            response = super().dispatch(request, *args, **kwargs)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
            return response

    def enter(self, **kwargs: Any) -> None:
        """Resolves what the URL names below the organization, inside the tenant scope and
        before the handler runs; raises ``Http404`` to refuse. Subclasses extend it."""

    @property
    def actor(self) -> Actor:
        return Actor(user=self.request.user, source="web")


class ProjectPageView(OrganizationPageView):
    """A page under ``.../projects/<project_slug>/``: the project is resolved before the
    handler runs; one this member may not see answers 404, the same as a missing one."""

    project: Project

    def enter(self, **kwargs: Any) -> None:
        super().enter(**kwargs)
        project = self.admitted_project  # read with the membership
        if project is None or not membership_sees_project(self.membership, project):
            raise Http404
        self.project = project
