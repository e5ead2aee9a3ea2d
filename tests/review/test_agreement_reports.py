"""Agreement reports: submissions request a coalesced refresh through the outbox, a real
worker computes and stores the report, reruns over the same answers write nothing,
history keeps one row per computation, the API serves JSON and CSV to managers."""

from __future__ import annotations

import csv
import io
import time
from datetime import timedelta

import krippendorff
import numpy as np
import pytest

from hitl import tenancy
from hitl.audit import Actor
from hitl.csv_safe import unescape_cell
from hitl.models import OutboxMessage
from review import services
from review.models import Annotation, ScoreConfig
from review.quality.agreement import Level, Ratings, agreement_report
from review.quality.models import AgreementReport
from review.quality.services import agreement
from review.tasks import agreement_sweep
from tests.csv_checks import HOSTILE, assert_runs_nothing
from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue

LABELS = ["wrong", "partial", "right"]
# Per item, what each of the three reviewers answers.
ANSWERS = [
    ("right", "right", "right"),
    ("right", "partial", "right"),
    ("wrong", "wrong", "partial"),
    ("partial", "partial", "partial"),
    ("wrong", "right", "wrong"),
    ("right", "right", "partial"),
]


def _setup(tenant, overlap: int = 3):
    config = make_config(
        tenant,
        name="correctness",
        data_type="categorical",
        min_value=None,
        max_value=None,
        step=None,
        options=[{"label": label, "value": float(i)} for i, label in enumerate(LABELS)],
    )
    reviewers = add_reviewers(tenant, 3)
    queue = make_queue(tenant, configs=[config], reviewers=reviewers, overlap=overlap)
    items = add_traces(tenant, queue, len(ANSWERS))
    return config, reviewers, queue, items


def _review(tenant, queue, config, reviewers, items, *, only: int | None = None) -> list:
    """Each reviewer claims and answers every item as ``ANSWERS`` says."""
    row_of = {item.pk: row for row, item in enumerate(items)}
    submitted = []
    with tenancy.tenant_scope(tenant.organization.pk):
        for column, user in enumerate(reviewers):
            if only is not None and column != only:
                continue
            actor = Actor(user=user)
            while (lease := services.queue_claim_next(actor=actor, queue=queue)) is not None:
                answer = ANSWERS[row_of[lease.item_id]][column]
                services.assignment_submit(
                    actor=actor, assignment_id=lease.pk, values={str(config.pk): answer}
                )
                submitted.append((lease.item_id, user.pk, answer))
    return submitted


def _expected_alpha(submitted: list) -> float:
    items = sorted({i for i, _, _ in submitted})
    raters = sorted({r for _, r, _ in submitted})
    data = np.full((len(raters), len(items)), np.nan)
    for item, rater, answer in submitted:
        data[raters.index(rater), items.index(item)] = LABELS.index(answer)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def _reports(tenant, queue) -> list[AgreementReport]:
    with tenancy.tenant_scope(tenant.organization.pk):
        return list(AgreementReport.objects.filter(queue=queue).order_by("computed_at", "id"))


def test_submissions_write_one_waiting_refresh_per_queue(tenant):
    config, reviewers, queue, items = _setup(tenant)
    _review(tenant, queue, config, reviewers, items)
    with tenancy.tenant_scope(tenant.organization.pk):
        messages = OutboxMessage.objects.filter(task=agreement.AGREEMENT_REFRESH)
        assert [m.kwargs for m in messages] == [{"queue_id": queue.pk}]
        assert Annotation.objects.filter(queue=queue).count() == 18


def test_refresh_stores_a_report_with_the_reference_figures_and_skips_reruns(tenant):
    config, reviewers, queue, items = _setup(tenant)
    submitted = _review(tenant, queue, config, reviewers, items)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert agreement.agreement_refresh(queue_id=queue.pk, resamples=200) == "computed"
        assert agreement.agreement_refresh(queue_id=queue.pk, resamples=200) == "unchanged"
    [report] = _reports(tenant, queue)
    assert report.level == "nominal" and report.config_id == config.pk
    assert report.value == pytest.approx(_expected_alpha(submitted), abs=1e-9)
    assert report.ci_low < report.value < report.ci_high
    assert (report.n_items, report.n_answers, report.answers_covered) == (6, 18, 18)
    figures = report.figures
    # The same answers through the computation directly give the same report.
    direct = agreement_report(
        Ratings.from_answers(submitted, categories=LABELS, ordered=False),
        level=Level.NOMINAL,
        resamples=200,
        seed=config.pk,
    )
    assert figures["coefficients"] == direct["coefficients"]
    assert figures["config"]["name"] == "correctness"
    assert len(figures["pairs"]) == 3 and len(figures["reviewers"]) == 3
    top = figures["most_disagreeing_items"][0]
    # Nominal: every item with one dissenting answer disagrees as much (2 of 3 pairs);
    # ties go by item order.
    assert top["item_id"] == items[1].pk
    assert {i["item_id"] for i in figures["most_disagreeing_items"]} == {
        items[n].pk for n in (1, 2, 4, 5)
    }


def test_an_edit_is_new_history_and_a_recent_report_defers(tenant):
    config, reviewers, queue, items = _setup(tenant)
    _review(tenant, queue, config, reviewers, items)
    with tenancy.tenant_scope(tenant.organization.pk):
        agreement.agreement_refresh(queue_id=queue.pk, resamples=0)
        annotation = Annotation.objects.filter(queue=queue, item=items[1]).order_by("id")[1]
        services.annotation_update(
            actor=Actor(user=annotation.reviewer), annotation_id=annotation.pk,
            expected_version=annotation.version, values={str(config.pk): "right"},
        )  # fmt: skip
        window = timedelta(hours=1)
        assert agreement.agreement_refresh(queue_id=queue.pk, min_interval=window) == "deferred"
        # The periodic sweep finds the queue's answers newer than its report.
        assert agreement.agreement_sweep() == 1
        assert agreement.agreement_refresh(queue_id=queue.pk, resamples=0) == "computed"
        assert agreement.agreement_sweep() == 0
    first, second = _reports(tenant, queue)
    assert second.value > first.value  # item 1 now agrees
    assert second.last_change_at > first.last_change_at


def test_one_reviewer_gives_a_reason_not_a_number(tenant):
    config, reviewers, queue, items = _setup(tenant)
    _review(tenant, queue, config, reviewers, items, only=0)
    with tenancy.tenant_scope(tenant.organization.pk):
        agreement.agreement_refresh(queue_id=queue.pk, resamples=50)
    [report] = _reports(tenant, queue)
    assert report.value is None
    assert report.reason == "Only one reviewer answered this question."
    for figure in report.figures["coefficients"].values():
        assert figure["value"] is None and figure["reason"]


def test_a_deleted_queue_is_a_quiet_no_op(tenant):
    _config, _reviewers, queue, _items = _setup(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        queue_id = queue.pk
        queue.delete()
        assert agreement.agreement_refresh(queue_id=queue_id) == "missing"


def _url(tenant, queue, tail: str = "") -> str:
    return (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/queues/{queue.pk}/agreement/{tail}"
    )


def test_api_serves_the_latest_report_with_history_and_csv(tenant, client_for):
    config, reviewers, queue, items = _setup(tenant)
    submitted = _review(tenant, queue, config, reviewers, items)
    owner = client_for(tenant.owner)
    empty = owner.get(_url(tenant, queue)).json()
    assert empty["questions"][0]["report"] is None and empty["refresh_pending"] is True
    with tenancy.tenant_scope(tenant.organization.pk):
        agreement.agreement_refresh(queue_id=queue.pk, resamples=100)
        agreement.agreement_refresh(queue_id=queue.pk, resamples=100, force=True)
    body = owner.get(_url(tenant, queue)).json()
    [question] = body["questions"]
    assert question["config"]["name"] == "correctness"
    alpha = question["report"]["figures"]["coefficients"]["krippendorff_alpha_nominal"]
    assert alpha["value"] == pytest.approx(_expected_alpha(submitted), abs=1e-9)
    assert alpha["n_items"] == 6 and alpha["n_answers"] == 18
    assert len(question["history"]) == 2
    assert question["history"][0]["id"] == question["report"]["id"]

    response = owner.get(_url(tenant, queue, "csv/"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_name = {(r["scope"], r["coefficient"]): r for r in rows if r["scope"] == "all"}
    assert float(by_name[("all", "krippendorff_alpha_nominal")]["value"]) == pytest.approx(
        alpha["value"]
    )
    # 3 pairs, unweighted kappa only: the question is nominal (tests/review/test_ordinal.py).
    assert sum(r["scope"] == "pair" for r in rows) == 3

    assert client_for(tenant.auditor).get(_url(tenant, queue)).status_code == 200
    assert client_for(tenant.reviewer).get(_url(tenant, queue)).status_code in (403, 404)
    with tenancy.tenant_scope(tenant.organization.pk):
        other = make_queue(tenant, configs=[config], name="other")
        missing = other.pk + 1000
    other.pk = missing
    assert owner.get(_url(tenant, other)).status_code == 404


@pytest.mark.worker
def test_a_real_worker_computes_the_report_after_submissions(celery_worker, tenant, settings):
    settings.HITL_AGREEMENT_RESAMPLES = 100
    config, reviewers, queue, items = _setup(tenant)
    submitted = _review(tenant, queue, config, reviewers, items)

    def covering_all() -> list[AgreementReport]:
        return [r for r in _reports(tenant, queue) if r.answers_covered == len(submitted)]

    deadline = time.monotonic() + 60
    while not covering_all() and time.monotonic() < deadline:
        # Refreshes taken while answers were still arriving left later ones for the relay.
        from hitl import outbox

        outbox.relay()
        time.sleep(0.2)
    [report] = covering_all()
    assert report.value == pytest.approx(_expected_alpha(submitted), abs=1e-9)
    assert report.figures["coefficients"]["percent_agreement"]["value"] == pytest.approx(
        (1 + 1 / 3 + 1 / 3 + 1 + 1 / 3 + 1 / 3) / 6
    )
    # The beat task finds nothing left to do.
    assert agreement_sweep.apply().get() == 0


def test_the_csv_neutralises_a_question_named_like_a_formula(tenant, client_for):
    """A rubric named ``=HYPERLINK(...)`` (or starting with any formula character) is
    written with a quote in front; the figures stay numbers."""
    config, reviewers, queue, items = _setup(tenant)
    _review(tenant, queue, config, reviewers, items)
    with tenancy.tenant_scope(tenant.organization.pk):
        agreement.agreement_refresh(queue_id=queue.pk, resamples=100)
    owner = client_for(tenant.owner)
    for name in HOSTILE:
        with tenancy.tenant_scope(tenant.organization.pk):
            # Renamed in place: the report stays the latest (a new name is no new scale).
            ScoreConfig.objects.filter(pk=config.pk).update(name=name)
        response = owner.get(_url(tenant, queue, "csv/"))
        assert response.status_code == 200
        header, *rows = assert_runs_nothing(response.content.decode())
        columns = [dict(zip(header, row, strict=True)) for row in rows]
        (written,) = {c["config"] for c in columns}
        assert unescape_cell(written) == name
        if name.lstrip("'")[:1] in "=+-@\t\r":
            assert written == "'" + name
        # Figures are numbers, written as numbers (a negative kappa is no formula).
        assert [float(c["value"]) for c in columns if c["value"]]
