"""Every write of the datasets API answers its 2xx body, and the body is what was
stored: create and edit a dataset, promote (and its retry), promote in bulk, the gate,
items (create, edit, delete), experiment results. (Import, export, experiment create and
finish are asserted in test_import_export.py and test_experiments.py.)"""

from __future__ import annotations

import pytest

from datasets import services
from datasets.models import Dataset, DatasetItem, DatasetVersion, QualityGate
from hitl import tenancy
from hitl.audit import Actor
from tests.datasets.helpers import import_rows, make_dataset
from tests.review.helpers import make_trace


def _base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


@pytest.fixture
def owner(tenant, client_for):
    return client_for(tenant.owner)


def _item(tenant, pk: int) -> DatasetItem:
    with tenancy.tenant_scope(tenant.organization.pk):
        return DatasetItem.objects.get(pk=pk)


def _versions(tenant, dataset) -> list[int]:
    with tenancy.tenant_scope(tenant.organization.pk):
        return list(
            DatasetVersion.objects.filter(dataset=dataset)
            .order_by("number")
            .values_list("number", flat=True)
        )


def test_create_and_edit_a_dataset_answer_the_stored_dataset(tenant, owner):
    schema = {"input": {"type": "object"}}
    created = owner.post(
        f"{_base(tenant)}/datasets/",
        {"name": "dosing", "description": "overdoses", "schema": schema},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["name"], body["description"], body["schema"]) == ("dosing", "overdoses", schema)
    assert body["current_version"] == 0
    with tenancy.tenant_scope(tenant.organization.pk):
        stored = Dataset.objects.get(pk=body["id"])
    assert stored.name == "dosing" and stored.project_id == tenant.project.pk

    edited = owner.patch(
        f"{_base(tenant)}/datasets/{body['id']}/", {"name": "dosing v2"}, format="json"
    )
    assert edited.status_code == 200, edited.content
    assert edited.json()["name"] == "dosing v2" and edited.json()["id"] == body["id"]
    assert edited.json()["description"] == "overdoses"

    # Its history: both versions, each with the request that wrote it, the stored change
    # and the change worded as the admin and the pages word it.
    history = owner.get(f"{_base(tenant)}/datasets/{body['id']}/history/")
    assert history.status_code == 200, history.content
    edit, creation = history.json()
    assert (edit["history_type"], creation["history_type"]) == ("~", "+")
    assert edit["request_id"] == edited["X-Request-Id"] != created["X-Request-Id"]
    assert creation["request_id"] == created["X-Request-Id"]
    assert {"field": "name", "old": "dosing", "new": "dosing v2"} in edit["changes"]
    assert {"field": "name", "old": "'dosing'", "new": "'dosing v2'"} in edit["lines"]
    assert edit["kind"] == "changed" and tenant.owner.email in edit["who"]
    assert (edit["user"], edit["api_key_prefix"]) == (tenant.owner.email, "")
    assert creation["changes"] == [] and creation["kind"] == "created"


def test_promote_answers_201_with_the_item_and_a_retry_409_naming_it(tenant, owner):
    dataset = make_dataset(tenant)
    make_trace(tenant, external_id="consult-9", input={"q": "dose?"}, output={"a": "20 g"})
    url = f"{_base(tenant)}/datasets/{dataset.pk}/promote/"
    request = {
        "trace_id": "consult-9",
        "overrides": {"failure_reason": "tenfold overdose"},
        "expected_output_from": "output",  # the promoter accepts the trace's output
    }

    created = owner.post(url, request, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "created" and body["version"] == 1
    item = body["item"]
    assert item["id"] == "trace:consult-9" and item["source_type"] == "trace"
    assert item["input"] == {"q": "dose?"} and item["expected_output"] == {"a": "20 g"}
    assert item["failure_reason"] == "tenfold overdose"
    stored = _item(tenant, item["item_id"])
    assert stored.key == item["id"] and stored.dataset_id == dataset.pk
    assert item["source_trace_id"] == "consult-9"
    assert item["content_hash"] == stored.content_hash

    # The same request again (a client retrying after a lost answer): 409, naming the
    # item stored the first time; nothing changes.
    retried = owner.post(url, request, format="json")
    assert retried.status_code == 409, retried.content
    error = retried.json()["error"]
    assert error["code"] == "already_in_dataset"
    assert error["details"] == {"item_id": item["item_id"], "id": "trace:consult-9"}
    assert _versions(tenant, dataset) == [1]
    # The client reads the item it was told about.
    read = owner.get(f"{_base(tenant)}/datasets/{dataset.pk}/items/{error['details']['item_id']}/")
    assert read.status_code == 200 and read.json()["failure_reason"] == "tenfold overdose"

    updated = owner.post(
        url,
        {"trace_id": "consult-9", "update_existing": True, "overrides": {"failure_reason": "x"}},
        format="json",
    )
    assert updated.status_code == 200, updated.content
    assert updated.json()["status"] == "updated" and updated.json()["version"] == 2
    assert updated.json()["item"]["item_id"] == item["item_id"]
    assert updated.json()["item"]["failure_reason"] == "x"
    assert _item(tenant, item["item_id"]).failure_reason == "x"

    same = owner.post(
        url,
        {"trace_id": "consult-9", "update_existing": True, "overrides": {"failure_reason": "x"}},
        format="json",
    )
    assert same.status_code == 200, same.content
    assert same.json()["status"] == "unchanged" and same.json()["item"]["failure_reason"] == "x"
    assert _versions(tenant, dataset) == [1, 2]


def test_promote_bulk_answers_its_counts(tenant, owner):
    dataset = make_dataset(tenant)
    for n in range(3):
        make_trace(tenant, external_id=f"bulk-{n}", name="triage", input={"n": n})
    make_trace(tenant, external_id="other", name="other", input={})
    url = f"{_base(tenant)}/datasets/{dataset.pk}/promote-bulk/"
    first = owner.post(url, {"trace_filter": {"name": "triage"}}, format="json")
    assert first.status_code == 200, first.content
    body = first.json()
    assert (body["matched"], body["created"], body["exists"], body["version"]) == (3, 3, 0, 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        keys = sorted(DatasetItem.objects.filter(dataset=dataset).values_list("key", flat=True))
        ids = sorted(DatasetItem.objects.filter(dataset=dataset).values_list("pk", flat=True))
    assert keys == ["trace:bulk-0", "trace:bulk-1", "trace:bulk-2"]
    again = owner.post(url, {"trace_filter": {"name": "triage"}}, format="json").json()
    assert (again["created"], again["exists"], again["version"]) == (0, 3, 1)
    assert sorted(again["existing_item_ids"]) == ids


def test_the_gate_put_answers_the_stored_gate(tenant, owner):
    dataset = make_dataset(tenant)
    thresholds = [{"metric": "accuracy", "min": 0.6}]
    response = owner.put(
        f"{_base(tenant)}/datasets/{dataset.pk}/gate/",
        {"thresholds": thresholds, "alignment_tolerance": 0.1},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    with tenancy.tenant_scope(tenant.organization.pk):
        gate = QualityGate.objects.get(dataset=dataset)
    assert body["thresholds"] == gate.thresholds and body["thresholds"][0]["metric"] == "accuracy"
    assert body["alignment_tolerance"] == pytest.approx(0.1) == gate.alignment_tolerance
    assert body["baseline_experiment_id"] is None


def test_a_gate_put_changes_only_the_fields_given(tenant, owner):
    dataset = make_dataset(tenant)
    url = f"{_base(tenant)}/datasets/{dataset.pk}/gate/"
    first = owner.put(
        url,
        {
            "thresholds": [{"metric": "accuracy", "min": 0.6}],
            "min_judge_alignment": 0.8,
            "judge_score_name": "faithfulness",
            "human_question": "correct",
        },
        format="json",
    )
    assert first.status_code == 200, first.content
    # The alignment threshold alone: the judge and the question stay as they were.
    changed = owner.put(url, {"min_judge_alignment": 0.9}, format="json")
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert body["min_judge_alignment"] == pytest.approx(0.9)
    assert (body["judge_score_name"], body["human_question"]) == ("faithfulness", "correct")
    assert body["thresholds"] == [{"metric": "accuracy", "min": 0.6}]
    # Taking the judge away while a threshold needs it is still refused, and stores nothing.
    refused = owner.put(url, {"judge_score_name": ""}, format="json")
    assert refused.status_code == 400, refused.content
    with tenancy.tenant_scope(tenant.organization.pk):
        assert QualityGate.objects.get(dataset=dataset).judge_score_name == "faithfulness"


def test_export_file_names_keep_no_separator_or_control_character(tenant):
    from datasets.models import Dataset, DatasetExport, DatasetVersion
    from datasets.services.exports import export_file_name

    for name, expected in (
        ("../../etc/passwd", "etc_passwd"),
        ("a\\b\r\nc\td", "a_b_c_d"),
        ("Médical QA v2", "Médical_QA_v2"),
        ("...", "dataset"),
    ):
        dataset = Dataset(name=name)
        version = DatasetVersion(dataset=dataset, number=3)
        export = DatasetExport(pk=7, dataset=dataset, version=version, format="csv")
        assert export_file_name(export) == f"7-{expected}-v3.csv", name


def test_item_create_edit_and_delete_answer_what_was_stored(tenant, owner):
    dataset = make_dataset(tenant)
    items = f"{_base(tenant)}/datasets/{dataset.pk}/items/"
    created = owner.post(
        items,
        {"id": "case-1", "input": {"q": "dose?"}, "expected_output": "2 g", "tags": ["dosing"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["version"] == 1
    item = body["item"]
    assert (item["id"], item["input"], item["expected_output"], item["tags"]) == (
        "case-1", {"q": "dose?"}, "2 g", ["dosing"],
    )  # fmt: skip
    assert _item(tenant, item["item_id"]).expected_output == "2 g"

    edited = owner.patch(
        f"{items}{item['item_id']}/", {"expected_output": "2 g every 8 h"}, format="json"
    )
    assert edited.status_code == 200, edited.content
    assert edited.json()["version"] == 2
    assert edited.json()["item"]["expected_output"] == "2 g every 8 h"
    assert edited.json()["item"]["item_id"] == item["item_id"]
    assert _item(tenant, item["item_id"]).expected_output == "2 g every 8 h"

    deleted = owner.delete(f"{items}{item['item_id']}/")
    assert deleted.status_code == 204 and deleted.content == b""
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not DatasetItem.objects.filter(pk=item["item_id"]).exists()
    assert owner.get(f"{items}{item['item_id']}/").status_code == 404
    assert _versions(tenant, dataset) == [1, 2, 3]


def test_posting_experiment_results_answers_the_count_stored(tenant, client_for):
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, [{"id": f"case-{i}", "input": {"q": i}} for i in range(3)])
    with tenancy.tenant_scope(tenant.organization.pk):
        experiment = services.experiment_create(
            actor=Actor(user=tenant.owner), dataset=dataset, name="nightly"
        )
    api = client_for(key=tenant.key("all"))
    response = api.post(
        f"{_base(tenant)}/experiments/{experiment.pk}/results/",
        {"results": [{"id": f"case-{i}", "scores": {"accuracy": 1}} for i in range(3)]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"stored": 3, "experiment": experiment.pk}
