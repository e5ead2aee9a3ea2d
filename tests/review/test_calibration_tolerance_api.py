"""Calibration on numeric questions takes a per-question tolerance set with the gold
answers (72 against gold 73 is right within 1, wrong without), used by round scoring
and the running gold accuracy; the API changes a set's thresholds and tolerances and
removes gold answers, as the pages do."""

from __future__ import annotations

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import QueueItem
from review.quality.models import CalibrationResult, GoldAnswer
from review.quality.services import calibration
from tests.review.helpers import add_reviewers, make_config, make_trace

GOLD = [73.0, 40.0, 10.0]
ANSWERS = [72.0, 40.0, 14.0]  # off by 1, right, off by 4


def _base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def _world(tenant, client_for, tolerance: float | None):
    config = make_config(tenant, name="score", min_value=0.0, max_value=100.0, step=None)
    label = make_config(
        tenant, name="verdict", data_type="categorical", min_value=None, max_value=None,
        step=None, options=[{"label": "ok", "value": 1.0}, {"label": "bad", "value": 0.0}],
    )  # fmt: skip
    traces = [make_trace(tenant) for _ in GOLD]
    owner = client_for(tenant.owner)
    body = {"name": f"numbers {tolerance}", "config_ids": [config.pk, label.pk],
            "min_accuracy": 0.8}  # fmt: skip
    if tolerance is not None:
        body["tolerances"] = {str(config.pk): tolerance}
    created = owner.post(f"{_base(tenant)}/calibration-sets/", body, format="json")
    assert created.status_code == 201, created.content
    set_id = created.json()["id"]
    for trace, gold in zip(traces, GOLD, strict=True):
        response = owner.post(
            f"{_base(tenant)}/calibration-sets/{set_id}/gold/",
            {"trace_id": trace.external_id, "values": {str(config.pk): gold, str(label.pk): "ok"}},
            format="json",
        )
        assert response.status_code == 200, response.content
    return config, label, traces, set_id, owner


def _score_round(tenant, set_id, config, label, traces):
    (reviewer,) = add_reviewers(tenant, 1)
    answer_of = {t.pk: a for t, a in zip(traces, ANSWERS, strict=True)}
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        cal = calibration.CalibrationSet.objects.get(pk=set_id)
        round_ = calibration.calibration_round_start(
            actor=owner, calibration_set=cal, reviewer_ids=[reviewer.pk]
        )
        actor = Actor(user=reviewer)
        while (lease := services.queue_claim_next(actor=actor, queue=round_.queue)) is not None:
            trace_id = QueueItem.objects.get(pk=lease.item_id).trace_id
            services.assignment_submit(
                actor=actor, assignment_id=lease.pk,
                values={str(config.pk): answer_of[trace_id], str(label.pk): "ok"},
            )  # fmt: skip
        calibration.calibration_round_score(actor=owner, round_=round_)
        return CalibrationResult.objects.get(round=round_, reviewer=reviewer)


def test_a_tolerance_makes_a_near_answer_right(tenant, client_for):
    config, label, traces, set_id, _owner = _world(tenant, client_for, tolerance=1.0)
    result = _score_round(tenant, set_id, config, label, traces)
    # 72 vs 73 within 1: right; 14 vs 10: wrong; the three labels right.
    assert (result.answered, result.correct) == (6, 5)


def test_without_a_tolerance_equality_is_required(tenant, client_for):
    config, label, traces, set_id, _owner = _world(tenant, client_for, tolerance=None)
    result = _score_round(tenant, set_id, config, label, traces)
    assert (result.answered, result.correct) == (6, 4)


def test_the_api_changes_thresholds_and_tolerances_and_removes_gold(tenant, client_for):
    config, label, traces, set_id, owner = _world(tenant, client_for, tolerance=None)
    url = f"{_base(tenant)}/calibration-sets/{set_id}/"
    # A tolerance on a categorical question, a negative one, a bad threshold: 400s.
    for body, field in (
        ({"tolerances": {str(label.pk): 1}}, "tolerances"),
        ({"tolerances": {str(config.pk): -1}}, "tolerances"),
        ({"min_accuracy": 1.5}, "min_accuracy"),
        ({"min_agreement": 3}, "min_agreement"),
    ):
        refused = owner.patch(url, body, format="json")
        assert refused.status_code == 400, (body, refused.content)
        assert field in refused.json()["error"]["details"]
    changed = owner.patch(
        url, {"min_agreement": 0.4, "tolerances": {str(config.pk): 5}}, format="json"
    )
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["min_agreement"] == 0.4 and body["min_accuracy"] == 0.8  # kept
    assert body["tolerances"] == {str(config.pk): 5.0}
    assert owner.get(url).json()["tolerances"] == {str(config.pk): 5.0}
    # Within 5 now: 72 and 14 against 73 and 10 are both right.
    result = _score_round(tenant, set_id, config, label, traces)
    assert (result.answered, result.correct) == (6, 6)

    reviewer = client_for(tenant.reviewer)
    assert reviewer.patch(url, {"min_accuracy": 0.1}, format="json").status_code in (403, 404)
    removed = owner.delete(f"{url}gold/{traces[0].external_id}/")
    assert removed.status_code == 204 and removed.content == b""
    assert owner.delete(f"{url}gold/{traces[0].external_id}/").status_code == 404
    with tenancy.tenant_scope(tenant.organization.pk):
        assert sorted(GoldAnswer.objects.filter(calibration_set_id=set_id).values_list(
            "trace_id", flat=True)) == sorted(t.pk for t in traces[1:])  # fmt: skip
    assert [g["trace"] for g in owner.get(url).json()["gold_answers"]] != []
    assert traces[0].external_id not in [g["trace"] for g in owner.get(url).json()["gold_answers"]]
