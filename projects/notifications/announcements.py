"""The events of projects' own services (API keys, invitations, members), each built
and emitted inside the service's transaction by one call."""

from __future__ import annotations

from hitl.audit import Actor
from projects.models import ApiKey, Invitation, Membership
from projects.notifications import catalogue
from projects.notifications.events import event_emit, site_reverse


def _who(actor: Actor | None) -> str:
    user = getattr(actor, "user", None)
    if user is not None and getattr(user, "email", ""):
        return user.email
    if actor is not None and actor.api_key_prefix:
        return f"API key {actor.api_key_prefix}…"
    return "hitl"


def _api_key_payload(api_key: ApiKey) -> dict:
    project = api_key.project
    return {
        "api_key": {
            "id": api_key.pk,
            "name": api_key.name,
            "prefix": api_key.prefix,
            "scopes": list(api_key.scopes),
        },
        "project": {"id": project.pk, "slug": project.slug, "name": project.name},
        "url": site_reverse(
            "api-key-detail",
            org_slug=project.organization.slug,
            project_slug=project.slug,
            pk=api_key.pk,
        ),
    }


def announce_api_key_created(api_key: ApiKey, actor: Actor) -> None:
    payload = _api_key_payload(api_key)
    payload["summary"] = (
        f"{_who(actor)} created the API key {api_key.name!r} ({api_key.prefix}…) in "
        f"{api_key.project.name}."
    )
    event_emit(
        catalogue.API_KEY_CREATED,
        organization_id=api_key.organization_id,
        project_id=api_key.project_id,
        payload=payload,
    )


def announce_api_key_revoked(api_key: ApiKey, actor: Actor) -> None:
    payload = _api_key_payload(api_key)
    payload["summary"] = (
        f"{_who(actor)} revoked the API key {api_key.name!r} ({api_key.prefix}…) in "
        f"{api_key.project.name}."
    )
    event_emit(
        catalogue.API_KEY_REVOKED,
        organization_id=api_key.organization_id,
        project_id=api_key.project_id,
        payload=payload,
    )


def announce_member_invited(invitation: Invitation, actor: Actor) -> None:
    organization = invitation.organization
    event_emit(
        catalogue.MEMBER_INVITED,
        organization_id=invitation.organization_id,
        project_id=None,
        payload={
            "summary": (
                f"{_who(actor)} invited {invitation.email} to {organization.name} as "
                f"{invitation.role}."
            ),
            "invitation": {"id": invitation.pk, "email": invitation.email, "role": invitation.role},
            "url": site_reverse("invitation-detail", org_slug=organization.slug, pk=invitation.pk),
        },
    )


def announce_member_joined(membership: Membership) -> None:
    organization = membership.organization
    email = membership.user.email
    event_emit(
        catalogue.MEMBER_JOINED,
        organization_id=membership.organization_id,
        project_id=None,
        payload={
            "summary": f"{email} joined {organization.name} as {membership.role}.",
            "member": {"id": membership.pk, "email": email, "role": membership.role},
            "url": site_reverse("member-detail", org_slug=organization.slug, pk=membership.pk),
        },
    )
