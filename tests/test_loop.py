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


def test_trace_detail_shows_reviews_and_comments_where_they_were_made(tenant, client_for):
    from review import services as rs
    from tests.review.helpers import make_config, make_span, make_trace

    config = make_config(tenant)
    queue = make_queue(tenant, configs=[config])
    trace = make_trace(tenant)
    spans = [make_span(trace) for _ in range(3)]
    reviewer = Actor(user=tenant.reviewer)
    with tenancy.tenant_scope(tenant.organization.pk):
        rs.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, span_id=spans[1].pk)
        lease = rs.queue_claim_next(actor=reviewer, queue=queue)
        rs.assignment_submit(actor=reviewer, assignment_id=lease.pk, values={str(config.pk): 1.0})
        rs.comment_create(actor=reviewer, project=tenant.project, body="retrieval missed",
                          span_id=spans[0].pk)  # fmt: skip
        rs.comment_create(actor=reviewer, project=tenant.project, body="overall fine",
                          trace_id=trace.pk)  # fmt: skip
    url = (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/traces/{trace.external_id}/"
    )
    detail = client_for(tenant.viewer).get(url).json()
    assert [c["body"] for c in detail["comments"]] == ["overall fine"]
    assert detail["annotations"] == []
    by_id = {}

    def walk(nodes):
        for node in nodes:
            by_id[node["span_id"]] = node
            walk(node.get("children", []))

    walk(detail["spans"])
    first, second = by_id[spans[0].external_id], by_id[spans[1].external_id]
    assert [c["body"] for c in first["comments"]] == ["retrieval missed"]
    assert first["comments"][0]["span_id"] == spans[0].external_id
    assert [a["reviewer"]["email"] for a in second["annotations"]] == [tenant.reviewer.email]
    assert second["annotations"][0]["span_id"] == spans[1].external_id
    assert second["annotations"][0]["trace_id"] == trace.external_id


def test_blind_reviewer_sees_no_scores_in_the_trace_detail_until_they_submit(tenant, client_for):
    from review import services as rs
    from tests.review.helpers import make_config, make_trace
    from traces.models import Score

    config = make_config(tenant)
    queue = make_queue(tenant, configs=[config], blind_mode=True)
    trace = make_trace(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        Score.objects.create(
            project=tenant.project, trace=trace, name="faithfulness", data_type="numeric",
            value=0.2, source="llm_judge", source_name="judge",
        )  # fmt: skip
        rs.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
        lease = rs.queue_claim_next(actor=Actor(user=tenant.reviewer), queue=queue)
    url = (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/traces/{trace.external_id}/"
    )
    reviewer = client_for(tenant.reviewer)
    assert reviewer.get(url).json()["scores"] == []
    # Others are not anchored by anything, so they see the judge's score.
    assert [s["name"] for s in client_for(tenant.viewer).get(url).json()["scores"]] == [
        "faithfulness"
    ]
    with tenancy.tenant_scope(tenant.organization.pk):
        rs.assignment_submit(
            actor=Actor(user=tenant.reviewer), assignment_id=lease.pk,
            values={str(config.pk): 1.0},
        )  # fmt: skip
    sources = sorted(s["source"] for s in reviewer.get(url).json()["scores"])
    assert sources == ["human", "llm_judge"]
