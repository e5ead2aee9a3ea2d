"""Thin Celery tasks over project services."""

from __future__ import annotations

import logging
import smtplib

from celery import Task, shared_task
from django.core.mail import send_mail
from django.template.loader import render_to_string

from hitl import tenancy
from projects.models import Invitation
from projects.services import invitation_url

logger = logging.getLogger(__name__)


@shared_task(
    name="projects.send_invitation_email",
    bind=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_kwargs={"max_retries": 8},
    acks_late=True,
)
def send_invitation_email(
    self: Task, *, invitation_id: int, organization_id: int, token: str, **_
) -> str:
    with tenancy.tenant_scope(organization_id):
        invitation = (
            Invitation.objects.select_related("organization", "invited_by")
            .filter(pk=invitation_id)
            .first()
        )
        if invitation is None or invitation.status != "pending":
            return "skipped"
        context = {
            "invitation": invitation,
            "organization": invitation.organization,
            "url": invitation_url(token),
        }
        send_mail(
            subject=f"You are invited to review for {invitation.organization.name} on hitl",
            message=render_to_string("projects/email/invitation.txt", context),
            from_email=None,
            recipient_list=[invitation.email],
        )
    logger.info("invitation %s emailed", invitation_id)
    return "sent"
