"""The loop end to end: a trace posted by the application is routed by a rule into a
review queue by the real Celery worker."""

import time

import pytest

from hitl import tenancy
from hitl.audit import Actor
from review import services as review_services
from review.models import QueueItem
from tests.review.helpers import make_queue
from tests.traces.ingest_helpers import post, span, trace


def _items(tenant, queue) -> list[QueueItem]:
    with tenancy.tenant_scope(tenant.organization.pk):
        return list(QueueItem.objects.filter(queue=queue).select_related("trace"))


@pytest.mark.worker
def test_an_ingested_failure_is_routed_into_a_review_queue(celery_worker, tenant, client_for):
    queue = make_queue(tenant, name="tool failures")
    with tenancy.tenant_scope(tenant.organization.pk):
        review_services.routing_rule_create(
            actor=Actor(user=tenant.owner), project=tenant.project, queue_id=queue.pk,
            name="errors", signal="error", filter_params={"has_error": "true"},
            sampling_rate=1.0,
        )  # fmt: skip
    key = client_for(key=tenant.key("ingest"))
    ok = post(key, tenant, [trace("run-ok", name="answer"), span("run-ok", "s1", status="ok")])
    assert ok.status_code == 200, ok.content
    # The failure is only known when the failing span arrives, in a later batch.
    first = post(key, tenant, [trace("run-bad", name="answer"), span("run-bad", "s1")])
    assert first.status_code == 200
    second = post(
        key, tenant,
        [span("run-bad", "s2", parent_id="s1", kind="tool", status="error", error="timeout")],
    )  # fmt: skip
    assert second.status_code == 200, second.content

    deadline = time.monotonic() + 30
    while not _items(tenant, queue) and time.monotonic() < deadline:
        time.sleep(0.1)
    items = _items(tenant, queue)
    assert [item.trace.external_id for item in items] == ["run-bad"]
    assert items[0].source == "routing_rule" and items[0].signal == "error"
