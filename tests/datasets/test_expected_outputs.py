"""Expected outputs that are really expected: a reviewed item promotes with what people
stated (``review.consensus``, the rule review uses too), what the promoter types, or the
model's output only when the promoter accepts it; otherwise it "needs expected output",
which the API, the pages, the export report and the gate all say."""

from __future__ import annotations

import pytest

from datasets import services
from datasets.gate import gate_verdict
from datasets.models import DatasetExport, DatasetItem
from hitl import tenancy
from hitl.audit import Actor
from review import services as review_services
from review.consensus import consensus_expected_output
from review.models import Adjudication, Annotation
from tests.datasets.helpers import make_dataset, make_reviewed_item
from tests.page_clients import project_url, signed_in
from tests.review.helpers import add_reviewers, make_config, make_queue, make_trace

MODEL_OUTPUT = {"a": "20 g"}  # the judged-wrong answer


def _base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def _reviewed(tenant, *, disagree: bool, questions=(), stated=None, name="plain"):
    """A trace reviewed by two reviewers who fail it (0.0) in a queue without an
    expected-output question unless ``questions`` adds one; adjudicated (failed, with
    no expected output) when they disagree. ``stated``: per reviewer, the answer to
    the added question."""
    accuracy = make_config(tenant, name=f"accuracy-{name}")
    first, second = add_reviewers(tenant, 2)
    queue = make_queue(
        tenant, configs=[accuracy, *questions], reviewers=[first, second, tenant.admin],
        seniors=(tenant.admin,), overlap=2, name=f"queue {name}",
    )  # fmt: skip
    trace = make_trace(
        tenant, external_id=f"call-{name}", input={"q": "dose?"}, output=MODEL_OUTPUT
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        item = review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk
        )
        for index, (reviewer, value) in enumerate(
            ((first, 0.0), (second, 0.5 if disagree else 0.0))
        ):
            values = {str(accuracy.pk): value}
            if questions and stated:
                values[str(questions[0].pk)] = stated[index]
            lease = review_services.queue_claim_next(actor=Actor(user=reviewer), queue=queue)
            review_services.assignment_submit(
                actor=Actor(user=reviewer), assignment_id=lease.pk, values=values
            )
        item.refresh_from_db()
        if disagree:
            review_services.item_adjudicate(
                actor=Actor(user=tenant.admin),
                item=item,
                membership=tenant.admin.memberships.get(),
                values={str(accuracy.pk): 0.0},
                explanation="Fails.",
            )
            item.refresh_from_db()
    return item


def _promote(tenant, dataset, item, **kwargs):
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.dataset_promote(
            actor=Actor(user=tenant.owner), dataset=dataset, queue_item_id=item.pk, **kwargs
        )


@pytest.mark.parametrize("disagree", [False, True], ids=["failed", "adjudicated"])
def test_a_judged_wrong_output_is_never_stored_as_expected(tenant, client_for, disagree):
    item = _reviewed(tenant, disagree=disagree)
    assert item.status == ("adjudicated" if disagree else "complete")
    dataset = make_dataset(tenant)
    promoted = _promote(tenant, dataset, item)
    row = promoted.item
    assert row.expected_output is None and row.needs_expected_output is True
    assert row.input == {"q": "dose?"} and len(row.reviews) == (3 if disagree else 2)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert DatasetItem.objects.filter(pk=row.pk).get().expected_output is None
    # The API says so, on the item and in the list.
    api = client_for(tenant.owner)
    body = api.get(f"{_base(tenant)}/datasets/{dataset.pk}/items/{row.pk}/").json()
    assert body["needs_expected_output"] is True and body["expected_output"] is None
    listed = api.get(f"{_base(tenant)}/datasets/{dataset.pk}/items/").json()["results"]
    assert [r["needs_expected_output"] for r in listed] == [True]


def test_the_promoter_types_one_or_accepts_the_models_output(tenant, client_for):
    failed = _reviewed(tenant, disagree=False, name="typed")
    adjudicated = _reviewed(tenant, disagree=True, name="accepted")
    dataset = make_dataset(tenant)
    api = client_for(tenant.owner)
    url = f"{_base(tenant)}/datasets/{dataset.pk}/promote/"
    typed = api.post(
        url,
        {"queue_item_id": failed.pk, "overrides": {"expected_output": "2 g"}},
        format="json",
    )
    assert typed.status_code == 201, typed.content
    assert typed.json()["item"]["expected_output"] == "2 g"
    assert typed.json()["item"]["needs_expected_output"] is False
    accepted = api.post(
        url, {"queue_item_id": adjudicated.pk, "accept_output": True}, format="json"
    )
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["item"]["expected_output"] == MODEL_OUTPUT
    assert accepted.json()["item"]["needs_expected_output"] is False


def test_bulk_promotion_from_a_queue_follows_the_same_rule(tenant, client_for):
    item = _reviewed(tenant, disagree=False)
    api = client_for(tenant.owner)
    for accept, expected in ((False, None), (True, MODEL_OUTPUT)):
        dataset = make_dataset(tenant, name=f"bulk {accept}")
        report = api.post(
            f"{_base(tenant)}/datasets/{dataset.pk}/promote-bulk/",
            {"queue_id": item.queue_id, "accept_output": accept},
            format="json",
        )
        assert report.status_code == 200 and report.json()["created"] == 1, report.content
        with tenancy.tenant_scope(tenant.organization.pk):
            row = DatasetItem.objects.get(dataset=dataset)
        assert row.expected_output == expected and row.needs_expected_output is (not accept)


def test_a_queue_with_an_expected_output_question_carries_the_reviewers_answer(tenant):
    better = make_config(
        tenant, name="better answer", data_type="text", min_value=None, max_value=None,
        step=None, writes_expected_output=True,
    )  # fmt: skip
    item = _reviewed(
        tenant, disagree=False, questions=[better], stated=["2 g", "2 g"], name="question"
    )
    row = _promote(tenant, make_dataset(tenant), item).item
    assert row.expected_output == "2 g" and row.needs_expected_output is False
    # Even when the promoter would accept the model's output, the people's answer wins.
    again = _promote(tenant, make_dataset(tenant, name="other"), item, accept_output=True).item
    assert again.expected_output == "2 g"


@pytest.mark.parametrize("disagree", [False, True], ids=["agreed", "adjudicated"])
def test_one_consensus_rule_for_review_and_promotion(tenant, disagree):
    """The adjudicator's stated output wins, else the reviewers' most common: the
    promoted item holds exactly what review.consensus computes on the same rows."""
    item, _trace, _ = make_reviewed_item(tenant, disagree=disagree)
    with tenancy.tenant_scope(tenant.organization.pk):
        annotations = list(Annotation.objects.filter(item=item).order_by("submitted_at"))
        decision = Adjudication.objects.filter(item=item).first()
        agreed = consensus_expected_output(annotations, decision)
    row = _promote(tenant, make_dataset(tenant), item, accept_output=True).item
    assert row.expected_output == agreed
    assert agreed == ({"a": "2 g, every 8 hours"} if disagree else {"a": "2 g"})


def test_the_pages_ask_for_one_and_show_what_is_missing(tenant):
    item = _reviewed(tenant, disagree=True)
    dataset = make_dataset(tenant)
    client = signed_in(tenant.owner)
    url = project_url(tenant, "datasets-promote")
    page = client.get(url, {"item": item.pk}).content.decode()
    assert 'id="promote-no-expected"' in page and 'name="expected_output"' in page
    assert 'id="promote-accept"' in page and "20 g" in page  # the output to judge
    # Promote without typing one: the item waits for an expected output.
    response = client.post(url, {"item": str(item.pk), "dataset": str(dataset.pk)})
    assert response.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        row = DatasetItem.objects.get(dataset=dataset)
    assert row.needs_expected_output
    item_page = client.get(response["Location"]).content.decode()
    # The item page leads back to the promote form to type one.
    assert f'?item={item.pk}&amp;dataset={dataset.pk}" id="give-expected"' in item_page
    assert (
        'id="item-needs-expected"' in item_page
        and "20 g" not in item_page.split('id="item-needs-expected"')[1].split("</p>")[0]
    )
    detail = client.get(
        project_url(tenant, "datasets-detail", dataset_pk=dataset.pk)
    ).content.decode()
    assert 'id="needs-expected-count"' in detail and "needs expected output" in detail
    # Promote again typing one: it is stored as typed, and nothing waits any more.
    typed = client.post(
        url,
        {
            "item": str(item.pk),
            "dataset": str(dataset.pk),
            "update_existing": "on",
            "expected_output": "2 g every 8 hours",
        },
    )
    assert typed.status_code == 302
    with tenancy.tenant_scope(tenant.organization.pk):
        row.refresh_from_db()
    assert row.expected_output == "2 g every 8 hours" and not row.needs_expected_output
    detail = client.get(
        project_url(tenant, "datasets-detail", dataset_pk=dataset.pk)
    ).content.decode()
    assert 'id="needs-expected-count"' not in detail
    # Ticking "use the model's output" on a fresh dataset stores it.
    other = make_dataset(tenant, name="accepted")
    client.post(url, {"item": str(item.pk), "dataset": str(other.pk), "accept_output": "on"})
    with tenancy.tenant_scope(tenant.organization.pk):
        assert DatasetItem.objects.get(dataset=other).expected_output == MODEL_OUTPUT


def test_the_export_report_and_the_gate_read_a_needs_expected_output_item(tenant, client_for):
    item = _reviewed(tenant, disagree=False)
    dataset = make_dataset(tenant)
    _promote(tenant, dataset, item)
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        export = services.dataset_export_start(
            actor=owner, dataset=dataset, version=None, file_format="jsonl"
        )
        services.dataset_export_run(export_id=export.pk)
        assert DatasetExport.objects.get(pk=export.pk).state == "done"
    api = client_for(tenant.owner)
    exports = api.get(f"{_base(tenant)}/datasets/{dataset.pk}/exports/{export.pk}/").json()
    assert exports["needs_expected_output"] == 1
    page = signed_in(tenant.owner).get(
        project_url(tenant, "datasets-exports", dataset_pk=dataset.pk)
    )
    assert "1 without expected output" in page.content.decode()

    with tenancy.tenant_scope(tenant.organization.pk):
        services.quality_gate_set(
            actor=owner, dataset=dataset, thresholds=[{"metric": "accuracy", "min": 0.5}]
        )
        experiment = services.experiment_create(actor=owner, dataset=dataset, name="run")
        services.experiment_results_post(
            actor=owner,
            experiment=experiment,
            results=[{"id": "trace:call-plain", "output": "x", "scores": {"accuracy": 1.0}}],
        )
        experiment = services.experiment_finish(actor=owner, experiment=experiment)
        verdict = gate_verdict(experiment=experiment)
    metric, waiting = verdict["checks"]
    assert metric["status"] == "pass"
    assert waiting["kind"] == "expected_outputs" and waiting["status"] == "fail"
    assert "1 item of version 1 needs an expected output" in waiting["message"]
    assert verdict["passed"] is False and verdict["needs_expected_output"] == 1
    body = api.get(f"{_base(tenant)}/experiments/{experiment.pk}/gate/").json()
    assert body["needs_expected_output"] == 1 and body["verdict"] == "fail"

    # Once a person gives it one (a new version), the gate passes on that version.
    _promote(tenant, dataset, item, update_existing=True, overrides={"expected_output": "2 g"})
    with tenancy.tenant_scope(tenant.organization.pk):
        rerun = services.experiment_create(actor=owner, dataset=dataset, name="rerun")
        services.experiment_results_post(
            actor=owner,
            experiment=rerun,
            results=[{"id": "trace:call-plain", "output": "2 g", "scores": {"accuracy": 1.0}}],
        )
        rerun = services.experiment_finish(actor=owner, experiment=rerun)
        assert gate_verdict(experiment=rerun)["passed"] is True
