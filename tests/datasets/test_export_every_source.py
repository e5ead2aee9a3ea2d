"""One dataset built from every source kind (a trace, a span, an OpenTelemetry GenAI span
with message parts, a tool call and its result, a thread, a reviewed queue item, an
adjudicated one, imported rows), exported in every format: each file loads in the Hugging
Face ``datasets`` library (all in one subprocess, offline), its content reads back equal
to the stored records by the encoding ``docs/datasets.md`` states, and every OpenAI line
passes the fine-tuning format check."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from django.db import transaction

from datasets import services
from datasets.content import ANSWER_PREFIX, COLUMNS, JSON_COLUMNS
from datasets.models import DatasetItem, DatasetVersion
from datasets.selectors import version_records_raw
from hitl import tenancy
from hitl.audit import Actor
from review import services as review_services
from tests.datasets.helpers import import_rows, make_dataset
from tests.datasets.test_openai_export import _ingest_genai_span, fine_tuning_problems
from tests.review.helpers import add_reviewers, make_config, make_queue, make_span, make_trace
from traces.models import Thread


def _promote(tenant, dataset, **source: Any) -> None:
    """Promotes one source; a trace, span or thread with its output accepted as the
    expected one (a reviewed item's is what its reviewers wrote)."""
    accept = "queue_item_id" not in source
    with tenancy.tenant_scope(tenant.organization.pk):
        services.dataset_promote(
            actor=Actor(user=tenant.owner), dataset=dataset, accept_output=accept, **source
        )


def _reviewed_items(tenant) -> tuple[Any, Any]:
    """Two traces of one queue reviewed by two reviewers: they agree on the first (and
    write its expected output as text), disagree on the second, which a senior
    adjudicates with an expected output that is an object."""
    accuracy = make_config(tenant, name="accuracy")
    first, second = add_reviewers(tenant, 2)
    queue = make_queue(
        tenant, configs=[accuracy], reviewers=[first, second, tenant.admin],
        seniors=(tenant.admin,), overlap=2, name="clinical answers",
    )  # fmt: skip
    agreed = make_trace(tenant, external_id="reviewed", input={"q": "Dose of amoxicillin?"},
                        output={"a": "20 g"})  # fmt: skip
    disputed = make_trace(tenant, external_id="adjudicated", input="Dose of ibuprofen?",
                          output="4 g at once")  # fmt: skip
    with tenancy.tenant_scope(tenant.organization.pk):
        items = [
            review_services.queue_item_add(
                actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk
            )
            for trace in (agreed, disputed)
        ]
        for reviewer, disputed_value in ((first, 0.0), (second, 0.75)):
            for _ in items:
                lease = review_services.queue_claim_next(actor=Actor(user=reviewer), queue=queue)
                is_agreed = lease.item_id == items[0].pk
                review_services.assignment_submit(
                    actor=Actor(user=reviewer),
                    assignment_id=lease.pk,
                    values={str(accuracy.pk): 0.0 if is_agreed else disputed_value},
                    explanation="A tenfold overdose." if is_agreed else "",
                    expected_output="2 g" if is_agreed else None,
                    failure_modes=["wrong_dose"] if is_agreed else [],
                )
        review_services.item_adjudicate(
            actor=Actor(user=tenant.admin),
            item=items[1],
            membership=tenant.admin.memberships.get(),
            values={str(accuracy.pk): 0.0},
            explanation="Over the daily maximum.",
            expected_output={"a": "400 mg", "every_hours": 8},
        )
        for item in items:
            item.refresh_from_db()
    assert [i.status for i in items] == ["complete", "adjudicated"]
    return items[0], items[1]


def _every_source(tenant, client):
    dataset = make_dataset(tenant, name="every source")
    # A trace: an object in, text out.
    make_trace(tenant, external_id="t-plain", name="capital",
               input={"question": "Capital of France?"}, output="Paris.")  # fmt: skip
    _promote(tenant, dataset, trace_id="t-plain")
    # A span whose input and output are chat message lists.
    trace = make_trace(tenant, external_id="t-list")
    make_span(trace, external_id="s-list", kind="llm", model="gpt-4o",
              input=[{"role": "user", "content": "dose?"}],
              output=[{"role": "assistant", "content": "2 g"}])  # fmt: skip
    _promote(tenant, dataset, trace_id="t-list", span_id="s-list")
    # An OpenTelemetry GenAI span: parts, a tool call and its result, system instructions.
    genai = _ingest_genai_span(tenant, client)
    _promote(tenant, dataset, trace_id=genai.trace.external_id, span_id=genai.external_id)
    # A thread: turns whose input and output are objects.
    with tenancy.tenant_scope(tenant.organization.pk):
        thread = Thread.objects.create(project=tenant.project, external_id="conv-1")
    make_trace(tenant, thread=thread, input={"q": "Dose for a child?"},
               output={"answer": "10 mg/kg."})  # fmt: skip
    make_trace(tenant, thread=thread, input={"q": "And for 20 kg?"}, output={"answer": "200 mg."})
    _promote(tenant, dataset, thread_id="conv-1")
    # A reviewed item and an adjudicated one.
    reviewed, adjudicated = _reviewed_items(tenant)
    _promote(tenant, dataset, queue_item_id=reviewed.pk)
    _promote(tenant, dataset, queue_item_id=adjudicated.pk)
    # Imported rows: text with a number as the answer, and an expected tool call alone.
    import_rows(
        tenant,
        dataset,
        [
            {"id": "42", "input": "Six times seven?", "expected_output": 42,
             "metadata": {"difficulty": 1, "origin": "hand-written"}, "tags": ["math"],
             "failure_reason": "=1+1 looks like a formula", "expected_outcome": "pass"},
            {"id": "tool-call", "input": [{"role": "user", "content": "Weather?"}],
             "expected_tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
        ],
    )  # fmt: skip
    return dataset


def _load_all_with_hf(loads: list[tuple[str, str, Path, dict[str, Any]]]) -> dict[str, Any]:
    """Each ``(name, builder, file, how)`` loaded by the ``datasets`` library, all in one
    subprocess (offline, outside the repository: our app is named ``datasets`` too).
    ``how`` may name ``features`` ({column: "string" | "int" | "json" | "strings" |
    "ints"}) and ``keep_default_na``."""
    script = (
        "import json, sys\n"
        "from datasets import Features, Json, List, Value, load_dataset\n"
        "kinds = {'string': Value('string'), 'int': Value('int64'), 'json': Json(),\n"
        "         'strings': List(Value('string')), 'ints': List(Value('int64'))}\n"
        "loaded = {}\n"
        "for name, builder, path, how in json.loads(sys.argv[1]):\n"
        "    if 'features' in how:\n"
        "        how['features'] = Features({k: kinds[v] for k, v in how['features'].items()})\n"
        "    rows = load_dataset(builder, data_files=path, split='train', **how)\n"
        "    loaded[name] = {'features': str(rows.features), 'rows': rows.to_list()}\n"
        "print(json.dumps(loaded, default=str))\n"
    )
    work = loads[0][2].parent
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    env["HF_HOME"] = str(work / "hf-home")
    argument = json.dumps([[name, builder, str(path), how] for name, builder, path, how in loads])
    done = subprocess.run(
        [sys.executable, "-c", script, argument],
        cwd=str(work),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# How each column of the table formats is written (docs/datasets.md, "Export formats").
LISTS = {"tags": "strings", "failure_modes": "strings", "annotation_ids": "ints"}
INTS = {"source_queue_item_id", "adjudication_id"}

CONTENT = ("input", "expected_output", "expected_tool_calls", "expected_outcome", "metadata",
           "tags", "failure_reason", "failure_modes", "explanation")  # fmt: skip


def _kind(column: str) -> str:
    if column in JSON_COLUMNS or column.startswith(ANSWER_PREFIX):
        return "json"
    return LISTS.get(column) or ("int" if column in INTS else "string")


def _expected(record: dict[str, Any], column: str) -> Any:
    if column.startswith(ANSWER_PREFIX):
        return record["answers"].get(column.removeprefix(ANSWER_PREFIX))
    return record[column]


def _from_parquet(cell: Any, kind: str) -> Any:
    """A Parquet cell as documented: JSON values as JSON text, lists and ids typed."""
    return orjson.loads(cell) if kind == "json" and cell is not None else cell


FORMULA_GUARD = re.compile(r"'+[=+\-@\t\r]")


def _from_csv_text(cell: str, kind: str) -> Any:
    """A CSV cell read as text, as documented: one leading quote comes off a cell that
    is quotes followed by ``= + - @``, tab or carriage return; an empty cell is no value
    (text columns: empty text); JSON values and lists are JSON text; ids are digits."""
    if FORMULA_GUARD.match(cell):
        cell = cell[1:]
    if kind == "string":
        return cell
    if cell == "":
        return None
    return int(cell) if kind == "int" else orjson.loads(cell)


def test_every_format_of_every_source_kind_loads_in_the_datasets_library(tenant, client, tmp_path):
    dataset = _every_source(tenant, client)
    files: dict[str, Path] = {}
    counts: dict[str, dict[str, Any]] = {}
    with tenancy.tenant_scope(tenant.organization.pk):
        version = DatasetVersion.objects.filter(dataset=dataset).order_by("-number").first()
        with transaction.atomic():  # the server-side cursor lives in a transaction
            records = [orjson.loads(text) for text in version_records_raw(version)]
        for name in ("jsonl", "csv", "parquet", "openai"):
            files[name] = tmp_path / f"export-{name}.{'jsonl' if name == 'openai' else name}"
            with open(files[name], "wb") as out:
                counts[name] = services.export_version(version, name, out)
    by_kind = {r["source_type"]: r for r in records}
    assert set(by_kind) == {"trace", "span", "thread", "import"} and len(records) == 8
    # Mixed kinds in one column: an object, a list, text and a number as input or
    # expected output, or no expected output at all.
    assert {type(r["input"]).__name__ for r in records} == {"dict", "list", "str"}
    assert {type(r["expected_output"]).__name__ for r in records} == {
        "dict", "list", "str", "int", "NoneType"}  # fmt: skip
    header = next(csv.reader(io.StringIO(files["csv"].read_text(), newline="")))
    answers = [c for c in header if c.startswith(ANSWER_PREFIX)]
    assert list(header) == [*COLUMNS, *answers] and len(answers) == 3

    loaded = _load_all_with_hf(
        [
            ("jsonl", "json", files["jsonl"], {}),
            ("csv", "csv", files["csv"], {}),
            ("parquet", "parquet", files["parquet"], {}),
            ("openai", "json", files["openai"], {}),
            # As docs/datasets.md says to load files of any size: JSON values as Json,
            # CSV cells as text.
            ("jsonl typed", "json", files["jsonl"], {"features": {
                **{c: _kind(c) for c in COLUMNS}, "reviews": "json", "answers": "json"}}),
            ("csv text", "csv", files["csv"], {"keep_default_na": False,
                                               "features": dict.fromkeys(header, "string")}),
            ("openai typed", "json", files["openai"], {"features": {"messages": "json"}}),
        ]
    )  # fmt: skip
    ids = [r["id"] for r in records]
    for name in ("jsonl", "csv", "parquet", "jsonl typed", "csv text"):
        assert [row["id"] for row in loaded[name]["rows"]] == ids, name

    # JSONL: every line is the stored record, every value as it is.
    assert loaded["jsonl"]["rows"] == records
    assert loaded["jsonl typed"]["rows"] == records
    # Parquet: typed lists and ids; JSON values (and answers) as JSON text.
    for row, record in zip(loaded["parquet"]["rows"], records, strict=True):
        assert list(row) == header
        for column in header:
            value = _from_parquet(row[column], _kind(column))
            assert value == _expected(record, column), (record["id"], column)
    # CSV read as text: every cell decodes back to the record's value.
    for row, record in zip(loaded["csv text"]["rows"], records, strict=True):
        for column in header:
            expected = _expected(record, column)
            if _kind(column) == "string" and expected is None:
                expected = ""  # an empty cell: no text
            assert _from_csv_text(row[column], _kind(column)) == expected, (record["id"], column)
    # A formula-like text is guarded in the file and comes back exact.
    assert records[0]["id"] == "42" and records[0]["failure_reason"].startswith("=")
    assert loaded["csv"]["rows"][0]["failure_reason"] == "'" + records[0]["failure_reason"]

    # OpenAI: one valid fine-tuning line per item, every source kind, read back as written.
    assert counts["openai"] == {"items": 8, "skipped": 0, "skip_reasons": []}
    lines = [orjson.loads(line) for line in files["openai"].read_bytes().splitlines()]
    for line in files["openai"].read_bytes().splitlines():
        assert fine_tuning_problems(line) == [], line
    assert loaded["openai"]["rows"] == lines == loaded["openai typed"]["rows"]
    assert {"tool_calls" in m for line in lines for m in line["messages"]} == {True, False}
    assert any(m["role"] == "tool" for line in lines for m in line["messages"])

    # JSONL and CSV import back into a new dataset with every content field exact.
    with tenancy.tenant_scope(tenant.organization.pk):
        for file_format in ("jsonl", "csv"):
            copy = services.dataset_create(
                actor=Actor(user=tenant.owner), project=tenant.project, name=file_format
            )
            with open(files[file_format], "rb") as stream:
                report = services.dataset_import(
                    actor=Actor(user=tenant.owner),
                    dataset=copy,
                    stream=stream,
                    file_format=file_format,
                )
            assert (report.created, report.error_count) == (len(records), 0), report.errors
            items = {i.key: i for i in DatasetItem.objects.filter(dataset=copy)}
            for record in records:
                for name in CONTENT:
                    assert getattr(items[record["id"]], name) == record[name], (
                        file_format, record["id"], name)  # fmt: skip
