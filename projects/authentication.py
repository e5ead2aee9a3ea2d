"""``Authorization: Bearer <key>`` for machines.

A key looks like ``hitl_<8 chars>_<40 chars>``. The first part is stored in clear as the
prefix (shown in lists and logs); the whole key is stored only as a SHA-256 digest. Keys
are random and long, so a fast digest is enough and lookups stay cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from django.utils import timezone
from rest_framework import authentication, exceptions

from projects.models import ApiKey

if TYPE_CHECKING:  # imported by DRF's settings while rest_framework.views loads
    from rest_framework.request import Request

KEY_PREFIX_LENGTH = 13  # "hitl_" + 8
LAST_USED_RESOLUTION = timedelta(minutes=1)


def generate_api_key() -> tuple[str, str, str]:
    """Returns (raw key, prefix, hashed secret)."""
    raw = f"hitl_{secrets.token_hex(4)}_{secrets.token_urlsafe(30)}"
    return raw, raw[:KEY_PREFIX_LENGTH], hash_api_key(raw)


def hash_api_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


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


def api_key_from_raw(raw: str) -> ApiKey:
    """Finds the active key for ``raw`` or raises AuthenticationFailed."""
    if not raw.startswith("hitl_") or len(raw) < KEY_PREFIX_LENGTH + 10:
        raise exceptions.AuthenticationFailed("Malformed API key.")
    # Looked up before any tenant is known: the key itself decides the tenant.
    api_key = (
        ApiKey.unscoped_across_tenants.select_related("organization", "project")
        .filter(prefix=raw[:KEY_PREFIX_LENGTH])
        .first()
    )
    if api_key is None or not hmac.compare_digest(api_key.hashed_secret, hash_api_key(raw)):
        raise exceptions.AuthenticationFailed("Invalid API key.")
    if api_key.revoked_at is not None:
        raise exceptions.AuthenticationFailed("This API key has been revoked.")
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        # A plain update on purpose: last use is not an edit an auditor needs in history.
        ApiKey.unscoped_across_tenants.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


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
        api_key = api_key_from_raw(parts[1])
        request._request.api_key = api_key
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
