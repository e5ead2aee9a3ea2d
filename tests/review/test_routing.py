from __future__ import annotations

import time

import pytest
from django.db import transaction

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import QueueItem, RoutingRuleDay
from tests.review.helpers import make_queue, make_trace


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("the worker did not route in time")


def _routed(tenant, queue) -> list[QueueItem]:
    with tenancy.tenant_scope(tenant.organization.pk):
        return list(QueueItem.objects.filter(queue=queue).order_by("trace_id"))


@pytest.mark.worker
def test_routing_rules_sample_new_traces_into_a_queue_through_the_worker(celery_worker, tenant):
    errors_queue = make_queue(tenant, name="errors")
    sampled_queue = make_queue(tenant, name="sampled")
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        capped = services.routing_rule_create(
            actor=owner, project=tenant.project, queue_id=errors_queue.pk, name="errors",
            signal="error", filter_params={"status": "error"}, sampling_rate=1.0, daily_cap=3,
        )  # fmt: skip
        half = services.routing_rule_create(
            actor=owner, project=tenant.project, queue_id=sampled_queue.pk, name="half",
            signal="tag", filter_params={"tags": ["checkout"]}, sampling_rate=0.5,
        )  # fmt: skip
    with transaction.atomic():
        failing = [make_trace(tenant, status="error") for _ in range(5)]
        fine = [make_trace(tenant, status="ok") for _ in range(2)]
        tagged = [make_trace(tenant, status="ok", tags=["checkout"]) for _ in range(40)]
        with tenancy.tenant_scope(tenant.organization.pk):
            services.routing_enqueue_for_new_traces(
                project=tenant.project, trace_ids=[t.pk for t in failing + fine + tagged]
            )
        # Enqueued on commit only: nothing is routed while the traces are uncommitted.
        assert _routed(tenant, errors_queue) == []

    _wait_for(lambda: len(_routed(tenant, errors_queue)) == 3 and _routed(tenant, sampled_queue))
    items = _routed(tenant, errors_queue)
    assert {i.trace_id for i in items} <= {t.pk for t in failing}
    assert all(
        (i.source, i.routing_rule_id, i.signal) == ("routing_rule", capped.pk, "error")
        for i in items
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        assert RoutingRuleDay.objects.get(rule=capped).routed == 3
    sampled = _routed(tenant, sampled_queue)
    assert 0 < len(sampled) < 40
    assert {i.trace_id for i in sampled} <= {t.pk for t in tagged}
    assert all(i.routing_rule_id == half.pk and i.signal == "tag" for i in sampled)

    # Rerunning the routing of the same traces changes nothing (idempotent, cap kept).
    with tenancy.tenant_scope(tenant.organization.pk):
        services.routing_apply(
            project_id=tenant.project.pk, trace_ids=[t.pk for t in failing + tagged]
        )
    assert len(_routed(tenant, errors_queue)) == 3
    assert len(_routed(tenant, sampled_queue)) == len(sampled)


def test_no_rules_means_nothing_is_enqueued(tenant, django_capture_on_commit_callbacks):
    trace = make_trace(tenant)
    with (
        tenancy.tenant_scope(tenant.organization.pk),
        django_capture_on_commit_callbacks() as callbacks,
    ):
        services.routing_enqueue_for_new_traces(project=tenant.project, trace_ids=[trace.pk])
    assert callbacks == []
