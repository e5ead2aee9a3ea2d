"""Finish a pending invitation once the invitee has signed in or signed up."""

from __future__ import annotations

from allauth.account.signals import user_logged_in
from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.dispatch import receiver
from django.http import HttpRequest

from hitl.exceptions import DomainError
from projects import services


@receiver(user_logged_in, dispatch_uid="projects_accept_pending_invitation")
def accept_pending_invitation(
    sender: object, request: HttpRequest, user: AbstractBaseUser, **kwargs: object
) -> None:
    token = request.session.pop("pending_invitation_token", None)
    if not token:
        return
    try:
        membership = services.invitation_accept(user=user, raw_token=token)
    except DomainError as exc:
        messages.error(request, exc.message)
        return
    request.session["active_organization_slug"] = membership.organization.slug
    messages.success(request, f"You joined {membership.organization.name}.")
