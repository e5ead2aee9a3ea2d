"""API keys: how one is made, stored and found again; no HTTP here.

A key looks like ``hitl_<8 chars>_<40 chars>``. The first part is stored in clear as the
prefix (shown in lists and logs); the whole key is stored only as a SHA-256 digest. Keys
are random and long, so a fast digest is enough and lookups stay cheap. The services make
keys with ``generate_api_key``; the request layers (DRF's ``ApiKeyAuthentication``, the
OTLP endpoint) find the caller's with ``api_key_from_raw`` and answer its refusal as 401.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.utils import timezone

from projects.models import ApiKey

KEY_PREFIX_LENGTH = 13  # "hitl_" + 8
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyRefused(Exception):
    """The raw key names no active key; ``str()`` says why, for the caller."""


def generate_api_key() -> tuple[str, str, str]:
    """Returns (raw key, prefix, hashed secret)."""
    raw = f"hitl_{secrets.token_hex(4)}_{secrets.token_urlsafe(30)}"
    return raw, raw[:KEY_PREFIX_LENGTH], hash_api_key(raw)


def hash_api_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_from_raw(raw: str) -> ApiKey:
    """Finds the active key for ``raw`` and notes its last use, or raises ApiKeyRefused."""
    if not raw.startswith("hitl_") or len(raw) < KEY_PREFIX_LENGTH + 10:
        raise ApiKeyRefused("Malformed API key.")
    # Looked up before any tenant is known: the key itself decides the tenant.
    api_key = (
        ApiKey.unscoped_across_tenants.select_related("organization", "project")
        .filter(prefix=raw[:KEY_PREFIX_LENGTH])
        .first()
    )
    if api_key is None or not hmac.compare_digest(api_key.hashed_secret, hash_api_key(raw)):
        raise ApiKeyRefused("Invalid API key.")
    if api_key.revoked_at is not None:
        raise ApiKeyRefused("This API key has been revoked.")
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        # A plain update on purpose: last use is not an edit an auditor needs in history.
        ApiKey.unscoped_across_tenants.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
