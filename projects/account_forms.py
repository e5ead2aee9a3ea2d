"""The sign-in and sign-up forms, as they meet an invitation (``ACCOUNT_FORMS``).

A browser that followed an invitation link carries it in its session
(``projects.adapters.PENDING_INVITATION``). Sign-up then creates the account under the
invited address only: the field shows it, cannot be edited, and another address is
refused with the reason. Sign-in, when that address has no account yet, says to sign up
first instead of only "not correct".
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import get_adapter
from allauth.account.forms import LoginForm, SignupForm
from allauth.core import context
from django.core.exceptions import ValidationError

from projects.adapters import account_exists, pending_invitation
from projects.models import Invitation


class InvitedSignupForm(SignupForm):
    """allauth's sign-up, with the invited address fixed when an invitation is pending."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = context.request
        self.invitation: Invitation | None = (
            pending_invitation(request) if request is not None else None
        )
        if self.invitation is not None:
            field = self.fields["email"]
            field.initial = self.invitation.email
            field.widget.attrs.update({"readonly": True, "aria-readonly": "true"})
            field.help_text = (
                f"Your invitation to {self.invitation.organization.name} is for this "
                "address; the account is created under it."
            )

    def clean_email(self) -> str:
        if self.invitation is not None:
            typed = (self.cleaned_data.get("email") or "").strip()
            invited = self.invitation.email
            if typed.lower() != invited.lower():
                # Shown again with the invited address (the field cannot be edited).
                self.data = self.data.copy()
                self.data[self.add_prefix("email")] = invited
                raise ValidationError(
                    f"The invitation is for {invited}: the account is created under that "
                    f"address. To use {typed} instead, ask the person who invited you to "
                    "invite that address.",
                    code="not_invited_address",
                )
        return super().clean_email()


class InvitationAwareLoginForm(LoginForm):
    """allauth's sign-in; with a pending invitation whose address has no account yet,
    a failed sign-in says to sign up first (the page says it before, too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invitation: Invitation | None = (
            pending_invitation(self.request) if self.request is not None else None
        )
        self.invitation_needs_account = bool(
            self.invitation is not None and not account_exists(self.invitation.email)
        )
        # Whether the page may offer "sign up" to someone without an invitation.
        self.signup_open = self.request is not None and get_adapter(
            self.request
        ).is_open_for_signup(self.request)

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        except ValidationError:
            typed = str(self.cleaned_data.get("login") or "").strip().lower()
            if self.invitation_needs_account and typed == self.invitation.email.lower():
                raise ValidationError(
                    f"There is no account for {self.invitation.email} yet: sign up first, "
                    f"then you join {self.invitation.organization.name}.",
                    code="sign_up_first",
                ) from None
            raise
