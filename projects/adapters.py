from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Self-hosted: people join through invitations unless signups are opened.
        if request.session.get("pending_invitation_token"):
            return True
        return getattr(settings, "HITL_OPEN_SIGNUP", False)
