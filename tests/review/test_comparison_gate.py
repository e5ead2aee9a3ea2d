"""Comparisons from two experiments on the same dataset items, reviewed, and the CI
gate's "candidate preferred or tied on at least X% of items (lower confidence bound)"."""

from __future__ import annotations

import pytest

from datasets import services as datasets_services
from datasets.gate import gate_verdict
from hitl import tenancy
from hitl.audit import Actor
from hitl.exceptions import DomainError, NotFound
from review.comparison import selectors, services
from review.models import Assignment
from tests.datasets.helpers import import_rows, make_dataset
from tests.review.comparison_helpers import claim, enqueue, make_comparison_queue, submit

pytestmark = pytest.mark.django_db


def _experiments(tenant, dataset, keys):
    owner = Actor(user=tenant.owner)
    made = []
    with tenancy.tenant_scope(tenant.organization.pk):
        for name in ("baseline", "candidate"):
            experiment = datasets_services.experiment_create(
                actor=owner, dataset=dataset, name=name
            )
            datasets_services.experiment_results_post(
                actor=owner,
                experiment=experiment,
                results=[{"id": k, "output": f"{name} says {k}"} for k in keys],
            )
            datasets_services.experiment_finish(actor=owner, experiment=experiment)
            experiment.refresh_from_db()
            made.append(experiment)
    return made


def test_experiments_compared_item_by_item_feed_the_gate(tenant, other_tenant):
    keys = ("a", "b", "c", "d")
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, [{"id": k, "input": f"question {k}"} for k in keys])
    baseline, candidate = _experiments(tenant, dataset, keys)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        comparisons = services.comparison_items_from_experiments(
            actor=owner, project=tenant.project, experiment_ids=[baseline.pk, candidate.pk]
        )
        with pytest.raises(DomainError):
            services.comparison_items_from_experiments(
                actor=owner, project=tenant.project, experiment_ids=[baseline.pk]
            )
    assert sorted(c.group_key for c in comparisons) == list(keys)
    first = next(c for c in comparisons if c.group_key == "a")
    with tenancy.tenant_scope(tenant.organization.pk):
        assert first.input == "question a"
        assert [(o.label, o.content) for o in first.outputs.order_by("position")] == [
            ("baseline", "baseline says a"),
            ("candidate", "candidate says a"),
        ]
    # Another organization cannot name these experiments.
    with tenancy.tenant_scope(other_tenant.organization.pk), pytest.raises(NotFound):
        services.comparison_items_from_experiments(
            actor=Actor(user=other_tenant.owner),
            project=other_tenant.project,
            experiment_ids=[baseline.pk, candidate.pk],
        )

    queue = make_comparison_queue(tenant)
    enqueue(tenant, queue, comparisons)
    while (lease := claim(tenant, tenant.reviewer, queue)) is not None:
        with tenancy.tenant_scope(tenant.organization.pk):
            view = selectors.comparison_for_lease(
                Assignment.objects.select_related("item").get(pk=lease.pk)
            )
        letter = next(o.letter for o in view.outputs if o.label == "candidate")
        # The candidate wins three items; one is a tie.
        answer = {"choice": "tie"} if view.comparison.group_key == "d" else {"choice": letter}
        submit(tenant, tenant.reviewer, lease, {"helpfulness": answer})

    def verdict(share: float) -> dict:
        with tenancy.tenant_scope(tenant.organization.pk):
            datasets_services.quality_gate_set(
                actor=owner,
                dataset=dataset,
                thresholds=[
                    {"metric": "preferred", "queue": queue.pk, "min_preferred_or_tied": share}
                ],
            )
            return gate_verdict(experiment=candidate)

    passed = verdict(0.5)
    (check,) = [c for c in passed["checks"] if c["kind"] == "preference"]
    assert check["status"] == "pass", check
    assert check["items"] == 4 and check["value"] == 1.0
    # Preferred or tied on every item, yet four items are too few for 60% with 95%
    # confidence: the lower bound (about 51%) decides.
    assert 0.5 < check["lower_bound"] < 0.6
    failed = verdict(0.6)
    assert [c["status"] for c in failed["checks"] if c["kind"] == "preference"] == ["fail"]
    # The baseline lost three of four: far below.
    with tenancy.tenant_scope(tenant.organization.pk):
        base_verdict = gate_verdict(experiment=baseline)
    (base_check,) = [c for c in base_verdict["checks"] if c["kind"] == "preference"]
    assert base_check["value"] == 0.25 and base_check["status"] == "fail"


def test_a_preference_threshold_is_checked(tenant):
    dataset = make_dataset(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        for bad in (
            {"metric": "p", "min_preferred_or_tied": 1.5, "queue": 1},
            {"metric": "p", "min_preferred_or_tied": 0.5},
            {"metric": "p", "min_preferred_or_tied": 0.5, "queue": 1, "extra": 1},
        ):
            with pytest.raises(DomainError):
                datasets_services.quality_gate_set(
                    actor=Actor(user=tenant.owner), dataset=dataset, thresholds=[bad]
                )


def test_the_api_makes_comparisons_from_two_experiments(tenant, client_for):
    keys = ("a", "b")
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, [{"id": k, "input": f"question {k}"} for k in keys])
    baseline, candidate = _experiments(tenant, dataset, keys)
    url = (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        "/comparisons/from-experiments/"
    )
    response = client_for(tenant.owner).post(
        url, {"experiment_ids": [baseline.pk, candidate.pk]}, format="json"
    )
    assert response.status_code == 201, response.content
    made = sorted(response.json(), key=lambda c: c["group_key"])
    assert [c["group_key"] for c in made] == ["a", "b"]
    assert made[0]["input"] == "question a"
    assert [(o["label"], o["content"]) for o in made[0]["outputs"]] == [
        ("baseline", "baseline says a"),
        ("candidate", "candidate says a"),
    ]
