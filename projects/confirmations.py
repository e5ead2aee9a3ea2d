"""Destructive actions of the organization pages ask first, and say what will be lost.

A page's button carries the sentence in ``data-confirm`` (``static/js/hitl.js`` asks,
and on OK adds ``confirm=1`` to the form). A POST without ``confirm`` (no script, a
script of someone's own, a double click through) acts on nothing: it answers the page
that asks, with the same sentence and a form that sends the same fields again,
confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from projects.models import ApiKey, Delivery, Destination, Invitation, Membership, Organization

# Fields a confirmation page never sends back as they came.
_NOT_RESENT = {"csrfmiddlewaretoken", "confirm"}


@dataclass(frozen=True)
class Confirmation:
    """What the page that asks shows: a title, what will be lost, the button."""

    title: str
    lost: str
    button: str
    cancel_url: str
    details: list[str] = field(default_factory=list)


def member_removal(membership: Membership, organization: Organization) -> str:
    return (
        f"Remove {membership.user.email} from {organization.name}? They lose access to "
        "its projects, queues and settings at once; their reviews, comments and history "
        "stay. Only a new invitation brings them back."
    )


def invitation_revocation(invitation: Invitation) -> str:
    return (
        f"Revoke the invitation to {invitation.email}? The link they were sent stops "
        "working; inviting them again takes a new invitation."
    )


def api_key_revocation(api_key: ApiKey) -> str:
    return (
        f"Revoke the key {api_key.prefix}… ({api_key.name}, project {api_key.project.name})? "
        "Whatever sends with it is refused from now on. A revoked key cannot be restored: "
        "its clients need a new key."
    )


def destination_deletion(destination: Destination) -> str:
    deliveries = Delivery.objects.filter(destination=destination).count()
    return (
        f"Delete {destination.name} and its delivery log ({deliveries} "
        f"deliver{'y' if deliveries == 1 else 'ies'})? Its events are no longer sent, "
        "and a webhook's signing secrets are gone. This cannot be undone."
    )


def queue_alert_removal(queue_label: str, threshold: int) -> str:
    return (
        f"Remove the backlog alert of {queue_label}? review.queue.backlog is no longer "
        f"sent when its waiting items reach {threshold}."
    )


def confirmation_page(
    request: HttpRequest, confirmation: Confirmation, context: dict
) -> HttpResponse:
    """The page that asks (200): the same POST again, with ``confirm``, or Cancel."""
    fields = [
        (name, value)
        for name, values in request.POST.lists()
        if name not in _NOT_RESENT
        for value in values
    ]
    return render(
        request,
        "hitl/confirm.html",
        {**context, "confirmation": confirmation, "fields": fields, "action": request.path},
    )
