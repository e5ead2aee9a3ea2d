"""A blind reviewer cannot learn hidden scores by filtering the trace list on them."""

from __future__ import annotations

from hitl import tenancy
from hitl.audit import Actor
from review import services
from tests.review.helpers import add_reviewers, make_config, make_queue, make_trace
from traces.models import Score


def _trace_ids(client, tenant, query: str) -> set[str]:
    url = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/traces/"
    response = client.get(f"{url}?{query}")
    assert response.status_code == 200, response.content
    return {row["trace_id"] for row in response.json()["results"]}


def test_score_filters_see_only_the_scores_the_reader_may_see(tenant, client_for):
    first, second = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[make_config(tenant)], reviewers=[first, second], overlap=2)
    trace = make_trace(tenant, external_id="blind-filtered")
    with tenancy.tenant_scope(tenant.organization.pk):
        Score.objects.create(
            project=tenant.project, trace=trace, name="faithfulness", data_type="numeric",
            value=0.2, source="llm_judge", source_name="judge",
        )  # fmt: skip
        services.queue_item_add(actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk)
        lease = services.queue_claim_next(actor=Actor(user=first), queue=queue)
        config_id = str(queue.form_fields.get().config_id)
        services.assignment_submit(
            actor=Actor(user=first), assignment_id=lease.pk, values={config_id: 1.0}
        )

    judge_query = "score=faithfulness<0.5"
    reviewed_query = "reviewed=true"
    blind = client_for(second)
    assert "blind-filtered" not in _trace_ids(blind, tenant, judge_query)
    assert "blind-filtered" not in _trace_ids(blind, tenant, reviewed_query)
    # Once the second reviewer has submitted, or for a manager, the same filters find it.
    manager = client_for(tenant.owner)
    assert "blind-filtered" in _trace_ids(manager, tenant, judge_query)
    assert "blind-filtered" in _trace_ids(manager, tenant, reviewed_query)
    with tenancy.tenant_scope(tenant.organization.pk):
        lease = services.queue_claim_next(actor=Actor(user=second), queue=queue)
        services.assignment_submit(
            actor=Actor(user=second), assignment_id=lease.pk, values={config_id: 1.0}
        )
    assert "blind-filtered" in _trace_ids(blind, tenant, judge_query)
