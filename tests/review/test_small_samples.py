"""Small samples are said to be small: an agreement figure over fewer than 10 items
answered by two or more reviewers carries a warning in the report, the API (latest and
history), the CSV and the quality page, instead of a bare alpha of -0.5 with the
interval "-0.500 - -0.500"; a reviewer's pace on the board is not extrapolated from a
couple of reviews."""

from __future__ import annotations

import csv
import io

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.quality.agreement.report import MIN_STABLE_ITEMS
from review.quality.services import agreement
from review.selectors import RATE_MIN_REVIEWS
from tests.review.helpers import add_reviewers, add_traces, make_config, make_queue

LABELS = ["wrong", "partial", "right"]


def _queue(tenant, items: int):
    config = make_config(
        tenant,
        name="correctness",
        data_type="categorical",
        min_value=None,
        max_value=None,
        step=None,
        options=[{"label": label, "value": float(i)} for i, label in enumerate(LABELS)],
    )
    reviewers = add_reviewers(tenant, 2)
    queue = make_queue(tenant, configs=[config], reviewers=reviewers, overlap=2)
    add_traces(tenant, queue, items)
    return config, reviewers, queue


def _answer_all(tenant, queue, config, reviewers, answers) -> None:
    """Each reviewer answers every item, ``answers[item index][reviewer index]``."""
    with tenancy.tenant_scope(tenant.organization.pk):
        for column, user in enumerate(reviewers):
            actor = Actor(user=user)
            row = 0
            while (lease := services.queue_claim_next(actor=actor, queue=queue)) is not None:
                services.assignment_submit(
                    actor=actor,
                    assignment_id=lease.pk,
                    values={str(config.pk): answers[row][column]},
                )
                row += 1
        agreement.agreement_refresh(queue_id=queue.pk, resamples=50)


def _base(tenant, queue) -> str:
    return (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/queues/{queue.pk}/agreement/"
    )


def test_two_items_give_a_warning_in_the_api_csv_and_page(tenant, client_for):
    config, reviewers, queue = _queue(tenant, 2)
    # Two items, two reviewers who swap their answers: alpha -0.5.
    _answer_all(tenant, queue, config, reviewers, [("right", "wrong"), ("wrong", "right")])
    owner = client_for(tenant.owner)
    body = owner.get(_base(tenant, queue)).json()
    report = body["questions"][0]["report"]
    assert report["value"] == -0.5
    assert "Only 2 items answered by two or more reviewers" in report["warning"]
    assert report["figures"]["warning"] == report["warning"]
    alpha = report["figures"]["coefficients"]["krippendorff_alpha_nominal"]
    assert alpha["warning"] and alpha["n_items"] == 2
    assert body["questions"][0]["history"][0]["warning"] == report["warning"]

    rows = list(csv.DictReader(io.StringIO(owner.get(_base(tenant, queue) + "csv/").text)))
    assert rows and all(r["warning"].startswith("Only 2 items") for r in rows if r["value"])

    page = owner.get(
        f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/reports/quality/"
    ).content.decode()
    assert "Only 2 items answered by two or more reviewers" in page
    assert "too few items" in page
    # The degenerate interval is not printed as if it meant something.
    assert f"{report['ci_low']:.3f} \u2013 {report['ci_high']:.3f}" not in page
    assert "-0.500 \u2013 -0.500" not in page


def test_enough_items_give_no_warning(tenant, client_for):
    items = MIN_STABLE_ITEMS
    config, reviewers, queue = _queue(tenant, items)
    answers = [("right", "right")] * (items - 3) + [("wrong", "wrong"), ("partial", "partial"),
                                                    ("right", "wrong")]  # fmt: skip
    _answer_all(tenant, queue, config, reviewers, answers)
    owner = client_for(tenant.owner)
    report = owner.get(_base(tenant, queue)).json()["questions"][0]["report"]
    assert report["value"] is not None and report["warning"] is None
    coefficients = report["figures"]["coefficients"]
    assert all(figure["warning"] is None for figure in coefficients.values())
    rows = list(csv.DictReader(io.StringIO(owner.get(_base(tenant, queue) + "csv/").text)))
    assert all(r["warning"] == "" for r in rows)


def test_reviews_per_hour_waits_for_enough_reviews(tenant, client_for):
    config = make_config(tenant, name="score")
    (reviewer,) = add_reviewers(tenant, 1)
    queue = make_queue(tenant, configs=[config], reviewers=[reviewer])
    add_traces(tenant, queue, RATE_MIN_REVIEWS)
    owner = client_for(tenant.owner)
    board_url = (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/queues/{queue.pk}/board/"
    )
    actor = Actor(user=reviewer)
    for done in range(1, RATE_MIN_REVIEWS + 1):
        with tenancy.tenant_scope(tenant.organization.pk):
            lease = services.queue_claim_next(actor=actor, queue=queue)
            services.assignment_submit(
                actor=actor, assignment_id=lease.pk, values={str(config.pk): 0.5}
            )
        [assignee] = owner.get(board_url).json()["assignees"]
        assert assignee["done"] == done
        if done < RATE_MIN_REVIEWS:
            assert assignee["reviews_per_hour"] is None
    assert assignee["seconds_on_task_avg"] is not None
    if assignee["seconds_on_task_avg"] > 0:
        assert assignee["reviews_per_hour"] == round(3600 / assignee["seconds_on_task_avg"], 2)
