"""Reads for organizations, memberships, projects, keys and invitations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Q, QuerySet

from hitl import sql_rows
from projects import hooks
from projects.models import (
    MANAGE_ROLES,
    ApiKey,
    Destination,
    Invitation,
    Membership,
    Organization,
    Project,
)


def organizations_for_user(user: AbstractBaseUser) -> QuerySet[Organization]:
    """The organizations ``user`` belongs to (a user is the scope here, not a tenant)."""
    return Organization.objects.filter(
        pk__in=Membership.unscoped_across_tenants.filter(user=user).values("organization_id")
    ).order_by("name")


def roles_by_organization(user: AbstractBaseUser) -> dict[int, str]:
    return dict(
        Membership.unscoped_across_tenants.filter(user=user).values_list("organization_id", "role")
    )


@dataclass(frozen=True)
class Admission:
    """Who a signed-in person is in the organization a URL names: their membership (its
    organization loaded, and the projects it is narrowed to read with it), and the
    project the URL names, if that organization has one by that slug. Whether the
    membership may see that project is :func:`membership_sees_project`'s to say."""

    membership: Membership
    project: Project | None


# The membership, its organization and narrowing, and the project the URL names.
_ADMISSION_SQL = """
    SELECT {membership}, {organization}, {project},
           ARRAY(SELECT n.project_id FROM projects_membership_projects n
                 WHERE n.membership_id = m.id)
    FROM projects_membership m
    JOIN projects_organization o ON o.id = m.organization_id
    LEFT JOIN projects_project p
        ON p.organization_id = m.organization_id AND p.slug = %(project_slug)s::text
    WHERE o.slug = %(org_slug)s::text AND m.user_id = %(user_id)s::bigint
"""


def admission(
    user: AbstractBaseUser, org_slug: str | None, project_slug: str | None = None
) -> Admission | None:
    """``user``'s membership of the organization the URL names, with the project it
    names (``project_slug``), or None: the one lookup by which pages and the API admit
    a signed-in person. Read before any tenant scope exists, on the primary, in one
    prepared statement: it runs on every request, where the three ORM queries it
    replaces (membership, project, narrowing) were a tenth of a refused request's time."""
    if not org_slug or not user.is_authenticated:
        return None
    with sql_rows.prepared_cursor() as cursor:
        cursor.execute(
            sql_rows.statement(
                _ADMISSION_SQL,
                membership=(Membership, "m"),
                organization=(Organization, "o"),
                project=(Project, "p"),
            ),
            {"org_slug": org_slug, "project_slug": project_slug, "user_id": user.pk},
        )
        row = cursor.fetchone()
    if row is None:
        return None
    membership = sql_rows.instance(Membership, row)
    at = sql_rows.width(Membership)
    membership.organization = sql_rows.instance(Organization, row, at)
    at += sql_rows.width(Organization)
    project = sql_rows.instance(Project, row, at) if row[at] is not None else None
    # As an ORM annotation would be: this instance's narrowing, as read with it.
    membership.narrowed_project_ids = sorted(row[at + sql_rows.width(Project)])
    return Admission(membership, project)


def membership_of(user: AbstractBaseUser, org_slug: str | None) -> Membership | None:
    """``user``'s membership of the organization the URL names (its organization
    loaded), or None (see :func:`admission`)."""
    admitted = admission(user, org_slug)
    return admitted.membership if admitted is not None else None


def membership_list() -> QuerySet[Membership]:
    return Membership.objects.select_related("user").prefetch_related("projects")


def _narrowed_project_ids(membership: Membership) -> list[int] | None:
    """The projects a member is narrowed to; None when they see every project."""
    if membership.role in MANAGE_ROLES:
        return None
    # A membership :func:`admission` read carries its narrowing, read in the same statement.
    narrowed = getattr(membership, "narrowed_project_ids", None)
    if narrowed is None:
        narrowed = list(membership.projects.values_list("pk", flat=True))
    return narrowed or None


def projects_visible_to(membership: Membership | None) -> QuerySet[Project]:
    """The projects of the organization in scope that ``membership`` may see.

    The one rule of project visibility: owners and admins see every project; other roles
    see the projects they are narrowed to, or every project when not narrowed; no
    membership sees none. :func:`membership_sees_project` asks the same rule of one
    project.
    """
    if membership is None:
        return Project.objects.none()
    narrowed = _narrowed_project_ids(membership)
    projects = Project.objects.all()
    return projects if narrowed is None else projects.filter(pk__in=narrowed)


def membership_sees_project(membership: Membership | None, project: Project) -> bool:
    if membership is None or membership.organization_id != project.organization_id:
        return False
    narrowed = _narrowed_project_ids(membership)
    return narrowed is None or project.pk in narrowed


def destinations_subscribed(event_type: str, *, project_id: int | None) -> QuerySet[Destination]:
    """The enabled destinations of the organization in scope that receive ``event_type``
    from this project (those of the whole organization and those of the project; an
    event of no project reaches only the organization's)."""
    destinations = Destination.objects.filter(enabled=True, event_types__contains=[event_type])
    if project_id is None:
        return destinations.filter(project__isnull=True)
    return destinations.filter(Q(project__isnull=True) | Q(project_id=project_id))


def invitation_list() -> QuerySet[Invitation]:
    return Invitation.objects.select_related("invited_by").prefetch_related("projects")


def api_key_list(project: Project) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(project=project)


def queue_choices() -> list[hooks.QueueChoice]:
    """The review queues of the organization in scope (name and project), as review
    provides them (``projects.hooks``); read inside the page's tenant scope."""
    return hooks.queue_choices()


def score_name_choices(*, viewer: Any) -> list[str]:
    """The names of the scores of the organization in scope that ``viewer`` may read, as
    traces provides them (``projects.hooks``): offered, not imposed, where a score name
    is typed (a destination may name a score not posted yet)."""
    return hooks.score_names(viewer=viewer)


def queue_labels() -> dict[int, str]:
    """Each queue's "name · project", by id, for the settings tables."""
    return {q.id: q.label for q in queue_choices()}
