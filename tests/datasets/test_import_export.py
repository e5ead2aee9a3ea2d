"""Import with validation; exports and their jobs. That every export format loads back in
the Hugging Face ``datasets`` library with equal content is
``tests/datasets/test_export_every_source.py``.
"""

from __future__ import annotations

import csv
import io
import json

import orjson
import pytest

from datasets import services
from datasets.models import DatasetExport, DatasetItem, DatasetVersion
from datasets.services.exports import NotAChat, chat_example, export_key
from hitl import outbox, tenancy
from hitl.audit import Actor
from hitl.exceptions import DomainError
from hitl.models import OutboxMessage
from tests.datasets.helpers import import_rows, make_dataset, make_reviewed_item


def _import(tenant, dataset, data: bytes, file_format: str = "jsonl", **kwargs):
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.dataset_import(
            actor=Actor(user=tenant.owner),
            dataset=dataset,
            stream=io.BytesIO(data),
            file_format=file_format,
            **kwargs,
        )


BAD_JSONL = b"\n".join(
    [
        b'{"id": "a", "input": {"q": 1}, "expected_output": "one"}',
        b'{"id": "b", "input": {"q": 2}',  # line 2: not JSON
        b'{"id": "a", "input": {"q": 3}}',  # line 3: duplicated id
        b'{"id": "c", "expected_output": "x"}',  # line 4: no input
        b'{"id": "d", "input": {"q": 4}, "metadata": [1]}',  # line 5: metadata not an object
        b'{"id": "e", "input": "caf\xe9"}',  # line 6: Latin-1, not UTF-8
        b"",
        b'{"id": "f", "input": {"q": 6}, "colour": "red"}',  # line 8: unknown field
        b'{"id": "g", "input": {"q": 7}, "tags": ["ok"]}',
    ]
)


def test_bad_rows_are_reported_with_their_line_and_good_rows_land(tenant):
    dataset = make_dataset(tenant)
    report = _import(tenant, dataset, BAD_JSONL)
    reasons = {e["line"]: e["reason"] for e in report.errors}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 8]
    assert "not valid JSON" in reasons[2]
    assert reasons[3] == "duplicated id (first on line 1)"
    assert reasons[4] == "input is missing"
    assert "metadata" in reasons[5]
    assert "not UTF-8" in reasons[6]
    assert "colour" in reasons[8]
    assert (report.created, report.version) == (2, 1)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert sorted(DatasetItem.objects.values_list("key", flat=True)) == ["a", "g"]
        # Imported rows leave history too.
        assert DatasetItem.history.filter(dataset=dataset, history_type="+").count() == 2


def test_atomic_import_lands_nothing_when_a_row_is_bad(tenant):
    dataset = make_dataset(tenant)
    with pytest.raises(DomainError) as refused:
        _import(tenant, dataset, BAD_JSONL, atomic=True)
    assert refused.value.code == "import_rejected"
    assert [e["line"] for e in refused.value.details["errors"]] == [2, 3, 4, 5, 6, 8]
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not DatasetItem.objects.exists() and not DatasetVersion.objects.exists()


def test_schema_failures_and_csv_rows(tenant):
    schema = {
        "input": {"type": "object", "required": ["q"], "properties": {"q": {"type": "string"}}},
        "metadata": {"type": "object", "properties": {"lang": {"enum": ["en", "de"]}}},
    }
    dataset = make_dataset(tenant, schema=schema)
    rows = (
        b"id,input,expected_output,metadata,tags\n"
        b'one,"{""q"": ""dose?""}",2 g,"{""lang"": ""en""}","[""dosing""]"\n'
        b'two,"{""q"": 5}",x,,\n'
        b'three,"{""q"": ""hi""}",hello,"{""lang"": ""fr""}",\n'
        b'four,"{""q"": ""hi""}","line one\nline two",,\n'
        b'five,"{""q"": 6}",x,,\n'
    )
    report = _import(tenant, dataset, rows, "csv")
    reasons = {e["line"]: (e["id"], e["reason"]) for e in report.errors}
    assert reasons[3] == ("two", "input/q: 5 is not of type 'string'")
    assert reasons[4][0] == "three" and "metadata/lang" in reasons[4][1]
    assert reasons[7][0] == "five"  # line 5 holds a cell of two lines
    assert report.created == 2
    with tenancy.tenant_scope(tenant.organization.pk):
        one = DatasetItem.objects.get(dataset=dataset, key="one")
        four = DatasetItem.objects.get(dataset=dataset, key="four")
    assert one.input == {"q": "dose?"} and one.expected_output == "2 g"
    assert one.metadata == {"lang": "en"} and one.tags == ["dosing"]
    assert four.input == {"q": "hi"} and four.expected_output == "line one\nline two"


def test_a_csv_in_another_encoding_is_refused_whole(tenant):
    dataset = make_dataset(tenant)
    data = "id,input\na,caf\u00e9\n".encode("utf-16")
    with pytest.raises(DomainError) as refused:
        _import(tenant, dataset, data, "csv")
    assert refused.value.code == "bad_encoding"
    with tenancy.tenant_scope(tenant.organization.pk):
        assert not DatasetItem.objects.exists()


def test_reimporting_the_same_file_changes_nothing(tenant):
    dataset = make_dataset(tenant)
    rows = [{"input": {"q": n}, "expected_output": n} for n in range(3)]  # no ids
    first = import_rows(tenant, dataset, rows)
    again = import_rows(tenant, dataset, rows)
    assert (first.created, again.created, again.unchanged) == (3, 0, 3)
    assert again.version == 1


def test_import_over_the_api_is_multipart(tenant, client_for):
    dataset = make_dataset(tenant)
    upload = io.BytesIO(BAD_JSONL)
    upload.name = "cases.jsonl"
    url = (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/datasets/{dataset.pk}/import/"
    )
    owner = client_for(tenant.owner)
    response = owner.post(url, {"file": upload, "atomic": "true"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["errors"][0] == {
        "line": 2,
        "reason": response.json()["error"]["details"]["errors"][0]["reason"],
    }
    upload.seek(0)
    response = owner.post(url, {"file": upload}, format="multipart")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 2 and response.json()["rejected"] == 6
    viewer = client_for(tenant.viewer)
    upload.seek(0)
    assert viewer.post(url, {"file": upload}, format="multipart").status_code == 403


# --- exports ----------------------------------------------------------------------------------

ROWS = [
    {
        "id": f"case-{n}",
        "input": {"question": f"question {n}", "context": ["a", "b"]},
        "expected_output": f"answer {n}",
        "metadata": {"lang": "en", "n": n},
        "tags": ["golden"],
        "failure_reason": "" if n % 2 else "hallucinated",
    }
    for n in range(5)
]


def _export_to(tmp_path, version, file_format: str):
    path = tmp_path / f"export.{'jsonl' if file_format == 'openai' else file_format}"
    with open(path, "wb") as out:
        counts = services.export_version(version, file_format, out)
    return path, counts


def test_csv_and_parquet_have_one_column_per_annotator_answer(tenant, tmp_path):
    import pyarrow.parquet as pq

    item, _trace, (first, second) = make_reviewed_item(tenant, disagree=False)
    dataset = make_dataset(tenant)
    with tenancy.tenant_scope(tenant.organization.pk):
        services.dataset_promote(
            actor=Actor(user=tenant.owner), dataset=dataset, queue_item_id=item.pk
        )
        version = DatasetVersion.objects.get(dataset=dataset, number=1)
        path, _ = _export_to(tmp_path, version, "parquet")
        csv_path, _ = _export_to(tmp_path, version, "csv")
    table = pq.read_table(path)
    answers = [c for c in table.column_names if c.startswith("answer:")]
    assert answers == sorted([f"answer:{first.email}/accuracy", f"answer:{second.email}/accuracy"])
    row = table.to_pylist()[0]
    assert row["source_trace_id"] == "consult-7" and row["source_queue_item_id"] == item.pk
    assert len(row["annotation_ids"]) == 2 and json.loads(row[answers[0]]) == 0.0
    header = next(csv.reader(io.StringIO(csv_path.read_text(), newline="")))
    assert header[:3] == ["id", "input", "expected_output"] and header[-2:] == answers


def test_openai_export_writes_conversations_and_skips_the_rest(tenant, tmp_path):
    dataset = make_dataset(tenant)
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "dose?"}]
    import_rows(
        tenant,
        dataset,
        [
            {"id": "chat", "input": chat, "expected_output": "2 g"},
            {"id": "wrapped", "input": {"messages": chat}, "expected_output": "3 g"},
            {"id": "plain", "input": {"q": "dose?"}, "expected_output": "2 g"},
        ],
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        version = DatasetVersion.objects.get(dataset=dataset, number=1)
        path, counts = _export_to(tmp_path, version, "openai")
    # Every shape we ingest is a conversation (tests/datasets/test_openai_export.py):
    # a record's one text field is the user's words.
    assert counts == {"items": 3, "skipped": 0, "skip_reasons": []}
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert lines[0] == {"messages": [*chat, {"role": "assistant", "content": "2 g"}]}
    assert [line["messages"][0] for line in lines].count({"role": "user", "content": "dose?"}) == 1
    with pytest.raises(NotAChat, match="no expected output"):
        chat_example({"input": "text"})


def test_an_export_runs_through_the_outbox_and_downloads(tenant, client_for, settings, tmp_path):
    settings.HITL_EXPORT_DIR = tmp_path / "exports"
    dataset = make_dataset(tenant)
    import_rows(tenant, dataset, ROWS)
    base = (
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"
        f"/datasets/{dataset.pk}/exports/"
    )
    owner = client_for(tenant.owner)
    started = owner.post(base, {"format": "jsonl"}, format="json")
    assert started.status_code == 202, started.content
    export_id = started.json()["id"]
    early = owner.get(f"{base}{export_id}/download/")
    assert early.status_code == 409 and early.json()["error"]["code"] == "export_not_ready"
    with tenancy.tenant_scope(tenant.organization.pk):
        message = OutboxMessage.objects.get(task="datasets.export")
    assert message.kwargs == {"export_id": export_id}
    assert outbox.execute(message_id=message.pk, organization_id=tenant.organization.pk) == "done"
    # A second delivery of the same message does nothing.
    assert (
        outbox.execute(message_id=message.pk, organization_id=tenant.organization.pk) == "skipped"
    )
    status = owner.get(f"{base}{export_id}/").json()
    assert status["state"] == "done" and status["item_count"] == 5
    download = owner.get(f"{base}{export_id}/download/")
    assert download.status_code == 200
    body = b"".join(download.streaming_content)
    assert [orjson.loads(line)["id"] for line in body.splitlines()] == [r["id"] for r in ROWS]
    with tenancy.tenant_scope(tenant.organization.pk):
        export = DatasetExport.objects.get(pk=export_id)
    # Stored in the exports storage (here the file system under HITL_EXPORT_DIR) under
    # the export's organization.
    assert export_key(export) == f"{tenant.organization.pk}/{export.file_name}"
    assert (settings.HITL_EXPORT_DIR / export_key(export)).read_bytes() == body
