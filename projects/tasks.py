"""Thin Celery tasks and outbox handlers over project services."""

from __future__ import annotations

import logging
import smtplib

from celery import Task, shared_task
from django.core.mail import send_mail
from django.db import OperationalError
from django.template.loader import render_to_string

from hitl import outbox, tenancy
from projects.models import Destination, Invitation, Membership, Role
from projects.notifications import delivery, site_reverse
from projects.notifications.destinations import DELIVER
from projects.notifications.events import FAN_OUT
from projects.services import (
    INVITATION_EMAIL,
    hash_invitation_token,
    invitation_queue_names,
    invitation_url,
)

logger = logging.getLogger(__name__)

# SMTP and network failures are worth retrying; anything else is a bug to look at.
TRANSIENT_MAIL_ERRORS = (smtplib.SMTPException, ConnectionError, TimeoutError)


@outbox.handler(INVITATION_EMAIL, retry_on=TRANSIENT_MAIL_ERRORS)
def email_invitation(*, invitation_id: int, token: str, **_: object) -> str:
    """Emails the invitation link, once per outbox message (inside its tenant scope).
    A link replaced by a resend, or an invitation no longer pending, sends nothing."""
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None or invitation.status != "pending":
        return "skipped"
    if invitation.hashed_token != hash_invitation_token(token):
        return "superseded"
    context = {
        "invitation": invitation,
        "organization": invitation.organization,
        "url": invitation_url(token),
        "queues": invitation_queue_names(invitation),
    }
    send_mail(
        subject=f"You are invited to review for {invitation.organization.name} on hitl",
        message=render_to_string("projects/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )
    logger.info("invitation %s emailed", invitation_id)
    return "sent"


@shared_task(
    name="projects.send_invitation_email",
    bind=True,
    autoretry_for=TRANSIENT_MAIL_ERRORS,
    retry_backoff=True,
    retry_kwargs={"max_retries": 8},
    acks_late=True,
)
def send_invitation_email(
    self: Task, *, invitation_id: int, organization_id: int, token: str, **_
) -> str:
    """Invitations sent straight to the broker before the outbox; kept so messages
    queued by an older release still go out. New invitations go through the outbox."""
    with tenancy.tenant_scope(organization_id):
        return email_invitation(invitation_id=invitation_id, token=token)


# --- notifications (projects/notifications/) -----------------------------------------------


@outbox.handler(FAN_OUT, retry_on=(OperationalError,))
def notify_event(*, event_id: int, **_: object) -> int:
    """Creates the event's deliveries, one per subscribed destination."""
    return delivery.event_fan_out(event_id=event_id)


@outbox.handler(DELIVER, retry_on=(OperationalError,))
def deliver(*, delivery_id: int, round: int, reserved: bool = False, **_: object) -> str:
    """One attempt of one delivery (retries are new messages, scheduled by the service)."""
    return delivery.delivery_attempt(delivery_id=delivery_id, round=round, reserved=reserved)


@outbox.handler(delivery.DESTINATION_DISABLED_EMAIL, retry_on=TRANSIENT_MAIL_ERRORS)
def email_destination_disabled(*, destination_id: int, **_: object) -> str:
    """Tells whoever created the destination, and the organization's owners, that it
    was disabled and why."""
    destination = (
        Destination.objects.select_related("organization", "created_by")
        .filter(pk=destination_id)
        .first()
    )
    if destination is None or destination.enabled:
        return "skipped"
    recipients = set(
        Membership.objects.filter(role=Role.OWNER).values_list("user__email", flat=True)
    )
    if destination.created_by is not None and destination.created_by.email:
        recipients.add(destination.created_by.email)
    recipients.discard("")
    if not recipients:
        return "nobody"
    send_mail(
        subject=f"hitl: notifications to {destination.name!r} are disabled",
        message=render_to_string(
            "projects/email/destination_disabled.txt",
            {
                "destination": destination,
                "organization": destination.organization,
                "url": site_reverse("destination-list", org_slug=destination.organization.slug),
            },
        ),
        from_email=None,
        recipient_list=sorted(recipients),
    )
    return "sent"
