"""Writes for organizations, memberships, invitations, projects and API keys.

Every function is atomic, takes the acting user or key as ``actor`` and records history
(bulk paths included) through :mod:`hitl.audit`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from hitl import audit, outbox, tenancy
from hitl.audit import Actor
from hitl.exceptions import (
    Conflict,
    DomainError,
    Gone,
    NotFound,
    PermissionDenied,
    conflict_on_duplicate,
    conflict_on_protected,
)
from projects import hooks
from projects.api_keys import generate_api_key
from projects.models import (
    REVIEW_ROLES,
    ApiKey,
    ApiKeyScope,
    Invitation,
    Membership,
    Organization,
    Project,
    Role,
)
from projects.notifications import announcements

User = get_user_model()


def _unique_slug(base: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    slug = slugify(base)[:50] or "org"
    candidate, n = slug, 2
    while candidate in taken:
        candidate, n = f"{slug}-{n}", n + 1
    return candidate


# --- organizations -------------------------------------------------------------------


def organization_create(*, actor: Actor, name: str, slug: str = "") -> Organization:
    """Creates an organization with the acting user as its owner."""
    if actor.user is None:
        raise PermissionDenied("Only a signed-in user can create an organization.")
    slug = slugify(slug or name)[:64]
    if not slug:
        raise DomainError("The name must contain letters or digits.", details={"name": ["invalid"]})
    with conflict_on_duplicate(), audit.acting_as(actor), transaction.atomic():
        if Organization.objects.filter(slug=slug).exists():
            raise Conflict(f"The slug '{slug}' is taken.", details={"slug": ["taken"]})
        organization = Organization.objects.create(name=name, slug=slug)
        with tenancy.tenant_scope(organization.pk):
            Membership.objects.create(organization=organization, user=actor.user, role=Role.OWNER)
    return organization


def organization_update(*, actor: Actor, organization: Organization, name: str) -> Organization:
    with audit.acting_as(actor), transaction.atomic():
        organization.name = name
        organization.save()
    return organization


# --- memberships ---------------------------------------------------------------------


def _owner_count() -> int:
    return Membership.objects.filter(role=Role.OWNER).count()


def _lock_owners(acting: Membership | None) -> Membership | None:
    """Serializes every change that can take the owner role away in the organization in
    scope, so the owner count read next is current and two owners demoting each other
    cannot both pass it. Returns the acting membership as it is now; if a change that
    committed meanwhile altered or removed it, the caller's permission was decided on a
    stale role: 409, try again.

    Call it first in the transaction, before locking any membership, so every path takes
    the locks in the same order. ``FOR NO KEY UPDATE`` on the organization row conflicts
    with itself only, not with the key-share locks that inserts of the organization's
    rows take, so ingestion and reviews never wait for it."""
    list(
        Organization.objects.select_for_update(no_key=True)
        .filter(pk=tenancy.current_organization_id())
        .values_list("pk", flat=True)
    )
    if acting is None:
        return None
    current = Membership.objects.filter(pk=acting.pk).first()
    if current is None or current.role != acting.role:
        raise Conflict(
            "Your own role changed while this request was waiting; reload and try again.",
            code="role_changed",
        )
    return current


def _locked_membership(pk: int) -> Membership:
    membership = Membership.objects.select_for_update().filter(pk=pk).first()
    if membership is None:  # removed by a change that committed meanwhile
        raise NotFound("This member was not found.")
    return membership


def _check_role_change(*, acting: Membership | None, target: Membership, new_role: str) -> None:
    touches_owner = Role.OWNER in (target.role, new_role)
    if touches_owner and (acting is None or acting.role != Role.OWNER):
        raise PermissionDenied("Only an owner can grant or change the owner role.")
    if target.role == Role.OWNER and new_role != Role.OWNER and _owner_count() <= 1:
        raise DomainError("An organization needs at least one owner.", code="last_owner")


def membership_update(
    *,
    actor: Actor,
    acting_membership: Membership | None,
    membership: Membership,
    role: str | None = None,
    project_ids: Sequence[int] | None = None,
) -> Membership:
    with audit.acting_as(actor), transaction.atomic():
        acting_membership = _lock_owners(acting_membership)
        membership = _locked_membership(membership.pk)
        if role is not None and role != membership.role:
            _check_role_change(acting=acting_membership, target=membership, new_role=role)
            membership.role = role
            membership.save()
        if project_ids is not None:
            projects = list(Project.objects.filter(pk__in=project_ids))
            if len(projects) != len(set(project_ids)):
                raise DomainError("Unknown project.", details={"project_ids": ["unknown project"]})
            membership.projects.set(projects)
    return membership


def memberships_set_role(
    *, actor: Actor, acting_membership: Membership | None, membership_ids: Sequence[int], role: str
) -> list[Membership]:
    """Changes the role of many members at once, with one history row each."""
    with audit.acting_as(actor), transaction.atomic():
        acting_membership = _lock_owners(acting_membership)
        memberships = list(
            Membership.objects.select_for_update().filter(pk__in=membership_ids).order_by("pk")
        )
        if len(memberships) != len(set(membership_ids)):
            raise NotFound("One or more members were not found.")
        changed = [m for m in memberships if m.role != role]
        for membership in changed:
            _check_role_change(acting=acting_membership, target=membership, new_role=role)
        owners_left = _owner_count() - sum(1 for m in changed if m.role == Role.OWNER)
        if role != Role.OWNER and owners_left < 1:
            raise DomainError("An organization needs at least one owner.", code="last_owner")
        for membership in changed:
            membership.role = role
        audit.bulk_update_with_history(changed, Membership, ["role"])
    return memberships


def membership_remove(
    *, actor: Actor, acting_membership: Membership | None, membership: Membership
) -> None:
    with audit.acting_as(actor), transaction.atomic():
        acting_membership = _lock_owners(acting_membership)
        membership = _locked_membership(membership.pk)
        if membership.role == Role.OWNER:
            _check_role_change(acting=acting_membership, target=membership, new_role=Role.VIEWER)
        membership.delete()


# --- invitations -----------------------------------------------------------------------


def hash_invitation_token(raw: str) -> str:
    """What an invitation stores of its link's token (the link itself is never stored)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def invitation_url(raw_token: str) -> str:
    return f"{settings.SITE_URL}/invitations/{raw_token}/"


INVITATION_EMAIL = "projects.email_invitation"


def _invitation_email_enqueue(invitation: Invitation, raw_token: str) -> None:
    """The email, as an outbox message in the caller's transaction (handler in
    ``projects.tasks``); the token travels as a secret, erased once sent."""
    outbox.enqueue(
        task=INVITATION_EMAIL,
        organization_id=invitation.organization_id,
        kwargs={"invitation_id": invitation.pk},
        secret_kwargs={"token": raw_token},
    )


def _check_invitation_queues(
    *, role: str, project_ids: Sequence[int], queue_ids: Sequence[int]
) -> None:
    """The queues of an invitation are queues of the organization in scope, not
    archived, that the invited role may review in and the project narrowing lets the
    invitee see."""
    if not queue_ids:
        return
    if role not in REVIEW_ROLES:
        raise DomainError(
            f"A {Role(role).label.lower()} does not review: choose no queue, or invite as "
            "a reviewer.",
            details={"queue_ids": ["role cannot review"]},
        )
    queues = {q.id: q for q in hooks.queue_choices()}
    unknown = [pk for pk in queue_ids if pk not in queues or queues[pk].archived]
    if unknown:
        raise DomainError(
            "Choose among this organization's open queues.",
            details={"queue_ids": [f"unknown queue {pk}" for pk in unknown]},
        )
    narrowed = set(project_ids)
    hidden = [queues[pk] for pk in queue_ids if narrowed and queues[pk].project_id not in narrowed]
    if hidden:
        names = ", ".join(q.label for q in hidden)
        raise DomainError(
            f"The project narrowing hides {names}: tick its project too, or no project.",
            details={"queue_ids": ["project not visible"]},
        )


def invitation_queue_names(invitation: Invitation) -> list[str]:
    """The names of the invitation's queues still there, in the organization in scope
    (by project then name), for the email and the accept page."""
    wanted = set(invitation.queue_ids or ())
    if not wanted:
        return []
    return [q.label for q in hooks.queue_choices() if q.id in wanted and not q.archived]


def invitation_create(
    *,
    actor: Actor,
    acting_membership: Membership | None,
    email: str,
    role: str,
    project_ids: Sequence[int] = (),
    queue_ids: Sequence[int] = (),
) -> tuple[Invitation, str]:
    """Invites ``email``; returns the invitation and the raw token (only ever sent by
    email). ``queue_ids`` name the review queues whose pools the invitee joins on
    accepting (``_check_invitation_queues``). The email is an outbox message written
    with the invitation, so a broker outage delays it and loses nothing."""
    email = User.objects.normalize_email(email).strip()
    if role == Role.OWNER and (acting_membership is None or acting_membership.role != Role.OWNER):
        raise PermissionDenied("Only an owner can invite another owner.")
    queue_ids = sorted({int(pk) for pk in queue_ids})
    _check_invitation_queues(role=role, project_ids=project_ids, queue_ids=queue_ids)
    with (
        conflict_on_duplicate(code="already_invited"),
        audit.acting_as(actor),
        transaction.atomic(),
    ):
        if Membership.objects.filter(user__email__iexact=email).exists():
            raise Conflict(
                f"{email} is already a member.",
                code="already_member",
                details={"email": ["taken"]},
            )
        open_invitations = Invitation.objects.select_for_update().filter(
            email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
        )
        for existing in open_invitations:
            if existing.status == "pending":
                raise Conflict(
                    f"{email} already has a pending invitation; resend or revoke it.",
                    code="already_invited",
                    details={"email": ["taken"]},
                )
            # An expired invitation makes way for the new one.
            existing.revoked_at = timezone.now()
            existing.save()
        projects = list(Project.objects.filter(pk__in=project_ids))
        if len(projects) != len(set(project_ids)):
            raise DomainError("Unknown project.", details={"project_ids": ["unknown project"]})
        raw_token = secrets.token_urlsafe(32)
        invitation = Invitation.objects.create(
            email=email,
            role=role,
            hashed_token=hash_invitation_token(raw_token),
            invited_by=actor.user,
            expires_at=timezone.now() + settings.HITL_INVITATION_TTL,
            queue_ids=queue_ids,
        )
        invitation.projects.set(projects)
        _invitation_email_enqueue(invitation, raw_token)
        announcements.announce_member_invited(invitation, actor)
    return invitation, raw_token


def invitations_create(
    *,
    actor: Actor,
    acting_membership: Membership | None,
    emails: Sequence[str],
    role: str,
    project_ids: Sequence[int] = (),
    queue_ids: Sequence[int] = (),
) -> list[Invitation]:
    """Invites several people at once with the same role, projects and queues: all of
    them, or none when any address is refused (a ``DomainError`` naming each refused
    address and its reason)."""
    invitations: list[Invitation] = []
    refused: dict[str, str] = {}
    with transaction.atomic():
        for email in emails:
            try:
                invitation, _token = invitation_create(
                    actor=actor,
                    acting_membership=acting_membership,
                    email=email,
                    role=role,
                    project_ids=project_ids,
                    queue_ids=queue_ids,
                )
            except Conflict as exc:  # this address: a member, or invited already
                refused[email] = exc.message
            else:
                invitations.append(invitation)
        if refused:
            transaction.set_rollback(True)
    if refused:
        raise DomainError(
            "Nobody was invited: remove or correct the addresses below and send again.",
            code="refused_addresses",
            details={"email": list(refused.values())},
        )
    return invitations


def invitation_resend(*, actor: Actor, invitation: Invitation) -> tuple[Invitation, str]:
    """Issues a fresh link (the old one stops working) and a new expiry."""
    with audit.acting_as(actor), transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at or invitation.revoked_at:
            raise Conflict(f"This invitation is {invitation.status}.", code=invitation.status)
        raw_token = secrets.token_urlsafe(32)
        invitation.hashed_token = hash_invitation_token(raw_token)
        invitation.expires_at = timezone.now() + settings.HITL_INVITATION_TTL
        invitation.save()
        _invitation_email_enqueue(invitation, raw_token)
    return invitation, raw_token


def invitation_revoke(*, actor: Actor, invitation: Invitation) -> Invitation:
    with audit.acting_as(actor), transaction.atomic():
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at:
            raise Conflict("This invitation was already accepted.", code="accepted")
        if invitation.revoked_at is None:
            invitation.revoked_at = timezone.now()
            invitation.save()
    return invitation


class InvitationUnusable(Gone):
    """The link is unknown, expired, revoked or used; ``code`` says which."""


def invitation_by_token(raw_token: str) -> Invitation:
    """The invitation behind a link, whatever its state (the link itself is the tenant)."""
    invitation = (
        Invitation.unscoped_across_tenants.select_related("organization")
        .filter(hashed_token=hash_invitation_token(raw_token))
        .first()
    )
    if invitation is None:
        raise InvitationUnusable("This invitation link is not valid.", code="invalid")
    return invitation


def invitation_accept(*, user: AbstractBaseUser, raw_token: str) -> Membership:
    """Joins ``user`` to the invitation's organization with its role, and to the reviewer
    pools of its queues; the membership's ``joined_queues`` names those queues."""
    invitation = invitation_by_token(raw_token)
    actor = Actor(user=user, source="web")
    with (
        tenancy.tenant_scope(invitation.organization_id),
        audit.acting_as(actor),
        transaction.atomic(),
    ):
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        status = invitation.status
        if status == "accepted":
            raise InvitationUnusable("This invitation has already been used.", code="used")
        if status == "revoked":
            raise InvitationUnusable("This invitation was revoked.", code="revoked")
        if status == "expired":
            raise InvitationUnusable("This invitation has expired.", code="expired")
        if invitation.email.lower() != (user.email or "").lower():
            raise PermissionDenied(
                f"This invitation was sent to {invitation.email}; sign in with that address.",
                code="email_mismatch",
            )
        membership = Membership.objects.filter(user=user).first()
        if membership is None:
            membership = Membership.objects.create(user=user, role=invitation.role)
            membership.projects.set(invitation.projects.all())
            announcements.announce_member_joined(membership)
        # The queues named by the invitation: their pools, through review's joiner.
        membership.joined_queues = hooks.queue_pool_join(
            actor=actor, membership=membership, queue_ids=list(invitation.queue_ids or ())
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save()
    return membership


# --- projects ----------------------------------------------------------------------------


def project_create(*, actor: Actor, name: str, slug: str = "", description: str = "") -> Project:
    slug = slugify(slug or name)[:64]
    if not slug:
        raise DomainError("The name must contain letters or digits.", details={"name": ["invalid"]})
    with conflict_on_duplicate(), audit.acting_as(actor), transaction.atomic():
        if Project.objects.filter(slug=slug).exists():
            raise Conflict(f"A project with slug '{slug}' exists.", details={"slug": ["taken"]})
        return Project.objects.create(
            name=name, slug=slug, description=description, created_by=actor.user
        )


def project_update(*, actor: Actor, project: Project, **fields: str) -> Project:
    with audit.acting_as(actor), transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        for name, value in fields.items():
            setattr(project, name, value)
        project.save()
    return project


def project_delete(*, actor: Actor, project: Project) -> None:
    """Deletes the project and what cascades with it; refused (409) while records that
    must be kept (reviews, dataset provenance) point at its traces."""
    with conflict_on_protected(), audit.acting_as(actor), transaction.atomic():
        project.delete()


# --- API keys ------------------------------------------------------------------------------


def api_key_create(
    *, actor: Actor, project: Project, name: str, scopes: Sequence[str]
) -> tuple[ApiKey, str]:
    """Creates a key; the raw key is returned once and never stored."""
    unknown = set(scopes) - set(ApiKeyScope.values)
    if not scopes or unknown:
        raise DomainError(
            f"Scopes must be a non-empty subset of {sorted(ApiKeyScope.values)}.",
            details={"scopes": sorted(unknown) or ["required"]},
        )
    with audit.acting_as(actor):
        for _attempt in range(3):
            raw, prefix, hashed = generate_api_key()
            try:
                with transaction.atomic():
                    api_key = ApiKey.objects.create(
                        project=project,
                        name=name,
                        prefix=prefix,
                        hashed_secret=hashed,
                        scopes=sorted(set(scopes)),
                        created_by=actor.user,
                    )
                    announcements.announce_api_key_created(api_key, actor)
                return api_key, raw
            except IntegrityError:  # prefix collision: draw again
                continue
    raise DomainError("Could not allocate a key; try again.", code="retry")


def api_key_revoke(*, actor: Actor, api_key: ApiKey) -> ApiKey:
    with audit.acting_as(actor), transaction.atomic():
        api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.revoked_by = actor.user
            api_key.save()
            announcements.announce_api_key_revoked(api_key, actor)
    return api_key
