"""Experiment compare, item by item (Django client): the two outputs side by side with
the words that differ marked, the scores of both runs, the reviewers' verdicts on each
trace, a filter to regressions, pages."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from datasets import services
from datasets.views import output_diff
from hitl import tenancy
from hitl.audit import Actor
from tests.datasets.helpers import import_rows, make_dataset
from tests.page_clients import project_url, signed_in
from tests.review.helpers import make_trace
from traces.models import Score


@pytest.fixture
def runs(tenant):
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, [{"id": k, "input": k} for k in ("a", "b", "c", "d")])
    judged = make_trace(tenant, external_id="cand-trace-a")
    with tenancy.tenant_scope(tenant.organization.pk):
        Score.objects.create(
            project=tenant.project,
            trace=judged,
            name="correct",
            data_type="categorical",
            label="wrong dose",
            source="human",
            author=tenant.reviewer,
        )
    owner = Actor(user=tenant.owner)
    made = []
    with tenancy.tenant_scope(tenant.organization.pk):
        for name, scores, outputs in (
            ("base", (1.0, 0.0, 0.5, 0.5), ("Take 5 mg daily.", "No.", "Same", "Same")),
            ("cand", (0.0, 1.0, 0.5, 0.2), ("Take 50 mg daily.", "Yes.", "Same", "Other")),
        ):
            experiment = services.experiment_create(actor=owner, dataset=dataset, name=name)
            services.experiment_results_post(
                actor=owner,
                experiment=experiment,
                results=[
                    {
                        "id": k,
                        "output": o,
                        "scores": {"accuracy": s},
                        "trace_id": f"{name}-trace-{k}",
                    }
                    for k, s, o in zip("abcd", scores, outputs, strict=True)
                ],
            )
            services.experiment_finish(actor=owner, experiment=experiment)
            made.append(experiment)
    return made


def _page(tenant, runs, **params):
    baseline, candidate = runs
    url = project_url(tenant, "experiments-compare", experiment_pk=candidate.pk)
    response = signed_in(tenant.owner).get(
        f"{url}?{urlencode({'baseline': baseline.pk, **params})}"
    )
    assert response.status_code == 200
    return response


def test_changed_items_side_by_side_with_their_diff_scores_and_verdicts(tenant, runs):
    response = _page(tenant, runs)
    items = response.context["page"]["items"]
    assert [(i["id"], i["status"]) for i in items] == [
        ("a", "regressed"),
        ("b", "improved"),
        ("d", "regressed"),
    ]
    first = items[0]
    assert first["metrics"] == [
        {"name": "accuracy", "baseline": 1.0, "candidate": 0.0, "delta": -1.0}
    ]
    assert first["baseline"]["output"] == "Take 5 mg daily."
    assert first["candidate"]["verdicts"] == [
        {"name": "correct", "value": None, "label": "wrong dose", "author": tenant.reviewer.email}
    ]
    body = response.content.decode()
    assert "Take <del>5</del> mg daily." in body and "Take <ins>50</ins> mg daily." in body
    assert "wrong dose" in body and tenant.reviewer.email in body


def test_regressions_only_and_pages(tenant, runs):
    response = _page(tenant, runs, show="regressed")
    assert [i["id"] for i in response.context["page"]["items"]] == ["a", "d"]
    everything = _page(tenant, runs, show="all")
    assert [i["status"] for i in everything.context["page"]["items"]] == [
        "regressed",
        "improved",
        "unchanged",
        "regressed",
    ]
    later = _page(tenant, runs, show="all", after="b")
    assert [i["id"] for i in later.context["page"]["items"]] == ["c", "d"]


def test_the_diff_escapes_and_marks_only_what_differs():
    diff = output_diff("<b>1</b> same", {"answer": "<b>2</b> same"})
    assert "&lt;b&gt;" in diff["baseline"] and "<b>" not in diff["baseline"]
    assert "<ins>" in diff["candidate"] and not diff["same"]
    assert output_diff("x", "x")["same"]
