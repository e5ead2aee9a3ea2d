"""Import of JSONL and CSV files into a dataset, with validation per row.

Each row is an item: ``input`` (required), ``expected_output``, ``expected_tool_calls``,
``expected_outcome``, ``metadata`` (an object), ``tags`` and ``failure_modes`` (lists
of strings), ``failure_reason``, ``explanation`` and ``id``. An ``id`` already in the
dataset updates that item; without an ``id`` the key is derived from the content, so
importing the same file twice adds nothing. Columns an export writes that are not
content (provenance, reviews, answers) are accepted and ignored, so an exported file
imports back. In CSV, a cell that parses as JSON is that value; any other text is a
string (``metadata``, ``tags`` and ``failure_modes`` must parse). A cell our CSV export
prefixed with a single quote (text a spreadsheet would run as a formula,
``hitl.csv_safe``) is read without it, so an exported CSV imports back exact.

A bad row (not JSON, not UTF-8, over ``MAX_ITEM_BYTES`` (4 MiB, as one ingested
payload), text PostgreSQL cannot store (``hitl.text``), an unknown field, a wrong type,
a duplicated id, a schema failure) is reported with its line number and reason. With
``atomic=True`` any bad row means nothing lands; otherwise the good rows land as one new version.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
from django.db import transaction

from datasets.content import (
    ANSWER_PREFIX,
    COLUMNS,
    ITEM_CONTENT_FIELDS,
    ItemState,
    SchemaCheck,
    check_key,
)
from datasets.models import Dataset, SourceType
from datasets.services.versioning import VersionWriter
from hitl import audit, csv_safe
from hitl.audit import Actor
from hitl.exceptions import DomainError
from hitl.text import find_unstorable
from traces.ingest import limits as ingest_limits

MAX_REPORTED_ERRORS = 1_000
# One item's line (JSONL) or cells (CSV): the cap of one trace or span payload at
# ingestion, so an imported item is never larger than one the platform could receive.
MAX_ITEM_BYTES = ingest_limits.MAX_PAYLOAD_BYTES
MAX_LABEL_LENGTH = 64  # a tag or failure mode (DatasetItem.tags, failure_modes)
CHUNK = 2_000
CONTENT_FIELDS = frozenset({"id", *ITEM_CONTENT_FIELDS})
IGNORED_FIELDS = (frozenset(COLUMNS) - CONTENT_FIELDS) | {"reviews", "answers"}
TEXT_FIELDS = ("expected_outcome", "failure_reason", "explanation")
LIST_FIELDS = ("tags", "failure_modes")


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    version: int | None = None

    def error(self, line: int, reason: str, key: str | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            entry: dict[str, Any] = {"line": line, "reason": reason}
            if key is not None:
                entry["id"] = key
            self.errors.append(entry)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.error_count,
            "errors": self.errors,
            "version": self.version,
        }


# --- reading rows ---------------------------------------------------------------------------


def _jsonl_rows(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, row or None, reason) per non-blank line."""
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        if len(raw) > MAX_ITEM_BYTES:
            yield number, None, _too_large(len(raw))
            continue
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, None, f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
            continue
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield number, None, f"not valid JSON: {exc}"
            continue
        if not isinstance(row, dict):
            yield number, None, "a line must be a JSON object"
            continue
        yield number, row, None


def _too_large(size: int) -> str:
    return f"the item is {size} bytes, over the limit of {MAX_ITEM_BYTES} bytes per item"


def _csv_cell(name: str, text: str) -> Any:
    if name == "id" or name in TEXT_FIELDS:
        return text
    if text == "":
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        if name in ("metadata", *LIST_FIELDS):
            raise ValueError(f"{name} is not valid JSON") from None
        return text


def _csv_rows(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    # The csv module's default cap on one cell (128 KiB) is below an item's; a larger
    # cell is then the item's size limit to report, not unreadable CSV.
    if csv.field_size_limit() <= MAX_ITEM_BYTES:
        csv.field_size_limit(MAX_ITEM_BYTES + 1)
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except UnicodeDecodeError:
        raise DomainError(
            "The file is not UTF-8 (line 1).",
            code="bad_encoding",
            details={"errors": [{"line": 1, "reason": "not UTF-8"}]},
        ) from None
    except csv.Error as exc:
        raise DomainError(f"Not a CSV file: {exc}", code="bad_file") from None
    names = [name.strip() for name in header]
    if len(set(names)) != len(names):
        raise DomainError("The CSV header repeats a column.", code="bad_file")
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise DomainError(
                f"The file is not UTF-8 (near line {start}); save it as UTF-8.",
                code="bad_encoding",
                details={"errors": [{"line": start, "reason": "not UTF-8"}]},
            ) from None
        except csv.Error as exc:
            yield start, None, f"not valid CSV: {exc}"
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(names):
            yield start, None, f"{len(cells)} cells for {len(names)} columns"
            continue
        size = sum(len(cell.encode("utf-8", "surrogatepass")) for cell in cells)
        if size > MAX_ITEM_BYTES:
            yield start, None, _too_large(size)
            continue
        row: dict[str, Any] = {}
        try:
            for name, cell in zip(names, cells, strict=True):
                row[name] = _csv_cell(name, csv_safe.unescape_cell(cell))
        except ValueError as exc:
            yield start, None, str(exc)
            continue
        yield start, row, None


# --- validating a row ---------------------------------------------------------------------


def _state_of_row(row: dict[str, Any]) -> tuple[ItemState | None, str | None]:
    unknown = [
        name
        for name in row
        if name not in CONTENT_FIELDS
        and name not in IGNORED_FIELDS
        and not name.startswith(ANSWER_PREFIX)
    ]
    if unknown:
        return None, f"unknown field(s): {', '.join(sorted(unknown))}"
    if "input" not in row or row["input"] is None:
        return None, "input is missing"
    metadata = row.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        return None, "metadata must be an object"
    for name in LIST_FIELDS:
        value = row.get(name)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            return None, f"{name} must be a list of strings"
        if value and any(len(v) > MAX_LABEL_LENGTH for v in value):
            return None, f"{name}: an entry is longer than {MAX_LABEL_LENGTH} characters"
    for name in TEXT_FIELDS:
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            return None, f"{name} must be text"
    key = row.get("id")
    if key in (None, ""):
        digest = hashlib.sha256(
            orjson.dumps([row["input"], row.get("expected_output")], option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
        key = f"row:{digest[:24]}"
    else:
        problem = check_key(key)
        if problem:
            return None, problem
    return (
        ItemState(
            key=str(key),
            input=row["input"],
            expected_output=row.get("expected_output"),
            expected_tool_calls=row.get("expected_tool_calls"),
            expected_outcome=row.get("expected_outcome") or "",
            metadata=metadata,
            tags=row.get("tags") or [],
            failure_reason=row.get("failure_reason") or "",
            failure_modes=row.get("failure_modes") or [],
            explanation=row.get("explanation") or "",
            source_type=SourceType.IMPORT,
        ),
        None,
    )


def dataset_import(
    *,
    actor: Actor,
    dataset: Dataset,
    stream: IO[bytes],
    file_format: str,
    atomic: bool = False,
    message: str = "",
) -> ImportReport:
    """Imports ``stream`` (bytes) as ``jsonl`` or ``csv``. With ``atomic`` and any bad
    row: raises ``DomainError`` (code ``import_rejected``) with every reason, nothing
    written. Otherwise the good rows land and the report lists the bad ones."""
    if file_format not in ("jsonl", "csv"):
        raise DomainError("format is jsonl or csv.", details={"format": ["jsonl or csv"]})
    rows = _jsonl_rows(stream) if file_format == "jsonl" else _csv_rows(stream)
    report = ImportReport()
    with audit.acting_as(actor), transaction.atomic():
        writer = VersionWriter(dataset=dataset, message=message or f"import ({file_format})")
        writer.keep_outcomes = False
        check = SchemaCheck(writer.dataset.schema)
        first_line: dict[str, int] = {}
        chunk: list[ItemState] = []

        def flush() -> None:
            if atomic and report.error_count:
                chunk.clear()  # nothing will land: stop writing, keep validating
                return
            for outcome in writer.upsert(chunk):
                setattr(report, outcome.status, getattr(report, outcome.status) + 1)
            chunk.clear()

        for line, row, reason in rows:
            report.rows += 1
            if row is None:
                report.error(line, reason or "unreadable")
                continue
            unstorable = find_unstorable(row)
            if unstorable is not None:
                report.error(line, "{}: {}".format(*unstorable))
                continue
            state, reason = _state_of_row(row)
            if state is None:
                raw_key = row.get("id")
                report.error(line, reason or "invalid", str(raw_key) if raw_key else None)
                continue
            if state.key in first_line:
                report.error(
                    line, f"duplicated id (first on line {first_line[state.key]})", state.key
                )
                continue
            first_line[state.key] = line
            errors = check.errors(state)
            if errors:
                report.error(line, "; ".join(errors), state.key)
                continue
            chunk.append(state)
            if len(chunk) >= CHUNK:
                flush()
        if atomic and report.error_count:
            transaction.set_rollback(True)
            raise DomainError(
                f"{report.error_count} of {report.rows} rows are invalid; nothing was imported.",
                code="import_rejected",
                details={"errors": report.errors, "rejected": report.error_count},
            )
        if chunk:
            flush()
        version = writer.finish()
        report.version = version.number if version else writer.dataset.current_version
    return report
