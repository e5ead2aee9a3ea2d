"""Reads of the trace store: the filtered trace list, the trace detail (span tree,
scores, feedback), single spans and threads.

List reads never select ``input``, ``output`` or ``attributes`` (they can be hundreds of
KB per row). The trace detail reads a fixed number of queries whatever its span count.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import OperationalError, connection, connections, transaction
from django.db.models import (
    Avg,
    Count,
    Exists,
    F,
    FloatField,
    IntegerField,
    JSONField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Left
from django.http import QueryDict
from psycopg import errors as psycopg_errors

from hitl.exceptions import DomainError, NotFound
from hitl.replica import reads_from_replica
from projects.models import Membership, Project
from traces import hooks
from traces.filters import IdInArray, RepeatedValuesField, TraceFilter, TraceSort
from traces.ingest.moved import attributes_as_sent
from traces.models import (
    Feedback,
    FeedbackKind,
    Score,
    Span,
    Status,
    Thread,
    Trace,
    TraceRetention,
    TraceScoreAverage,
)

# What a trace list row shows: everything but the payloads.
TRACE_LIST_FIELDS = (
    "id",
    "project_id",
    "external_id",
    "thread__external_id",
    "name",
    "tags",
    "user_id",
    "environment",
    "release",
    "start_time",
    "end_time",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost",
    "status",
    "is_placeholder",
    "created_at",
)
SPAN_PAYLOAD_FIELDS = ("input", "output", "attributes")


# --- the filter ------------------------------------------------------------------------
def _as_query_dict(params: Mapping[str, Any]) -> QueryDict:
    data = QueryDict(mutable=True)
    if isinstance(params, QueryDict):
        for key in params:
            data.setlist(key, params.getlist(key))
        return data
    for key, value in params.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        data.setlist(key, [str(v) for v in values])
    return data


def _bound_trace_filter(
    params: Mapping[str, Any], queryset: QuerySet, **options: Any
) -> TraceFilter:
    data = _as_query_dict(params)
    unknown = sorted(set(data) - set(TraceFilter.base_filters))
    errors: dict[str, list[str]] = {name: ["Unknown filter."] for name in unknown}
    trace_filter = TraceFilter(data=data, queryset=queryset, **options)
    if not trace_filter.is_valid():
        errors.update({name: list(messages) for name, messages in trace_filter.errors.items()})
    if errors:
        raise DomainError("Invalid trace filter.", details=errors)
    return trace_filter


def validate_trace_filter(params: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """Checks a trace filter without running it (routing rules validate on save).

    Returns the filter's non-empty parameters, repeatable ones as lists, ready to store;
    raises ``DomainError`` with per-parameter reasons.
    """
    # An empty queryset reads no rows, so validation needs no tenant in scope.
    trace_filter = _bound_trace_filter(params, Trace.objects.none())
    normalized: dict[str, str | list[str]] = {}
    data = trace_filter.data
    for name, filter_ in TraceFilter.base_filters.items():
        values = [v for v in data.getlist(name) if v.strip() != ""]
        if not values:
            continue
        repeatable = issubclass(filter_.field_class, RepeatedValuesField)
        normalized[name] = values if repeatable else values[-1]
    return normalized


# A list request reads the trace ids of a condition on scores or feedback when at most
# this many rows satisfy it, and fetches the page by id when at most LIST_BY_ID_LIMIT
# traces can match. Past that, the newest-first walk finds a page sooner: with trace
# signals (traces/score_summary.py) it passes a trace that cannot match for about 0.6 us,
# while fetching one by id costs about 3 us. At 1M spans (one run), limits of 5,000 had
# scores and thumbs down at p50 62 ms and one low score at 57 ms; 1,000, 43 and 29 ms.
LIST_RARE_LIMIT = 1000
LIST_BY_ID_LIMIT = 1000


def trace_list_filter_apply(
    queryset: QuerySet[Trace],
    params: Mapping[str, Any],
    *,
    project: Project,
    rare_limit: int = LIST_RARE_LIMIT,
    by_id_limit: int = LIST_BY_ID_LIMIT,
    viewer: Any = None,
) -> QuerySet[Trace]:
    """``queryset`` narrowed by the trace filter ``params``, for one page of a list read
    right away (raises ``DomainError`` like ``traces_matching``).

    The plain filter walks the project's traces newest-first and probes each for its
    scores and feedback, which reads the whole project when few traces match. When the
    filter has rare conditions, their trace ids (a superset of the matches) are read
    first; if few enough remain, the page is fetched by id. The result is always the
    plain filter intersected with that superset, so it matches exactly the same traces.
    """
    trace_filter = _bound_trace_filter(
        params,
        queryset.filter(project=project),
        project=project,
        rare_limit=rare_limit,
        viewer=viewer,
    )
    exact = trace_filter.qs
    if not trace_filter.rare_trace_ids:
        return exact
    candidates = set.intersection(*trace_filter.rare_trace_ids)
    if len(candidates) > by_id_limit:
        cleaned = trace_filter.form.cleaned_data
        conditions = sum(
            len(cleaned[name]) if isinstance(cleaned[name], list) else 1
            for name in trace_filter.form.changed_data
        )
        if conditions <= 1:
            return exact  # nothing else to narrow it by
        # The other conditions may leave few: find out among the candidates only.
        candidates = set(
            exact.filter(_id_in(candidates))
            .order_by()
            .values_list("pk", flat=True)[: by_id_limit + 1]
        )
        if len(candidates) > by_id_limit:
            return exact
    return exact.filter(_id_in(candidates))


def _id_in(ids: set[int]) -> IdInArray:
    # One array parameter: thousands of IN placeholders cost more to build and parse.
    return IdInArray(F("pk"), Value(sorted(ids)))


def traces_matching(*, project: Project, params: Mapping[str, Any]) -> QuerySet[Trace]:
    """The project's traces that match the trace filter ``params`` (query-string values:
    a string or a list of strings each). Raises ``DomainError`` with per-parameter
    reasons for an invalid filter. Needs the project's tenant in scope."""
    return _bound_trace_filter(params, Trace.objects.filter(project=project), project=project).qs


# --- the trace list ----------------------------------------------------------------------
def trace_list_rows(queryset: QuerySet[Trace]) -> QuerySet[Trace]:
    """Lean rows for lists: no payloads; the span count from the span index."""
    span_count = (
        Span.objects.filter(trace_id=OuterRef("pk"))
        .order_by()
        .values("trace_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        queryset.select_related("thread")
        .only(*TRACE_LIST_FIELDS)
        .annotate(span_count=Coalesce(Subquery(span_count, output_field=IntegerField()), 0))
    )


@reads_from_replica
def trace_list_data(traces: list[Trace], *, viewer: Any = None) -> list[dict[str, Any]]:
    """A page of lean rows (from ``trace_list_rows``) as JSON-ready data, shaped like
    ``TraceListRowSerializer``, with each trace's score and feedback summary: two
    queries for the whole page. The summary counts only the scores ``viewer`` (the
    signed-in user; None for an API key) may read (``traces.hooks``)."""
    ids = [trace.pk for trace in traces]
    scores: dict[int, list[dict[str, Any]]] = defaultdict(list)
    feedback: dict[int, dict[str, Any]] = {}
    if ids:
        score_rows = (
            Score.objects.filter(trace_id__in=ids)
            .filter(hooks.scores_visible_to(viewer))
            .order_by()
            .values("trace_id", "name", "source")
            .annotate(count=Count("id"), average=Avg("value"))
            .order_by("trace_id", "name", "source")
        )
        for row in score_rows:
            scores[row["trace_id"]].append(
                {
                    "name": row["name"],
                    "source": row["source"],
                    "count": row["count"],
                    "average": row["average"],
                }
            )
        feedback_rows = (
            Feedback.objects.filter(trace_id__in=ids)
            .order_by()
            .values("trace_id")
            .annotate(
                count=Count("id"),
                thumbs_up=Count("id", filter=Q(kind=FeedbackKind.THUMBS, value__gt=0)),
                thumbs_down=Count("id", filter=Q(kind=FeedbackKind.THUMBS, value__lt=0)),
                average_rating=Avg("value", filter=Q(kind=FeedbackKind.RATING)),
            )
        )
        for row in feedback_rows:
            feedback[row["trace_id"]] = {k: v for k, v in row.items() if k != "trace_id"}
    empty_feedback = {"count": 0, "thumbs_up": 0, "thumbs_down": 0, "average_rating": None}
    return [
        {
            **trace_row_data(trace, span_count=trace.span_count),
            "score_summary": scores.get(trace.pk, []),
            "feedback_summary": feedback.get(trace.pk, empty_feedback),
        }
        for trace in traces
    ]


# --- the trace detail --------------------------------------------------------------------
# The detail is built from plain rows (no model instances, no serializer fields): a
# 500-span trace is mostly payload, and per-field machinery would cost more than the
# database. The shape is documented by traces.api.read_serializers.TraceDetailSerializer.
SPAN_FIELDS = (
    "id",
    "external_id",
    "parent_external_id",
    "kind",
    "name",
    "model",
    "provider",
    "start_time",
    "end_time",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost",
    "status",
    "error_message",
    "input",
    "output",
)
# Positions in a SPAN_FIELDS row, by name.
_SPAN_PK = SPAN_FIELDS.index("id")
_SPAN_START = SPAN_FIELDS.index("start_time")
SCORE_FIELDS = (
    "id",
    "external_id",
    "span_id",
    "name",
    "data_type",
    "value",
    "label",
    "rationale",
    "source",
    "source_name",
    "source_version",
    "author_id",
    "metadata",
    "created_at",
    "updated_at",
)
FEEDBACK_FIELDS = (
    "id",
    "external_id",
    "span_id",
    "kind",
    "value",
    "comment",
    "end_user_id",
    "metadata",
    "created_at",
)


@dataclass
class ReviewAttachments:
    """What review adds to a trace and its spans (annotations, comments): JSON-ready
    dicts, the span ones keyed by span primary key."""

    trace_annotations: list[dict[str, Any]] = field(default_factory=list)
    trace_comments: list[dict[str, Any]] = field(default_factory=list)
    span_annotations: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    span_comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


def trace_get(*, queryset: QuerySet[Trace], external_id: str) -> Trace:
    trace = queryset.select_related("thread").filter(external_id=external_id).first()
    if trace is None:
        raise NotFound("Trace not found.")
    return trace


def trace_review_attachments(
    *, trace: Trace, span_external_ids: dict[int, str], viewer: Any = None
) -> ReviewAttachments:
    """Annotations and comments on ``trace`` and its spans, as ``viewer`` (the signed-in
    user; None for an API key) may see them, with the client's trace and span ids.

    A fixed number of queries (one per kind of attachment, filtered by trace), never
    one per span. Review contributes them through ``traces.hooks``.
    """
    found = hooks.trace_attachments(trace=trace, viewer=viewer)
    attachments = ReviewAttachments()
    for kind, on_trace, on_spans in (
        ("annotations", attachments.trace_annotations, attachments.span_annotations),
        ("comments", attachments.trace_comments, attachments.span_comments),
    ):
        for item in found[kind]:
            span_pk = item.get("span_id")
            item["trace_id"] = trace.external_id
            item["span_id"] = span_external_ids.get(span_pk) if span_pk is not None else None
            if span_pk is None:
                on_trace.append(item)
            else:
                on_spans.setdefault(span_pk, []).append(item)
    return attachments


class RawJSON:
    """JSON text passed through unparsed: span payloads are most of a trace detail, and
    parsing them only to serialize them again costs time and garbage-collector work."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def parsed(self) -> Any:
        return json.loads(self.text)


def _span_columns(*, raw_payloads: bool) -> list[Any]:
    if not raw_payloads:
        return list(SPAN_FIELDS)
    return [*SPAN_FIELDS[:-2], Cast("input", TextField()), Cast("output", TextField())]


@reads_from_replica
def trace_detail(
    *,
    trace: Trace,
    raw_payloads: bool = False,
    viewer: Any = None,
    span_payloads: bool = True,
) -> dict[str, Any]:
    """The whole trace as JSON-ready data: its fields and payloads, the span tree with
    timing, every span's input and output, and the scores and feedback of the trace and
    of each span (the scores ``viewer`` may read: ``traces.hooks``). Three queries
    (spans, scores, feedback) plus what review attachments add, whatever the span count.
    With ``raw_payloads`` span inputs and outputs are ``RawJSON`` (for a renderer that
    splices them in) instead of parsed values; without ``span_payloads`` they are None
    and never read (a page that loads a span's body when it is selected)."""
    columns = _span_columns(raw_payloads=raw_payloads)
    if not span_payloads:
        columns = [*SPAN_FIELDS[:-2], Value(None, JSONField()), Value(None, JSONField())]
    span_rows = list(
        Span.objects.filter(trace_id=trace.pk)
        .order_by(F("start_time").asc(nulls_last=True), "id")
        .values_list(*columns)
    )
    if raw_payloads:
        span_rows = [(*row[:-2], _raw_or_none(row[-2]), _raw_or_none(row[-1])) for row in span_rows]
    score_rows = list(
        Score.objects.filter(trace_id=trace.pk)
        .filter(hooks.scores_visible_to(viewer))
        .order_by("created_at", "id")
        .values(*SCORE_FIELDS)
    )
    feedback_rows = list(
        Feedback.objects.filter(trace_id=trace.pk)
        .order_by("created_at", "id")
        .values(*FEEDBACK_FIELDS)
    )
    span_pks = [row[_SPAN_PK] for row in span_rows]
    zero = _earliest(trace.start_time, (row[_SPAN_START] for row in span_rows))
    spans = [_span_data(row, zero) for row in span_rows]
    external_by_pk = dict(zip(span_pks, (span["span_id"] for span in spans), strict=True))
    attachments = trace_review_attachments(
        trace=trace, span_external_ids=external_by_pk, viewer=viewer
    )
    by_pk = dict(zip(span_pks, spans, strict=True))
    trace_scores, trace_feedback = [], []
    for rows, on_trace, key in (
        (score_rows, trace_scores, "scores"),
        (feedback_rows, trace_feedback, "feedback"),
    ):
        for row in rows:
            span_pk = row["span_id"]
            span = by_pk.get(span_pk) if span_pk is not None else None
            row["span_id"] = external_by_pk.get(span_pk) if span_pk is not None else None
            (span[key] if span is not None else on_trace).append(row)
    for span_pk, items in attachments.span_annotations.items():
        if span_pk in by_pk:
            by_pk[span_pk]["annotations"] = items
    for span_pk, items in attachments.span_comments.items():
        if span_pk in by_pk:
            by_pk[span_pk]["comments"] = items

    data = trace_row_data(trace, span_count=len(spans))
    data.update(
        input=trace.input,
        output=trace.output,
        metadata=trace.metadata,
        error_message=trace.error_message,
        timeline_start=zero,
        spans=span_tree(spans),
        scores=trace_scores,
        feedback=trace_feedback,
        annotations=attachments.trace_annotations,
        comments=attachments.trace_comments,
    )
    return data


# A trace of up to this many spans carries every span's body in its page (moving between
# spans asks the server nothing); a longer one carries its tree and the selected span's
# body, and another span's body is loaded when it is selected (``trace_page_span``).
SPAN_BODIES_INLINE = 40


def span_bodies_read(*, trace: Trace, spans: list[dict[str, Any]], only: set[str] | None) -> None:
    """Reads the input and output of ``trace``'s spans (``only`` those span ids) into
    ``spans`` (``trace_detail(span_payloads=False)``'s), marking them ``body_loaded``:
    one query."""
    rows = Span.objects.filter(trace_id=trace.pk)
    if only is not None:
        rows = rows.filter(external_id__in=only)
    bodies = {
        ext: (input_, output)
        for ext, input_, output in rows.values_list("external_id", "input", "output")
    }
    for entry in spans:
        if entry["span_id"] in bodies:
            entry["input"], entry["output"] = bodies[entry["span_id"]]
            entry["body_loaded"] = True


def trace_page(*, trace: Trace, viewer: Any, span: str | None = None) -> dict[str, Any]:
    """What the trace page shows: ``trace_detail`` as ``viewer`` may see it (the blind
    rule on scores, annotations and comments), each span with its timeline bar, the span
    selected first (``span`` when the trace has it, else the first) and the spans whose
    body is read (``body_loaded``): every span's on a trace of up to
    ``SPAN_BODIES_INLINE`` spans, else the selected one's only (``lazy_spans``)."""
    detail = trace_detail(trace=trace, viewer=viewer, span_payloads=False)
    spans = detail["spans"]
    total = max(((s["offset_ms"] or 0) + (s["duration_ms"] or 0) for s in spans), default=0)
    for entry in spans:
        offset, duration = entry["offset_ms"] or 0, entry["duration_ms"] or 0
        entry["bar_left"] = round(100 * offset / total, 2) if total else 0
        entry["bar_width"] = max(round(100 * duration / total, 2), 0.5) if total else 0
        entry["is_error"] = entry["status"] == Status.ERROR or bool(entry["error_message"])
        entry["body_loaded"] = False
    ids = {entry["span_id"] for entry in spans}
    initial = span if span in ids else (spans[0]["span_id"] if spans else None)
    lazy = len(spans) > SPAN_BODIES_INLINE
    if spans:
        span_bodies_read(trace=trace, spans=spans, only={initial} if lazy else None)
    return {
        "trace": detail,
        "spans": spans,
        "initial_span": initial,
        "lazy_spans": lazy,
        "error_count": sum(1 for entry in spans if entry["is_error"]),
    }


def trace_page_span(*, trace: Trace, viewer: Any, span_id: str) -> dict[str, Any] | None:
    """One span of the trace page as the page shows it when it is selected: the page's
    own selector (``trace_page`` with that span selected), so what ``viewer`` sees is
    what the page shows. The page's data, the span (its body read) and its place in the
    tree; None when the trace has no such span."""
    page = trace_page(trace=trace, viewer=viewer, span=span_id)
    for index, entry in enumerate(page["spans"]):
        if entry["span_id"] == span_id:
            return {"page": page, "span": entry, "index": index}
    return None


def trace_row_data(trace: Trace, *, span_count: int) -> dict[str, Any]:
    """A trace's lean fields, shaped like ``TraceRowSerializer``."""
    return {
        "trace_id": trace.external_id,
        "name": trace.name,
        "thread_id": trace.thread.external_id if trace.thread_id else None,
        "tags": trace.tags,
        "user_id": trace.user_id,
        "environment": trace.environment,
        "release": trace.release,
        "start_time": trace.start_time,
        "end_time": trace.end_time,
        "latency_ms": trace.latency_ms,
        "input_tokens": trace.input_tokens,
        "output_tokens": trace.output_tokens,
        "total_tokens": trace.total_tokens,
        "cost": _decimal_text(trace.cost),
        "status": trace.status,
        "is_placeholder": trace.is_placeholder,
        "span_count": span_count,
        "created_at": trace.created_at,
    }


def _span_data(row: tuple, zero: datetime | None) -> dict[str, Any]:
    (
        _pk, external_id, parent, kind, name, model, provider, start, end,
        input_tokens, output_tokens, cached_tokens, reasoning_tokens, total_tokens,
        cost, status, error_message, input_, output,
    ) = row  # fmt: skip
    return {
        "span_id": external_id,
        "parent_external_id": parent,
        "kind": kind,
        "name": name,
        "model": model,
        "provider": provider,
        "start_time": start,
        "end_time": end,
        "offset_ms": _milliseconds(zero, start),
        "duration_ms": _milliseconds(start, end),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached_tokens": cached_tokens,
        "reasoning_tokens": reasoning_tokens,
        "total_tokens": total_tokens,
        "cost": _decimal_text(cost),
        "status": status,
        "error_message": error_message,
        "input": input_,
        "output": output,
        "scores": [],
        "feedback": [],
        "annotations": [],
        "comments": [],
    }


def span_tree(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spans (dicts with ``span_id`` and ``parent_external_id``, in start order) in
    depth-first order, each given ``parent_span_id``, ``depth``, ``is_orphan`` and
    ``children`` (child span ids, in start order).

    A span whose parent never arrived (or that sits in a parent cycle) is shown at the
    root level and flagged ``is_orphan``. Iterative, so a deep chain cannot overflow.
    """
    by_id = {span["span_id"]: span for span in spans}
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    roots: list[tuple[dict[str, Any], bool]] = []
    for span in spans:
        parent = span.pop("parent_external_id")
        span["_parent"] = parent
        if parent and parent in by_id and parent != span["span_id"]:
            children[parent].append(span)
        else:
            roots.append((span, bool(parent)))

    ordered: list[dict[str, Any]] = []
    visited: set[str] = set()

    def walk(root: dict[str, Any], *, is_orphan: bool) -> None:
        stack: list[tuple[dict[str, Any], int, bool]] = [(root, 0, is_orphan)]
        while stack:
            span, depth, orphan = stack.pop()
            if span["span_id"] in visited:
                continue
            visited.add(span["span_id"])
            kids = children.get(span["span_id"], [])
            span["parent_span_id"] = None if depth == 0 else span["_parent"]
            span["depth"] = depth
            span["is_orphan"] = orphan
            span["children"] = [kid["span_id"] for kid in kids]
            ordered.append(span)
            stack.extend((kid, depth + 1, False) for kid in reversed(kids))

    for root, is_orphan in roots:
        walk(root, is_orphan=is_orphan)
    # Whatever is left hangs in a parent cycle: break it at its earliest span.
    for span in spans:
        if span["span_id"] not in visited:
            walk(span, is_orphan=True)
    for span in ordered:
        del span["_parent"]
    return ordered


def _earliest(first: datetime | None, others: Iterable[datetime | None]) -> datetime | None:
    known = [t for t in (first, *others) if t is not None]
    return min(known) if known else None


def _milliseconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 3)


def _raw_or_none(text: str | None) -> RawJSON | None:
    # SQL NULL and JSON null both mean "no payload".
    return None if text is None or text == "null" else RawJSON(text)


def _decimal_text(value: Decimal | None) -> str | None:
    # As DRF's DecimalField writes it: fixed point, never an exponent.
    return None if value is None else f"{value:f}"


# --- one span ------------------------------------------------------------------------------
@reads_from_replica
def span_detail(*, trace: Trace, span_external_id: str, viewer: Any = None) -> dict[str, Any]:
    """One span with its attributes, parent, children, timing, scores (those ``viewer``
    may read) and feedback."""
    row = (
        Span.objects.filter(trace_id=trace.pk, external_id=span_external_id)
        .values_list(
            *SPAN_FIELDS, "attributes", Cast("input", TextField()), Cast("output", TextField())
        )
        .first()
    )
    if row is None:
        raise NotFound("Span not found.")
    span_pk = row[_SPAN_PK]
    first_start = Span.objects.filter(trace_id=trace.pk).aggregate(first=Min("start_time"))
    data = _span_data(row[:-3], _earliest(trace.start_time, [first_start["first"]]))
    parent = data.pop("parent_external_id") or None
    parent_exists = (
        parent is not None and Span.objects.filter(trace_id=trace.pk, external_id=parent).exists()
    )
    children = Span.objects.filter(trace_id=trace.pk, parent_external_id=data["span_id"])
    data.update(
        trace_id=trace.external_id,
        # OTLP content stored once comes back into the attributes exactly as sent.
        attributes=attributes_as_sent(row[-3], input_text=row[-2], output_text=row[-1]),
        parent_span_id=parent if parent_exists else None,
        is_orphan=parent is not None and not parent_exists,
        children=list(
            children.order_by(F("start_time").asc(nulls_last=True), "id").values_list(
                "external_id", flat=True
            )
        ),
    )
    for key, queryset, fields in (
        ("scores", Score.objects.filter(hooks.scores_visible_to(viewer)), SCORE_FIELDS),
        ("feedback", Feedback.objects.all(), FEEDBACK_FIELDS),
    ):
        rows = list(queryset.filter(span_id=span_pk).order_by("created_at", "id").values(*fields))
        for item in rows:
            item["span_id"] = data["span_id"]
        data[key] = rows
    del data["annotations"], data["comments"]
    return data


# --- threads -------------------------------------------------------------------------------
def thread_list_rows(queryset: QuerySet[Thread]) -> QuerySet[Thread]:
    """Threads with their trace count and time span, from the thread index."""
    traces = Trace.objects.filter(thread_id=OuterRef("pk")).order_by().values("thread_id")
    return queryset.annotate(
        trace_count=Coalesce(
            Subquery(traces.annotate(n=Count("id")).values("n"), output_field=IntegerField()), 0
        ),
        first_start_time=Subquery(traces.annotate(t=Min("start_time")).values("t")),
        last_start_time=Subquery(traces.annotate(t=Max("start_time")).values("t")),
    )


def thread_get(*, queryset: QuerySet[Thread], external_id: str) -> Thread:
    thread = thread_list_rows(queryset.filter(external_id=external_id)).first()
    if thread is None:
        raise NotFound("Thread not found.")
    return thread


def thread_traces(*, thread: Thread) -> QuerySet[Trace]:
    """The conversation in order: by start time, then arrival."""
    return trace_list_rows(Trace.objects.filter(thread_id=thread.pk)).order_by(
        F("start_time").asc(nulls_last=True), "created_at", "id"
    )


# --- retention -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RetentionSetting:
    """A project's trace retention as a reader sees it: its own policy (None: it follows
    the default), the default, and the days in force (0: traces are kept)."""

    days: int | None
    default_days: int
    effective_days: int
    updated_at: datetime | None
    updated_by: str


def trace_retention_of(*, project: Project) -> RetentionSetting:
    from traces.retention import default_days

    policy = TraceRetention.objects.filter(project=project).select_related("updated_by").first()
    fallback = default_days()
    if policy is None:
        return RetentionSetting(None, fallback, fallback, None, "")
    who = policy.updated_by
    return RetentionSetting(
        days=policy.days,
        default_days=fallback,
        effective_days=policy.days,
        updated_at=policy.updated_at,
        updated_by=(who.get_full_name() or who.email or who.get_username()) if who else "",
    )


# --- the list's order and count ------------------------------------------------------------
# The explorer counts its matches exactly up to this many, then says "more than".
MATCH_COUNT_CAP = 10_000
# ... within this time; past it the page says it did not count (see trace_list_count).
MATCH_COUNT_BUDGET_MS = 60
# A score's order computed from the scores a reader may see (past HIDDEN_TRACES_CAP
# traces with hidden scores): past this, the order is refused with its reason.
SCORE_SORT_BUDGET_MS = 1000
# A blind reader's order reads the kept averages on every trace but those where some
# scores are hidden from them, up to this many such traces (see _score_page).
HIDDEN_TRACES_CAP = 5_000


@contextmanager
def _statement_budget(alias: str, budget_ms: int) -> Iterator[None]:
    """Every statement on ``alias`` inside gets ``budget_ms`` (PostgreSQL's
    ``statement_timeout``, local to a savepoint, so a statement past it rolls back only
    what ran inside); the session's own timeout is set back afterwards."""
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout')")
        previous = cursor.fetchone()[0]
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{budget_ms}ms"])
        try:
            with transaction.atomic(using=alias):
                yield
        finally:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])


def _cancelled(exc: OperationalError) -> bool:
    return isinstance(exc.__cause__, psycopg_errors.QueryCanceled)


def trace_list_sorted(
    queryset: QuerySet[Trace],
    *,
    sort: TraceSort,
    after: tuple[Any, int] | None = None,
    viewer: Any = None,
) -> QuerySet[Trace]:
    """The reference order (one plain SQL ``ORDER BY``; lists read pages through
    ``trace_list_page``, which returns the same rows faster): ``queryset`` ordered by
    ``sort`` (ties by id in the same direction, traces without a value last), as
    ``sort_value``; ``after`` (a value and an id, from
    ``traces.filters.parse_sort_cursor``) keeps the rows past that one: a keyset, so a
    page costs the same however deep. A score sort reads the average of that score's
    values on the trace that ``viewer`` may see."""
    if sort.score_name:
        average = (
            Score.objects.filter(trace_id=OuterRef("pk"), name=sort.score_name)
            .filter(value__isnull=False)
            .filter(hooks.scores_visible_to(viewer))
            .order_by()
            .values("trace_id")
            .annotate(average=Avg("value"))
            .values("average")
        )
        queryset = queryset.annotate(sort_value=Subquery(average, output_field=FloatField()))
    else:
        queryset = queryset.annotate(sort_value=F(sort.column))
    if after is not None:
        value, pk = after
        past = "lt" if sort.descending else "gt"
        if value is None:
            keyset = Q(sort_value__isnull=True, **{f"id__{past}": pk})
        else:
            keyset = (
                Q(**{f"sort_value__{past}": value})
                | Q(sort_value=value, **{f"id__{past}": pk})
                | Q(sort_value__isnull=True)
            )
        queryset = queryset.filter(keyset)
    if sort.descending:
        return queryset.order_by(F("sort_value").desc(nulls_last=True), "-id")
    return queryset.order_by(F("sort_value").asc(nulls_last=True), "id")


@reads_from_replica
def trace_list_page(
    queryset: QuerySet[Trace],
    *,
    sort: TraceSort,
    limit: int,
    after: tuple[Any, int] | None = None,
    viewer: Any = None,
    project: Project | None = None,
) -> list[Trace]:
    """Up to ``limit`` traces of ``queryset`` in ``sort``'s order past ``after``, each
    with its ``sort_value``: the same rows as ``trace_list_sorted``, read the way the
    sort indexes (migration 0107) serve them. The traces with a value come first, walked
    along the index from the cursor (``value <= cursor`` bounds the scan; a tie on the
    value is settled by id), then, if the page is not full, those without one, by id.
    Each part orders its nulls as the index does, so either direction is an index scan
    (forwards or backwards). A score's average is read from the scores (``_score_page``);
    ``project`` (the queryset's) lets that read use the scores' per-project index."""
    if sort.score_name:
        return _score_page(
            queryset, sort=sort, limit=limit, after=after, viewer=viewer, project=project
        )
    column = sort.column
    if sort.descending:
        order = (F(column).desc(nulls_last=True), F("id").desc())
        past, reach = "lt", "lte"
    else:
        order = (F(column).asc(nulls_first=True), F("id").asc())
        past, reach = "gt", "gte"
    queryset = queryset.annotate(sort_value=F(column))
    rows: list[Trace] = []
    if after is None or after[0] is not None:
        valued = queryset.filter(**{f"{column}__isnull": False})
        if after is not None:
            value, pk = after
            valued = valued.filter(**{f"{column}__{reach}": value}).filter(
                Q(**{f"{column}__{past}": value}) | Q(**{column: value, f"id__{past}": pk})
            )
        rows = list(valued.order_by(*order)[:limit])
    if len(rows) < limit:
        empty = queryset.filter(**{f"{column}__isnull": True})
        if after is not None and after[0] is None:
            empty = empty.filter(**{f"id__{past}": after[1]})
        rows += list(empty.order_by(*order)[: limit - len(rows)])
    return rows


def _score_page(
    queryset: QuerySet[Trace],
    *,
    sort: TraceSort,
    limit: int,
    after: tuple[Any, int] | None,
    viewer: Any,
    project: Project | None,
) -> list[Trace]:
    """``trace_list_page`` for a score's average. The averages are the ones kept per
    trace (``TraceScoreAverage``, by triggers: ``traces/score_averages.py``), read along
    their ``(project, name, average, trace)`` index from the cursor, wherever the reader
    sees every score. On the traces where the blind rule may hide some from them (their
    blind items' traces, at most ``HIDDEN_TRACES_CAP``: ``hooks.traces_with_hidden_scores``)
    the averages are computed from the scores they may see, and the two are merged.
    Past that cap, or without a project, every average is computed from the scores the
    reader may see, within ``SCORE_SORT_BUDGET_MS``. Either way the traces ``queryset``
    holds come in (average, trace id) order (a keyset on both), then those without an
    average, by id: the same rows as ``trace_list_sorted``."""
    visible = hooks.scores_visible_to(viewer)
    matching = queryset.order_by().values("pk")
    scores = Score.objects.filter(name=sort.score_name, value__isnull=False).filter(visible)
    if project is not None:
        scores = scores.filter(project=project)
        hidden = (
            hooks.traces_with_hidden_scores(viewer=viewer, project=project, cap=HIDDEN_TRACES_CAP)
            if visible
            else set()
        )
        if hidden is not None:
            kept = TraceScoreAverage.objects.filter(
                project=project, name=sort.score_name, average__isnull=False
            ).exclude(trace_id__in=hidden)
            parts, have = [kept.filter(trace_id__in=matching)], [kept]
            if hidden:
                seen = scores.filter(trace_id__in=hidden)
                parts.append(_averages_of(seen.filter(trace_id__in=matching)))
                have.append(seen)
            return _average_order_page(queryset, parts, have, sort=sort, limit=limit, after=after)
    # Every score of that name the filter matches is read: bounded in time, and refused
    # with its reason past that rather than holding the page (seconds at 10M spans).
    alias = queryset.db
    averages = _averages_of(scores.filter(trace_id__in=matching))
    try:
        with _statement_budget(alias, SCORE_SORT_BUDGET_MS):
            return _average_order_page(
                queryset.using(alias),
                [averages.using(alias)],
                [scores.using(alias)],
                sort=sort,
                limit=limit,
                after=after,
            )
    except OperationalError as exc:
        if not _cancelled(exc):
            raise
    seconds = SCORE_SORT_BUDGET_MS / 1000
    raise DomainError(
        "Invalid sort.",
        details={
            "sort": [
                f"Ordering by “{sort.score_name}” among the scores you may see took longer "
                f"than {seconds:g} s (some are hidden from you until you answer their "
                "items). Narrow the filter, or order by another column."
            ]
        },
    )


def _averages_of(scores: QuerySet[Score]) -> QuerySet:
    """Rows of ``trace_id`` and ``average``: the average of ``scores`` per trace."""
    return scores.order_by().values("trace_id").annotate(average=Avg("value"))


def _average_order_page(
    queryset: QuerySet[Trace],
    parts: list[QuerySet],
    have: list[QuerySet],
    *,
    sort: TraceSort,
    limit: int,
    after: tuple[Any, int] | None,
) -> list[Trace]:
    """The page of ``_score_page``: each of ``parts`` (rows of ``trace_id`` and
    ``average``, no trace in two of them) ordered and cut past ``after`` (the keyset
    also bounds the index walk, ``average <= cursor``), merged and cut again; then the
    traces of ``queryset`` with no row in any of ``have``."""
    past = "lt" if sort.descending else "gt"
    rows: list[Trace] = []
    if after is None or after[0] is not None:
        direction = "-" if sort.descending else ""
        found: list[tuple[int, float]] = []
        for averages in parts:
            if after is not None:
                value, pk = after
                averages = averages.filter(**{f"average__{past}e": value}).filter(
                    Q(**{f"average__{past}": value}) | Q(average=value, **{f"trace_id__{past}": pk})
                )
            found += averages.order_by(f"{direction}average", f"{direction}trace_id").values_list(
                "trace_id", "average"
            )[:limit]
        found.sort(key=lambda row: (row[1], row[0]), reverse=sort.descending)
        found = found[:limit]
        by_id = {trace.pk: trace for trace in queryset.filter(pk__in=[pk for pk, _ in found])}
        for pk, average in found:
            trace = by_id[pk]
            trace.sort_value = average
            rows.append(trace)
    if len(rows) < limit:
        without = queryset
        for rows_of_trace in have:
            without = without.exclude(Exists(rows_of_trace.filter(trace_id=OuterRef("pk"))))
        if after is not None and after[0] is None:
            without = without.filter(**{f"id__{past}": after[1]})
        extra = list(without.order_by("-id" if sort.descending else "id")[: limit - len(rows)])
        for trace in extra:
            trace.sort_value = None
        rows += extra
    return rows


@reads_from_replica
def trace_list_count(
    queryset: QuerySet[Trace], *, cap: int = MATCH_COUNT_CAP, budget_ms: int = MATCH_COUNT_BUDGET_MS
) -> int | None:
    """How many traces ``queryset`` holds, counted up to ``cap + 1`` (a count over a
    ``LIMIT`` subquery: one more than ``cap`` means "more than ``cap``"); None when the
    count takes longer than ``budget_ms`` (a rare filter over a large project reads every
    trace to find out): the page then says it did not count, and keeps its own budget."""
    alias = queryset.db  # a replica inside reads_from_replica: the timeout is set there
    counting = queryset.using(alias).order_by().values("pk")[: cap + 1]
    try:
        with _statement_budget(alias, budget_ms):
            return counting.count()
    except OperationalError as exc:
        if _cancelled(exc):
            return None
        raise


# --- what the filter builder offers ---------------------------------------------------------
SCORE_NAMES_LIMIT = 200


def score_names(*, project: Project, viewer: Any, limit: int = SCORE_NAMES_LIMIT) -> list[str]:
    """The names of the project's scores ``viewer`` may read, sorted (at most ``limit``):
    one index probe per name on ``score_project_name_value`` (a loose index scan), however
    many scores there are; under a blind rule, only names with a score the viewer may
    read are kept (a hidden judge's name is not offered)."""
    names = _score_names(project=project, limit=limit)
    visible = hooks.scores_visible_to(viewer)
    if not names or not visible:  # an empty Q: the viewer reads every score
        return names
    # One EXISTS per name, each stopping at the first score the viewer may read (the
    # blind rule hides few): a DISTINCT over every score of those names read them all
    # (0.2 s at 250k spans, growing with the project).
    probes = {
        f"name_{n}": Exists(Score.objects.filter(project=project, name=name).filter(visible))
        for n, name in enumerate(names)
    }
    seen = Project.objects.filter(pk=project.pk).annotate(**probes).values(*probes).get()
    return [name for n, name in enumerate(names) if seen[f"name_{n}"]]


# How much of a trace's input (as JSON text) a list reads to tell its traces apart.
TRACE_INPUT_HEAD = 400


def trace_input_head(path: str = "input") -> Left:
    """The head of a trace's input as JSON text, for a list that names each trace by its
    external id, start time and an input snippet (``review_pages.input_snippet`` words
    it) without reading whole inputs; ``path`` reaches the input through a relation
    (``"trace__input"``)."""
    return Left(Cast(path, TextField()), TRACE_INPUT_HEAD)


def trace_filter_check_score_names(*, project: Project, params: Mapping[str, Any]) -> None:
    """Refuses a trace filter's score condition on a name no score of the project has
    (``DomainError`` with the reason beside ``score``, as the filter words its own):
    such a condition would match nothing, silently. One indexed probe per filter."""
    from django import forms as django_forms

    from traces.filters import parse_score_condition

    raw = params.get("score") if isinstance(params, Mapping) else None
    values = [str(v) for v in (raw if isinstance(raw, list | tuple) else [raw]) if v]
    names: dict[str, str] = {}
    for value in values:
        try:
            names.setdefault(value, parse_score_condition(value).name)
        except django_forms.ValidationError:
            continue  # the filter itself says what is wrong with it
    if not names:
        return
    known = set(
        Score.objects.filter(project=project, name__in=set(names.values()))
        .values_list("name", flat=True)
        .distinct()
    )
    unknown = [
        f"{value!r}: no score named “{name}” in this project; choose one of its score names."
        for value, name in names.items()
        if name not in known
    ]
    if unknown:
        raise DomainError("Unknown score name.", details={"score": unknown})


def organization_score_names(*, viewer: Any, limit: int = SCORE_NAMES_LIMIT) -> list[str]:
    """The names of the scores ``viewer`` may read in every project of the organization
    in the tenant scope (none without one: ``Project`` is read through its scoped
    manager), sorted and distinct, at most ``limit``: what the notification settings
    offer where a score name is typed (``projects.hooks.score_names``)."""
    names: set[str] = set()
    for project in Project.objects.order_by("pk"):
        names.update(score_names(project=project, viewer=viewer, limit=limit))
    return sorted(names)[:limit]


def _score_names(*, project: Project, limit: int) -> list[str]:
    table = Score._meta.db_table
    sql = f"""
        WITH RECURSIVE names(name) AS (
            (SELECT name FROM {table} WHERE project_id = %s ORDER BY name LIMIT 1)
            UNION ALL
            SELECT (SELECT s.name FROM {table} s WHERE s.project_id = %s AND s.name > names.name
                    ORDER BY s.name LIMIT 1)
            FROM names WHERE names.name IS NOT NULL
        )
        SELECT name FROM names WHERE name IS NOT NULL LIMIT %s
    """  # noqa: S608 (the table name is the model's, the values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk, project.pk, limit])
        return [row[0] for row in cursor.fetchall()]


def project_people(*, project: Project) -> list[tuple[str, str]]:
    """(user id, email) of the members of the project's organization, by email: the
    people a "reviewed by" condition may name."""
    rows = (
        Membership.objects.filter(organization_id=project.organization_id)
        .order_by("user__email")
        .values_list("user_id", "user__email")
    )
    return [(str(pk), email) for pk, email in rows]
