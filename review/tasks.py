"""Thin Celery tasks over review services."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.db import OperationalError
from django.utils import timezone

from hitl import tenancy
from review import services
from review.models import Assignment, AssignmentState

logger = logging.getLogger(__name__)


@shared_task(
    name="review.route_new_traces",
    bind=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_kwargs={"max_retries": 8},
    acks_late=True,
)
def route_new_traces(
    self: Task, organization_id: int, project_id: int, trace_ids: list[int], **_
) -> dict[str, int]:
    """Samples new traces into queues by the project's routing rules (idempotent)."""
    with tenancy.tenant_scope(organization_id):
        routed = services.routing_apply(project_id=project_id, trace_ids=trace_ids)
    return {str(rule_id): n for rule_id, n in routed.items()}


@shared_task(
    name="review.expire_leases",
    bind=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_kwargs={"max_retries": 3},
    acks_late=True,
)
def expire_leases(self: Task, **_: object) -> int:
    """Returns every organization's overdue leases to their pools (claims also do this
    lazily per queue; this catches queues nobody claims from)."""
    # Finding which tenants have overdue leases is the one cross-tenant read here.
    organization_ids = (
        Assignment.unscoped_across_tenants.filter(
            state=AssignmentState.LEASED, expires_at__lte=timezone.now()
        )
        .values_list("organization_id", flat=True)
        .distinct()
    )
    expired = 0
    for organization_id in list(organization_ids):
        with tenancy.tenant_scope(organization_id):
            expired += services.leases_expire()
    if expired:
        logger.info("expired %s leases", expired)
    return expired
