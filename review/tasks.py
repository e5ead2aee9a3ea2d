"""Thin Celery tasks over review services."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Task, shared_task
from django.db import OperationalError
from django.utils import timezone

from hitl import outbox, tenancy
from review import services
from review.models import Assignment, AssignmentState, ReviewQueue, RoutingRule, RoutingTarget
from review.quality.services import agreement, refresh
from review.quality.services.agreement import AGREEMENT_REFRESH
from review.services.routing import ROUTE_TRACES

logger = logging.getLogger(__name__)


def periodic(name: str) -> Callable[[Callable[..., Any]], Any]:
    """A task Celery beat runs: retried when the database connection drops, and
    acknowledged only once it ran, so a killed worker's run is redone (each is
    idempotent)."""
    return shared_task(
        name=name,
        bind=True,
        autoretry_for=(OperationalError,),
        retry_backoff=True,
        retry_kwargs={"max_retries": 3},
        acks_late=True,
    )


@outbox.handler(ROUTE_TRACES, retry_on=(OperationalError,))
def route_traces(
    *, project_id: int, trace_ids: list[int], strategy: str | None = None, **_: object
) -> None:
    """Samples new traces into queues by the project's routing rules (idempotent; only
    the rules of ``strategy`` when given: an item's reviewers disagreed). Runs through
    the outbox, inside the message's tenant scope."""
    services.routing_apply(project_id=project_id, trace_ids=trace_ids, strategy=strategy)


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
    """Routing sent straight to the broker before the outbox; kept so messages queued
    by an older release still run. New routing goes through ``route_traces``."""
    with tenancy.tenant_scope(organization_id):
        routed = services.routing_apply(project_id=project_id, trace_ids=trace_ids)
    return {str(rule_id): n for rule_id, n in routed.items()}


@periodic("review.route_threads")
def route_threads(self: Task, **_: object) -> dict[str, int]:
    """Periodic: routes conversations by every organization's thread rules
    (``routing_apply_threads``), so a rule whose condition is that a conversation ended
    (idle for some minutes) fires without new ingestion. Idempotent: a thread is queued
    once per queue."""
    # Which projects have thread rules: the one cross-tenant read here.
    projects = (
        RoutingRule.unscoped_across_tenants.filter(enabled=True, target=RoutingTarget.THREAD)
        .values_list("organization_id", "project_id")
        .distinct()
    )
    routed: dict[str, int] = {}
    for organization_id, project_id in sorted(set(projects)):
        with tenancy.tenant_scope(organization_id):
            for rule_id, count in services.routing_apply_threads(project_id=project_id).items():
                routed[str(rule_id)] = count
    return routed


@periodic("review.expire_leases")
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


@outbox.handler(AGREEMENT_REFRESH, retry_on=(OperationalError,))
def agreement_refresh(*, queue_id: int, **_: object) -> None:
    """Recomputes a queue's agreement reports and gold accuracy after new submissions
    (coalesced, never dropped: see ``review.quality.services.agreement``). Runs through the
    outbox, inside the message's tenant scope; a gone queue or unchanged answers do
    nothing."""
    refresh.quality_refresh(queue_id=queue_id)


@periodic("review.agreement_sweep")
def agreement_sweep(self: Task, **_: object) -> int:
    """Periodic: requests a refresh for every queue whose answers changed since its
    latest agreement reports (those deferred by the debounce, and any other)."""
    # Which organizations have queues with overlap: the one cross-tenant read here.
    organization_ids = (
        ReviewQueue.unscoped_across_tenants.filter(overlap__gte=2, archived_at__isnull=True)
        .values_list("organization_id", flat=True)
        .distinct()
    )
    requested = 0
    for organization_id in list(organization_ids):
        with tenancy.tenant_scope(organization_id):
            requested += agreement.agreement_sweep()
    return requested


@periodic("review.gold_accuracy_sweep")
def gold_accuracy_sweep(self: Task, **_: object) -> int:
    """Periodic: refreshes reviewers' running accuracy on the gold items of every live
    queue that mixes them in (an alert when one falls under the queue's threshold)."""
    from review.quality.models import QueueCalibration
    from review.quality.services import calibration

    # Which queues mix gold items in: the one cross-tenant read here.
    uses = QueueCalibration.unscoped_across_tenants.filter(gold_rate__gt=0).values_list(
        "organization_id", "queue_id"
    )
    refreshed = 0
    for organization_id, queue_id in list(uses):
        with tenancy.tenant_scope(organization_id):
            refreshed += len(calibration.gold_accuracy_refresh(queue_id=queue_id))
    return refreshed


@outbox.handler("review.alignment_refresh", retry_on=(OperationalError,))
def alignment_refresh(*, mapping_id: int, **_: object) -> None:
    """Computes one alignment report (a gone mapping does nothing). Runs through the
    outbox, inside the message's tenant scope."""
    from review.quality.services import alignment

    alignment.alignment_refresh(mapping_id=mapping_id)


@periodic("review.alignment_sweep")
def alignment_sweep(self: Task, **_: object) -> int:
    """Periodic: requests a report of every alignment mapping (drift over time)."""
    from review.quality.models import AlignmentMapping
    from review.quality.services import alignment

    # Which organizations have mappings: the one cross-tenant read here.
    organization_ids = AlignmentMapping.unscoped_across_tenants.values_list(
        "organization_id", flat=True
    ).distinct()
    requested = 0
    for organization_id in list(organization_ids):
        with tenancy.tenant_scope(organization_id):
            requested += alignment.alignment_sweep()
    return requested
