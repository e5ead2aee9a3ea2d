"""Reads for organizations, memberships, projects, keys and invitations."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet

from projects.models import ApiKey, Invitation, Membership, Organization, Project, Role


def organizations_for_user(user: AbstractBaseUser) -> QuerySet[Organization]:
    """The organizations ``user`` belongs to (a user is the scope here, not a tenant)."""
    return Organization.objects.filter(
        pk__in=Membership.unscoped_across_tenants.filter(user=user).values("organization_id")
    ).order_by("name")


def roles_by_organization(user: AbstractBaseUser) -> dict[int, str]:
    return dict(
        Membership.unscoped_across_tenants.filter(user=user).values_list("organization_id", "role")
    )


def membership_list() -> QuerySet[Membership]:
    return Membership.objects.select_related("user").prefetch_related("projects")


def projects_visible_to(membership: Membership | None) -> QuerySet[Project]:
    projects = Project.objects.all()
    if membership is None or membership.role in (Role.OWNER, Role.ADMIN):
        return projects
    narrowed = membership.projects.values_list("pk", flat=True)
    if narrowed.exists():
        return projects.filter(pk__in=narrowed)
    return projects


def invitation_list() -> QuerySet[Invitation]:
    return Invitation.objects.select_related("invited_by").prefetch_related("projects")


def api_key_list(project: Project) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(project=project)
