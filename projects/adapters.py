"""How accounts meet organizations: who may sign up, the invitation accepted on the way
in, and where a person lands after signing in or up."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from hitl import tenancy
from hitl.exceptions import DomainError
from projects import hooks, selectors, services
from projects.models import Invitation, Role

PENDING_INVITATION = "pending_invitation_token"


def accept_pending_invitation(request: HttpRequest, user: AbstractBaseUser) -> None:
    """Finishes the invitation whose link this browser followed, now that ``user`` is
    signed in: joins the organization (and the invitation's queues), makes it the active
    one, and says so; a refusal (another address, a revoked link) is said instead."""
    token = request.session.pop(PENDING_INVITATION, None)
    if not token:
        return
    try:
        membership = services.invitation_accept(user=user, raw_token=token)
    except DomainError as exc:
        messages.error(request, exc.message)
        return
    request.session["active_organization_slug"] = membership.organization.slug
    messages.success(request, joined_message(membership))


def joined_message(membership: Any) -> str:
    """ "You joined <organization>" and the queues the invitation named."""
    queues = getattr(membership, "joined_queues", None) or []
    if not queues:
        return f"You joined {membership.organization.name}."
    return f"You joined {membership.organization.name} and the queues {', '.join(queues)}."


def account_exists(email: str) -> bool:
    """Whether someone has an account under ``email`` (any case)."""
    return get_user_model().objects.filter(email__iexact=email.strip()).exists()


def pending_invitation(request: HttpRequest) -> Invitation | None:
    """The pending invitation whose link this browser followed, if it is still open."""
    token = request.session.get(PENDING_INVITATION)
    if not token:
        return None
    try:
        invitation = services.invitation_by_token(token)
    except DomainError:
        return None
    return invitation if invitation.status == "pending" else None


def work_page_url(request: HttpRequest, user: AbstractBaseUser) -> str | None:
    """My work, for a member of the organization they land in (the active one, else
    their only one) whose role there is reviewer or who has review work there; None
    otherwise (managers, auditors and viewers land on the organization's page)."""
    slugs = list(selectors.organizations_for_user(user).values_list("slug", flat=True))
    active = request.session.get("active_organization_slug")
    slug = active if active in slugs else (slugs[0] if len(slugs) == 1 else None)
    membership = selectors.membership_of(user, slug)
    if membership is None:
        return None
    with tenancy.tenant_scope(membership.organization_id):
        page = hooks.work_page(membership=membership)
    if page is None:
        return None
    if membership.role == Role.REVIEWER or page.has_work:
        return page.url
    return None


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Self-hosted: people join through invitations unless signups are opened.
        if request.session.get(PENDING_INVITATION):
            return True
        return getattr(settings, "HITL_OPEN_SIGNUP", False)

    def post_login(self, request: HttpRequest, user: AbstractBaseUser, **kwargs: Any) -> Any:
        # The invitation is accepted before the landing page is chosen, so an invitee
        # lands where their new membership leads (My work for a reviewer).
        accept_pending_invitation(request, user)
        return super().post_login(request, user, **kwargs)

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        """Reviewers land on My work (one click from reviewing); everyone else on the
        home page. An explicit safe ``next`` is followed before this is asked."""
        return work_page_url(request, request.user) or super().get_login_redirect_url(request)

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        return self.get_login_redirect_url(request)
