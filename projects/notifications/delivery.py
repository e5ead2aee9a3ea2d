"""Delivering events: the fan-out to destinations, one attempt of a delivery, retries,
disabling a destination, redelivery.

Both steps run as outbox handlers (``projects/tasks.py``), so each runs once per
message, inside the message's tenant scope and transaction: the attempt rows, the
delivery's new state and the next attempt's message commit together.

Idempotency is per (event, destination): a ``Delivery`` row is unique on the pair, and
an attempt first locks it and does nothing if it has succeeded or given up, or if the
message belongs to an older round (before a "redeliver"). A message delivered twice by
the broker therefore sends once. A worker killed between the request and the commit
leaves the message unfinished and its row unlocked; the relay publishes it again on its
next run (``hitl/outbox.py``) and the receiver gets the same ``webhook-id`` twice,
seconds apart: at least once, never lost. A slow receiver with a live worker keeps the
row locked and is never sent the event twice.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hitl import audit, outbox
from hitl.audit import Actor
from hitl.exceptions import Conflict
from projects.models import Delivery, DeliveryAttempt, DeliveryState, Destination, Event
from projects.notifications.catalogue import TEST
from projects.notifications.destinations import delivery_enqueue
from projects.notifications.personal import personal_fan_out
from projects.notifications.transports import TransportError, slack_rate_limiter, transport_for
from projects.selectors import destinations_subscribed

logger = logging.getLogger(__name__)

DESTINATION_DISABLED_EMAIL = "projects.email_destination_disabled"

# Waits after each failed attempt (then jittered by ±20 %): the Standard Webhooks
# schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), stretched by two daily attempts
# to about three days in all. Ten attempts at most.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=24),
    timedelta(hours=24),
)
MAX_RETRY_AFTER = timedelta(hours=24)


def _matches(destination: Destination, event: Event) -> bool:
    if destination.filter_queue_id is not None and event.queue_id != destination.filter_queue_id:
        return False
    return not (
        destination.filter_score_name and destination.filter_score_name not in event.score_names
    )


def event_fan_out(*, event_id: int) -> int:
    """One delivery (and its first attempt's message) per destination subscribed to the
    event; returns how many were created. Rerunning creates none twice."""
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return 0
    destinations = destinations_subscribed(event.type, project_id=event.project_id)
    existing = set(Delivery.objects.filter(event=event).values_list("destination_id", flat=True))
    created = 0
    for destination in destinations.order_by("id"):
        if destination.pk in existing or not _matches(destination, event):
            continue
        delivery = Delivery.objects.create(event=event, destination=destination)
        # The worker fanning out makes one first attempt itself, after its commit; the
        # others are published to the broker at once (hitl/outbox.py).
        delivery_enqueue(delivery, run_here=True)
        created += 1
    # Messages to the people it addresses, by their preferences (once per event).
    personal_fan_out(event)
    return created


def _next_delay(attempt: int, retry_after: float | None) -> timedelta | None:
    """How long before the next attempt after ``attempt`` failed; None: give up."""
    if attempt > len(RETRY_SCHEDULE):
        return None
    if retry_after is not None:
        return min(timedelta(seconds=max(1.0, retry_after)), MAX_RETRY_AFTER)
    return RETRY_SCHEDULE[attempt - 1] * random.uniform(0.8, 1.2)


def _disable(destination: Destination, reason: str) -> None:
    """Disables the destination (with history) and tells its owner, once."""
    destination = Destination.objects.select_for_update().get(pk=destination.pk)
    if not destination.enabled:
        return
    destination.enabled = False
    destination.disabled_reason = reason[:300]
    destination.disabled_at = timezone.now()
    with audit.acting_as(Actor.system()):
        destination.save()
    outbox.enqueue(
        task=DESTINATION_DISABLED_EMAIL,
        organization_id=destination.organization_id,
        kwargs={"destination_id": destination.pk},
    )
    logger.warning("destination %s disabled: %s", destination.pk, reason)


def _record_failure(destination: Destination, error: TransportError) -> None:
    """Marks the destination failing (since now, if it was not); disables it on a 410
    or after a day of failures."""
    if error.disable:
        _disable(destination, f"{error.message}; disabled")
        return
    now = timezone.now()
    if destination.failing_since is None:
        # failing_since is not in history (it changes with every outage).
        Destination.objects.filter(pk=destination.pk, failing_since__isnull=True).update(
            failing_since=now
        )
    elif now - destination.failing_since >= settings.HITL_WEBHOOKS_DISABLE_AFTER:
        since = destination.failing_since.strftime("%Y-%m-%d %H:%M UTC")
        _disable(destination, f"failing since {since} (last: {error.message})")


def _slack_throttle(delivery: Delivery, wait: float) -> bool:
    """Schedules the attempt ``wait`` seconds from now, its slot held; False."""
    delivery.next_attempt_at = timezone.now() + timedelta(seconds=wait)
    delivery.save()
    delivery_enqueue(delivery, available_at=delivery.next_attempt_at, reserved=True)
    return False


def _slack_slot(delivery: Delivery, *, reserved: bool) -> bool:
    """Whether this attempt may send to its Slack webhook now (waiting a moment if the
    slot is that close); if not, the attempt is scheduled for a later slot.

    A slot is reserved when the message is scheduled (spreading a burst over time) and
    checked again right before the request (:meth:`SlackRateLimiter.admit`): a worker
    running late messages side by side sends them one slot apart, never back to back.
    A late message that finds its slot taken reserves a new one."""
    key = str(delivery.destination_id)
    max_sleep = settings.HITL_SLACK_MAX_SLEEP
    if not reserved:
        wait = slack_rate_limiter.reserve(key)
        if wait > max_sleep:
            return _slack_throttle(delivery, wait)
        if wait > 0:
            time.sleep(wait)
    deadline = time.monotonic() + max_sleep
    while True:
        wait = slack_rate_limiter.admit(key)
        if wait <= 0:
            return True
        if time.monotonic() + wait > deadline:
            return _slack_throttle(delivery, max(wait, slack_rate_limiter.reserve(key)))
        time.sleep(wait)


def delivery_attempt(*, delivery_id: int, round: int, reserved: bool = False) -> str:
    """Makes one attempt of a delivery and records it; schedules the next one if the
    failure is worth retrying. Returns what happened."""
    delivery = (
        Delivery.objects.select_for_update(of=("self",))
        .select_related("event", "destination")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        return "missing"
    if delivery.round != round or delivery.state in (
        DeliveryState.SUCCEEDED,
        DeliveryState.FAILED,
    ):
        return "skipped"
    destination, event = delivery.destination, delivery.event
    is_test = event.type == TEST
    now = timezone.now()
    if not destination.enabled and not is_test:
        delivery.state = DeliveryState.FAILED
        delivery.last_error = f"destination disabled: {destination.disabled_reason}"[:500]
        delivery.completed_at = now
        delivery.save()
        return "disabled"
    if destination.kind == "slack" and not _slack_slot(delivery, reserved=reserved):
        return "throttled"

    number = delivery.attempts + 1
    attempt = DeliveryAttempt(delivery=delivery, destination=destination, number=number)
    error: TransportError | None = None
    try:
        result = transport_for(destination).send(event)
    except TransportError as exc:
        error = exc
        attempt.status_code = exc.status_code
        attempt.latency_ms = exc.latency_ms
        attempt.response_excerpt = exc.excerpt
        attempt.error = exc.message[:500]
    else:
        attempt.status_code = result.status_code
        attempt.latency_ms = result.latency_ms
        attempt.response_excerpt = result.excerpt
        attempt.succeeded = True
    attempt.save()

    delivery.attempts = number
    delivery.last_status_code = attempt.status_code
    delivery.last_error = attempt.error
    delivery.next_attempt_at = None
    now = timezone.now()
    if error is None:
        delivery.state = DeliveryState.SUCCEEDED
        delivery.completed_at = now
        delivery.save()
        if destination.failing_since is not None and not is_test:
            Destination.objects.filter(pk=destination.pk).update(failing_since=None)
        return "succeeded"

    delay = None if (is_test or not error.retryable) else _next_delay(number, error.retry_after)
    if delay is None:
        delivery.state = DeliveryState.FAILED
        delivery.completed_at = now
    else:
        delivery.state = DeliveryState.RETRYING
        delivery.next_attempt_at = now + delay
    delivery.save()
    if not is_test:
        _record_failure(destination, error)
    elif error.disable:
        _disable(destination, f"{error.message}; disabled")
    if delivery.state == DeliveryState.RETRYING:
        enabled = Destination.objects.filter(pk=destination.pk, enabled=True).exists()
        if enabled:
            delivery_enqueue(delivery, available_at=delivery.next_attempt_at)
        else:
            delivery.state = DeliveryState.FAILED
            delivery.completed_at = now
            delivery.next_attempt_at = None
            delivery.save()
    return "retrying" if delivery.state == DeliveryState.RETRYING else "failed"


def delivery_redeliver(*, actor: Actor, delivery: Delivery) -> Delivery:
    """Sends the event to the destination again, whatever happened before, as a new
    round: an attempt still scheduled for the old round does nothing."""
    with audit.acting_as(actor), transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",))
            .select_related("destination", "event")
            .get(pk=delivery.pk)
        )
        if not delivery.destination.enabled and delivery.event.type != TEST:
            raise Conflict(
                "This destination is disabled; enable it before redelivering.",
                code="destination_disabled",
            )
        delivery.round += 1
        delivery.state = DeliveryState.PENDING
        delivery.next_attempt_at = None
        delivery.completed_at = None
        delivery.save()
        delivery_enqueue(delivery)
    return delivery
