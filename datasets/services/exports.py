"""Exports of a version: JSONL, CSV, Parquet and OpenAI chat fine-tuning JSONL.

Writers read the version's records in key order from a server-side cursor and write
them as they come, so memory stays flat however large the version. JSONL writes each
stored record as it is (no decoding). CSV and Parquet have the stable columns of
``datasets.content.COLUMNS`` followed by one ``answer:<reviewer>/<question>`` column per
answer given in the version; JSON values (``input``, ``expected_output``,
``expected_tool_calls``, ``metadata``, answers) are JSON text there (as PostgreSQL
writes it, like the JSONL lines), lists are lists in Parquet and JSON text in CSV.
PostgreSQL produces those columns (``selectors.version_table_batches``), so Python
decodes no record: CSV rows go to the csv module as they come, through
``hitl.csv_safe`` (every cell quoted, a text cell that starts with ``= + - @``, tab or
carriage return prefixed with a single quote, which the CSV import removes again);
Parquet columns go to Arrow arrays (only the short lists are read from JSON text, by
orjson). The OpenAI format writes ``{"messages": [...]}`` built through the one message model
(``traces.messages``): the input in any shape we ingest is the conversation, the
expected output (and expected tool calls) the assistant's answer; an item that cannot
become a valid line is skipped, counted and its reason listed on the export
(``skip_reasons``, the first 200).

Every column has one encoding whatever the items mix (an input that is an object, a
message list or text; an expected output or none): ``docs/datasets.md`` states each,
and how each format loads in Hugging Face ``datasets`` at any size
(``tests/datasets/test_export_every_source.py`` loads one dataset built from every
source kind in every format and reads the stored records back).

Large exports run through the outbox (``datasets.export``, the ``files`` workers) into a
file of the ``exports`` storage (``hitl.storage``: ``HITL_EXPORT_DIR`` or an S3 bucket)
that the user downloads through any web process.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from typing import IO, Any

import orjson
from django.db import OperationalError, transaction
from django.utils import timezone

from datasets.content import ANSWER_PREFIX, COLUMNS
from datasets.models import Dataset, DatasetExport, DatasetVersion, ExportFormat, JobState
from datasets.selectors import (
    version_answer_columns,
    version_get,
    version_records_raw,
    version_table_batches,
)
from hitl import audit, csv_safe, outbox, storage
from hitl.audit import Actor
from traces.messages import to_messages

logger = logging.getLogger(__name__)

EXPORT_TASK = "datasets.export"
BATCH = 5_000
SUFFIX = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet", "openai": "openai.jsonl"}
LIST_COLUMNS = ("tags", "failure_modes")
INT_COLUMNS = ("source_queue_item_id", "adjudication_id")


def _records(version: DatasetVersion) -> Iterator[dict[str, Any]]:
    for text in version_records_raw(version):
        yield orjson.loads(text)


def write_jsonl(version: DatasetVersion, out: IO[bytes]) -> dict[str, int]:
    count = 0
    buffer: list[str] = []
    for text in version_records_raw(version):
        buffer.append(text)
        count += 1
        if len(buffer) >= BATCH:
            out.write(("\n".join(buffer) + "\n").encode())
            buffer.clear()
    if buffer:
        out.write(("\n".join(buffer) + "\n").encode())
    return {"items": count, "skipped": 0}


def write_csv(version: DatasetVersion, out: IO[bytes]) -> dict[str, int]:
    answers = version_answer_columns(version)
    header = [*COLUMNS, *(ANSWER_PREFIX + a for a in answers)]
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    writer = csv_safe.writer(text)
    writer.writerow(header)
    count = 0
    # PostgreSQL writes every cell (lists as JSON text); the csv module writes None as
    # an empty cell; csv_safe quotes every cell and puts a single quote before text that
    # a spreadsheet would run as a formula.
    for rows in version_table_batches(version, answers, chunk_size=BATCH):
        writer.writerows(rows)
        count += len(rows)
    text.flush()
    text.detach()
    return {"items": count, "skipped": 0}


def write_parquet(version: DatasetVersion, out: IO[bytes]) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    answers = version_answer_columns(version)
    fields = []
    for name in COLUMNS:
        if name in LIST_COLUMNS:
            fields.append(pa.field(name, pa.list_(pa.string())))
        elif name == "annotation_ids":
            fields.append(pa.field(name, pa.list_(pa.int64())))
        elif name in INT_COLUMNS:
            fields.append(pa.field(name, pa.int64()))
        else:
            fields.append(pa.field(name, pa.string()))
    fields += [pa.field(ANSWER_PREFIX + a, pa.string()) for a in answers]
    schema = pa.schema(fields)
    types = [f.type for f in schema]
    lists = {COLUMNS.index(name) for name in (*LIST_COLUMNS, "annotation_ids")}
    loads = orjson.loads

    def batch_of(rows: list[tuple[Any, ...]]) -> Any:
        # Column by column, straight from the values PostgreSQL produced; the short
        # lists come as JSON text (orjson reads one in well under a microsecond, where
        # PostgreSQL spent a subquery per list and row).
        columns = list(zip(*rows, strict=True)) if rows else [[] for _ in types]
        for index in lists:
            columns[index] = [None if v is None else loads(v) for v in columns[index]]
        return pa.RecordBatch.from_arrays(
            [pa.array(values, type=kind) for values, kind in zip(columns, types, strict=True)],
            schema=schema,
        )

    count = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for rows in version_table_batches(version, answers, chunk_size=BATCH):
            writer.write_batch(batch_of(rows))
            count += len(rows)
        if count == 0:
            writer.write_batch(batch_of([]))
    return {"items": count, "skipped": 0}


class NotAChat(ValueError):
    """An item that cannot become a valid fine-tuning line, and why."""


MAX_SKIP_REASONS = 200


def chat_example(record: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat fine-tuning example of a record: its input as the conversation
    (any shape ``traces.messages.to_messages`` reads: chat lists, GenAI parts, thread
    turns, plain text or a record as the user's words), its expected output (and
    expected tool calls) as the assistant's answer. Raises ``NotAChat`` with the reason
    when the item cannot become a valid line."""
    source = record.get("input")
    if source in (None, "", [], {}):
        raise NotAChat("its input is empty")
    conversation = to_messages(source, text_role="user")
    if not conversation:
        raise NotAChat("its input has no text")
    expected = record.get("expected_output")
    tool_calls = [
        part for part in map(_expected_call, record.get("expected_tool_calls") or []) if part
    ]
    if expected in (None, "", [], {}) and not tool_calls:
        raise NotAChat("it has no expected output (the assistant's answer is what is learnt)")
    answer = to_messages(expected, text_role="assistant") if expected not in (None, "") else []
    answer = answer or []
    if any(message["role"] not in ("assistant", "tool") for message in answer):
        raise NotAChat("its expected output holds messages that are not the assistant's")
    if tool_calls:
        if answer and answer[-1]["role"] == "assistant":
            answer[-1] = {**answer[-1], "parts": [*answer[-1].get("parts", []), *tool_calls]}
        else:
            answer.append({"role": "assistant", "parts": tool_calls})
    if not answer or answer[-1]["role"] != "assistant":
        raise NotAChat("its expected output does not end with the assistant's answer")
    return {"messages": _openai_messages([*conversation, *answer])}


def _expected_call(call: Any) -> dict[str, Any] | None:
    found = to_messages([{"role": "assistant", "tool_calls": [call]}])
    parts = found[0].get("parts", []) if found else []
    return parts[0] if parts else None


def _openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Canonical messages as the fine-tuning format's: string content, assistant
    ``tool_calls`` (function name, arguments as JSON text), one ``tool`` message per
    result naming its call. Tool calls without an id get one, results without one answer
    the oldest unanswered call."""
    written: list[dict[str, Any]] = []
    unanswered: list[str] = []
    calls = 0
    for number, message in enumerate(messages, start=1):
        role, parts = message["role"], message.get("parts", [])
        texts = [p["content"] for p in parts if p["type"] == "text"]
        other = {p["type"] for p in parts} - {"text", "reasoning", "tool_call",
                                              "tool_call_response"}  # fmt: skip
        if other:
            raise NotAChat(f"message {number} ({role}) holds {', '.join(sorted(other))} content")
        if role == "tool":
            for part in parts:
                call_id = str(part.get("id") or "") or (unanswered[0] if unanswered else "")
                if call_id not in unanswered:
                    raise NotAChat(f"message {number} is a tool result for no earlier tool call")
                unanswered.remove(call_id)
                response = part.get("response")
                written.append({
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": response if isinstance(response, str)
                    else orjson.dumps(response, default=str).decode(),
                })  # fmt: skip
            continue
        if unanswered:
            raise NotAChat(f"message {number} follows a tool call that has no result")
        entry: dict[str, Any] = {"role": role}
        if role == "assistant":
            function_calls = []
            for part in parts:
                if part["type"] != "tool_call":
                    continue
                calls += 1
                call_id = str(part.get("id") or "") or f"call_{calls}"
                arguments = part.get("arguments")
                function_calls.append({
                    "id": call_id,
                    "type": "function",
                    "function": {
                        "name": part["name"],
                        "arguments": arguments if isinstance(arguments, str)
                        else orjson.dumps(arguments or {}, default=str).decode(),
                    },
                })  # fmt: skip
                unanswered.append(call_id)
            if texts or not function_calls:
                entry["content"] = "\n".join(texts)
            if function_calls:
                entry["tool_calls"] = function_calls
        elif any(p["type"] in ("tool_call", "tool_call_response") for p in parts):
            raise NotAChat(f"message {number} ({role}) holds a tool call")
        else:
            entry["content"] = "\n".join(texts)
        if "content" in entry and not entry["content"].strip() and "tool_calls" not in entry:
            raise NotAChat(f"message {number} ({role}) has no text")
        written.append(entry)
    if unanswered and messages[-1]["role"] != "assistant":
        raise NotAChat("a tool call has no result")
    return written


def write_openai(version: DatasetVersion, out: IO[bytes]) -> dict[str, Any]:
    count = skipped = 0
    reasons: list[dict[str, str]] = []
    for record in _records(version):
        try:
            example = chat_example(record)
        except NotAChat as exc:
            skipped += 1
            if len(reasons) < MAX_SKIP_REASONS:
                reasons.append({"item": str(record.get("id", "")), "reason": str(exc)})
            continue
        out.write(orjson.dumps(example) + b"\n")
        count += 1
    return {"items": count, "skipped": skipped, "skip_reasons": reasons}


WRITERS = {
    ExportFormat.JSONL: write_jsonl,
    ExportFormat.CSV: write_csv,
    ExportFormat.PARQUET: write_parquet,
    ExportFormat.OPENAI: write_openai,
}


def export_version(version: DatasetVersion, file_format: str, out: IO[bytes]) -> dict[str, Any]:
    """Writes ``version`` in ``file_format`` to ``out``; returns the counts."""
    with transaction.atomic():  # the server-side cursor lives in a transaction
        return WRITERS[file_format](version, out)


# --- export jobs ---------------------------------------------------------------------------


def export_key(export: DatasetExport) -> str:
    """The export's name in the ``exports`` storage: ``<organization id>/<file name>``
    (found through the tenant-scoped row, never from a request)."""
    return f"{export.organization_id}/{export.file_name}" if export.file_name else ""


def dataset_export_start(
    *, actor: Actor, dataset: Dataset, version: int | None, file_format: str
) -> DatasetExport:
    """Queues an export of ``version`` (default: newest) for a worker."""
    with audit.acting_as(actor), transaction.atomic():
        dataset = Dataset.objects.get(pk=dataset.pk)  # its newest version, not a stale one
        pinned = version_get(
            dataset=dataset, number=version if version is not None else dataset.current_version
        )
        export = DatasetExport.objects.create(
            project_id=dataset.project_id,
            dataset=dataset,
            version=pinned,
            format=file_format,
            created_by=actor.user if getattr(actor.user, "pk", None) else None,
        )
        outbox.enqueue(
            task=EXPORT_TASK,
            organization_id=dataset.organization_id,
            kwargs={"export_id": export.pk},
        )
        return export


def export_file_name(export: DatasetExport) -> str:
    """``<id>-<dataset name>-v<number>.<suffix>``, the name reduced to letters, digits,
    ``.``, ``_`` and ``-`` (no path separator, control character or leading dot can
    reach the disk or a Content-Disposition header)."""
    name = re.sub(r"[^\w.-]+", "_", export.dataset.name).strip("._-")[:40] or "dataset"
    return f"{export.pk}-{name}-v{export.version.number}.{SUFFIX[export.format]}"


def dataset_export_run(*, export_id: int) -> DatasetExport | None:
    """Writes the export's file (idempotent: a finished export is left alone). Needs
    the export's tenant in scope."""
    export = DatasetExport.objects.select_related("version", "dataset").filter(pk=export_id).first()
    if export is None or export.state != JobState.PENDING:
        return export
    export.file_name = export_file_name(export)
    key = export_key(export)
    try:
        # Written to a scratch file of this worker, then stored whole: a download never
        # sees a partial file, and any web process reads it from the shared storage.
        with storage.writing(key) as out:
            counts = export_version(export.version, export.format, out)
        size = storage.size(key)
    except OperationalError:
        raise  # transient: the outbox retries the message
    except Exception as exc:  # a bug, a full disk, the bucket: the user reads it on the export
        logger.exception("dataset export %s failed", export.pk)
        export.state = JobState.FAILED
        export.error = f"{type(exc).__name__}: {exc}"[:2000]
        export.finished_at = timezone.now()
        export.save()
        return export
    export.state = JobState.DONE
    export.item_count = counts["items"]
    export.skipped = counts["skipped"]
    export.skip_reasons = counts.get("skip_reasons", [])
    export.size_bytes = size
    export.finished_at = timezone.now()
    export.save()
    return export
