"""Small helpers shared by the review services: the clock, the person check, number
checks, the deterministic sampling draw and the manager check."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from typing import Any

from django.utils import timezone

from hitl.audit import Actor
from hitl.exceptions import PermissionDenied
from projects.models import MANAGE_ROLES, Membership


def time_now() -> datetime:
    return timezone.now()


def require_person(actor: Actor, what: str) -> Any:
    if actor.user is None:
        raise PermissionDenied(f"{what} needs a signed-in person, not an API key.")
    return actor.user


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def sampled_in(seed: str, rate: float) -> bool:
    """A deterministic draw: the same seed always decides the same way (idempotent)."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return int(digest[:15], 16) / float(16**15) < rate


def require_manager(actor: Actor, organization_id: int, what: str) -> Any:
    """The acting person, if they are an owner or admin of the organization (read from
    their membership, not from the caller), else ``PermissionDenied``."""
    user = require_person(actor, what)
    membership = (
        Membership.objects.filter(organization_id=organization_id, user_id=user.pk)
        .only("role")
        .first()
    )
    if membership is None or membership.role not in MANAGE_ROLES:
        raise PermissionDenied(
            f"{what} is for the organization's owners and admins.", code="not_a_manager"
        )
    return user


def human_score_build(
    item: Any, *, author: Any, now: datetime, metadata: dict[str, Any], **fields: Any
) -> Any:
    """A reviewer's answer from a queue item as a human score, not yet saved (the
    caller saves a submit's scores together with ``hitl.audit.insert_recorded``, which
    records their history as for every score): the item's organization and project,
    the queue as its source, and ``metadata`` naming the queue and the item beside what
    the caller adds. ``fields``: the target (``trace_id``, ``span_id``, ``thread_id``),
    name, data type, value..."""
    from traces.models import Score

    return Score(
        organization_id=item.organization_id,
        project_id=item.project_id,
        source="human",
        source_name=f"review queue {item.queue_id}",
        author=author,
        metadata={**metadata, "queue_id": item.queue_id, "item_id": item.pk},
        created_at=now,
        updated_at=now,
        **fields,
    )
