"""The trace filter (traces.selectors.traces_matching): every parameter, proven by which
traces come back, and every kind of bad value, proven by its per-parameter reason."""

from __future__ import annotations

import pytest

from hitl.audit import Actor
from hitl.exceptions import DomainError
from hitl.tenancy import tenant_scope
from projects import services as project_services
from tests.traces.read_builders import at, make_feedback, make_score, make_span, make_thread
from tests.traces.read_builders import make_trace as _make_trace
from traces.models import Trace
from traces.selectors import trace_list_filter_apply, traces_matching, validate_trace_filter

ALL = {"alpha", "beta", "gamma", "delta"}


@pytest.fixture
def traces(tenant):
    """Four traces that differ on every filterable property, plus a decoy in a second
    project of the same organization that matches nearly everything."""
    project = tenant.project
    thread_1 = make_thread(project, "th-1")
    thread_2 = make_thread(project, "th-2")

    alpha = _make_trace(
        project, "alpha", name="checkout", tags=["prod", "vip"], thread=thread_1,
        status="ok", latency_ms=120, cost=0.01, input_tokens=100, output_tokens=50,
        total_tokens=150, metadata={"customer": "acme", "tier": 3},
        input={"question": "Where is my parcel?"}, output="It ships Monday",
        start_time=at(days=0),
    )  # fmt: skip
    make_span(alpha, "a1", model="gpt-4o", kind="llm")
    make_score(alpha, "correctness", 0.3)
    make_score(alpha, "toxicity", 0.9, source="code")
    make_feedback(alpha, "thumbs", -1)

    beta = _make_trace(
        project, "beta", name="checkout-v2", tags=["prod"], thread=thread_1,
        status="error", latency_ms=2500, cost=0.5, input_tokens=1000, output_tokens=500,
        total_tokens=1500, metadata={"customer": "globex"},
        input={"question": "Bulk order"}, output={"answer": "1000 items shipped"},
        start_time=at(days=1),
    )  # fmt: skip
    make_span(beta, "b1", model="claude-3-5-sonnet", kind="llm")
    make_score(beta, "correctness", 0.9)
    make_score(beta, "correctness", 0.2, source="human", data_type="numeric")
    make_feedback(beta, "thumbs", 1)
    make_feedback(beta, "rating", 4)

    gamma = _make_trace(
        project, "gamma", name="search", status="ok", latency_ms=40, input_tokens=10,
        output_tokens=5, total_tokens=15, metadata={"customer": "acme", "beta": True},
        input={"question": "refund policy for 100% orders"}, output=None,
        start_time=at(days=2),
    )  # fmt: skip
    make_span(gamma, "g1", model="gpt-4o-mini", kind="llm")
    make_score(gamma, "correctness", 0.6, source="code")
    make_score(gamma, "tone", label="rude")
    make_feedback(gamma, "rating", 2)

    delta = _make_trace(
        project, "delta", name="search", tags=["vip"], thread=thread_2,
        metadata={"tier": "3"}, start_time=at(days=3),
    )  # fmt: skip
    make_score(delta, "correctness", 0.1, source="human")

    with tenant_scope(tenant.organization.pk):
        other_project = project_services.project_create(
            actor=Actor(user=tenant.owner), name="Other project"
        )
    decoy = _make_trace(
        other_project, "decoy", name="checkout", tags=["prod", "vip"], status="error",
        metadata={"customer": "acme"}, input="Where is my parcel?", start_time=at(days=1),
        latency_ms=120,
    )  # fmt: skip
    make_span(decoy, "d1", model="gpt-4o")
    make_score(decoy, "correctness", 0.1)
    make_feedback(decoy, "thumbs", -1)
    return tenant


def matching(tenant, params, list_limits: tuple[int, int] | None = None) -> set[str]:
    with tenant_scope(tenant.organization.pk):
        if list_limits is None:
            queryset = traces_matching(project=tenant.project, params=params)
        else:
            rare_limit, by_id_limit = list_limits
            queryset = trace_list_filter_apply(
                Trace.objects.all(),
                params,
                project=tenant.project,
                rare_limit=rare_limit,
                by_id_limit=by_id_limit,
            )
        return set(queryset.values_list("external_id", flat=True))


# How a list request may run a filter: (rare_limit, by_id_limit).
LIST_STRATEGIES = [
    (1000, 1000),  # every related condition read as ids, the page fetched by id
    (1, 1000),  # only conditions a single row satisfies read as ids
    (1000, 1),  # ids read, then narrowed by the other conditions, or given up
    (1000, 0),  # ids read and given up: the plain filter
]


MATCH_CASES = [
    ({}, ALL),
    # time range: from inclusive, to exclusive
    ({"start_time_from": "2026-01-02T10:00:00Z"}, {"beta", "gamma", "delta"}),
    ({"start_time_to": "2026-01-02T10:00:00Z"}, {"alpha"}),
    (
        {"start_time_from": "2026-01-02T00:00:00Z", "start_time_to": "2026-01-03T00:00:00Z"},
        {"beta"},
    ),
    # name
    ({"name": "search"}, {"gamma", "delta"}),
    ({"name": "checkout"}, {"alpha"}),
    ({"name_contains": "CHECK"}, {"alpha", "beta"}),
    # tags: all of
    ({"tags": "prod"}, {"alpha", "beta"}),
    ({"tags": ["prod", "vip"]}, {"alpha"}),
    ({"tags": ["vip"]}, {"alpha", "delta"}),
    # thread external id
    ({"thread": "th-1"}, {"alpha", "beta"}),
    ({"thread": "th-2"}, {"delta"}),
    ({"thread": "th-unknown"}, set()),
    # model: any span with exactly that model
    ({"model": "gpt-4o"}, {"alpha"}),
    ({"model": "gpt-4o-mini"}, {"gamma"}),
    # status / has_error
    ({"status": "error"}, {"beta"}),
    ({"status": "unset"}, {"delta"}),
    ({"has_error": "true"}, {"beta"}),
    ({"has_error": "false"}, {"alpha", "gamma", "delta"}),
    # latency, cost, tokens
    ({"latency_ms_min": "100"}, {"alpha", "beta"}),
    ({"latency_ms_max": "100"}, {"gamma"}),
    ({"latency_ms_min": "100", "latency_ms_max": "200"}, {"alpha"}),
    ({"cost_min": "0.1"}, {"beta"}),
    ({"cost_max": "0.1"}, {"alpha"}),
    ({"total_tokens_min": "150"}, {"alpha", "beta"}),
    ({"total_tokens_max": "149"}, {"gamma", "delta"}),
    ({"input_tokens_max": "100"}, {"alpha", "gamma", "delta"}),
    ({"input_tokens_min": "1000"}, {"beta"}),
    ({"output_tokens_min": "100"}, {"beta"}),
    ({"output_tokens_max": "5", "output_tokens_min": "1"}, {"gamma"}),
    # metadata key:value, repeatable, all must match; numbers and booleans too
    ({"metadata": "customer:acme"}, {"alpha", "gamma"}),
    ({"metadata": ["customer:acme", "tier:3"]}, {"alpha"}),
    ({"metadata": "tier:3"}, {"alpha", "delta"}),
    ({"metadata": "beta:true"}, {"gamma"}),
    ({"metadata": "customer:initech"}, set()),
    # automated score thresholds (human scores never count here)
    ({"score": "correctness<0.5"}, {"alpha"}),
    ({"score": "correctness <= 0.3"}, {"alpha"}),
    ({"score": "correctness>=0.6"}, {"beta", "gamma"}),
    ({"score": "correctness>0.6"}, {"beta"}),
    ({"score": "correctness=0.9"}, {"beta"}),
    ({"score": "correctness!=0.9"}, {"alpha", "gamma"}),
    ({"score": "toxicity>=0.8"}, {"alpha"}),
    ({"score": ["correctness<0.5", "toxicity>=0.8"]}, {"alpha"}),
    ({"score": ["correctness<0.5", "toxicity<0.8"]}, set()),
    ({"score": "tone=rude"}, {"gamma"}),
    ({"score": "tone!=rude"}, set()),
    ({"score": "toxicity"}, {"alpha"}),
    # end-user feedback
    ({"feedback": "thumbs_down"}, {"alpha"}),
    ({"feedback": "thumbs_up"}, {"beta"}),
    ({"feedback": "any"}, {"alpha", "beta", "gamma"}),
    ({"feedback": "none"}, {"delta"}),
    ({"feedback_rating_min": "3"}, {"beta"}),
    ({"feedback_rating_max": "3"}, {"gamma"}),
    ({"feedback_rating_min": "2", "feedback_rating_max": "4"}, {"beta", "gamma"}),
    # human review state
    ({"reviewed": "true"}, {"beta", "delta"}),
    ({"reviewed": "false"}, {"alpha", "gamma"}),
    # text in input/output, any case; LIKE wildcards are literal
    ({"q": "parcel"}, {"alpha"}),
    ({"q": "MONDAY"}, {"alpha"}),
    ({"q": "100%"}, {"gamma"}),
    ({"q": "1000 items"}, {"beta"}),
    ({"q": "nowhere to be found"}, set()),
    # combinations narrow
    ({"tags": "prod", "has_error": "false", "metadata": "customer:acme"}, {"alpha"}),
    ({"name": "search", "reviewed": "true"}, {"delta"}),
    # empty values are no filter
    ({"name": "", "tags": []}, ALL),
]


def test_trace_filter_returns_exactly_the_matching_traces(traces):
    # One data set for every case (building a tenant is the slow part); every mismatch
    # is reported, not just the first. Each case runs as a stored filter runs it and
    # in every way a list request may.
    mismatches = []
    for params, expected in MATCH_CASES:
        for strategy in [None, *LIST_STRATEGIES]:
            got = matching(traces, params, strategy)
            if got != expected:
                mismatches.append((params, strategy, sorted(expected), sorted(got)))
    assert mismatches == []


INVALID_CASES = [
    ({"start_time_from": "yesterday"}, "start_time_from", "valid date/time"),
    ({"start_time_to": "2026-13-45"}, "start_time_to", "valid date/time"),
    ({"status": "broken"}, "status", "valid choice"),
    ({"has_error": "maybe"}, "has_error", "true or false"),
    ({"reviewed": "perhaps"}, "reviewed", "true or false"),
    ({"latency_ms_min": "fast"}, "latency_ms_min", "number"),
    ({"cost_max": "1e999999"}, "cost_max", ""),
    ({"total_tokens_min": "1.5"}, "total_tokens_min", "whole number"),
    ({"metadata": "no-colon"}, "metadata", "key:value"),
    ({"metadata": ":acme"}, "metadata", "key:value"),
    ({"score": "correctness<<0.5"}, "score", "needs a number"),
    ({"score": "<0.5"}, "score", "name<op>value"),
    ({"score": "correctness>"}, "score", "value is needed"),
    ({"score": "correctness<nan"}, "score", "finite"),
    ({"score": "tone>rude"}, "score", "needs a number"),
    ({"feedback": "meh"}, "feedback", "valid choice"),
    ({"feedback_rating_min": "high"}, "feedback_rating_min", "number"),
    ({"q": "ab"}, "q", "at least 3"),
    ({"name": "x" * 300}, "name", "at most 256"),
    ({"tags": [f"t{i}" for i in range(21)]}, "tags", "At most 20"),
    ({"surprise": "1"}, "surprise", "Unknown filter"),
]


def test_invalid_filter_names_the_parameter_and_the_reason(tenant):
    wrong = []
    for params, field, reason in INVALID_CASES:
        with tenant_scope(tenant.organization.pk), pytest.raises(DomainError) as raised:
            traces_matching(project=tenant.project, params=params)
        details = raised.value.details
        if set(details) != {field} or reason.lower() not in " ".join(details[field]).lower():
            wrong.append((params, details))
        # The validator used by routing rules gives the same answer, without a tenant.
        with pytest.raises(DomainError) as validated:
            validate_trace_filter(params)
        assert validated.value.details == details
    assert wrong == []


def test_every_bad_parameter_is_reported_at_once(db):
    with pytest.raises(DomainError) as raised:
        validate_trace_filter(
            {"score": ["correctness<0.5", "bad<<1"], "status": "x", "reviewed": "y"}
        )
    details = raised.value.details
    assert set(details) == {"score", "status", "reviewed"}
    # Only the bad value of a repeatable parameter is named.
    assert details["score"] == ["'bad<<1': < needs a number; compare labels with = or !=."]


def test_validate_trace_filter_returns_the_parameters_to_store(db):
    assert validate_trace_filter(
        {"score": "correctness<0.5", "tags": ["a", "b"], "name": "", "reviewed": "true"}
    ) == {"score": ["correctness<0.5"], "tags": ["a", "b"], "reviewed": "true"}
