"""REST batch ingestion: identity, ordering, roll-ups, per-event rejections, limits."""

from __future__ import annotations

import json

import pytest

from hitl.tenancy import tenant_scope
from tests.traces.ingest_helpers import event, ingest_url, post, span, trace
from traces.models import Feedback, Score, Span, Thread, Trace

T = "2026-03-01T10:00:00"


def at(seconds: float) -> str:
    return f"2026-03-01T10:00:{seconds:06.3f}+00:00"


@pytest.fixture
def ingest(tenant, client_for):
    client = client_for(key=tenant.key("ingest"))

    def send(events, expect=200):
        response = post(client, tenant, events)
        assert response.status_code == expect, response.content
        return response.json()

    return send


def _rows(tenant, model, **filters):
    with tenant_scope(tenant.organization.pk):
        return list(model.objects.filter(project=tenant.project, **filters).order_by("id"))


def agent_run(trace_id="run-1"):
    return [
        trace(trace_id, name="support agent", session_id="conv-9", input={"q": "refund?"},
              output={"a": "yes"}, metadata={"app": "desk"}, tags=["prod"], user_id="u-1",
              environment="prod", release="1.2.0", start_time=at(0), end_time=at(9)),
        span(trace_id, "s-agent", kind="agent", name="agent", start_time=at(0), end_time=at(9)),
        span(trace_id, "s-llm", parent_id="s-agent", kind="llm", name="plan", model="gpt-4o",
             provider="openai", input=[{"role": "user", "content": "refund?"}],
             output=[{"role": "assistant", "content": "check policy"}], input_tokens=100,
             output_tokens=20, cached_tokens=50, reasoning_tokens=5, cost=0.002,
             start_time=at(1), end_time=at(2)),
        span(trace_id, "s-tool", parent_id="s-agent", kind="tool", name="lookup",
             input={"order": 7}, output={"status": "shipped"}, cost=0.001,
             start_time=at(2), end_time=at(3)),
        span(trace_id, "s-llm2", parent_id="s-agent", kind="llm", name="answer",
             model="gpt-4o", input_tokens=200, output_tokens=30, start_time=at(3),
             end_time=at(8.5)),
    ]  # fmt: skip


def test_batch_stores_a_tree_with_rolled_up_totals(tenant, ingest):
    result = ingest(agent_run())
    assert result == {
        "received": 5,
        "accepted": 5,
        "stored": {"traces": 1, "spans": 4},
        "rejected": [],
    }
    [stored] = _rows(tenant, Trace)
    assert stored.name == "support agent" and not stored.is_placeholder
    assert stored.input == {"q": "refund?"} and stored.tags == ["prod"]
    assert (stored.user_id, stored.environment, stored.release) == ("u-1", "prod", "1.2.0")
    assert stored.thread.external_id == "conv-9"
    # Tokens count model calls only; cost counts every span.
    assert (stored.input_tokens, stored.output_tokens, stored.total_tokens) == (300, 50, 350)
    assert float(stored.cost) == pytest.approx(0.003)
    assert stored.latency_ms == pytest.approx(9000)
    spans = {s.external_id: s for s in _rows(tenant, Span)}
    assert spans["s-llm"].parent_external_id == "s-agent"
    assert (spans["s-llm"].cached_tokens, spans["s-llm"].reasoning_tokens) == (50, 5)
    assert spans["s-llm"].total_tokens == 120
    assert spans["s-llm"].input == [{"role": "user", "content": "refund?"}]


def test_resending_is_idempotent(tenant, ingest):
    ingest(agent_run())
    before = {s.external_id: s.pk for s in _rows(tenant, Span)}
    ingest(agent_run())
    ingest(agent_run())
    assert len(_rows(tenant, Trace)) == 1
    assert {s.external_id: s.pk for s in _rows(tenant, Span)} == before
    assert len(_rows(tenant, Thread)) == 1
    assert _rows(tenant, Trace)[0].total_tokens == 350


def test_resending_a_span_updates_it_and_the_rollup(tenant, ingest):
    ingest(agent_run())
    ingest([span("run-1", "s-llm2", kind="llm", model="gpt-4o-mini", input_tokens=10,
                 output_tokens=1, status="error", error="rate limited")])  # fmt: skip
    updated = _rows(tenant, Span, external_id="s-llm2")[0]
    assert updated.model == "gpt-4o-mini" and updated.status == "error"
    stored = _rows(tenant, Trace)[0]
    assert (stored.input_tokens, stored.output_tokens) == (110, 21)
    assert stored.status == "error" and stored.error_message == "rate limited"


def test_spans_before_their_trace_make_a_placeholder_that_the_trace_fills(tenant, ingest):
    ingest([span("late", "child", parent_id="root", kind="llm", input_tokens=7,
                 start_time=at(1), end_time=at(2))])  # fmt: skip
    [placeholder] = _rows(tenant, Trace)
    assert placeholder.is_placeholder and placeholder.name == ""
    assert placeholder.input_tokens == 7
    # The parent arrives later, in another batch; then the trace itself.
    ingest([span("late", "root", kind="agent", start_time=at(0), end_time=at(3))])
    ingest([trace("late", name="the real trace", input={"q": 1}, status="ok")])
    [filled] = _rows(tenant, Trace)
    assert not filled.is_placeholder and filled.name == "the real trace"
    assert filled.input == {"q": 1} and filled.input_tokens == 7
    assert filled.latency_ms == pytest.approx(3000)
    # A later span (a placeholder hint) never overwrites the real trace's fields.
    ingest([span("late", "child-2", parent_id="root", start_time=at(2), end_time=at(2.5))])
    [still] = _rows(tenant, Trace)
    assert still.name == "the real trace" and not still.is_placeholder
    assert still.input == {"q": 1}
    tree = {s.external_id: s.parent_external_id for s in _rows(tenant, Span)}
    assert tree == {"child": "root", "root": "", "child-2": "root"}


def test_trace_update_keeps_fields_it_does_not_send_and_merges_metadata(tenant, ingest):
    ingest([trace("t", name="n", input={"q": 1}, metadata={"a": 1}, start_time=at(0))])
    ingest([trace("t", output={"a": 2}, metadata={"b": 2}, end_time=at(4))])
    [stored] = _rows(tenant, Trace)
    assert (stored.name, stored.input, stored.output) == ("n", {"q": 1}, {"a": 2})
    assert stored.metadata == {"a": 1, "b": 2}
    assert stored.latency_ms == pytest.approx(4000)


def test_rollup_is_right_across_batches(tenant, ingest):
    for n in range(5):
        ingest([span("multi", f"s{n}", kind="llm", input_tokens=10, output_tokens=1,
                     cost=0.5, start_time=at(n), end_time=at(n + 0.5))])  # fmt: skip
    [stored] = _rows(tenant, Trace)
    assert (stored.input_tokens, stored.output_tokens, stored.total_tokens) == (50, 5, 55)
    assert float(stored.cost) == pytest.approx(2.5)
    assert stored.latency_ms == pytest.approx(4500)


def test_scores_and_feedback_arrive_with_the_batch_and_are_upserted(tenant, ingest):
    ingest(agent_run())
    events = [
        event("score", {"id": "sc-1", "trace_id": "run-1", "name": "correctness", "value": 0.4,
                        "rationale": "missed policy", "source": "llm_judge",
                        "source_name": "judge-gpt", "source_version": "v3"}),
        event("score", {"id": "sc-2", "trace_id": "run-1", "span_id": "s-tool",
                        "name": "tool_ok", "value": True, "source": "code"}),
        event("score", {"thread_id": "conv-9", "name": "tone", "label": "polite",
                        "source": "llm_judge"}),
        event("feedback", {"id": "fb-1", "trace_id": "run-1", "kind": "thumbs", "value": "down",
                           "comment": "wrong", "end_user_id": "u-1"}),
        event("feedback", {"trace_id": "run-1", "span_id": "s-llm2", "kind": "rating",
                           "value": 4}),
    ]  # fmt: skip
    result = ingest(events)
    assert result["stored"] == {"traces": 0, "spans": 0, "scores": 3, "feedback": 2}
    scores = {s.name: s for s in _rows(tenant, Score)}
    assert scores["correctness"].value == 0.4 and scores["correctness"].trace.external_id == "run-1"
    assert scores["correctness"].source_name == "judge-gpt"
    assert scores["tool_ok"].span.external_id == "s-tool" and scores["tool_ok"].value == 1.0
    assert scores["tool_ok"].data_type == "boolean" and scores["tool_ok"].trace is not None
    assert (
        scores["tone"].thread.external_id == "conv-9" and scores["tone"].data_type == "categorical"
    )
    feedback = {f.kind: f for f in _rows(tenant, Feedback)}
    assert feedback["thumbs"].value == -1 and feedback["thumbs"].end_user_id == "u-1"
    assert feedback["rating"].span.external_id == "s-llm2"

    # Re-sent with a new value: updated in place, never duplicated.
    events[0]["body"]["value"] = 0.9
    events[3]["body"]["value"] = "up"
    ingest(events[:1] + events[3:4])
    assert len(_rows(tenant, Score, external_id="sc-1")) == 1
    assert _rows(tenant, Score, external_id="sc-1")[0].value == 0.9
    assert _rows(tenant, Feedback, external_id="fb-1")[0].value == 1


def test_score_history_is_recorded_on_the_bulk_path_with_the_api_key(tenant, ingest):
    body = {"id": "sc-h", "trace_id": "t-h", "name": "faithful", "value": 0.2, "source": "code"}
    ingest([event("score", body)])
    ingest([event("score", {**body, "value": 0.8})])
    ingest([event("score", {**body, "value": 0.8})])  # unchanged: no new history row
    with tenant_scope(tenant.organization.pk):
        score = Score.objects.get(external_id="sc-h")
        rows = list(score.history.order_by("history_date"))
    assert [(r.history_type, r.value) for r in rows] == [("+", 0.2), ("~", 0.8)]
    prefix = tenant.api_key("ingest").prefix
    assert all(r.history_api_key_prefix == prefix and r.history_source == "api" for r in rows)
    # The score's trace did not exist: a placeholder holds it until it arrives.
    assert _rows(tenant, Trace)[0].is_placeholder


BAD_EVENTS = [
    (event("bogus", {"id": "x"}), "unknown_type"),
    ("not an object", "invalid_event"),
    (event("trace", {"id": "x", "nmae": "typo"}), "unknown_field"),
    (event("trace", {"id": 5}), "invalid_id"),
    (event("trace", {"id": "x" * 129}), "invalid_id"),
    (event("trace", {"id": "has space"}), "invalid_id"),
    (event("trace", {"id": "nul\u0000id"}), "invalid_id"),
    (event("trace", {"name": "no id"}), "missing_field"),
    (event("trace", {"id": "x", "tags": "prod"}), "invalid_type"),
    (event("trace", {"id": "x", "start_time": "yesterday"}), "invalid_timestamp"),
    (event("trace", {"id": "x", "start_time": "1969-12-31T23:59:59Z"}), "timestamp_out_of_range"),
    (event("trace", {"id": "x", "start_time": "2999-01-01T00:00:00Z"}), "timestamp_out_of_range"),
    (event("trace", {"id": "x", "start_time": 1.7e18}), "timestamp_out_of_range"),
    (span("t", "s", start_time=at(5), end_time=at(1)), "invalid_timestamp"),
    (span("t", "s", input_tokens="12"), "invalid_type"),
    (span("t", "s", input_tokens=-1), "out_of_range"),
    (span("t", "s", cost=-0.5), "out_of_range"),
    (span("t", "s", kind="robot"), "invalid_choice"),
    (span("t", "s", attributes=[1, 2]), "invalid_type"),
    (span("t", "s", parent_id="s"), "parent_cycle"),
    (span("t", "s", attributes={"big": "x" * (4 * 1024 * 1024)}), "too_large"),
    (event("span", {"id": "s"}), "missing_field"),
    (event("score", {"trace_id": "t", "name": "n", "value": 1}), "missing_field"),
    (event("score", {"trace_id": "t", "name": "n", "value": 1, "source": "human"}),
     "invalid_choice"),
    (event("score", {"name": "n", "value": 1, "source": "code"}), "invalid_target"),
    (event("score", {"span_id": "s", "name": "n", "value": 1, "source": "code"}),
     "invalid_target"),
    (event("score", {"trace_id": "t", "name": "n", "value": "high", "source": "code"}),
     "invalid_type"),
    (event("feedback", {"trace_id": "t", "kind": "thumbs", "value": 3}), "invalid_value"),
    (event("feedback", {"trace_id": "t", "kind": "stars", "value": 3}), "invalid_choice"),
    (event("feedback", {"trace_id": "t", "kind": "comment"}), "missing_field"),
]  # fmt: skip


def _deep(levels):
    value = "leaf"
    for _ in range(levels):
        value = {"x": value}
    return value


def test_each_bad_event_is_rejected_with_its_reason_and_the_good_ones_stored(tenant, ingest):
    bad = [
        *BAD_EVENTS,
        (span("t", "deep", input=_deep(100)), "too_deep"),
        (span("t", "deep-attrs", attributes=_deep(70)), "too_deep"),
    ]
    events = [trace("good-1", name="fine")]
    for bad_event, _code in bad:
        events.append(bad_event)
    events.append(span("good-1", "good-span"))
    result = ingest(events, expect=207)
    assert result["received"] == len(events) and result["accepted"] == 2
    rejected = {r["index"]: r for r in result["rejected"]}
    assert sorted(rejected) == list(range(1, len(bad) + 1))
    for position, (_bad_event, code) in enumerate(bad, start=1):
        assert rejected[position]["code"] == code, (position, rejected[position])
        assert rejected[position]["reason"]
    assert rejected[1]["type"] == "bogus" and rejected[1]["id"] == "x"
    assert rejected[2]["id"] is None
    assert "128" in rejected[5]["reason"]
    assert [t.external_id for t in _rows(tenant, Trace)] == ["good-1"]
    assert [s.external_id for s in _rows(tenant, Span)] == ["good-span"]


def test_nul_characters_are_stripped_from_text_and_json(tenant, ingest):
    ingest([
        trace("nul", name="a\u0000b", input={"k\u0000": "v\u0000w", "list": ["\u0000"]}),
        span("nul", "s", name="x\u0000", attributes={"note": "lit \\u0000 text\u0000"}),
    ])  # fmt: skip
    [stored] = _rows(tenant, Trace)
    assert stored.name == "ab" and stored.input == {"k": "vw", "list": [""]}
    [stored_span] = _rows(tenant, Span)
    assert stored_span.name == "x" and stored_span.attributes == {"note": "lit \\u0000 text"}


def test_parent_cycles_through_stored_spans_are_rejected(tenant, ingest):
    ingest([span("cyc", "b", parent_id="a"), span("cyc", "c", parent_id="b")])
    result = ingest([span("cyc", "a", parent_id="c"), span("cyc", "d", parent_id="a")], expect=207)
    assert [(r["index"], r["code"]) for r in result["rejected"]] == [(0, "parent_cycle")]
    # Within one batch too.
    result = ingest(
        [span("cyc2", "x", parent_id="y"), span("cyc2", "y", parent_id="x")], expect=207
    )
    assert {r["code"] for r in result["rejected"]} == {"parent_cycle"}
    assert {s.external_id for s in _rows(tenant, Span)} == {"b", "c", "d"}


def test_a_score_on_a_missing_span_is_rejected(tenant, ingest):
    result = ingest(
        [event("score", {"trace_id": "t", "span_id": "nope", "name": "n", "value": 1,
                         "source": "code"})], expect=207)  # fmt: skip
    assert result["rejected"][0]["code"] == "unknown_target"
    assert _rows(tenant, Score) == []
    assert _rows(tenant, Trace) == []  # no empty placeholder left behind
    # The span exists in a stored trace: a later score on it is accepted.
    ingest([span("t", "there")])
    result = ingest([event("feedback", {"trace_id": "t", "span_id": "there", "kind": "rating",
                                        "value": 2})])  # fmt: skip
    assert result["stored"]["feedback"] == 1
    assert _rows(tenant, Feedback)[0].span.external_id == "there"


def test_malformed_json_answers_400_in_the_error_shape(tenant, client_for):
    client = client_for(key=tenant.key("ingest"))
    response = client.generic("POST", ingest_url(tenant), b'{"events": [', "application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    response = client.post(ingest_url(tenant), {"events": "nope"}, format="json")
    assert response.status_code == 400 and "events" in response.json()["error"]["details"]
    response = client.generic("POST", ingest_url(tenant), b'{"events": [NaN]}', "application/json")
    assert response.status_code == 400


def test_batch_length_and_body_size_limits_answer_413_naming_the_limit(
    tenant, client_for, settings
):
    from traces.ingest import limits

    client = client_for(key=tenant.key("ingest"))
    events = [trace(f"t{n}") for n in range(limits.MAX_EVENTS_PER_BATCH + 1)]
    response = post(client, tenant, events)
    assert response.status_code == 413
    assert str(limits.MAX_EVENTS_PER_BATCH) in response.json()["error"]["message"]
    body = json.dumps({"events": [trace("big", input="x" * (limits.MAX_BODY_BYTES + 10))]})
    response = client.generic("POST", ingest_url(tenant), body, "application/json")
    assert response.status_code == 413
    assert response.json()["error"]["details"]["limit_bytes"] == limits.MAX_BODY_BYTES


def test_overload_answers_429_with_retry_after(tenant, client_for, settings):
    from hitl.api.throttling import CallerRateThrottle

    rates = {**CallerRateThrottle.THROTTLE_RATES, "ingest": "2/min"}
    CallerRateThrottle.THROTTLE_RATES = rates
    try:
        client = client_for(key=tenant.key("ingest"))
        assert post(client, tenant, [trace("a")]).status_code == 200
        assert post(client, tenant, [trace("b")]).status_code == 200
        response = post(client, tenant, [trace("c")])
    finally:
        del rates["ingest"]
        CallerRateThrottle.THROTTLE_RATES = {**rates, "ingest": "3000/min"}
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "throttled"


def test_only_ingest_keys_and_managers_may_post(tenant, other_tenant, client_for):
    events = [trace("perm")]
    assert post(client_for(key=tenant.key("read")), tenant, events).status_code == 403
    assert post(client_for(key=tenant.key("write")), tenant, events).status_code == 403
    assert post(client_for(tenant.reviewer), tenant, events).status_code == 403
    assert post(client_for(tenant.admin), tenant, events).status_code == 200
    # Another organization's key and project answer 404, like a missing one.
    assert post(client_for(key=other_tenant.key("ingest")), tenant, events).status_code == 404
    response = post(client_for(key=tenant.key("ingest")), other_tenant, events,
                    project=other_tenant.project)  # fmt: skip
    assert response.status_code == 404
    assert post(client_for(), tenant, events).status_code in (401, 403)


def test_single_score_and_feedback_endpoints(tenant, client_for):
    client = client_for(key=tenant.key("ingest"))
    base = ingest_url(tenant)
    body = {"id": "one", "trace_id": "t1", "name": "relevance", "value": 0.7, "source": "code"}
    response = client.post(f"{base}scores/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["value"] == 0.7 and response.json()["trace_id"] == "t1"
    response = client.post(f"{base}scores/", {**body, "value": 0.1}, format="json")
    assert response.status_code == 201 and len(_rows(tenant, Score)) == 1
    response = client.post(f"{base}scores/", {**body, "source": "human"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_choice"
    response = client.post(
        f"{base}feedback/", {"trace_id": "t1", "kind": "thumbs", "value": True}, format="json"
    )
    assert response.status_code == 201 and response.json()["value"] == 1


def test_rollup_in_one_batch_equals_rollup_over_several(tenant, ingest):
    def spans_of(trace_id):
        return [
            span(trace_id, "a", kind="agent", input_tokens=1000, cost=None,
                 start_time=at(0), end_time=at(10)),
            span(trace_id, "b", kind="llm", input_tokens=7, output_tokens=3, cost=0.1,
                 status="error", error="second failure", start_time=at(5), end_time=at(6)),
            span(trace_id, "c", kind="embedding", input_tokens=2, total_tokens=2,
                 status="error", error="first failure", start_time=at(1), end_time=at(2)),
            span(trace_id, "d", kind="tool", cost=0.05, status="error", error="no start"),
        ]  # fmt: skip

    ingest(spans_of("together"))
    for one in spans_of("apart"):
        ingest([one])
    fields = ("input_tokens", "output_tokens", "total_tokens", "cost", "start_time",
              "end_time", "latency_ms", "status", "error_message", "is_placeholder")  # fmt: skip
    together, apart = (_rows(tenant, Trace, external_id=name)[0] for name in ("together", "apart"))
    assert {f: getattr(together, f) for f in fields} == {f: getattr(apart, f) for f in fields}
    assert (together.input_tokens, together.total_tokens) == (9, 12)
    assert together.error_message == "first failure" and together.status == "error"
    # Fixed spans plus a re-sent trace event clear the error.
    ingest([span("apart", name, kind="tool", status="ok") for name in ("b", "c", "d")])
    ingest([trace("apart", status="ok", error="")])
    cleared = _rows(tenant, Trace, external_id="apart")[0]
    assert (cleared.status, cleared.error_message) == ("ok", "")


def test_gzip_batches_are_accepted_and_bombs_refused(tenant, client_for):
    import gzip

    from traces.ingest import limits

    client = client_for(key=tenant.key("ingest"))
    body = gzip.compress(json.dumps({"events": [trace("zipped", name="gz")]}).encode())
    response = client.generic(
        "POST", ingest_url(tenant), body, "application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 200, response.content
    assert _rows(tenant, Trace)[0].name == "gz"
    bomb = gzip.compress(b" " * (limits.MAX_BODY_BYTES + 1))
    response = client.generic(
        "POST", ingest_url(tenant), bomb, "application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 413
    response = client.generic(
        "POST", ingest_url(tenant), b"not gzip", "application/json", HTTP_CONTENT_ENCODING="gzip"
    )
    assert response.status_code == 400


def test_an_event_type_that_is_not_a_string_is_rejected_not_a_crash(tenant, client_for):
    response = post(
        client_for(key=tenant.key("ingest")),
        tenant,
        [{"type": {}, "id": "e1", "body": {}}, {"type": ["span"], "body": {}}],
    )
    assert response.status_code == 207, response.content
    codes = [r["code"] for r in response.json()["rejected"]]
    assert codes == ["unknown_type", "unknown_type"]
