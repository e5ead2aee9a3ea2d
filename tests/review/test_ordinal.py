"""Nominal or ordinal is the question's explicit choice (``ordered``), never inferred
from its options' values: a categorical question with three numeric options is
nominal unless its author says it is ordered; an ordered one is computed as ordinal
(Krippendorff's ordinal alpha, weighted kappas), and the report says which."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest

from hitl import tenancy
from review.quality.models import AgreementReport
from review.quality.services import agreement
from tests.review.helpers import add_reviewers, add_traces, make_queue
from tests.review.test_agreement_reports import ANSWERS, LABELS, _review

OPTIONS = [{"label": label, "value": float(i)} for i, label in enumerate(LABELS)]


def _base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def _config(owner, tenant, name: str, **extra):
    body = {"name": name, "data_type": "categorical", "options": OPTIONS,
            "rubric": [{"label": "x", "definition": "y", "examples": ["z"]}], **extra}  # fmt: skip
    response = owner.post(f"{_base(tenant)}/score-configs/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _alpha(submitted, level: str) -> float:
    items = sorted({i for i, _, _ in submitted})
    raters = sorted({r for _, r, _ in submitted})
    data = np.full((len(raters), len(items)), np.nan)
    for item, rater, answer in submitted:
        data[raters.index(rater), items.index(item)] = LABELS.index(answer)
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


@pytest.mark.parametrize("ordered", [False, True])
def test_the_question_says_nominal_or_ordinal(tenant, client_for, ordered):
    from review.models import ScoreConfig

    owner = client_for(tenant.owner)
    extra = {"ordered": True} if ordered else {}
    created = _config(owner, tenant, f"correctness-{ordered}", **extra)
    assert created["ordered"] is ordered
    with tenancy.tenant_scope(tenant.organization.pk):
        config = ScoreConfig.objects.get(pk=created["id"])
    reviewers = add_reviewers(tenant, 3)
    queue = make_queue(tenant, configs=[config], reviewers=reviewers, overlap=3)
    items = add_traces(tenant, queue, len(ANSWERS))
    submitted = _review(tenant, queue, config, reviewers, items)
    with tenancy.tenant_scope(tenant.organization.pk):
        agreement.agreement_refresh(queue_id=queue.pk, resamples=20)
        [report] = AgreementReport.objects.filter(queue=queue)
    level = "ordinal" if ordered else "nominal"
    assert report.level == level and report.figures["config"]["measurement"] == level
    assert report.value == pytest.approx(_alpha(submitted, level), abs=1e-9)
    pair = report.figures["pairs"][0]
    assert ("cohen_kappa_quadratic" in pair) is ordered
    page = owner.get(
        f"/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/reports/quality/"
    ).content.decode()
    assert f"in {queue.name}: {level} over time" in page


def test_ordered_is_a_versioned_edit_and_needs_distinct_values(tenant, client_for):
    owner = client_for(tenant.owner)
    created = _config(owner, tenant, "severity")
    url = f"{_base(tenant)}/score-configs/{created['id']}/"
    changed = owner.patch(url, {"ordered": True}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["ordered"] is True and changed.json()["version"] == 2
    same = [{"label": label, "value": 1.0} for label in LABELS]
    refused = owner.post(
        f"{_base(tenant)}/score-configs/",
        {"name": "flat", "data_type": "categorical", "options": same, "ordered": True,
         "rubric": [{"label": "x", "definition": "y", "examples": ["z"]}]},
        format="json",
    )  # fmt: skip
    assert refused.status_code == 400 and "ordered" in refused.json()["error"]["details"]
