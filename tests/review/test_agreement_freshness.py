"""Agreement and gold accuracy are fresh: a submission reaches the report through the
outbox and a real worker within seconds (no beat sweep, no relay), submissions that
arrive while a computation runs are coalesced into the next one and never dropped, and
``refresh_pending`` is true exactly while answers newer than the report exist (the API
and the quality page say so)."""

from __future__ import annotations

import time

import pytest

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.models import Annotation, QueueItem
from review.quality.models import AgreementReport, GoldAccuracy
from review.quality.services import agreement, calibration
from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue, make_trace

LABELS = ["wrong", "partial", "right"]
# Far more than a refresh of a handful of answers takes on a loaded test machine, far
# less than the 60 s sweep the reports used to wait for.
DEADLINE = 15.0


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


def _queue(tenant, *, items: int = 6):
    config = _config(tenant)
    reviewers = add_reviewers(tenant, 3)
    queue = make_queue(tenant, configs=[config], reviewers=reviewers, overlap=3)
    add_traces(tenant, queue, items)
    return config, reviewers, queue


def _submit_one(tenant, queue, config, user, answer: str) -> Annotation:
    with tenancy.tenant_scope(tenant.organization.pk):
        actor = Actor(user=user)
        lease = services.queue_claim_next(actor=actor, queue=queue)
        assert lease is not None
        return services.assignment_submit(
            actor=actor, assignment_id=lease.pk, values={str(config.pk): answer}
        )


def _url(tenant, queue) -> str:
    return (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/queues/{queue.pk}/agreement/"
    )


def _covering(tenant, queue, annotation_id: int) -> AgreementReport | None:
    with tenancy.tenant_scope(tenant.organization.pk):
        return (
            AgreementReport.objects.filter(queue=queue, last_annotation_id__gte=annotation_id)
            .order_by("-id")
            .first()
        )


def test_refresh_pending_is_true_exactly_while_answers_are_newer_than_the_report(
    tenant, client_for
):
    config, reviewers, queue = _queue(tenant)
    owner = client_for(tenant.owner)
    # No answers: nothing to compute, nothing pending.
    assert owner.get(_url(tenant, queue)).json()["refresh_pending"] is False
    first = _submit_one(tenant, queue, config, reviewers[0], "right")
    _submit_one(tenant, queue, config, reviewers[1], "wrong")
    assert owner.get(_url(tenant, queue)).json()["refresh_pending"] is True
    with tenancy.tenant_scope(tenant.organization.pk):
        assert agreement.agreement_refresh(queue_id=queue.pk, resamples=20) == "computed"
    body = owner.get(_url(tenant, queue)).json()
    assert body["refresh_pending"] is False
    assert body["questions"][0]["report"]["answers_covered"] == 2
    # An edit of an answer already covered is newer than the report too.
    with tenancy.tenant_scope(tenant.organization.pk):
        services.annotation_update(
            actor=Actor(user=reviewers[0]), annotation_id=first.pk,
            expected_version=first.version, values={str(config.pk): "wrong"},
        )  # fmt: skip
    assert owner.get(_url(tenant, queue)).json()["refresh_pending"] is True
    # The old rule (a refresh message waiting) said false here: the message was taken
    # and deferred, the answers stayed newer than the report.
    with tenancy.tenant_scope(tenant.organization.pk):
        assert agreement.agreement_sweep() == 1
        assert agreement.agreement_refresh(queue_id=queue.pk, resamples=20) == "computed"
        assert agreement.agreement_sweep() == 0
    assert owner.get(_url(tenant, queue)).json()["refresh_pending"] is False


def test_the_quality_page_says_updating_while_the_report_is_behind(tenant, client_for):
    config, reviewers, queue = _queue(tenant)
    _submit_one(tenant, queue, config, reviewers[0], "right")
    _submit_one(tenant, queue, config, reviewers[1], "right")
    with tenancy.tenant_scope(tenant.organization.pk):
        agreement.agreement_refresh(queue_id=queue.pk, resamples=20)
    owner = client_for(tenant.owner)
    url = f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/reports/quality/"
    page = owner.get(url)
    assert page.status_code == 200
    assert "Updating:" not in page.content.decode()
    _submit_one(tenant, queue, config, reviewers[2], "wrong")
    assert "Updating:" in owner.get(url).content.decode()


@pytest.mark.worker
def test_each_submission_reaches_the_report_within_seconds(
    celery_worker, tenant, client_for, settings
):
    """Steady reviewing, a submission every 0.2 s: every one is covered by a stored
    report within seconds, through the outbox message its submit wrote (nothing runs
    the relay or the sweep here), and whenever the API says nothing is pending its
    report covers every answer submitted so far."""
    settings.HITL_AGREEMENT_RESAMPLES = 200
    config, reviewers, queue = _queue(tenant, items=5)
    owner = client_for(tenant.owner)
    submitted: list[Annotation] = []
    for index in range(15):
        user = reviewers[index % 3]
        submitted.append(_submit_one(tenant, queue, config, user, LABELS[(index * 7) % 3]))
        time.sleep(0.2)
    honest_checks = 0
    for annotation in submitted:
        deadline = time.monotonic() + DEADLINE
        while _covering(tenant, queue, annotation.pk) is None:
            assert time.monotonic() < deadline, f"annotation {annotation.pk} never reported"
            body = owner.get(_url(tenant, queue)).json()
            if not body["refresh_pending"]:
                report = body["questions"][0]["report"]
                assert report is not None and report["answers_covered"] == len(submitted)
            honest_checks += 1
            time.sleep(0.1)
    body = owner.get(_url(tenant, queue)).json()
    assert body["refresh_pending"] is False
    assert body["questions"][0]["report"]["answers_covered"] == len(submitted)
    assert body["questions"][0]["report"]["last_annotation_id"] == submitted[-1].pk


@pytest.mark.worker
def test_gold_accuracy_follows_a_submission_without_the_sweep(celery_worker, tenant):
    """A live queue without overlap that mixes gold items in: each reviewer's accuracy on
    them is there seconds after their submission, not after the 5-minute sweep."""
    config = _config(tenant)
    gold_traces = [make_trace(tenant) for _ in range(2)]
    (reviewer,) = add_reviewers(tenant, 1)
    live = make_queue(tenant, configs=[config], reviewers=[reviewer])
    add_traces(tenant, live, 2)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        cal = calibration.calibration_set_create(
            actor=owner, project=tenant.project, name="gold", config_ids=[config.pk],
            min_accuracy=0.75,
        )  # fmt: skip
        for trace in gold_traces:
            calibration.gold_answer_set(
                actor=owner, calibration_set=cal, trace_id=trace.pk,
                values={str(config.pk): "right"},
            )  # fmt: skip
        calibration.queue_calibration_set(
            actor=owner, queue=live, calibration_set=cal, require_pass=False,
            gold_rate=0.5, gold_min_accuracy=0.75,
        )  # fmt: skip
        calibration.queue_gold_mix(actor=owner, queue=live)
        gold_ids = {t.pk for t in gold_traces}
        answered = 0
        actor = Actor(user=reviewer)
        while (lease := services.queue_claim_next(actor=actor, queue=live)) is not None:
            item = QueueItem.objects.get(pk=lease.item_id)
            services.assignment_submit(
                actor=actor, assignment_id=lease.pk, values={str(config.pk): "right"}
            )
            answered += item.trace_id in gold_ids
    assert answered == 2
    deadline = time.monotonic() + DEADLINE
    while True:
        with tenancy.tenant_scope(tenant.organization.pk):
            row = GoldAccuracy.objects.filter(queue=live, reviewer=reviewer).first()
        if row is not None and row.answered == 2:
            break
        assert time.monotonic() < deadline, "gold accuracy never refreshed"
        time.sleep(0.1)
    assert (row.correct, row.accuracy) == (2, 1.0)
