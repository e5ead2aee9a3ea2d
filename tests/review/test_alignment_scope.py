"""Alignment counts production answers by default: calibration rounds, the gold items
mixed into a live queue, and a reviewer whose latest calibration on the question
failed are left out (and counted as left out in the report); ``all`` counts every
answer; a mapping may be narrowed to one queue. The scope is set through the API,
stored in each report, written in the CSV and shown on the quality page."""

from __future__ import annotations

import csv
import io

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import QueueItem
from review.quality.models import AlignmentReport
from review.quality.services import alignment, calibration
from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue, make_trace
from traces.models import Score

LABELS = ["wrong", "right"]


def _answer_all(queue, user, answer_of) -> int:
    actor = Actor(user=user)
    answered = 0
    while (lease := services.queue_claim_next(actor=actor, queue=queue)) is not None:
        item = QueueItem.objects.get(pk=lease.item_id)
        services.assignment_submit(
            actor=actor, assignment_id=lease.pk, values={answer_of["key"]: answer_of[item.trace_id]}
        )
        answered += 1
    return answered


def _world(tenant):
    """A live queue (overlap 2) of four traces the judge passes, answered 'right' by a
    steady reviewer and 'wrong' by a newcomer who failed calibration; two gold traces
    (gold 'right') mixed into the queue and answered 'wrong' there by both, and by the
    newcomer in the calibration round."""
    config = make_config(
        tenant, name="correct", data_type="categorical", min_value=None, max_value=None,
        step=None, options=[{"label": label, "value": float(i)} for i, label in enumerate(LABELS)],
    )  # fmt: skip
    steady, newcomer = add_reviewers(tenant, 2)
    live = make_queue(tenant, configs=[config], reviewers=[steady, newcomer], overlap=2)
    ordinary = [item.trace_id for item in add_traces(tenant, live, 4)]
    gold = [make_trace(tenant).pk for _ in range(2)]
    owner = Actor(user=tenant.owner)
    key = str(config.pk)
    with tenancy.tenant_scope(tenant.organization.pk):
        cal = calibration.calibration_set_create(
            actor=owner, project=tenant.project, name="onboarding", config_ids=[config.pk],
            min_accuracy=0.75,
        )  # fmt: skip
        for trace_id in gold:
            calibration.gold_answer_set(
                actor=owner, calibration_set=cal, trace_id=trace_id, values={key: "right"}
            )
        round_ = calibration.calibration_round_start(
            actor=owner, calibration_set=cal, reviewer_ids=[newcomer.pk]
        )
        assert _answer_all(round_.queue, newcomer, {"key": key, **dict.fromkeys(gold, "wrong")})
        calibration.calibration_round_score(actor=owner, round_=round_)
        calibration.queue_calibration_set(
            actor=owner, queue=live, calibration_set=cal, require_pass=False, gold_rate=0.5,
            gold_min_accuracy=0.5,
        )  # fmt: skip
        assert calibration.queue_gold_mix(actor=owner, queue=live) == 2
        steady_answers = {"key": key, **dict.fromkeys(ordinary, "right"),
                          **dict.fromkeys(gold, "wrong")}  # fmt: skip
        assert _answer_all(live, steady, steady_answers) == 6
        newcomer_answers = {"key": key, **dict.fromkeys(ordinary + gold, "wrong")}
        assert _answer_all(live, newcomer, newcomer_answers) == 6
        for trace_id in ordinary + gold:
            Score.objects.create(
                project=tenant.project, trace_id=trace_id, name="judge-correct",
                data_type="boolean", value=1.0, source="llm_judge", source_name="judge",
            )  # fmt: skip
    return config, live, round_


def _api(tenant, tail: str = "") -> str:
    return (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/alignment-mappings/{tail}"
    )


def test_production_scope_leaves_out_calibration_gold_and_a_failing_newcomer(tenant):
    config, _live, _round = _world(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        mapping = alignment.alignment_mapping_create(
            actor=Actor(user=tenant.owner), project=tenant.project, score_name="judge-correct",
            config_id=config.pk, human_pass_labels=["right"],
        )  # fmt: skip
        assert mapping.scope == "production"
        report = alignment.alignment_refresh(mapping_id=mapping.pk)
    # The steady reviewer's four answers against the judge: all agree.
    assert (report.n_items, report.value) == (4, 1.0)
    assert report.figures["scope"]["name"] == "production"
    assert report.figures["scope"]["left_out"] == {
        "calibration_rounds": 2, "gold_items": 4, "failing_reviewers": 4,
    }  # fmt: skip

    with tenancy.tenant_scope(tenant.organization.pk):
        alignment.alignment_mapping_scope_set(
            actor=Actor(user=tenant.owner), mapping=mapping, scope="all"
        )
        everything = alignment.alignment_refresh(mapping_id=mapping.pk)
    # Every answer: the ordinary traces are 1-1 ties (left out), the gold traces are
    # failed by every answer while the judge passes them.
    assert (everything.n_items, everything.value) == (2, 0.0)
    assert everything.figures["tied_votes_left_out"] == 4
    assert everything.figures["scope"]["left_out"] == {
        "calibration_rounds": 0, "gold_items": 0, "failing_reviewers": 0,
    }  # fmt: skip


def test_scope_through_the_api_the_csv_and_the_page(tenant, client_for):
    config, _live, round_ = _world(tenant)
    owner = client_for(tenant.owner)
    created = owner.post(
        _api(tenant),
        {"score_name": "judge-correct", "config_id": config.pk, "human_pass_labels": ["right"],
         "scope": "all"},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["scope"], body["queue"]) == ("all", None)
    mapping_id = body["id"]
    refused = owner.put(_api(tenant, f"{mapping_id}/scope/"), {"scope": "some"}, format="json")
    assert refused.status_code == 400 and "scope" in refused.json()["error"]["details"]
    foreign = owner.put(
        _api(tenant, f"{mapping_id}/scope/"), {"scope": "all", "queue_id": 10**9}, format="json"
    )
    assert foreign.status_code == 400 and "queue_id" in foreign.json()["error"]["details"]
    # The calibration round's queue only, every answer: the newcomer's two 'wrong'.
    narrowed = owner.put(
        _api(tenant, f"{mapping_id}/scope/"),
        {"scope": "all", "queue_id": round_.queue_id},
        format="json",
    )
    assert narrowed.status_code == 200
    assert (narrowed.json()["scope"], narrowed.json()["queue"]) == ("all", round_.queue_id)
    with tenancy.tenant_scope(tenant.organization.pk):
        report = alignment.alignment_refresh(mapping_id=mapping_id)
        assert (report.n_items, report.value) == (2, 0.0)
        assert report.figures["scope"]["queue_id"] == round_.queue_id
    back = owner.put(_api(tenant, f"{mapping_id}/scope/"), {"scope": "production"}, format="json")
    assert back.status_code == 200 and back.json()["queue"] is None
    with tenancy.tenant_scope(tenant.organization.pk):
        alignment.alignment_refresh(mapping_id=mapping_id)
        assert AlignmentReport.objects.filter(mapping_id=mapping_id).count() == 2
    rows = list(
        csv.DictReader(io.StringIO(owner.get(_api(tenant, f"{mapping_id}/reports/csv/")).text))
    )
    assert [r["scope"] for r in rows] == ["production", "all"]  # newest first
    page = owner.get(
        f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/reports/quality/"
    ).content.decode()
    assert "Answers counted: production answers" in page
    assert "2 from calibration rounds, 4 on gold items, 4 by reviewers whose latest" in page
