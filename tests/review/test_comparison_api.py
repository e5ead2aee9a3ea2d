"""The comparison API: creating items and questions, a reviewer's lease and submit,
the report and the export; bad input answers 400 with its reason; another
organization's ids answer 404."""

from __future__ import annotations

import json

import pytest

from tests.review.comparison_helpers import make_comparison, make_comparison_queue
from tests.review.helpers import make_queue, make_trace

pytestmark = pytest.mark.django_db


def base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def test_posted_comparisons_are_checked(tenant, other_tenant, client_for):
    owner = client_for(tenant.owner)
    url = f"{base(tenant)}/comparisons/"
    trace = make_trace(tenant, output="production answer")
    foreign = make_trace(other_tenant)
    refused = [
        ({"input": "q", "outputs": [{"label": "a", "content": "x"}]}, 400, "outputs"),
        (
            {"input": "q", "outputs": [{"label": "a", "content": 1}, {"label": "a", "content": 2}]},
            400,
            "outputs",
        ),
        ({"input": "q", "outputs": "nope"}, 400, "outputs"),
        (
            {
                "input": "q",
                "outputs": [
                    {"label": "prod", "content": "x", "trace_id": foreign.external_id},
                    {"label": "cand", "content": "y"},
                ],
            },
            404,
            None,
        ),
    ]
    for body, code, field in refused:
        response = owner.post(url, body, format="json")
        assert response.status_code == code, response.content
        if field:
            assert field in json.dumps(response.json())
    response = owner.post(
        url,
        {
            "input": {"question": "q"},
            "outputs": [
                {"label": "production", "content": "x", "trace_id": trace.external_id},
                {"label": "candidate", "content": "y"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    outputs = response.json()["outputs"]
    assert [(o["label"], o["source"], o["trace_id"]) for o in outputs] == [
        ("production", "trace", trace.pk),
        ("candidate", "api", None),
    ]
    # A reviewer reads no comparison list (systems are named there); a key can post.
    assert client_for(tenant.reviewer).get(url).status_code == 403
    keyed = client_for(key=tenant.key()).post(
        url,
        {"input": 1, "outputs": [{"label": "a", "content": 1}, {"label": "b", "content": 2}]},
        format="json",
    )
    assert keyed.status_code == 201, keyed.content


def test_a_comparison_queue_reviewed_through_the_api(tenant, other_tenant, client_for):
    owner, reviewer = client_for(tenant.owner), client_for(tenant.reviewer)
    queue = make_queue(tenant, configs=[], blind_mode=True)
    setup = f"{base(tenant)}/queues/{queue.pk}/comparison/"
    for body in (
        {"criteria": []},
        {"criteria": [{"name": "x"}], "n_way": "worst"},
        {"criteria": [{"name": "x"}, {"name": "x"}]},
    ):
        response = owner.put(setup, body, format="json")
        assert response.status_code == 400, (body, response.content)
    assert owner.get(setup).status_code == 404
    response = owner.put(setup, {"criteria": [{"name": "helpfulness"}]}, format="json")
    assert response.status_code == 200, response.content
    assert reviewer.put(setup, {"criteria": [{"name": "x"}]}, format="json").status_code == 403
    comparison = make_comparison(tenant)
    foreign = make_comparison(other_tenant)
    items = f"{base(tenant)}/queues/{queue.pk}/comparison/items/"
    assert owner.post(items, {"comparison_ids": [foreign.pk]}, format="json").status_code == 404
    assert owner.post(items, {"comparison_ids": []}, format="json").status_code == 400
    response = owner.post(items, {"comparison_ids": [comparison.pk]}, format="json")
    assert response.status_code == 201 and len(response.json()["added"]) == 1

    claimed = reviewer.post(f"{base(tenant)}/queues/{queue.pk}/claim/")
    assert claimed.status_code == 200, claimed.content
    lease = f"{base(tenant)}/assignments/{claimed.json()['assignment']['id']}/comparison/"
    shown = reviewer.get(lease).json()
    assert [o["letter"] for o in shown["outputs"]] == ["a", "b"]
    assert all(o["label"] is None for o in shown["outputs"])  # blind: systems unnamed
    assert shown["mode"] == "pairwise"
    # Another member, or another organization's reviewer, does not reach this lease.
    assert client_for(tenant.admin).get(lease).status_code == 404
    foreign_lease = lease.replace(base(tenant), base(other_tenant))
    assert client_for(other_tenant.reviewer).get(foreign_lease).status_code == 404
    for body, reason in (
        ({"answers": {"helpfulness": {"choice": "z"}}}, "choice"),
        ({"answers": {"helpfulness": {}}}, "choice or a ranking"),
        ({"answers": {"helpfulness": {"choice": "a", "strength": 2}}}, "strength"),
        ({"answers": {"tone": {"choice": "a"}}}, "helpfulness"),
        ({"answers": []}, "answers"),
    ):
        response = reviewer.post(lease, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert reason in json.dumps(response.json()), (body, response.json())
    response = reviewer.post(lease, {"answers": {"helpfulness": {"choice": "b"}}}, format="json")
    assert response.status_code == 201, response.content
    (preference,) = response.json()
    assert preference["winner"] == shown["outputs"][1]["output_id"]
    assert preference["shown_order"] == [o["output_id"] for o in shown["outputs"]]
    # A second submit on the ended lease is refused.
    again = reviewer.post(lease, {"answers": {"helpfulness": {"choice": "a"}}}, format="json")
    assert again.status_code == 409

    report_url = f"{base(tenant)}/queues/{queue.pk}/comparison/report/"
    assert owner.get(report_url, {"resamples": "-1"}).status_code == 400
    assert reviewer.get(report_url).status_code == 403
    foreign_report = report_url.replace(base(tenant), base(other_tenant))
    assert client_for(other_tenant.owner).get(foreign_report).status_code == 404
    figures = owner.get(report_url, {"resamples": 20}).json()["criteria"][0]
    assert figures["preferences"] == 1
    assert {row["system"] for row in figures["strengths"]} == {"baseline", "candidate"}
    export = owner.get(f"{base(tenant)}/queues/{queue.pk}/comparison/export/")
    assert export.status_code == 200
    (line,) = export.content.decode().splitlines()
    record = json.loads(line)
    assert set(record) >= {"prompt", "chosen", "rejected", "criterion", "reviewers"}
    assert record["reviewers"] == [tenant.reviewer.email]


def test_from_traces_and_from_experiments_refuse_with_reasons(tenant, client_for):
    owner = client_for(tenant.owner)
    url = f"{base(tenant)}/comparisons/"
    response = owner.post(
        f"{url}from-traces/", {"group_by": "variant", "trace_ids": ["x"]}, format="json"
    )
    assert response.status_code == 400 and "trace_ids" in json.dumps(response.json())
    a = make_trace(tenant, input="same", output="1", metadata={"variant": "a"})
    b = make_trace(tenant, input="same", output="2", metadata={"variant": "b"})
    response = owner.post(
        f"{url}from-traces/",
        {"group_by": "variant", "trace_ids": [a.external_id, b.external_id]},
        format="json",
    )
    assert response.status_code == 201, response.content
    (made,) = response.json()
    assert made["input"] == "same" and made["source"] == "traces"
    assert [(o["label"], o["content"]) for o in made["outputs"]] == [("a", "1"), ("b", "2")]
    response = owner.post(f"{url}from-experiments/", {"experiment_ids": [1]}, format="json")
    assert response.status_code == 400
    make_comparison_queue(tenant)  # a second queue does not change the list
    assert len(owner.get(url).json()["results"]) == 1
