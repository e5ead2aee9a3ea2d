"""The trace detail: the span tree with its timeline, payloads, scores and feedback, in a
number of queries that does not grow with the spans; and one span on its own."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.traces.read_builders import at, make_feedback, make_score, make_span, make_trace


def trace_url(tenant, trace_id: str) -> str:
    org, project = tenant.organization.slug, tenant.project.slug
    return f"/api/orgs/{org}/projects/{project}/traces/{trace_id}/"


@pytest.fixture
def agent_run(tenant):
    """root -> (plan, search -> fetch, answer); 'late' names a parent that never
    arrived; 'loop-a'/'loop-b' name each other. Spans are created out of order."""
    trace = make_trace(
        tenant.project,
        "run-1",
        name="agent",
        input={"question": "What changed?"},
        output={"answer": "Nothing."},
        metadata={"customer": "acme"},
        start_time=at(0),
        end_time=at(10),
        latency_ms=10000,
    )
    answer = make_span(trace, "answer", parent="root", start_time=at(8), end_time=at(9.5))
    fetch = make_span(
        trace, "fetch", parent="search", kind="tool", start_time=at(3), end_time=at(4)
    )
    make_span(trace, "search", parent="root", kind="retrieval", start_time=at(2), end_time=at(5))
    make_span(
        trace,
        "plan",
        parent="root",
        kind="llm",
        model="gpt-4o",
        input=[{"role": "user", "content": "plan it"}],
        output={"role": "assistant", "content": "1. search"},
        attributes={"gen_ai.system": "openai"},
        start_time=at(0.5),
        end_time=at(1.25),
        input_tokens=12,
        output_tokens=4,
        total_tokens=16,
    )
    make_span(trace, "root", kind="agent", start_time=at(0), end_time=at(10))
    make_span(trace, "late", parent="never-arrived", start_time=at(6), end_time=at(7))
    make_span(trace, "loop-a", parent="loop-b", start_time=at(11))
    make_span(trace, "loop-b", parent="loop-a", start_time=at(12))
    make_score(trace, "correctness", 0.4)
    make_score(trace, "relevance", 0.9, span=fetch, source="code")
    make_score(trace, "helpful", 1.0, source="human", author=tenant.reviewer)
    make_feedback(trace, "thumbs", -1, comment="wrong")
    make_feedback(trace, "rating", 2, span=answer)
    return tenant


def test_detail_is_the_span_tree_in_depth_first_order(agent_run, client_for):
    response = client_for(agent_run.viewer).get(trace_url(agent_run, "run-1"))
    assert response.status_code == 200
    body = response.json()
    assert body["trace_id"] == "run-1"
    assert body["input"] == {"question": "What changed?"}
    assert body["output"] == {"answer": "Nothing."}
    assert body["metadata"] == {"customer": "acme"}
    assert body["span_count"] == 8
    order = [(s["span_id"], s["depth"], s["parent_span_id"], s["is_orphan"]) for s in body["spans"]]
    assert order == [
        ("root", 0, None, False),
        ("plan", 1, "root", False),
        ("search", 1, "root", False),
        ("fetch", 2, "search", False),
        ("answer", 1, "root", False),
        ("late", 0, None, True),
        ("loop-a", 0, None, True),
        ("loop-b", 1, "loop-a", False),
    ]
    spans = {s["span_id"]: s for s in body["spans"]}
    assert spans["root"]["children"] == ["plan", "search", "answer"]
    assert spans["search"]["children"] == ["fetch"]


def test_detail_has_the_timeline_and_every_payload(agent_run, client_for):
    body = client_for(agent_run.viewer).get(trace_url(agent_run, "run-1")).json()
    assert body["timeline_start"] == "2026-01-01T10:00:00Z"
    plan = next(s for s in body["spans"] if s["span_id"] == "plan")
    assert plan["offset_ms"] == 500.0
    assert plan["duration_ms"] == 750.0
    assert plan["input"] == [{"role": "user", "content": "plan it"}]
    assert plan["output"] == {"role": "assistant", "content": "1. search"}
    assert plan["model"] == "gpt-4o"
    assert (plan["input_tokens"], plan["output_tokens"], plan["total_tokens"]) == (12, 4, 16)
    assert "attributes" not in plan  # only on the single-span endpoint
    loop_a = next(s for s in body["spans"] if s["span_id"] == "loop-a")
    assert loop_a["offset_ms"] == 11000.0
    assert loop_a["duration_ms"] is None  # still running: no end time


def test_scores_and_feedback_sit_on_the_trace_or_their_span(agent_run, client_for):
    body = client_for(agent_run.viewer).get(trace_url(agent_run, "run-1")).json()
    assert sorted((s["name"], s["source"]) for s in body["scores"]) == [
        ("correctness", "llm_judge"),
        ("helpful", "human"),
    ]
    assert all(s["span_id"] is None for s in body["scores"])
    human = next(s for s in body["scores"] if s["source"] == "human")
    assert human["author_id"] == agent_run.reviewer.pk
    assert [(f["kind"], f["value"], f["comment"]) for f in body["feedback"]] == [
        ("thumbs", -1.0, "wrong")
    ]
    spans = {s["span_id"]: s for s in body["spans"]}
    assert [(s["name"], s["value"], s["span_id"]) for s in spans["fetch"]["scores"]] == [
        ("relevance", 0.9, "fetch")
    ]
    assert [(f["kind"], f["value"], f["span_id"]) for f in spans["answer"]["feedback"]] == [
        ("rating", 2.0, "answer")
    ]
    assert spans["root"]["scores"] == [] and spans["root"]["feedback"] == []
    assert body["annotations"] == [] and body["comments"] == []


def test_single_span_with_attributes_scores_and_neighbours(agent_run, client_for):
    client = client_for(key=agent_run.key("read"))
    body = client.get(trace_url(agent_run, "run-1") + "spans/search/").json()
    assert body["span_id"] == "search"
    assert body["trace_id"] == "run-1"
    assert body["parent_span_id"] == "root"
    assert body["children"] == ["fetch"]
    assert body["offset_ms"] == 2000.0 and body["duration_ms"] == 3000.0
    assert body["is_orphan"] is False

    plan = client.get(trace_url(agent_run, "run-1") + "spans/plan/").json()
    assert plan["attributes"] == {"gen_ai.system": "openai"}
    fetch = client.get(trace_url(agent_run, "run-1") + "spans/fetch/").json()
    assert [(s["name"], s["span_id"]) for s in fetch["scores"]] == [("relevance", "fetch")]
    late = client.get(trace_url(agent_run, "run-1") + "spans/late/").json()
    assert late["is_orphan"] is True and late["parent_span_id"] is None

    assert client.get(trace_url(agent_run, "run-1") + "spans/nope/").status_code == 404
    assert client.get(trace_url(agent_run, "nope") + "spans/plan/").status_code == 404
    assert client.get(trace_url(agent_run, "nope")).status_code == 404


def test_external_ids_with_unusual_characters_resolve(tenant, client_for):
    make_trace(tenant.project, "4bf92f35:77a0 trace.1")
    response = client_for(tenant.viewer).get(trace_url(tenant, "4bf92f35%3A77a0%20trace.1"))
    assert response.status_code == 200
    assert response.json()["trace_id"] == "4bf92f35:77a0 trace.1"


def _trace_with_spans(tenant, trace_id: str, count: int) -> None:
    from hitl.tenancy import tenant_scope
    from traces.models import Span

    trace = make_trace(tenant.project, trace_id, start_time=at(0))
    with tenant_scope(tenant.organization.pk):
        spans = Span.objects.bulk_create(
            Span(
                organization_id=tenant.organization.pk,
                project_id=tenant.project.pk,
                trace=trace,
                external_id=f"s{i}",
                parent_external_id="" if i == 0 else f"s{(i - 1) // 3}",
                input={"i": i},
                output={"o": i},
                start_time=at(i),
                end_time=at(i + 1),
            )
            for i in range(count)
        )
    for span in spans[:: max(1, count // 10)]:
        make_score(trace, "span-check", 1.0, span=span, source="code")
        make_feedback(trace, "thumbs", 1, span=span)
    make_score(trace, "correctness", 0.5)


def test_detail_query_count_does_not_grow_with_the_spans(tenant, client_for):
    _trace_with_spans(tenant, "small", 5)
    _trace_with_spans(tenant, "large", 200)
    client = client_for(tenant.viewer)
    client.get(trace_url(tenant, "small"))  # warm the session and caches alike

    counts = {}
    for trace_id, span_count in (("small", 5), ("large", 200)):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(trace_url(tenant, trace_id))
        assert response.status_code == 200
        assert len(response.json()["spans"]) == span_count
        counts[trace_id] = len(queries)
    assert counts["small"] == counts["large"], counts
    # Session, user, membership, project, trace; spans, scores, feedback; review's
    # annotations, the viewer's blind leases and comments, each read first asking whether
    # the viewer is in any blind pool at all (which spares everyone else the rule's
    # per-row subquery).
    assert counts["large"] <= 14, counts


def test_responses_have_exactly_the_documented_fields(agent_run, client_for):
    from traces.api import read_serializers as s

    def fields(serializer) -> set[str]:
        return set(serializer().fields)

    client = client_for(agent_run.viewer)
    body = client.get(trace_url(agent_run, "run-1")).json()
    assert set(body) == fields(s.TraceDetailSerializer)
    assert {frozenset(span) for span in body["spans"]} == {frozenset(fields(s.SpanNodeSerializer))}
    fetch = next(span for span in body["spans"] if span["span_id"] == "fetch")
    assert set(fetch["scores"][0]) == fields(s.ScoreReadSerializer)
    assert set(body["feedback"][0]) == fields(s.FeedbackReadSerializer)
    span = client.get(trace_url(agent_run, "run-1") + "spans/fetch/").json()
    assert set(span) == fields(s.SpanDetailSerializer)
    assert set(span["scores"][0]) == fields(s.ScoreReadSerializer)
    rows = client.get(trace_url(agent_run, "run-1").removesuffix("run-1/")).json()["results"]
    assert set(rows[0]) == fields(s.TraceListRowSerializer)
    assert set(rows[0]["feedback_summary"]) == fields(s.FeedbackSummarySerializer)


def test_payloads_pass_through_exactly(tenant, client_for):
    trace = make_trace(tenant.project, "payloads", start_time=at(0))
    tricky = {
        "text": 'a "quote", a \\ backslash, \u2028 a separator, ünïcödé, 👍',
        "n": [1.5, None],
    }
    make_span(trace, "p1", input=tricky, output="plain string", start_time=at(1))
    make_span(trace, "p2", input=None, output=42, start_time=at(2))
    # PostgreSQL refuses NUL in jsonb, so stored text never looks like a placeholder.
    lookalike = {"\\u0000raw:0\\u0000": "not a placeholder"}
    make_span(trace, "p3", input=[], output=lookalike)
    response = client_for(tenant.viewer).get(trace_url(tenant, "payloads"))
    assert b"\xe2\x80\xa8" not in response.content  # U+2028 stays escaped for JavaScript
    spans = {s["span_id"]: s for s in response.json()["spans"]}
    assert spans["p1"]["input"] == tricky
    assert spans["p1"]["output"] == "plain string"
    assert spans["p2"]["input"] is None
    assert spans["p2"]["output"] == 42
    assert spans["p3"]["input"] == []
    assert spans["p3"]["output"] == lookalike
