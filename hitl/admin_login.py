"""The admin's sign-in form: the site's login limiter (allauth's) guards it too.

allauth counts failed logins per IP and per login key (``site domain:email``) in the
cache. The admin's form authenticates through the same adapter with the same key, so
failures on ``/accounts/login/`` and ``/admin/login/`` add up, a successful login rolls
its own attempt back (as on the site), and once the limit is reached neither form lets
even the right password in until the window has passed.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import get_adapter
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model


def login_key_email(login: str) -> str:
    """The address allauth keys ``login``'s failures on: the email of the account whose
    username it is, else ``login`` itself (what the site's form would key on)."""
    user_model = get_user_model()
    user = (
        user_model._default_manager.filter(**{user_model.USERNAME_FIELD: login})
        .only("email")
        .first()
    )
    email = getattr(user, "email", "") if user is not None else ""
    return email or login


class AdminLoginForm(AdminAuthenticationForm):
    """Staff sign in with their username or email; allauth's adapter authenticates,
    consuming the ``login_failed`` rate limit first (a form error when it is spent)."""

    def clean(self) -> dict[str, Any]:
        login = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if login is not None and password:
            credentials = {
                "username": login,
                "email": login_key_email(login),
                "password": password,
            }
            self.user_cache = get_adapter(self.request).authenticate(self.request, **credentials)
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data
