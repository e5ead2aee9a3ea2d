"""Writes on destinations: create, update, rotate the secret, delete, send a test event.

Every function is atomic, takes the acting user as ``actor`` and records history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hitl import audit, outbox
from hitl.audit import Actor
from hitl.exceptions import DomainError
from projects.models import Delivery, Destination, DestinationKind, Project
from projects.notifications import ssrf
from projects.notifications.catalogue import EVENT_TYPES, TEST
from projects.notifications.events import event_build, site_reverse
from projects.notifications.transports import secret_generate

DELIVER = "projects.deliver"


def _check_event_types(event_types: Sequence[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if not event_types or unknown:
        raise DomainError(
            "Name one or more event types from the catalogue.",
            details={"event_types": unknown or ["required"]},
        )
    return sorted(set(event_types))


def _check_bot_token(kind: str, token: str) -> str:
    """A Slack app's bot token (``xoxb-...``), for Slack destinations only."""
    token = token.strip()
    if token and (kind != DestinationKind.SLACK or not token.startswith("xoxb-")):
        raise DomainError(
            "A bot token belongs to a Slack destination and starts with xoxb-.",
            details={"slack_bot_token": ["a Slack bot token (xoxb-...)"]},
        )
    if any(c.isspace() for c in token):
        raise DomainError("A bot token has no spaces.", details={"slack_bot_token": ["invalid"]})
    return token


def _check_project(project_id: int | None) -> Project | None:
    if project_id is None:
        return None
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        raise DomainError("Unknown project.", details={"project_id": ["unknown project"]})
    return project


def destination_create(
    *,
    actor: Actor,
    name: str,
    kind: str,
    url: str,
    event_types: Sequence[str],
    project_id: int | None = None,
    filter_queue_id: int | None = None,
    filter_score_name: str = "",
    slack_bot_token: str = "",
) -> tuple[Destination, str]:
    """Creates a destination; for a webhook, returns its signing secret (shown once).
    A Slack destination may carry a bot token: people then get their mention and
    assignment messages as direct messages (projects/notifications/personal.py)."""
    if kind not in DestinationKind.values:
        raise DomainError("Unknown kind.", details={"kind": ["unknown"]})
    ssrf.check_url(url, kind=kind)
    event_types = _check_event_types(event_types)
    slack_bot_token = _check_bot_token(kind, slack_bot_token)
    with audit.acting_as(actor), transaction.atomic():
        project = _check_project(project_id)
        secret = secret_generate() if kind == DestinationKind.WEBHOOK else ""
        destination = Destination.objects.create(
            name=name,
            kind=kind,
            url=url.strip(),
            event_types=event_types,
            project=project,
            filter_queue_id=filter_queue_id,
            filter_score_name=filter_score_name,
            secret=secret,
            slack_bot_token=slack_bot_token,
            created_by=actor.user,
        )
    return destination, secret


def destination_update(*, actor: Actor, destination: Destination, **fields: Any) -> Destination:
    """Changes name, URL, events, filters, a Slack bot token (empty: removed) or
    ``enabled``; enabling clears the reason it was disabled and its record of failures."""
    with audit.acting_as(actor), transaction.atomic():
        destination = Destination.objects.select_for_update().get(pk=destination.pk)
        if "url" in fields:
            fields["url"] = fields["url"].strip()
            ssrf.check_url(fields["url"], kind=destination.kind)
        if "event_types" in fields:
            fields["event_types"] = _check_event_types(fields["event_types"])
        if "slack_bot_token" in fields:
            fields["slack_bot_token"] = _check_bot_token(
                destination.kind, fields["slack_bot_token"]
            )
        if "project_id" in fields:
            destination.project = _check_project(fields.pop("project_id"))
        for name, value in fields.items():
            setattr(destination, name, value)
        if fields.get("enabled") is True:
            destination.disabled_reason = ""
            destination.disabled_at = None
            destination.failing_since = None
        elif fields.get("enabled") is False and not destination.disabled_reason:
            destination.disabled_reason = "disabled by a person"
            destination.disabled_at = timezone.now()
        destination.save()
    return destination


def destination_rotate_secret(
    *, actor: Actor, destination: Destination, overlap: timedelta | None = None
) -> tuple[Destination, str]:
    """A new signing secret (returned once). The old one keeps signing beside it for
    ``overlap`` (``HITL_WEBHOOKS_SECRET_OVERLAP``), so receivers can switch without
    dropping a message."""
    overlap = settings.HITL_WEBHOOKS_SECRET_OVERLAP if overlap is None else overlap
    with audit.acting_as(actor), transaction.atomic():
        destination = Destination.objects.select_for_update().get(pk=destination.pk)
        if destination.kind != DestinationKind.WEBHOOK:
            raise DomainError("Only webhooks have a signing secret.", code="no_secret")
        secret = secret_generate()
        destination.previous_secret = destination.secret
        destination.previous_secret_expires_at = timezone.now() + overlap
        destination.secret = secret
        destination.save()
    return destination, secret


def destination_delete(*, actor: Actor, destination: Destination) -> None:
    with audit.acting_as(actor), transaction.atomic():
        destination.delete()


def delivery_enqueue(
    delivery: Delivery,
    *,
    available_at: datetime | None = None,
    reserved: bool = False,
    run_here: bool = False,
) -> None:
    """The outbox message that makes one attempt of ``delivery`` (its current round),
    now or at ``available_at``; ``reserved``: a Slack send slot is already held;
    ``run_here``: the worker that enqueues it may make the attempt itself once its
    transaction commits (the fan-out's first attempt, hitl/outbox.py)."""
    kwargs: dict[str, Any] = {"delivery_id": delivery.pk, "round": delivery.round}
    if reserved:
        kwargs["reserved"] = True
    outbox.enqueue(
        task=DELIVER,
        organization_id=delivery.organization_id,
        kwargs=kwargs,
        available_at=available_at,
        run_here=run_here,
    )


def destination_send_test(*, actor: Actor, destination: Destination) -> Delivery:
    """Sends a ``hitl.test`` event to this destination only (enabled or not); a test is
    attempted once, never retried, and does not count against the destination."""
    with audit.acting_as(actor), transaction.atomic():
        who = getattr(actor.user, "email", "") or "someone"
        event = event_build(
            TEST,
            organization_id=destination.organization_id,
            project_id=destination.project_id,
            payload={
                "summary": f"Test message from hitl to {destination.name!r}, sent by {who}.",
                "url": site_reverse("organization-home", org_slug=destination.organization.slug),
                "destination_id": destination.pk,
            },
        )
        event.save()
        delivery = Delivery.objects.create(event=event, destination=destination)
        delivery_enqueue(delivery)
    return delivery
