"""Small helpers shared by the review services: the clock, the person check, number
checks and the deterministic sampling draw."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from django.utils import timezone

from hitl.audit import Actor
from hitl.exceptions import PermissionDenied


def _now():
    return timezone.now()


def _require_person(actor: Actor, what: str) -> Any:
    if actor.user is None:
        raise PermissionDenied(f"{what} needs a signed-in person, not an API key.")
    return actor.user


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _sampled(seed: str, rate: float) -> bool:
    """A deterministic draw: the same seed always decides the same way (idempotent)."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return int(digest[:15], 16) / float(16**15) < rate
