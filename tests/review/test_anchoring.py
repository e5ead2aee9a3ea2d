"""The alignment report measures anchoring: judge-human agreement on answers given with
the judge's suggestion visible against answers given without, each with a Wilson
interval and the difference with Newcombe's (both equal to statsmodels); reviewers
planted to copy the suggestion when they see it make the report warn, reviewers who do
not make it say there is no sign, and a small sample is said to be small."""

from __future__ import annotations

import csv
import io
import random

import pytest
from django.test import Client
from django.urls import reverse
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from hitl import tenancy
from hitl.audit import Actor
from review import services
from review.quality.alignment import (
    MIN_ANCHORING_ANSWERS,
    anchoring_comparison,
    newcombe_difference,
    wilson_interval,
)
from review.quality.services import alignment
from tests.review.helpers import add_traces, make_config, make_queue
from traces.models import Score


def test_the_intervals_equal_statsmodels():
    rng = random.Random(7)
    cases = [(0, 5, 5, 5), (5, 5, 0, 5), (1, 1, 0, 1)]
    cases += [
        (rng.randint(0, n1), n1, rng.randint(0, n2), n2)
        for n1, n2 in ((rng.randint(1, 400), rng.randint(1, 400)) for _ in range(200))
    ]
    for k1, n1, k2, n2 in cases:
        low, high = proportion_confint(k1, n1, alpha=0.05, method="wilson")
        assert wilson_interval(k1, n1) == pytest.approx((low, high), abs=1e-12)
        ref_low, ref_high = confint_proportions_2indep(
            k1, n1, k2, n2, method="newcomb", compare="diff", alpha=0.05
        )
        difference, ours_low, ours_high = newcombe_difference(k1, n1, k2, n2)
        assert difference == pytest.approx(k1 / n1 - k2 / n2, abs=1e-12)
        assert (ours_low, ours_high) == pytest.approx((ref_low, ref_high), abs=1e-9)
    assert wilson_interval(0, 0) is None
    assert newcombe_difference(1, 2, 0, 0) is None


def test_verdicts_on_figures_alone():
    small = anchoring_comparison(agree_visible=[True] * 29, agree_hidden=[False] * 40)
    assert small["verdict"] == "small_sample"
    assert "too few" in small["message"]
    anchored = anchoring_comparison(
        agree_visible=[True] * 38 + [False] * 2, agree_hidden=[True] * 24 + [False] * 16
    )
    assert anchored["verdict"] == "anchoring"
    assert anchored["interval"][0] > 0
    same = anchoring_comparison(
        agree_visible=[True] * 30 + [False] * 10, agree_hidden=[True] * 31 + [False] * 9
    )
    assert same["verdict"] == "no_sign"
    assert same["interval"][0] < 0 < same["interval"][1]
    less = anchoring_comparison(
        agree_visible=[True] * 10 + [False] * 30, agree_hidden=[True] * 35 + [False] * 5
    )
    assert less["verdict"] == "less_when_visible"


ITEMS = 90  # about 45 per arm at a 50% hold-out


@pytest.fixture
def judged(tenant):
    """A queue showing the judge's suggestion beside its question on half the items;
    the judge scored every trace; a mapping of its score to the question."""
    config = make_config(
        tenant, name="Correct", data_type="boolean", min_value=None, max_value=None, step=None
    )
    queue = make_queue(
        tenant, configs=[config], blind_mode=False, suggestion_mode="before",
        suggestion_holdout_percent=50,
    )  # fmt: skip
    items = add_traces(tenant, queue, ITEMS)
    rng = random.Random(23)
    judge = {}
    with tenancy.tenant_scope(tenant.organization.pk):
        for item in items:
            judge[item.pk] = rng.random() < 0.5
            Score.objects.create(
                project=tenant.project, trace_id=item.trace_id, name="Correct",
                data_type="boolean", value=1.0 if judge[item.pk] else 0.0, source="llm_judge",
                source_name="gpt-judge",
            )  # fmt: skip
        mapping = alignment.alignment_mapping_create(
            actor=Actor(user=tenant.owner), project=tenant.project, score_name="Correct",
            config_id=config.pk, scope="all",
        )  # fmt: skip
    return config, queue, judge, mapping


def _review_all(tenant, config, queue, answer_for):
    """Claims and answers every item as the page would: the suggestion listed as seen
    when the item's arm shows it; ``answer_for(item_id, shown, n)`` gives the answer."""
    reviewer = Actor(user=tenant.reviewer)
    counts = {True: 0, False: 0}
    with tenancy.tenant_scope(tenant.organization.pk):
        while (lease := services.queue_claim_next(actor=reviewer, queue=queue)) is not None:
            from review import selectors

            shown = selectors.suggestions_for_reviewer(lease.item, queue)["mode"] == "before"
            services.assignment_submit(
                actor=reviewer,
                assignment_id=lease.pk,
                values={str(config.pk): answer_for(lease.item_id, shown, counts[shown])},
                suggestions_seen=[config.pk] if shown else [],
            )
            counts[shown] += 1
    assert min(counts.values()) >= MIN_ANCHORING_ANSWERS, counts
    return counts


def test_reviewers_planted_to_copy_the_suggestion_make_the_report_warn(tenant, judged):
    config, queue, judge, mapping = judged

    # Seen: the judge's answer. Not seen: their own, which agrees with the judge on
    # every other item.
    def planted(item_id, shown, n):
        return judge[item_id] if shown or n % 2 == 0 else not judge[item_id]

    _review_all(tenant, config, queue, planted)
    with tenancy.tenant_scope(tenant.organization.pk):
        report = alignment.alignment_refresh(mapping_id=mapping.pk)
    anchoring = report.figures["anchoring"]
    assert anchoring["verdict"] == "anchoring", anchoring
    assert anchoring["visible"]["agreement_rate"]["value"] == 1.0
    assert anchoring["hidden"]["agreement_rate"]["value"] == pytest.approx(0.5, abs=0.03)
    assert anchoring["interval"][0] > 0
    assert anchoring["left_out"] == {"unrecorded": 0, "revised_after_seeing": 0}
    # The quality page says it, and the CSV carries it.
    client = Client()
    client.force_login(tenant.owner)
    base = {"org_slug": tenant.organization.slug, "project_slug": tenant.project.slug}
    page = client.get(reverse("reports-quality", kwargs=base))
    html = page.content.decode()
    assert page.status_code == 200
    assert f'id="anchoring-{mapping.pk}" data-verdict="anchoring"' in html
    assert "likely anchors their answers" in html
    listing = client.get(reverse("alignment-mappings", kwargs=base)).content.decode()
    assert f"#anchoring-{mapping.pk}" in listing
    csv_url = (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/alignment-mappings/{mapping.pk}/reports/csv/"
    )
    (row,) = csv.DictReader(io.StringIO(client.get(csv_url).content.decode()))
    assert row["anchoring_verdict"] == "anchoring"
    assert float(row["agreement_suggestion_visible"]) == 1.0
    assert float(row["anchoring_low"]) > 0


def test_reviewers_who_ignore_the_suggestion_show_no_sign(tenant, judged):
    config, queue, judge, mapping = judged

    # Seen or not, they agree with the judge on every other item.
    def independent(item_id, shown, n):
        return judge[item_id] if n % 2 == 0 else not judge[item_id]

    _review_all(tenant, config, queue, independent)
    with tenancy.tenant_scope(tenant.organization.pk):
        report = alignment.alignment_refresh(mapping_id=mapping.pk)
    anchoring = report.figures["anchoring"]
    assert anchoring["verdict"] == "no_sign", anchoring
    assert anchoring["interval"][0] < 0 < anchoring["interval"][1]
