"""The one write path for ingestion: normalised records -> rows, in set-based SQL.

Every step is a handful of statements per batch, whatever its size (no per-row
queries): threads, traces (insert the missing, update the sent, never let a placeholder
overwrite a real field), spans (``INSERT ... ON CONFLICT``), the trace roll-up, then
scores (with history) and feedback. The caller holds the transaction.

Concurrent batches that touch the same trace are serialised by a transaction-level
advisory lock per trace, taken in a fixed order, so the roll-up always sees every
committed span and two writers never deadlock on trace rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from django.db import connection
from django.utils import timezone

from hitl import tenancy
from hitl.audit import bulk_create_with_history, bulk_update_with_history
from projects.models import Project
from traces.ingest.records import (
    Batch,
    FeedbackRecord,
    IngestResult,
    Rejection,
    ScoreRecord,
    SpanRecord,
    TraceRecord,
)
from traces.models import Feedback, Score, ScoreSource
from traces.partitions import span_partition_ensure

LOCK_BUCKETS = 1024
# Keeps ingestion's advisory lock keys away from any other user of advisory locks.
_LOCK_NAMESPACE = 0x7472_6163 << 32

# Token totals count model calls only: an agent span that repeats its children's usage
# would otherwise be counted twice. Cost counts every span (tools may cost money too).
TOKEN_KINDS = ("llm", "embedding")


def _cursor() -> psycopg.Cursor:
    """A server-side-binding cursor on Django's connection (same transaction): large
    JSON parameters travel as they are, without quoting into the SQL text."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def trace_lock_key(project_id: int, external_id: str) -> int:
    """The advisory lock of a trace: one of LOCK_BUCKETS per project, so a batch of
    thousands of traces holds a bounded number of locks (PostgreSQL's lock table is
    shared and finite); two traces sharing a bucket only wait for each other."""
    digest = hashlib.blake2b(f"{project_id}:{external_id}".encode(), digest_size=8).digest()
    bucket = int.from_bytes(digest, "big") % LOCK_BUCKETS
    return _LOCK_NAMESPACE + project_id * LOCK_BUCKETS + bucket


# --- de-duplication: the same id twice in one batch is one row, the later one wins ---
def _merge_traces(records: Iterable[TraceRecord]) -> dict[str, TraceRecord]:
    merged: dict[str, TraceRecord] = {}
    for record in records:
        current = merged.get(record.external_id)
        if current is None:
            merged[record.external_id] = record
            continue
        if current.is_hint and not record.is_hint:
            # The real event wins; the hint may still fill what the event left empty.
            record, current = current, record
            merged[current.external_id] = current
            for name in ("thread_external_id", "user_id"):
                if getattr(current, name) is None:
                    setattr(current, name, getattr(record, name))
            continue
        if record.is_hint and not current.is_hint:
            for name in ("thread_external_id", "user_id"):
                if getattr(current, name) is None:
                    setattr(current, name, getattr(record, name))
            continue
        for name in TraceRecord.__slots__:
            if name in ("index", "external_id", "is_hint"):
                continue
            value = getattr(record, name)
            if value is not None:
                setattr(current, name, value)
    return merged


def _merge_spans(records: Iterable[SpanRecord]) -> list[SpanRecord]:
    merged: dict[tuple[str, str], SpanRecord] = {}
    for record in records:
        merged[(record.trace_external_id, record.external_id)] = record
    return list(merged.values())


# --- threads ------------------------------------------------------------------------
def _upsert_threads(
    cur: psycopg.Cursor, project: Project, external_ids: set[str], now: datetime
) -> dict[str, int]:
    if not external_ids:
        return {}
    ids = sorted(external_ids)
    cur.execute(
        "INSERT INTO traces_thread "
        "(organization_id, project_id, external_id, metadata, created_at) "
        "SELECT %s, %s, e, '{}'::jsonb, %s FROM unnest(%s::text[]) AS e "
        "ON CONFLICT (project_id, external_id) DO NOTHING",
        [project.organization_id, project.pk, now, ids],
    )
    cur.execute(
        "SELECT external_id, id FROM traces_thread WHERE project_id = %s AND external_id = ANY(%s)",
        [project.pk, ids],
    )
    return dict(cur.fetchall())


# --- traces ---------------------------------------------------------------------------
_TRACE_INSERT_COLUMNS = (
    "organization_id, project_id, external_id, thread_id, name, input, output, metadata, "
    "tags, user_id, environment, release, start_time, end_time, latency_ms, status, "
    "error_message, is_placeholder, input_tokens, output_tokens, total_tokens, cost, "
    "created_at, updated_at"
)
# Rows travel as one array per column (binary), under a fixed statement text: psycopg
# converts and PostgreSQL plans the statement once per connection, whatever the batch
# size. (A multi-row VALUES list with thousands of placeholders cost more Python time
# to convert than everything else in a request.)
_TRACE_INSERT = (
    f"INSERT INTO traces_trace ({_TRACE_INSERT_COLUMNS}) "  # noqa: S608
    "SELECT %(organization)s, %(project)s, u.external_id, u.thread_id, u.name, u.input::jsonb, "
    "u.output::jsonb, u.metadata::jsonb, "
    "COALESCE((SELECT array_agg(t) FROM jsonb_array_elements_text(u.tags::jsonb) AS t), "
    "'{}'::text[]), "
    "u.user_id, u.environment, u.release, u.start_time, u.end_time, u.latency_ms, u.status, "
    "u.error_message, u.is_placeholder, u.input_tokens, u.output_tokens, u.total_tokens, "
    "u.cost, %(now)s, %(now)s "
    "FROM unnest(%(external_id)b::text[], %(thread_id)b::bigint[], %(name)b::text[], "
    "%(input)b::text[], %(output)b::text[], %(metadata)b::text[], %(tags)b::text[], "
    "%(user_id)b::text[], %(environment)b::text[], %(release)b::text[], "
    "%(start_time)b::timestamptz[], %(end_time)b::timestamptz[], %(latency_ms)b::float8[], "
    "%(status)b::text[], %(error_message)b::text[], %(is_placeholder)b::bool[], "
    "%(input_tokens)b::bigint[], %(output_tokens)b::bigint[], %(total_tokens)b::bigint[], "
    "%(cost)b::numeric[]) AS u(external_id, thread_id, name, input, output, metadata, tags, "
    "user_id, environment, release, start_time, end_time, latency_ms, status, error_message, "
    "is_placeholder, input_tokens, output_tokens, total_tokens, cost) "
    "RETURNING external_id, id"
)
_TRACE_INSERT_FIELDS = (
    "external_id", "thread_id", "name", "input", "output", "metadata", "tags", "user_id",
    "environment", "release", "start_time", "end_time", "latency_ms", "status",
    "error_message", "is_placeholder", "input_tokens", "output_tokens", "total_tokens", "cost",
)  # fmt: skip
_TRACE_UPDATE = (
    # A sent field replaces the stored one; a field not sent keeps it. Metadata merges.
    "UPDATE traces_trace t SET "
    "thread_id = COALESCE(v.thread_id, t.thread_id), name = COALESCE(v.name, t.name), "
    "input = COALESCE(v.input::jsonb, t.input), output = COALESCE(v.output::jsonb, t.output), "
    "metadata = t.metadata || COALESCE(v.metadata::jsonb, '{}'::jsonb), "
    "tags = CASE WHEN v.tags IS NULL THEN t.tags ELSE COALESCE((SELECT array_agg(e) "
    "  FROM jsonb_array_elements_text(v.tags::jsonb) AS e), '{}'::text[]) END, "
    "user_id = COALESCE(v.user_id, t.user_id), "
    "environment = COALESCE(v.environment, t.environment), "
    "release = COALESCE(v.release, t.release), "
    "start_time = COALESCE(v.start_time, t.start_time), "
    "end_time = COALESCE(v.end_time, t.end_time), status = COALESCE(v.status, t.status), "
    "error_message = COALESCE(v.error_message, t.error_message), "
    "is_placeholder = false, updated_at = %(now)s "
    "FROM unnest(%(id)b::bigint[], %(thread_id)b::bigint[], %(name)b::text[], "
    "%(input)b::text[], %(output)b::text[], %(metadata)b::text[], %(tags)b::text[], "
    "%(user_id)b::text[], %(environment)b::text[], %(release)b::text[], "
    "%(start_time)b::timestamptz[], %(end_time)b::timestamptz[], %(status)b::text[], "
    "%(error_message)b::text[]) AS v(id, thread_id, name, input, output, metadata, tags, "
    "user_id, environment, release, start_time, end_time, status, error_message) "
    "WHERE t.id = v.id"
)
_TRACE_UPDATE_FIELDS = (
    "id", "thread_id", "name", "input", "output", "metadata", "tags", "user_id",
    "environment", "release", "start_time", "end_time", "status", "error_message",
)  # fmt: skip


def _columns(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
    """Rows as one list per column, keyed by name (the statements' array parameters)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return {name: list(values) for name, values in zip(names, columns, strict=True)}


def _tags_json(tags: list[str] | None) -> str | None:
    # Tags travel as JSON text: a binary text[][] cannot hold rows of different lengths.
    return None if tags is None else orjson.dumps(tags).decode()


def _latency_ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() * 1000.0


def _existing_traces(
    cur: psycopg.Cursor, project: Project, external_ids: Iterable[str]
) -> dict[str, int]:
    cur.execute(
        "SELECT external_id, id FROM traces_trace WHERE project_id = %s AND external_id = ANY(%s)",
        [project.pk, list(external_ids)],
    )
    return dict(cur.fetchall())


@dataclass(slots=True)
class RollUp:
    """Trace totals from its spans: computed here for a trace new in this batch (all
    its spans are in the batch), by SQL over the stored spans otherwise."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost: Decimal | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    first_error: tuple[datetime | None, str] | None = None


def _batch_rollups(spans: Iterable[SpanRecord], external_ids: set[str]) -> dict[str, RollUp]:
    rollups: dict[str, RollUp] = {}
    for span in spans:
        if span.trace_external_id not in external_ids:
            continue
        rollup = rollups.setdefault(span.trace_external_id, RollUp())
        if span.kind in TOKEN_KINDS:
            rollup.input_tokens += span.input_tokens
            rollup.output_tokens += span.output_tokens
            rollup.total_tokens += span.total_tokens
        if span.cost is not None:
            rollup.cost = span.cost if rollup.cost is None else rollup.cost + span.cost
        if span.start_time is not None and (
            rollup.start_time is None or span.start_time < rollup.start_time
        ):
            rollup.start_time = span.start_time
        if span.end_time is not None and (
            rollup.end_time is None or span.end_time > rollup.end_time
        ):
            rollup.end_time = span.end_time
        if span.status == "error":
            # The earliest failed span's message (no start time sorts last), as in SQL.
            candidate = (span.start_time, span.error_message)
            current = rollup.first_error
            if current is None or _error_order(candidate) < _error_order(current):
                rollup.first_error = candidate
    return rollups


def _error_order(error: tuple[datetime | None, str]) -> tuple[bool, datetime | None]:
    return (error[0] is None, error[0])


def _least(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _upsert_traces(
    cur: psycopg.Cursor,
    project: Project,
    traces: dict[str, TraceRecord],
    existing: dict[str, int],
    thread_ids: dict[str, int],
    rollups: dict[str, RollUp],
    now: datetime,
) -> dict[str, int]:
    """Inserts the new traces (rolled up already), updates the existing; returns
    external id -> trace id."""
    trace_ids = dict(existing)
    new_rows = []
    for external_id in sorted(traces.keys() - existing.keys()):
        record = traces[external_id]
        thread_id = thread_ids.get(record.thread_external_id) if record.thread_external_id else None
        rollup = rollups.get(external_id) or RollUp()
        start = _least(record.start_time, rollup.start_time)
        end = _greatest(record.end_time, rollup.end_time)
        status = "error" if rollup.first_error else (record.status or "unset")
        error_message = rollup.first_error[1] if rollup.first_error else record.error_message or ""
        new_rows.append((
            external_id, thread_id, record.name or "", record.input_json, record.output_json,
            record.metadata_json or "{}", _tags_json(record.tags or []), record.user_id or "",
            record.environment or "", record.release or "", start, end,
            _latency_ms(start, end), status, error_message, record.is_hint,
            rollup.input_tokens, rollup.output_tokens, rollup.total_tokens, rollup.cost,
        ))  # fmt: skip
    if new_rows:
        cur.execute(
            _TRACE_INSERT,
            {"organization": project.organization_id, "project": project.pk, "now": now,
             **_columns(_TRACE_INSERT_FIELDS, new_rows)},
        )  # fmt: skip
        trace_ids.update(cur.fetchall())

    updates, hints = [], []
    for external_id, trace_id in existing.items():
        record = traces[external_id]
        thread_id = thread_ids.get(record.thread_external_id) if record.thread_external_id else None
        if record.is_hint:
            if thread_id is not None or record.user_id:
                hints.append((trace_id, thread_id, record.user_id))
            continue
        updates.append((
            trace_id, thread_id, record.name, record.input_json, record.output_json,
            record.metadata_json, _tags_json(record.tags), record.user_id,
            record.environment, record.release, record.start_time, record.end_time,
            record.status, record.error_message,
        ))  # fmt: skip
    if updates:
        cur.execute(_TRACE_UPDATE, {"now": now, **_columns(_TRACE_UPDATE_FIELDS, updates)})
    if hints:
        # Hints (from spans, scores, feedback) only fill what is still empty.
        cur.execute(
            "UPDATE traces_trace t SET thread_id = COALESCE(t.thread_id, v.thread_id), "
            "user_id = CASE WHEN t.user_id = '' THEN COALESCE(v.user_id, '') ELSE t.user_id END "
            "FROM unnest(%(id)b::bigint[], %(thread_id)b::bigint[], %(user_id)b::text[]) "
            "AS v(id, thread_id, user_id) WHERE t.id = v.id",
            _columns(("id", "thread_id", "user_id"), hints),
        )
    return trace_ids


# --- spans ------------------------------------------------------------------------------
_SPAN_COLUMNS = (
    "organization_id, project_id, trace_id, external_id, parent_external_id, kind, name, "
    "model, provider, input, output, attributes, start_time, end_time, input_tokens, "
    "output_tokens, cached_tokens, reasoning_tokens, total_tokens, cost, status, "
    "error_message, created_at"
)
_SPAN_UPDATED = (
    "parent_external_id", "kind", "name", "model", "provider", "input", "output",
    "attributes", "start_time", "end_time", "input_tokens", "output_tokens",
    "cached_tokens", "reasoning_tokens", "total_tokens", "cost", "status", "error_message",
)  # fmt: skip
# Payload columns are ``json`` (verbatim text, no equality operator): compared as text.
_SPAN_JSON = ("input", "output", "attributes")


def _compared(table: str, name: str) -> str:
    return f"{table}.{name}::text" if name in _SPAN_JSON else f"{table}.{name}"


_SPAN_CONFLICT = (
    # created_at is the trace's, so (trace_id, external_id) alone decides a conflict.
    "ON CONFLICT (trace_id, external_id, created_at) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in _SPAN_UPDATED)
    # An identical re-send writes nothing: no dead tuple, no WAL.
    + " WHERE ("
    + ", ".join(_compared("traces_span", name) for name in _SPAN_UPDATED)
    + ") IS DISTINCT FROM ("
    + ", ".join(_compared("EXCLUDED", name) for name in _SPAN_UPDATED)
    + ")"
)


_SPAN_FIELDS = (
    "trace_id", "external_id", "parent_external_id", "kind", "name", "model", "provider",
    "input", "output", "attributes", "start_time", "end_time", "input_tokens",
    "output_tokens", "cached_tokens", "reasoning_tokens", "total_tokens", "cost", "status",
    "error_message",
)  # fmt: skip
_SPAN_INSERT = (
    f"INSERT INTO traces_span ({_SPAN_COLUMNS}) "  # noqa: S608
    "SELECT %(organization)s, %(project)s, u.trace_id, u.external_id, u.parent_external_id, "
    "u.kind, u.name, u.model, u.provider, u.input::json, u.output::json, "
    "u.attributes::json, u.start_time, u.end_time, u.input_tokens, u.output_tokens, "
    "u.cached_tokens, u.reasoning_tokens, u.total_tokens, u.cost, u.status, u.error_message, "
    "t.created_at "
    "FROM unnest(%(trace_id)b::bigint[], %(external_id)b::text[], "
    "%(parent_external_id)b::text[], %(kind)b::text[], %(name)b::text[], %(model)b::text[], "
    "%(provider)b::text[], %(input)b::text[], %(output)b::text[], %(attributes)b::text[], "
    "%(start_time)b::timestamptz[], %(end_time)b::timestamptz[], %(input_tokens)b::bigint[], "
    "%(output_tokens)b::bigint[], %(cached_tokens)b::bigint[], "
    "%(reasoning_tokens)b::bigint[], %(total_tokens)b::bigint[], %(cost)b::numeric[], "
    "%(status)b::text[], %(error_message)b::text[]) "
    f"AS u({', '.join(_SPAN_FIELDS)}) "
    # A span's created_at is its trace's: the partition key, one partition per trace.
    f"JOIN traces_trace t ON t.id = u.trace_id {_SPAN_CONFLICT}"
)


def _cyclic_spans(
    cur: psycopg.Cursor, spans: list[SpanRecord], existing: dict[str, int]
) -> set[tuple[str, str]]:
    """Batch spans whose parent chain, through the batch and stored spans, loops."""
    batch_keys = {(span.trace_external_id, span.external_id) for span in spans}
    # Stored links matter only where a chain leaves the batch into a trace stored before.
    leaving = {
        existing[span.trace_external_id]
        for span in spans
        if span.parent_external_id
        and span.trace_external_id in existing
        and (span.trace_external_id, span.parent_external_id) not in batch_keys
    }
    parents: dict[tuple[str, str], str] = {}
    if leaving:
        external_by_id = {trace_id: external for external, trace_id in existing.items()}
        cur.execute(
            "SELECT trace_id, external_id, parent_external_id FROM traces_span "
            "WHERE trace_id = ANY(%s) AND parent_external_id <> ''",
            [sorted(leaving)],
        )
        for trace_id, external_id, parent in cur.fetchall():
            parents[(external_by_id[trace_id], external_id)] = parent
    for span in spans:
        key = (span.trace_external_id, span.external_id)
        if span.parent_external_id:
            parents[key] = span.parent_external_id
        else:
            parents.pop(key, None)
    cyclic: set[tuple[str, str]] = set()
    for span in spans:
        trace = span.trace_external_id
        start = span.external_id
        seen = {start}
        current = parents.get((trace, start))
        while current is not None:
            if current == start:
                cyclic.add((trace, start))
                break
            if current in seen:
                break  # a loop above this span: its own members are rejected
            seen.add(current)
            current = parents.get((trace, current))
    return cyclic


def _upsert_spans(
    cur: psycopg.Cursor,
    project: Project,
    spans: list[SpanRecord],
    trace_ids: dict[str, int],
    new_trace_ids: Iterable[int],
    now: datetime,
) -> None:
    # A fixed order keeps concurrent writers' row locks in the same order.
    ordered = sorted(spans, key=lambda s: (s.trace_external_id, s.external_id))
    rows = [
        (trace_ids[span.trace_external_id], span.external_id, span.parent_external_id,
         span.kind, span.name, span.model, span.provider, span.input_json, span.output_json,
         span.attributes_json, span.start_time, span.end_time, span.input_tokens,
         span.output_tokens, span.cached_tokens, span.reasoning_tokens, span.total_tokens,
         span.cost, span.status, span.error_message)
        for span in ordered
    ]  # fmt: skip
    # The partitions the spans go to exist (normally created ahead; see traces.partitions).
    span_partition_ensure(now)
    stored_before = sorted({row[0] for row in rows} - set(new_trace_ids))
    if stored_before:
        cur.execute(
            "SELECT DISTINCT date_trunc('month', created_at) FROM traces_trace WHERE id = ANY(%s)",
            [stored_before],
        )
        for (month,) in cur.fetchall():
            span_partition_ensure(month)
    cur.execute(
        _SPAN_INSERT,
        {"organization": project.organization_id, "project": project.pk,
         **_columns(_SPAN_FIELDS, rows)},
    )  # fmt: skip


def _roll_up(cur: psycopg.Cursor, trace_ids: Iterable[int], now: datetime) -> None:
    """Trace totals from all its stored spans, so trace lists need no join."""
    ids = sorted(set(trace_ids))
    if not ids:
        return
    cur.execute(
        "UPDATE traces_trace t SET "
        "input_tokens = COALESCE(a.input_tokens, 0), "
        "output_tokens = COALESCE(a.output_tokens, 0), "
        "total_tokens = COALESCE(a.total_tokens, 0), "
        "cost = a.cost, "
        "start_time = LEAST(t.start_time, a.start_time), "
        "end_time = GREATEST(t.end_time, a.end_time), "
        "latency_ms = EXTRACT(EPOCH FROM (GREATEST(t.end_time, a.end_time) "
        "  - LEAST(t.start_time, a.start_time))) * 1000, "
        "status = CASE WHEN a.has_error THEN 'error' ELSE t.status END, "
        # The earliest failed span explains the trace, whatever order spans came in.
        "error_message = CASE WHEN a.has_error "
        "  THEN COALESCE(a.first_error, '') ELSE t.error_message END, "
        "updated_at = %s "
        "FROM (SELECT ids.id, agg.* FROM unnest(%s::bigint[]) AS ids(id) "
        "  CROSS JOIN LATERAL (SELECT "
        "    SUM(s.input_tokens) FILTER (WHERE s.kind = ANY(%s)) AS input_tokens, "
        "    SUM(s.output_tokens) FILTER (WHERE s.kind = ANY(%s)) AS output_tokens, "
        "    SUM(s.total_tokens) FILTER (WHERE s.kind = ANY(%s)) AS total_tokens, "
        "    SUM(s.cost) AS cost, MIN(s.start_time) AS start_time, "
        "    MAX(s.end_time) AS end_time, "
        "    COALESCE(bool_or(s.status = 'error'), false) AS has_error, "
        "    (array_agg(s.error_message ORDER BY s.start_time) "
        "       FILTER (WHERE s.status = 'error'))[1] AS first_error "
        "    FROM traces_span s WHERE s.trace_id = ids.id) agg) a "
        "WHERE t.id = a.id",
        [now, ids, list(TOKEN_KINDS), list(TOKEN_KINDS), list(TOKEN_KINDS)],
    )


# --- scores and feedback ---------------------------------------------------------------
def _span_ids(cur: psycopg.Cursor, wanted: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
    if not wanted:
        return {}
    pairs = sorted(wanted)
    cur.execute(
        "SELECT s.trace_id, s.external_id, s.id FROM traces_span s "
        "JOIN unnest(%s::bigint[], %s::text[]) AS w(trace_id, external_id) "
        "ON s.trace_id = w.trace_id AND s.external_id = w.external_id",
        [[p[0] for p in pairs], [p[1] for p in pairs]],
    )
    return {(trace_id, external_id): pk for trace_id, external_id, pk in cur.fetchall()}


def _resolve_target(
    record: ScoreRecord | FeedbackRecord,
    trace_ids: dict[str, int],
    thread_ids: dict[str, int],
    span_ids: dict[tuple[int, str], int],
) -> tuple[int | None, int | None, int | None] | None:
    """(trace id, span id, thread id), or None when the span does not exist."""
    target = record.target
    if target.thread_external_id:
        return None, None, thread_ids[target.thread_external_id]
    trace_id = trace_ids.get(target.trace_external_id)
    if trace_id is None:
        return None
    if target.span_external_id:
        span_id = span_ids.get((trace_id, target.span_external_id))
        if span_id is None:
            return None
        return trace_id, span_id, None
    return trace_id, None, None


_SCORE_FIELDS = (
    "trace_id", "span_id", "thread_id", "name", "data_type", "value", "label", "rationale",
    "source", "source_name", "source_version", "metadata",
)  # fmt: skip


def _store_scores(
    project: Project,
    scores: list[ScoreRecord],
    targets: list[tuple[int | None, int | None, int | None]],
    rejections: list[Rejection],
    now: datetime,
) -> int:
    by_id = {record.external_id: i for i, record in enumerate(scores) if record.external_id}
    existing = {
        score.external_id: score
        for score in Score.objects.filter(project=project, external_id__in=list(by_id))
    }
    created: list[Score] = []
    changed: list[Score] = []
    stored = 0
    for record, (trace_id, span_id, thread_id) in zip(scores, targets, strict=True):
        values = {
            "trace_id": trace_id, "span_id": span_id, "thread_id": thread_id,
            "name": record.name, "data_type": record.data_type, "value": record.value,
            "label": record.label, "rationale": record.rationale, "source": record.source,
            "source_name": record.source_name, "source_version": record.source_version,
            "metadata": record.metadata,
        }  # fmt: skip
        current = existing.get(record.external_id) if record.external_id else None
        if current is None:
            created.append(
                Score(
                    organization_id=project.organization_id,
                    project=project,
                    external_id=record.external_id,
                    created_at=record.created_at or now,
                    updated_at=now,
                    **values,
                )
            )
            stored += 1
            continue
        if current.source == ScoreSource.HUMAN:
            rejections.append(
                Rejection(record.index, record.external_id, "score", "conflict",
                          "this id belongs to a human review score, which ingestion cannot change")
            )  # fmt: skip
            continue
        stored += 1
        if any(getattr(current, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(current, name, value)
            current.updated_at = now
            changed.append(current)
    if created:
        bulk_create_with_history(created, Score)
    if changed:
        bulk_update_with_history(changed, Score, [*_SCORE_FIELDS, "updated_at"])
    return stored


def _store_feedback(
    project: Project,
    feedback: list[FeedbackRecord],
    targets: list[tuple[int | None, int | None, int | None]],
    now: datetime,
) -> int:
    rows = [
        Feedback(
            organization_id=project.organization_id,
            project=project,
            trace_id=trace_id,
            span_id=span_id,
            thread_id=thread_id,
            external_id=record.external_id,
            kind=record.kind,
            value=record.value,
            comment=record.comment,
            end_user_id=record.end_user_id,
            metadata=record.metadata,
            created_at=record.created_at or now,
        )
        for record, (trace_id, span_id, thread_id) in zip(feedback, targets, strict=True)
    ]
    if rows:
        Feedback.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["project", "external_id"],
            update_fields=[
                "trace",
                "span",
                "thread",
                "kind",
                "value",
                "comment",
                "end_user_id",
                "metadata",
            ],
        )
    return len(rows)


def _last_by_id(records: list[Any]) -> list[Any]:
    """Records with a client id: the last of each id; records without one: all."""
    seen: dict[str, int] = {}
    kept: list[Any] = []
    for record in records:
        if record.external_id is None:
            kept.append(record)
        elif record.external_id in seen:
            kept[seen[record.external_id]] = record
        else:
            seen[record.external_id] = len(kept)
            kept.append(record)
    return kept


# --- the batch --------------------------------------------------------------------------
def store_batch(*, project: Project, batch: Batch) -> IngestResult:
    """Writes every valid record of ``batch``; call inside a transaction and tenant scope."""
    now = timezone.now()
    rejections = list(batch.rejections)
    spans = _merge_spans(batch.spans)
    scores = _last_by_id(batch.scores)
    feedback = _last_by_id(batch.feedback)

    hints = [
        TraceRecord(index=span.index, external_id=span.trace_external_id, is_hint=True)
        for span in spans
    ]
    for record in (*scores, *feedback):
        # A span target must already exist, and so must its trace: no placeholder for it.
        if record.target.trace_external_id and not record.target.span_external_id:
            hints.append(
                TraceRecord(
                    index=record.index, external_id=record.target.trace_external_id, is_hint=True
                )
            )
    traces = _merge_traces([*batch.traces, *hints])
    thread_external_ids = {t.thread_external_id for t in traces.values() if t.thread_external_id}
    thread_external_ids.update(
        r.target.thread_external_id for r in (*scores, *feedback) if r.target.thread_external_id
    )

    tenancy.assert_writing_in_scope(project.organization_id)
    with _cursor() as cur:
        return _store(cur, project, batch, spans, scores, feedback, traces,
                      thread_external_ids, rejections, now)  # fmt: skip


def _store(
    cur: psycopg.Cursor,
    project: Project,
    batch: Batch,
    spans: list[SpanRecord],
    scores: list[ScoreRecord],
    feedback: list[FeedbackRecord],
    traces: dict[str, TraceRecord],
    thread_external_ids: set[str],
    rejections: list[Rejection],
    now: datetime,
) -> IngestResult:
    if traces:
        keys = sorted({trace_lock_key(project.pk, external_id) for external_id in traces})
        cur.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k", [keys])
    thread_ids = _upsert_threads(cur, project, thread_external_ids, now)
    existing = _existing_traces(cur, project, traces) if traces else {}
    span_target_traces = {
        r.target.trace_external_id
        for r in (*scores, *feedback)
        if r.target.span_external_id and r.target.trace_external_id not in traces
    }
    if span_target_traces:
        span_trace_ids = _existing_traces(cur, project, span_target_traces)
    else:
        span_trace_ids = {}

    if spans:
        cyclic = _cyclic_spans(cur, spans, existing)
        if cyclic:
            for span in spans:
                if (span.trace_external_id, span.external_id) in cyclic:
                    rejections.append(
                        Rejection(span.index, span.external_id, "span", "parent_cycle",
                                  "the parent chain of this span loops back to it")
                    )  # fmt: skip
            spans = [s for s in spans if (s.trace_external_id, s.external_id) not in cyclic]
    rollups = _batch_rollups(spans, traces.keys() - existing.keys())
    trace_ids = _upsert_traces(cur, project, traces, existing, thread_ids, rollups, now)
    trace_ids.update(span_trace_ids)
    if spans:
        new_ids = [trace_ids[e] for e in traces.keys() - existing.keys() if e in trace_ids]
        _upsert_spans(cur, project, spans, trace_ids, new_ids, now)
    # Traces new in this batch were inserted rolled up; stored ones are rolled up in SQL.
    touched = {existing[t.external_id] for t in traces.values()
               if t.external_id in existing and not t.is_hint}  # fmt: skip
    touched.update(existing[s.trace_external_id] for s in spans if s.trace_external_id in existing)
    _roll_up(cur, touched, now)

    stored = {"traces": sum(1 for t in batch.traces if not t.is_hint), "spans": len(spans)}
    if scores or feedback:
        wanted = {
            (trace_ids[r.target.trace_external_id], r.target.span_external_id)
            for r in (*scores, *feedback)
            if r.target.span_external_id and r.target.trace_external_id in trace_ids
        }
        span_ids = _span_ids(cur, wanted)
        resolved: dict[str, tuple[list, list]] = {"score": ([], []), "feedback": ([], [])}
        for kind, records in (("score", scores), ("feedback", feedback)):
            for record in records:
                target = _resolve_target(record, trace_ids, thread_ids, span_ids)
                if target is None:
                    rejections.append(
                        Rejection(record.index, record.external_id, kind, "unknown_target",
                                  f"span {record.target.span_external_id} of trace "
                                  f"{record.target.trace_external_id} does not exist; send the "
                                  "span first or in the same batch")
                    )  # fmt: skip
                    continue
                resolved[kind][0].append(record)
                resolved[kind][1].append(target)
        stored["scores"] = _store_scores(project, *resolved["score"], rejections, now)
        stored["feedback"] = _store_feedback(project, *resolved["feedback"], now)
    rejections.sort(key=lambda r: r.index)
    return IngestResult(
        received=batch.received,
        stored=stored,
        rejections=rejections,
        trace_ids=sorted(set(trace_ids.values())),
    )
