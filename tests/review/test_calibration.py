"""Calibration: gold answers, a round claimed and submitted like any queue, results
against gold per question and level with the group's agreement, the onboarding gate
(refuses, then admits), gold items mixed into a live queue and the running accuracy
with its alert, each round result announced (``review.calibration.passed``/``.failed``)
and delivered to the destinations whose filters match."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score

from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import PermissionDenied
from projects.models import Event
from projects.notifications import catalogue
from review import services
from review.models import QueueItem
from review.quality.models import (
    AlertKind,
    CalibrationResult,
    GoldAccuracy,
    QualityAlert,
    QueueCalibration,
)
from review.quality.services import calibration
from tests.projects.test_notifications import Receiver, make_destination, run_outbox
from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue, make_trace

LABELS = ["wrong", "partial", "right"]
GOLD = ["right", "wrong", "partial", "right"]


def _config(tenant):
    return make_config(
        tenant,
        name="correctness",
        data_type="categorical",
        min_value=None,
        max_value=None,
        step=None,
        options=[{"label": label, "value": float(i)} for i, label in enumerate(LABELS)],
    )


def _set(tenant, config, *, min_agreement=None):
    owner = Actor(user=tenant.owner)
    traces = [make_trace(tenant) for _ in GOLD]
    with tenancy.tenant_scope(tenant.organization.pk):
        cal = calibration.calibration_set_create(
            actor=owner,
            project=tenant.project,
            name="onboarding",
            config_ids=[config.pk],
            min_accuracy=0.75,
            min_agreement=min_agreement,
        )
        for trace, label in zip(traces, GOLD, strict=True):
            calibration.gold_answer_set(
                actor=owner, calibration_set=cal, trace_id=trace.pk, values={str(config.pk): label}
            )
    return cal, traces


def _answer_round(tenant, round_, config, answers_by_user):
    """Each reviewer claims every item of the round's queue and answers by trace."""
    with tenancy.tenant_scope(tenant.organization.pk):
        queue = round_.queue
        for user, answers in answers_by_user.items():
            actor = Actor(user=user)
            while (lease := services.queue_claim_next(actor=actor, queue=queue)) is not None:
                item = QueueItem.objects.get(pk=lease.item_id)
                services.assignment_submit(
                    actor=actor,
                    assignment_id=lease.pk,
                    values={str(config.pk): answers[item.trace_id]},
                )


def test_gold_answers_are_checked_against_the_scale(tenant):
    config = _config(tenant)
    cal, traces = _set(tenant, config)
    with tenancy.tenant_scope(tenant.organization.pk), pytest.raises(Exception) as refused:
        calibration.gold_answer_set(
            actor=Actor(user=tenant.owner),
            calibration_set=cal,
            trace_id=traces[0].pk,
            values={str(config.pk): "excellent"},
        )
    assert "Unknown option" in str(refused.value.details)


def test_the_gate_refuses_then_admits_after_a_passed_round(tenant, client_for):
    config = _config(tenant)
    cal, traces = _set(tenant, config, min_agreement=0.0)
    good, sloppy = add_reviewers(tenant, 2)
    live = make_queue(tenant, configs=[config], reviewers=[good, sloppy])
    add_traces(tenant, live, 2)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        calibration.queue_calibration_set(actor=owner, queue=live, calibration_set=cal)
        with pytest.raises(PermissionDenied) as refused:
            services.queue_claim_next(actor=Actor(user=good), queue=live)
    assert refused.value.code == "calibration_required"
    assert refused.value.details["calibration_set"]["name"] == "onboarding"
    # Through the API: 403 with the code and the set named.
    project_url = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
    response = client_for(good).post(f"{project_url}/queues/{live.pk}/claim/")
    assert response.status_code == 403, response.content
    body = response.json()
    assert "calibration_required" in str(body) and "onboarding" in str(body)

    with tenancy.tenant_scope(tenant.organization.pk):
        round_ = calibration.calibration_round_start(
            actor=owner, calibration_set=cal, reviewer_ids=[good.pk, sloppy.pk]
        )
    gold = dict(zip([t.pk for t in traces], GOLD, strict=True))
    # The sloppy reviewer says "right" to everything: 2 of 4.
    _answer_round(
        tenant,
        round_,
        config,
        {good: gold, sloppy: dict.fromkeys(gold, "right")},
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        scored = calibration.calibration_round_score(actor=owner, round_=round_)
        results = {r.reviewer_id: r for r in CalibrationResult.objects.filter(round=scored)}
        assert results[good.pk].accuracy == 1.0 and results[good.pk].passed
        assert results[sloppy.pk].accuracy == 0.5 and not results[sloppy.pk].passed
        # Agreement with gold is Cohen's kappa, as scikit-learn computes it.
        assert results[good.pk].agreement == pytest.approx(1.0)
        assert results[sloppy.pk].agreement == pytest.approx(
            cohen_kappa_score(GOLD, ["right"] * len(GOLD)), abs=1e-9
        )
        assert "Accuracy 0.50" in results[sloppy.pk].reason
        # Per question and per gold level: "wrong" items were answered "right" once.
        levels = scored.figures["questions"][0]["levels"]
        assert levels["wrong"] == {
            "answered": 2,
            "correct": 1,
            "answers": {"wrong": 1, "right": 1},
            "accuracy": 0.5,
        }
        assert levels["right"]["accuracy"] == 1.0
        # The group's agreement comes from review.quality.agreement (Krippendorff's alpha here);
        # the sloppy reviewer drags it under zero.
        assert scored.agreement is not None and scored.agreement < 0
        assert scored.agreement == pytest.approx(scored.figures["questions"][0]["agreement"])
        # Admitted now; the sloppy reviewer is still refused.
        lease = services.queue_claim_next(actor=Actor(user=good), queue=live)
        assert lease is not None
        with pytest.raises(PermissionDenied):
            services.queue_claim_next(actor=Actor(user=sloppy), queue=live)
        # Rounds are kept: a second round is numbered after the first.
        second = calibration.calibration_round_start(
            actor=owner, calibration_set=cal, reviewer_ids=[sloppy.pk]
        )
    assert second.number == 2 and second.queue_id != round_.queue_id


def test_gold_items_are_mixed_in_and_accuracy_falls_into_an_alert(tenant):
    config = _config(tenant)
    cal, traces = _set(tenant, config)
    (reviewer,) = add_reviewers(tenant, 1)
    live = make_queue(tenant, configs=[config], reviewers=[reviewer])
    ordinary = add_traces(tenant, live, 4)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        calibration.queue_calibration_set(
            actor=owner,
            queue=live,
            calibration_set=cal,
            require_pass=False,
            gold_rate=0.5,
            gold_min_accuracy=0.75,
        )
        assert calibration.queue_gold_mix(actor=owner, queue=live) == 4
        assert calibration.queue_gold_mix(actor=owner, queue=live) == 0  # idempotent
        items = list(QueueItem.objects.filter(queue=live))
        assert len(items) == 8
        # Nothing marks a gold item: same source and shape as the others.
        assert {i.source for i in items} == {ordinary[0].source}
        gold = dict(zip([t.pk for t in traces], GOLD, strict=True))
        actor = Actor(user=reviewer)
        answered_gold = 0
        while (lease := services.queue_claim_next(actor=actor, queue=live)) is not None:
            item = QueueItem.objects.get(pk=lease.item_id)
            # Wrong on every gold item but the first.
            if item.trace_id in gold:
                answer = gold[item.trace_id] if answered_gold == 0 else "partial"
                if gold[item.trace_id] == "partial" and answered_gold:
                    answer = "wrong"
                answered_gold += 1
            else:
                answer = "right"
            services.assignment_submit(
                actor=actor, assignment_id=lease.pk, values={str(config.pk): answer}
            )
        [row] = calibration.gold_accuracy_refresh(queue_id=live.pk)
        assert (row.answered, row.correct, row.accuracy) == (4, 1, 0.25)
        [alert] = QualityAlert.objects.filter(kind=AlertKind.GOLD_ACCURACY)
        assert alert.reviewer_id == reviewer.pk and alert.value == 0.25
        assert alert.threshold == 0.75 and alert.queue_id == live.pk
        # A rerun raises no second alert for the same drop.
        calibration.gold_accuracy_refresh(queue_id=live.pk)
        assert QualityAlert.objects.filter(kind=AlertKind.GOLD_ACCURACY).count() == 1
        assert GoldAccuracy.objects.get(queue=live, reviewer=reviewer).alerted_at is not None


ROUND_EVENTS = (catalogue.CALIBRATION_PASSED, catalogue.CALIBRATION_FAILED)


def _round_events(tenant) -> list[Event]:
    with tenancy.tenant_scope(tenant.organization.pk):
        return list(Event.objects.filter(type__in=ROUND_EVENTS).order_by("id"))


def test_each_result_is_announced_and_delivered_to_matching_destinations(tenant, settings):
    config = _config(tenant)
    cal, traces = _set(tenant, config)
    good, sloppy = add_reviewers(tenant, 2)
    owner = Actor(user=tenant.owner)
    receiver = Receiver()
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = [f"127.0.0.1:{receiver.port}"]
    try:
        # Filtered on the set's question, on another question, and passes only.
        make_destination(
            tenant, receiver.url("/correctness"), event_types=ROUND_EVENTS,
            filter_score_name="correctness",
        )  # fmt: skip
        make_destination(
            tenant, receiver.url("/tone"), event_types=ROUND_EVENTS, filter_score_name="tone"
        )
        make_destination(
            tenant, receiver.url("/passes"), event_types=(catalogue.CALIBRATION_PASSED,)
        )
        with tenancy.tenant_scope(tenant.organization.pk):
            round_ = calibration.calibration_round_start(
                actor=owner, calibration_set=cal, reviewer_ids=[good.pk, sloppy.pk]
            )
        gold = dict(zip([t.pk for t in traces], GOLD, strict=True))
        _answer_round(tenant, round_, config, {good: gold, sloppy: dict.fromkeys(gold, "right")})
        assert _round_events(tenant) == []  # nothing before the round is scored
        with tenancy.tenant_scope(tenant.organization.pk):
            calibration.calibration_round_score(actor=owner, round_=round_)

        passed, failed = sorted(_round_events(tenant), key=lambda e: e.type != ROUND_EVENTS[0])
        assert (passed.type, failed.type) == ROUND_EVENTS
        for event in (passed, failed):
            assert event.queue_id == round_.queue_id and event.score_names == ["correctness"]
            assert event.payload["calibration_set"]["name"] == "onboarding"
            assert event.payload["round"] == {
                "id": round_.pk, "number": 1, "queue_id": round_.queue_id,
                "agreement": event.payload["round"]["agreement"],
            }  # fmt: skip
            assert event.payload["url"].endswith(f"/calibration/rounds/{round_.pk}/")
            assert event.payload["project"]["id"] == tenant.project.pk
        assert passed.payload["result"]["reviewer"] == {"id": good.pk, "email": good.email}
        assert passed.payload["result"]["accuracy"] == 1.0 and passed.payload["result"]["passed"]
        assert good.email in passed.payload["summary"]
        assert failed.payload["result"]["reviewer"]["id"] == sloppy.pk
        assert failed.payload["result"]["accuracy"] == 0.5
        assert "Accuracy 0.50" in failed.payload["result"]["reason"]
        assert "Accuracy 0.50" in failed.payload["summary"]

        # The notification machinery delivers each to the destinations it matches.
        run_outbox()
        delivered = sorted((r.path, r.json()["type"]) for r in receiver.requests)
        assert delivered == [
            ("/correctness", catalogue.CALIBRATION_FAILED),
            ("/correctness", catalogue.CALIBRATION_PASSED),
            ("/passes", catalogue.CALIBRATION_PASSED),
        ]
        body = next(r.json() for r in receiver.requests if r.path == "/passes")
        assert body["data"]["result"]["reviewer"]["id"] == good.pk

        # Scoring the same answers again says nothing new.
        with tenancy.tenant_scope(tenant.organization.pk):
            calibration.calibration_round_score(actor=owner, round_=round_)
        assert len(_round_events(tenant)) == 2
        # A lower bar: the sloppy reviewer passes now, and only that result is announced.
        with tenancy.tenant_scope(tenant.organization.pk):
            calibration.calibration_set_update(
                actor=owner, calibration_set=cal, min_accuracy=0.5, min_agreement=None
            )
            calibration.calibration_round_score(actor=owner, round_=round_)
        *_, again = _round_events(tenant)
        assert len(_round_events(tenant)) == 3
        assert again.type == catalogue.CALIBRATION_PASSED
        assert again.payload["result"]["reviewer"]["id"] == sloppy.pk
    finally:
        receiver.close()


def test_no_destination_no_event(tenant):
    config = _config(tenant)
    cal, traces = _set(tenant, config)
    (reviewer,) = add_reviewers(tenant, 1)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        round_ = calibration.calibration_round_start(
            actor=owner, calibration_set=cal, reviewer_ids=[reviewer.pk]
        )
    gold = dict(zip([t.pk for t in traces], GOLD, strict=True))
    _answer_round(tenant, round_, config, {reviewer: gold})
    with tenancy.tenant_scope(tenant.organization.pk):
        calibration.calibration_round_score(actor=owner, round_=round_)
        assert CalibrationResult.objects.get(round=round_).passed
    assert _round_events(tenant) == []


def test_every_calibration_write_through_the_api_answers_what_it_stored(tenant, client_for):
    """The success path of each calibration write of the API, its answer read back: a
    set, its gold answer, a round, its score, a queue under the set, the gold mix, and
    the queue taken out from under it."""
    config = _config(tenant)
    trace = make_trace(tenant)
    live = make_queue(tenant, configs=[config], name="live")
    client = client_for(tenant.owner)
    project_url = f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"

    created = client.post(
        f"{project_url}/calibration-sets/",
        {"name": "onboarding", "config_ids": [config.pk], "min_accuracy": 0.75},
        format="json",
    )
    assert created.status_code == 201, created.content
    calibration_set = created.json()
    assert calibration_set["name"] == "onboarding"
    assert calibration_set["config_ids"] == [config.pk]
    assert calibration_set["min_accuracy"] == 0.75 and calibration_set["gold_answers"] == []

    gold = client.post(
        f"{project_url}/calibration-sets/{calibration_set['id']}/gold/",
        {
            "trace_id": trace.external_id,
            "values": {str(config.pk): "right"},
            "explanation": "cited",
        },
        format="json",
    )
    assert gold.status_code == 200, gold.content
    assert gold.json()["trace"] == trace.external_id and gold.json()["explanation"] == "cited"
    assert list(gold.json()["values"].values()) == ["right"]

    round_ = client.post(
        f"{project_url}/calibration-rounds/",
        {"calibration_set_id": calibration_set["id"], "reviewer_ids": [tenant.reviewer.pk]},
        format="json",
    )
    assert round_.status_code == 201, round_.content
    assert round_.json()["calibration_set"] == calibration_set["id"]
    assert round_.json()["number"] == 1 and round_.json()["scored_at"] is None
    scored = client.post(f"{project_url}/calibration-rounds/{round_.json()['id']}/score/")
    assert scored.status_code == 200, scored.content
    assert scored.json()["id"] == round_.json()["id"] and scored.json()["scored_at"]

    under = client.post(
        f"{project_url}/queue-calibrations/",
        {"queue_id": live.pk, "calibration_set_id": calibration_set["id"], "gold_rate": 0.5,
         "require_pass": False},
        format="json",
    )  # fmt: skip
    assert under.status_code == 201, under.content
    assert under.json()["queue"] == live.pk and under.json()["gold_rate"] == 0.5
    assert under.json()["require_pass"] is False
    mixed = client.post(f"{project_url}/queue-calibrations/{under.json()['id']}/gold-mix/")
    assert mixed.status_code == 200, mixed.content
    with tenancy.tenant_scope(tenant.organization.pk):
        gold_items = QueueItem.objects.filter(queue=live, trace=trace).count()
    assert mixed.json() == {"added": gold_items}

    removed = client.delete(f"{project_url}/queue-calibrations/{under.json()['id']}/")
    assert removed.status_code == 204 and removed.content == b""
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not QueueCalibration.objects.filter(queue=live).exists()
