"""Finish a pending invitation once the invitee has signed in or signed up."""

from __future__ import annotations

from allauth.account.signals import user_logged_in
from django.contrib.auth.base_user import AbstractBaseUser
from django.dispatch import receiver
from django.http import HttpRequest

from projects.adapters import accept_pending_invitation


@receiver(user_logged_in, dispatch_uid="projects_accept_pending_invitation")
def accept_pending_invitation_on_login(
    sender: object, request: HttpRequest, user: AbstractBaseUser, **kwargs: object
) -> None:
    # Usually done already by ``AccountAdapter.post_login`` (before the landing page is
    # chosen); the token is taken from the session once, so this does nothing then.
    accept_pending_invitation(request, user)
