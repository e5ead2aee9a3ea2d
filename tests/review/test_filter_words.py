"""The lead's routing rules and bulk add read a trace filter in words (the filter
builder's summary), the query string kept beside it; a stored filter that cannot be read
in words shows as stored, and the page still answers."""

from __future__ import annotations

from django.utils.html import escape

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import RoutingRule
from tests.page_clients import project_url, signed_in
from tests.review.helpers import make_queue
from tests.traces.read_builders import make_score, make_trace
from traces import filter_builder

PARAMS = {"status": "error", "score": ["faithfulness<0.5"], "feedback": "thumbs_down"}
QUERY = "status=error&score=faithfulness%3C0.5&feedback=thumbs_down"


def test_rules_their_preview_and_bulk_add_show_the_filter_in_words(tenant):
    words = filter_builder.summary(PARAMS)
    assert "status is error" in words and "faithfulness < 0.5" in words
    make_score(make_trace(tenant.project, "scored"), "faithfulness", 0.3)
    queue = make_queue(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = services.routing_rule_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            queue_id=queue.pk,
            name="Unfaithful",
            signal="error",
            filter_params=PARAMS,
        )
    client = signed_in(tenant.admin)

    listed = client.get(project_url(tenant, "lead-queue-rules", queue_pk=queue.pk))
    body = listed.content.decode()
    assert f'<strong id="rule-words-{rule.pk}">{escape(words)}</strong>' in body
    raw = listed.context["rules"][0]["filter"]
    assert "faithfulness%3C0.5" in raw and f"<code>{escape(raw)}</code>" in body  # beside

    edit = client.get(project_url(tenant, "lead-rule-edit", queue_pk=queue.pk, rule_pk=rule.pk))
    assert f'<strong id="rule-words">{escape(words)}</strong>' in edit.content.decode()

    preview = client.get(
        project_url(tenant, "lead-rule-preview", queue_pk=queue.pk),
        {"filter": QUERY, "sampling_percent": "100"},
    )
    assert preview.context["words"] == words
    assert escape(words) in preview.content.decode()

    bulk = client.get(project_url(tenant, "lead-bulk-add"), {"filter": QUERY})
    assert bulk.context["filter_summary"] == words
    body = bulk.content.decode()
    assert f'<strong id="bulk-filter-words">{escape(words)}</strong>' in body
    assert f'id="bulk-filter">{escape(bulk.context["query"])}</code>' in body


def test_a_stored_filter_that_is_not_a_filter_shows_as_stored(tenant):
    queue = make_queue(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = services.routing_rule_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            queue_id=queue.pk,
            name="Errors",
            signal="error",
            filter_params={"status": "error"},
        )
        RoutingRule.objects.filter(pk=rule.pk).update(filter_params="not a filter")
    client = signed_in(tenant.admin)

    listed = client.get(project_url(tenant, "lead-queue-rules", queue_pk=queue.pk))
    assert listed.status_code == 200
    assert f'<strong id="rule-words-{rule.pk}">not a filter</strong>' in listed.content.decode()
    edit = client.get(project_url(tenant, "lead-rule-edit", queue_pk=queue.pk, rule_pk=rule.pk))
    assert edit.status_code == 200
    assert '<strong id="rule-words">not a filter</strong>' in edit.content.decode()
