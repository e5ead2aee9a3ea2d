from __future__ import annotations

from hitl import tenancy
from hitl.audit import Actor
from projects import services
from projects.models import (
    Delivery,
    DeliveryAttempt,
    Destination,
    Event,
    Membership,
    NotificationPreference,
    QueueAlert,
)
from tests.factories import Tenant
from tests.isolation import IsolationData


def populate(tenant: Tenant) -> IsolationData:
    with tenancy.tenant_scope(tenant.organization.pk):
        invitation, token = services.invitation_create(
            actor=Actor(user=tenant.owner),
            acting_membership=None,
            email=f"invitee-only@{tenant.organization.slug}.example.com",
            role="reviewer",
        )
        membership = Membership.objects.get(user=tenant.reviewer)
    delivery_marker, notification_kwargs = _notification_rows(tenant)
    return IsolationData(
        kwargs={
            "token": token,
            "membership_pk": membership.pk,
            "invitation_pk": invitation.pk,
            "api_key_pk": tenant.api_key("all").pk,
            **notification_kwargs,
        },
        secret_kwargs={"token"},
        markers=[
            tenant.organization.name,
            tenant.owner.email,
            tenant.reviewer.email,
            invitation.email,
            tenant.api_key("all").prefix,
            *delivery_marker,
        ],
    )


def _notification_rows(tenant: Tenant) -> tuple[list[str], dict[str, int]]:
    """A destination with an event, a delivery and an attempt (rows made directly: no
    request is ever sent); returns their markers and the URL kwargs naming them."""
    slug = tenant.organization.slug
    with tenancy.tenant_scope(tenant.organization.pk):
        destination = Destination.objects.create(
            name=f"victim-hook-{slug}",
            kind="webhook",
            url=f"https://hooks.invalid/{slug}",
            event_types=["projects.api_key.created"],
            secret="whsec_dmljdGltLXNlY3JldC1ub3QtdXNlZA==",
        )
        event = Event.objects.create(
            uid=f"msg_victim_{slug}",
            type="projects.api_key.created",
            payload={"summary": f"victim-event-{slug}"},
        )
        delivery = Delivery.objects.create(event=event, destination=destination, attempts=1)
        QueueAlert.objects.create(project=tenant.project, queue_id=10**9, backlog_threshold=7)
        DeliveryAttempt.objects.create(
            delivery=delivery,
            destination=destination,
            number=1,
            status_code=200,
            response_excerpt=f"victim-receiver-said-{slug}",
            succeeded=True,
        )
        # The reviewer's own notification preferences (read and written only by them).
        member_id = f"WVICTIM{tenant.organization.pk}X"
        NotificationPreference.objects.create(
            user=tenant.reviewer, mentions="slack_dm", slack_member_id=member_id
        )
    markers = [destination.name, event.uid, f"victim-receiver-said-{slug}", member_id]
    return markers, {"destination_pk": destination.pk, "delivery_pk": delivery.pk}
