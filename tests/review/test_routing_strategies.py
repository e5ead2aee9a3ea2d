"""Routing strategies beside match-and-sample: a judge's score in an uncertainty band,
two judges that disagree, reviewers that disagreed (one more review in another queue),
each with the reason it chose a trace, stored on the item and shown in the preview."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from django.db import transaction

from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import DomainError
from review import services
from review.models import ItemStatus, QueueItem, ReviewQueue, RoutingRule, RoutingRuleDay
from tests.factories import Tenant
from tests.page_clients import project_url, signed_in
from tests.review.helpers import add_reviewers, make_config, make_queue, make_trace
from traces.models import Score, Trace

BAND = {"score_name": "faithfulness", "low": 0.4, "high": 0.6}


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("the worker did not route in time")


def _score(trace: Trace, name: str, value: float | None = None, **fields: Any) -> Score:
    fields.setdefault("data_type", "numeric" if value is not None else "categorical")
    fields.setdefault("source", "llm_judge")
    with tenancy.tenant_scope(trace.organization_id):
        return Score.objects.create(
            project_id=trace.project_id, trace=trace, name=name, value=value, **fields
        )


def _scored(tenant: Tenant, **scores: Any) -> Trace:
    """A trace with automated scores: a number, or a label for a categorical one."""
    trace = make_trace(tenant)
    for name, value in scores.items():
        if isinstance(value, str):
            _score(trace, name, label=value)
        else:
            _score(trace, name, value)
    return trace


def _rule(tenant: Tenant, queue: ReviewQueue, **fields: Any) -> RoutingRule:
    fields.setdefault("name", f"rule {fields.get('strategy')}")
    fields.setdefault("signal", "low_score")
    fields.setdefault("filter_params", {})
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.routing_rule_create(
            actor=Actor(user=tenant.owner), project=tenant.project, queue_id=queue.pk, **fields
        )


def _routed(tenant: Tenant, queue: ReviewQueue) -> dict[int, str]:
    """trace id -> the stored reason of each item routed into ``queue``."""
    with tenancy.tenant_scope(tenant.organization.pk):
        return {
            item.trace_id: item.source_detail.get("reason")
            for item in QueueItem.objects.filter(queue=queue)
        }


def _review(tenant: Tenant, queue: ReviewQueue, reviewers: list, key: str, answers: list) -> None:
    with tenancy.tenant_scope(tenant.organization.pk):
        for user, answer in zip(reviewers, answers, strict=True):
            lease = services.queue_claim_next(actor=Actor(user=user), queue=queue)
            services.assignment_submit(
                actor=Actor(user=user), assignment_id=lease.pk, values={key: answer}
            )


@pytest.mark.worker
def test_each_strategy_routes_exactly_the_right_traces_through_the_worker(celery_worker, tenant):
    # The judges' scores exist before the rules name them (an unknown name is refused).
    seed = _scored(tenant, faithfulness=0.1, judge_a=0.1, judge_b=0.1, tone_a="x", tone_b="x")
    band_q, judges_q, tone_q = (make_queue(tenant, name=n) for n in ("band", "judges", "tone"))
    band = _rule(tenant, band_q, strategy="uncertainty_band",
                 strategy_params=BAND)  # fmt: skip
    judges = _rule(tenant, judges_q, strategy="judges_disagree",
                   strategy_params={"score_a": "judge_a", "score_b": "judge_b",
                                    "min_difference": 0.5})  # fmt: skip
    # Categorical judges, any difference; the budget per day is one item.
    tone = _rule(tenant, tone_q, strategy="judges_disagree", daily_cap=1,
                 strategy_params={"score_a": "tone_a", "score_b": "tone_b"})  # fmt: skip

    with transaction.atomic():
        in_band = _scored(tenant, faithfulness=0.48)
        on_edge = _scored(tenant, faithfulness=0.6)
        sure = _scored(tenant, faithfulness=0.9)
        human = make_trace(tenant)
        _score(human, "faithfulness", 0.5, source="human")
        far = _scored(tenant, judge_a=0.9, judge_b=0.2)
        near = _scored(tenant, judge_a=0.7, judge_b=0.5)
        lonely = _scored(tenant, judge_a=0.9)
        rude = _scored(tenant, tone_a="polite", tone_b="rude")
        curt = _scored(tenant, tone_a="polite", tone_b="curt")
        agreed = _scored(tenant, tone_a="polite", tone_b="polite")
        traces = [seed, in_band, on_edge, sure, human, far, near, lonely, rude, curt, agreed]
        with tenancy.tenant_scope(tenant.organization.pk):
            services.routing_enqueue_for_new_traces(
                project=tenant.project, trace_ids=[t.pk for t in traces]
            )

    _wait_for(lambda: len(_routed(tenant, band_q)) == 2 and _routed(tenant, tone_q))
    _wait_for(lambda: _routed(tenant, judges_q))
    assert _routed(tenant, band_q) == {
        in_band.pk: "faithfulness 0.48 in band 0.4\u20130.6",
        on_edge.pk: "faithfulness 0.6 in band 0.4\u20130.6",
    }
    assert _routed(tenant, judges_q) == {
        far.pk: "judge_a 0.9 vs judge_b 0.2 (difference 0.7 ≥ 0.5)"
    }
    # Two disagreeing traces, a budget of one: the first by id.
    assert _routed(tenant, tone_q) == {rude.pk: "tone_a polite vs tone_b rude"}
    with tenancy.tenant_scope(tenant.organization.pk):
        assert RoutingRuleDay.objects.get(rule=tone).routed == 1
        item = QueueItem.objects.get(queue=band_q, trace=in_band)
    assert (item.routing_rule_id, item.source_detail["strategy"]) == (band.pk, "uncertainty_band")
    assert judges.strategy == "judges_disagree"

    # Reviewers who disagree: the trace goes to the seniors' queue for one more review.
    config = make_config(tenant)
    first, second = add_reviewers(tenant, 2)
    first_q = make_queue(tenant, name="first pass", configs=[config], reviewers=[first, second],
                         overlap=2)  # fmt: skip
    senior_q = make_queue(tenant, name="seniors", configs=[config])
    _rule(tenant, senior_q, strategy="reviewers_disagree", source_queue_id=first_q.pk)
    split, unanimous = make_trace(tenant), make_trace(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        for trace in (split, unanimous):
            services.queue_item_add(
                actor=Actor(user=tenant.owner), queue=first_q, trace_id=trace.pk
            )
    key = str(config.pk)
    _review(tenant, first_q, [first, second], key, [0.0, 1.0])
    _review(tenant, first_q, [first, second], key, [1.0, 1.0])
    with tenancy.tenant_scope(tenant.organization.pk):
        assert QueueItem.objects.get(queue=first_q, trace=split).status == (
            ItemStatus.NEEDS_ADJUDICATION
        )
    _wait_for(lambda: _routed(tenant, senior_q))
    assert _routed(tenant, senior_q) == {
        split.pk: f"reviewers disagreed in “first pass” ({config.name}: 0, 1)"
    }


def test_a_bad_band_or_bad_judges_are_refused_with_a_reason(tenant, client_for):
    _scored(tenant, faithfulness=0.5, other=0.5)
    queue = make_queue(tenant)

    def refused(**fields: Any) -> dict:
        with pytest.raises(DomainError) as caught:
            _rule(tenant, queue, **fields)
        return caught.value.details

    band = {"score_name": "faithfulness", "low": 0.6, "high": 0.4}
    assert (
        "below its bottom"
        in refused(strategy="uncertainty_band", strategy_params=band)["strategy_params"]["high"][0]
    )
    for nan in (math.nan, "NaN", math.inf):
        params = {**band, "low": nan}
        assert refused(strategy="uncertainty_band", strategy_params=params)["strategy_params"][
            "low"
        ] == ["A finite number (not NaN or infinity)."]
    unknown = {**band, "score_name": "no_such_judge", "low": 0.4, "high": 0.6}
    assert (
        "No automated score named “no_such_judge”"
        in refused(strategy="uncertainty_band", strategy_params=unknown)["strategy_params"][
            "score_name"
        ][0]
    )
    same = {"score_a": "faithfulness", "score_b": "faithfulness"}
    assert "score_b" in refused(strategy="judges_disagree", strategy_params=same)["strategy_params"]
    assert "source_queue_id" in refused(strategy="reviewers_disagree")
    assert "source_queue_id" in refused(strategy="reviewers_disagree", source_queue_id=queue.pk)
    assert "strategy" in refused(strategy="guess")
    # A match-and-sample rule still needs its filter.
    assert "filter_params" in refused(strategy="match_and_sample")

    # Over the API: 400 with the reasons per field.
    url = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/routing-rules/"
    body = {"name": "unsure", "queue_id": queue.pk, "signal": "low_score", "filter_params": {},
            "strategy": "uncertainty_band", "strategy_params": band}  # fmt: skip
    response = client_for(tenant.owner).post(url, body, format="json")
    assert response.status_code == 400
    assert "high" in response.json()["error"]["details"]["strategy_params"]
    body["strategy_params"] = {**band, "low": 0.4, "high": 0.6}
    created = client_for(tenant.owner).post(url, body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["strategy_params"] == {"score_name": "faithfulness", "low": 0.4,
                                                 "high": 0.6}  # fmt: skip
    # An edit is checked with what the rule keeps: a top below the kept bottom.
    rule_url = f"{url}{created.json()['id']}/"
    edit = client_for(tenant.owner).patch(
        rule_url, {"strategy_params": {**band, "low": 0.7, "high": 0.2}}, format="json"
    )
    assert edit.status_code == 400
    moved = client_for(tenant.owner).patch(
        rule_url, {"strategy_params": {"score_name": "other", "low": 0, "high": 1}}, format="json"
    )
    assert moved.status_code == 200, moved.content
    assert moved.json()["strategy_params"]["score_name"] == "other"


def test_the_preview_shows_why_each_trace_was_chosen(tenant):
    from review.pages.lead_selectors import routing_preview
    from review.services.routing_strategies import DraftSpec

    unsure, sure = _scored(tenant, faithfulness=0.55), _scored(tenant, faithfulness=0.95)
    spec = DraftSpec(
        strategy="uncertainty_band",
        strategy_params={"score_name": "faithfulness", "low": 0.4, "high": 0.6},
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        preview = routing_preview(
            project=tenant.project, filter_params={}, sampling_rate=1.0, strategy=spec
        )
    rows = {row["pk"]: row for row in preview["rows"]}
    assert rows[unsure.pk]["taken"] and rows[unsure.pk]["reason"] == (
        "faithfulness 0.55 in band 0.4\u20130.6"
    )
    assert sure.pk not in rows or not rows[sure.pk]["taken"]
    assert preview["taken"] == 1


def test_another_organizations_scores_never_influence_routing(tenant, other_tenant):
    queue = make_queue(tenant)
    # Only the other organization has a score by this name: the rule is refused.
    _scored(other_tenant, faithfulness=0.5)
    with pytest.raises(DomainError) as caught:
        _rule(tenant, queue, strategy="uncertainty_band",
              strategy_params=BAND)  # fmt: skip
    assert "score_name" in caught.value.details["strategy_params"]

    sure = _scored(tenant, faithfulness=0.95)
    rule = _rule(tenant, queue, strategy="uncertainty_band",
                 strategy_params=BAND)  # fmt: skip
    # A row of the other organization's on this trace, in band: never read.
    with tenancy.tenant_scope(other_tenant.organization.pk):
        Score.objects.create(
            project_id=other_tenant.project.pk, trace_id=sure.pk, name="faithfulness",
            value=0.5, data_type="numeric", source="llm_judge",
        )  # fmt: skip
    with tenancy.tenant_scope(tenant.organization.pk):
        routed = services.routing_apply(project_id=tenant.project.pk, trace_ids=[sure.pk])
        assert routed.get(rule.pk) is None
        assert not QueueItem.objects.filter(queue=queue).exists()


def test_the_item_page_says_why_the_trace_was_routed(tenant):
    queue = make_queue(tenant)
    far = _scored(tenant, judge_a=0.9, judge_b=0.2)
    _rule(tenant, queue, strategy="judges_disagree",
          strategy_params={"score_a": "judge_a", "score_b": "judge_b"})  # fmt: skip
    with tenancy.tenant_scope(tenant.organization.pk):
        services.routing_apply(project_id=tenant.project.pk, trace_ids=[far.pk])
        item = QueueItem.objects.get(queue=queue, trace=far)
    page = signed_in(tenant.owner).get(
        project_url(tenant, "lead-item", queue_pk=queue.pk, item_pk=item.pk)
    )
    assert page.status_code == 200
    assert "judge_a 0.9 vs judge_b 0.2 (difference 0.7)" in page.content.decode()


def test_the_rule_pages_take_a_strategy_refuse_a_bad_band_and_preview_why(tenant):
    queue = make_queue(tenant)
    unsure, sure = _scored(tenant, faithfulness=0.45), _scored(tenant, faithfulness=0.9)
    client = signed_in(tenant.admin)
    rules_url = project_url(tenant, "lead-queue-rules", queue_pk=queue.pk)
    band = {"name": "Unsure", "signal": "low_score", "strategy": "uncertainty_band",
            "score_name": "faithfulness", "band_low": "0.6", "band_high": "0.4"}  # fmt: skip
    refused = client.post(rules_url, band)
    assert refused.status_code == 422
    errors = {f["name"]: f["errors"] for f in refused.context["rule_fields"]}
    assert "below its bottom" in " ".join(errors["band_high"])
    assert 'id="rule-band-high" name="band_high"' in refused.content.decode()
    nan = client.post(rules_url, {**band, "band_low": "NaN"})
    assert nan.status_code == 422
    assert {f["name"]: f["errors"] for f in nan.context["rule_fields"]}["band_low"] == [
        "A finite number (not NaN or infinity)."
    ]

    preview = client.get(
        project_url(tenant, "lead-rule-preview", queue_pk=queue.pk),
        {**band, "band_low": "0.4", "band_high": "0.6"},
    )
    rows = {row["pk"]: row for row in preview.context["preview"]["rows"]}
    assert rows[unsure.pk]["taken"] and not rows[sure.pk]["taken"]
    assert "faithfulness 0.45 in band 0.4\u20130.6" in preview.content.decode()

    created = client.post(rules_url, {**band, "band_low": "0.4", "band_high": "0.6"})
    assert created.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        rule = RoutingRule.objects.get(queue=queue)
    assert (rule.strategy, rule.strategy_params, rule.filter_params) == (
        "uncertainty_band",
        {"score_name": "faithfulness", "low": 0.4, "high": 0.6},
        {},
    )
    listed = client.get(rules_url).content.decode()
    assert "faithfulness in band 0.4\u20130.6" in listed
    # The rules list's preview (no strategy sent) is the saved rule's own pick.
    own = client.get(
        project_url(tenant, "lead-rule-preview", queue_pk=queue.pk),
        {"sampling_percent": "100", "rule": rule.pk},
    ).context["preview"]
    assert own["exact"] and own["taken"] == 1
    edit = client.get(project_url(tenant, "lead-rule-edit", queue_pk=queue.pk, rule_pk=rule.pk))
    assert edit.status_code == 200 and 'value="0.6"' in edit.content.decode()
