"""Messages to one person: a comment mentions them, or items were assigned to them.

Each person chooses, per organization (:class:`~projects.models.NotificationPreference`),
how they hear of each: email (the default), a Slack direct message, or not at all. A
direct message needs two things: the person's Slack member id, and a Slack destination
of the organization that has a bot token (``chat.postMessage``). An incoming webhook
posts to one channel only and cannot write to a person: without a bot token, or without
a member id, the message goes by email instead (the preferences page says so).

The event's fan-out (:func:`personal_fan_out`, inside the fan-out's outbox message)
writes one outbox message per addressed member whose choice is not "off"; the worker
running it (:func:`person_notify`) reads the choice again and sends. The outbox runs each
message once to completion: one email or one direct message per person and event (at
least once if a worker dies between sending and committing, never lost).
"""

from __future__ import annotations

import logging
import re
import smtplib

from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from hitl import audit, outbox
from hitl.audit import Actor
from hitl.exceptions import DomainError
from projects.models import (
    Destination,
    DestinationKind,
    Event,
    Membership,
    NotificationPreference,
    PersonalChannel,
)
from projects.notifications import catalogue
from projects.notifications.transports import TransportError, slack_direct_message

logger = logging.getLogger(__name__)

PERSON_NOTIFY = "projects.notify_person"
# Which preference field decides each personal event type.
PREFERENCE_FIELD = {
    catalogue.COMMENT_MENTIONED: "mentions",
    catalogue.ITEM_ASSIGNED: "assignments",
}
SLACK_MEMBER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")


class PersonalSendRetry(Exception):
    """A direct message that failed for now (timeout, 429, 5xx): try again later."""


# SMTP and network failures, and a direct message failing for now, are retried.
RETRY_ON = (smtplib.SMTPException, ConnectionError, TimeoutError, PersonalSendRetry)


# --- reads -----------------------------------------------------------------------------------


def preference_for(user_id: int) -> NotificationPreference:
    """The person's preferences in the organization in scope (the defaults, unsaved, if
    they never chose)."""
    preference = NotificationPreference.objects.filter(user_id=user_id).first()
    return preference or NotificationPreference(user_id=user_id)


def slack_bot_destination() -> Destination | None:
    """The enabled Slack destination of the organization in scope whose bot sends direct
    messages (the oldest, if several have a token)."""
    return (
        Destination.objects.filter(kind=DestinationKind.SLACK, enabled=True)
        .exclude(slack_bot_token="")
        .order_by("id")
        .first()
    )


def addressed_user_ids(event: Event) -> list[int]:
    """Who a personal event is about: the assignee, or the people mentioned."""
    payload = event.payload
    if event.type == catalogue.ITEM_ASSIGNED:
        ids = [(payload.get("assignee") or {}).get("id")]
    elif event.type == catalogue.COMMENT_MENTIONED:
        ids = [person.get("id") for person in payload.get("mentioned") or []]
    else:
        return []
    return sorted({int(pk) for pk in ids if isinstance(pk, int)})


# --- writes ----------------------------------------------------------------------------------


def preference_set(
    *,
    actor: Actor,
    mentions: str | None = None,
    assignments: str | None = None,
    slack_member_id: str | None = None,
) -> NotificationPreference:
    """Sets the acting person's own preferences in the organization in scope (they must
    be a member of it); fields left None keep their value."""
    user = actor.user
    if user is None or not Membership.objects.filter(user_id=user.pk).exists():
        raise DomainError("Only members of the organization have preferences here.")
    errors: dict[str, list[str]] = {}
    for name, value in (("mentions", mentions), ("assignments", assignments)):
        if value is not None and value not in PersonalChannel.values:
            errors[name] = [f"one of {', '.join(PersonalChannel.values)}"]
    if slack_member_id is not None:
        slack_member_id = slack_member_id.strip().upper()
        if slack_member_id and not SLACK_MEMBER_ID.match(slack_member_id):
            errors["slack_member_id"] = ["a Slack member id looks like U0123ABCD"]
    if errors:
        raise DomainError("Some preferences are not valid.", details=errors)
    with audit.acting_as(actor), transaction.atomic():
        preference = (
            NotificationPreference.objects.select_for_update().filter(user_id=user.pk).first()
        )
        if preference is None:
            preference = NotificationPreference(user_id=user.pk)
        if mentions is not None:
            preference.mentions = mentions
        if assignments is not None:
            preference.assignments = assignments
        if slack_member_id is not None:
            preference.slack_member_id = slack_member_id
        preference.updated_at = timezone.now()
        preference.save()
    return preference


def personal_fan_out(event: Event) -> int:
    """One outbox message per member the event addresses whose choice is not "off";
    returns how many. Runs inside the fan-out's outbox message; a rerun writes none twice."""
    field = PREFERENCE_FIELD.get(event.type)
    user_ids = addressed_user_ids(event)
    if field is None or not user_ids:
        return 0
    # A second fan-out of the same event (a duplicate message) writes nothing again.
    marked = Event.objects.filter(pk=event.pk, people_notified_at__isnull=True).update(
        people_notified_at=timezone.now()
    )
    if not marked:
        return 0
    members = set(Membership.objects.filter(user_id__in=user_ids).values_list("user_id", flat=True))
    off = set(
        NotificationPreference.objects.filter(
            user_id__in=user_ids, **{field: PersonalChannel.OFF}
        ).values_list("user_id", flat=True)
    )
    sent = 0
    for user_id in user_ids:
        if user_id in members and user_id not in off:
            outbox.enqueue(
                task=PERSON_NOTIFY,
                organization_id=event.organization_id,
                kwargs={"event_id": event.pk, "user_id": user_id},
            )
            sent += 1
    return sent


# --- sending ---------------------------------------------------------------------------------


def _subject(event: Event) -> str:
    payload = event.payload
    project = (payload.get("project") or {}).get("name", "")
    if event.type == catalogue.ITEM_ASSIGNED:
        count = payload.get("count") or 1
        queue = (payload.get("queue") or {}).get("name", "")
        items = "An item was" if count == 1 else f"{count} items were"
        return f"hitl: {items} assigned to you in {queue!r} ({project})"
    author = (payload.get("comment") or {}).get("author", "someone")
    return f"hitl: {author} mentioned you in {project}"


def _email(event: Event, address: str) -> None:
    send_mail(
        subject=_subject(event),
        message=render_to_string(
            "projects/email/personal_notification.txt",
            {"event": event, "payload": event.payload},
        ),
        from_email=None,
        recipient_list=[address],
    )


@outbox.handler(PERSON_NOTIFY, retry_on=RETRY_ON)
def person_notify(*, event_id: int, user_id: int, **_: object) -> str:
    """Tells one person of one event, by their choice at the time of sending; returns
    (and logs) how: ``email``, ``slack``, ``email (no Slack bot)``, ``email (no Slack
    member id)``, ``email (Slack refused)``, ``off``, or why nothing was sent."""
    outcome = _person_notify(event_id=event_id, user_id=user_id)
    logger.info("event %s to user %s: by %s", event_id, user_id, outcome)
    return outcome


def _person_notify(*, event_id: int, user_id: int) -> str:
    event = Event.objects.filter(pk=event_id).first()
    field = PREFERENCE_FIELD.get(event.type) if event is not None else None
    if event is None or field is None:
        return "no event"
    if not Membership.objects.filter(user_id=user_id).exists():
        return "not a member"
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return "no user"
    preference = preference_for(user_id)
    channel = getattr(preference, field)
    if channel == PersonalChannel.OFF:
        return "off"
    fallback = ""
    if channel == PersonalChannel.SLACK_DM:
        bot = slack_bot_destination()
        if not preference.slack_member_id:
            fallback = " (no Slack member id)"
        elif bot is None:
            fallback = " (no Slack bot)"
        else:
            try:
                slack_direct_message(
                    bot.slack_bot_token, member_id=preference.slack_member_id, event=event
                )
            except TransportError as exc:
                if exc.retryable:
                    raise PersonalSendRetry(exc.message) from None
                logger.warning(
                    "direct message to %s failed (%s); sent by email", user_id, exc.message
                )
                fallback = " (Slack refused)"
            else:
                return "slack"
    if not user.email:
        return "no address"
    _email(event, user.email)
    return "email" + fallback
