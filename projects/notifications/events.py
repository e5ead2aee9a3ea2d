"""Writing an event: in the caller's transaction, with an outbox message to fan it out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from hitl import outbox
from projects.models import Event
from projects.notifications.catalogue import (
    EVENT_TYPES,
    MAX_PAYLOAD_BYTES,
    PERSONAL_TYPES,
    TEST,
)
from projects.selectors import destinations_subscribed

FAN_OUT = "projects.notify_event"


def site_url(path: str) -> str:
    """An absolute link into the site, for payloads and messages."""
    return f"{settings.SITE_URL}/{path.lstrip('/')}"


def site_reverse(viewname: str, **kwargs: Any) -> str:
    """The absolute link to the route named ``viewname`` (``reverse()`` with ``kwargs``):
    how every event payload and message names a page or an API object, so a link
    follows its route when the route moves."""
    return site_url(reverse(viewname, kwargs=kwargs))


def new_event_uid() -> str:
    return f"msg_{uuid.uuid4().hex}"


def is_subscribed(event_type: str, *, project_id: int | None) -> bool:
    """Whether an enabled destination of the organization in scope receives
    ``event_type`` from this project: one indexed query. Callers whose event costs
    work to build (a count, a lock) ask first. Always true for the types addressed to
    people (mentions, assignments): they hear of them by their own preferences."""
    if event_type in PERSONAL_TYPES:
        return True
    return destinations_subscribed(event_type, project_id=project_id).exists()


def event_build(
    event_type: str,
    *,
    organization_id: int,
    project_id: int | None,
    payload: Mapping[str, Any],
    queue_id: int | None = None,
    score_names: Iterable[str] = (),
) -> Event:
    if event_type not in EVENT_TYPES and event_type != TEST:
        raise ValueError(f"unknown event type {event_type!r} (projects/notifications/catalogue)")
    data = {"organization_id": organization_id, "project_id": project_id, **payload}
    size = len(json.dumps(data, separators=(",", ":"), default=str).encode())
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(f"{event_type} payload is {size} bytes; at most {MAX_PAYLOAD_BYTES}")
    return Event(
        uid=new_event_uid(),
        type=event_type,
        organization_id=organization_id,
        project_id=project_id,
        payload=json.loads(json.dumps(data, default=str)),
        queue_id=queue_id,
        score_names=sorted(set(score_names)),
    )


def event_emit(
    event_type: str,
    *,
    organization_id: int,
    project_id: int | None,
    payload: Mapping[str, Any],
    queue_id: int | None = None,
    score_names: Iterable[str] = (),
) -> Event | None:
    """Records ``event_type`` in the caller's transaction; a worker delivers it to the
    destinations subscribed to it once that transaction commits.

    ``payload`` is JSON, compact (under 20 KB), with a ``summary`` sentence for people
    and a ``url`` into the site. ``queue_id`` and ``score_names`` are what destination
    filters match. Returns None, writing nothing, when no enabled destination of the
    organization subscribes to the type (the common case costs one indexed query) and
    the type is not addressed to people.
    """
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError(
            "event_emit() belongs inside the transaction of its cause"
        )
    event = event_build(
        event_type,
        organization_id=organization_id,
        project_id=project_id,
        payload=payload,
        queue_id=queue_id,
        score_names=score_names,
    )
    if not is_subscribed(event_type, project_id=project_id):
        return None
    event.save()
    outbox.enqueue(task=FAN_OUT, organization_id=organization_id, kwargs={"event_id": event.pk})
    return event
