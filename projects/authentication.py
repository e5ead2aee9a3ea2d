"""``Authorization: Bearer <key>`` for machines: DRF's authentication class, nothing else.

Making, hashing and finding keys is ``projects.api_keys`` (services import it; this
module is the HTTP layer's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework import authentication, exceptions

from projects.api_keys import ApiKeyRefused, api_key_from_raw
from projects.models import ApiKey

if TYPE_CHECKING:  # imported by DRF's settings while rest_framework.views loads
    from rest_framework.request import Request


class ApiKeyPrincipal:
    """What ``request.user`` is for a machine: authenticated, but nobody."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if not parts or parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <key>'.")
        try:
            api_key = api_key_from_raw(parts[1])
        except ApiKeyRefused as refused:
            raise exceptions.AuthenticationFailed(str(refused)) from None
        request._request.api_key = api_key
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
