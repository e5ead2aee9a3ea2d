"""Reads of the trace store: the filtered trace list, the trace detail (span tree,
scores, feedback), single spans and threads.

List reads never select ``input``, ``output`` or ``attributes`` (they can be hundreds of
KB per row). The trace detail reads a fixed number of queries whatever its span count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import (
    Avg,
    Count,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.http import QueryDict

from hitl.exceptions import DomainError, NotFound
from projects.models import Project
from traces.filters import TraceFilter
from traces.models import Feedback, FeedbackKind, Score, Span, Thread, Trace

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


def _bound_trace_filter(params: Mapping[str, Any], queryset: QuerySet) -> TraceFilter:
    data = _as_query_dict(params)
    unknown = sorted(set(data) - set(TraceFilter.base_filters))
    errors: dict[str, list[str]] = {name: ["Unknown filter."] for name in unknown}
    trace_filter = TraceFilter(data=data, queryset=queryset)
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
    # An empty queryset only: validation reads no rows of any tenant.
    trace_filter = _bound_trace_filter(params, Trace.unscoped_across_tenants.none())
    normalized: dict[str, str | list[str]] = {}
    data = trace_filter.data
    for name, filter_ in TraceFilter.base_filters.items():
        values = [v for v in data.getlist(name) if v.strip() != ""]
        if not values:
            continue
        repeatable = filter_.field_class.__name__ == "RepeatedValuesField"
        normalized[name] = values if repeatable else values[-1]
    return normalized


def trace_filter_apply(queryset: QuerySet[Trace], params: Mapping[str, Any]) -> QuerySet[Trace]:
    """``queryset`` narrowed by the trace filter ``params``; raises ``DomainError``."""
    return _bound_trace_filter(params, queryset).qs


def traces_matching(*, project: Project, params: Mapping[str, Any]) -> QuerySet[Trace]:
    """The project's traces that match the trace filter ``params`` (query-string values:
    a string or a list of strings each). Raises ``DomainError`` with per-parameter
    reasons for an invalid filter. Needs the project's tenant in scope."""
    return trace_filter_apply(Trace.objects.filter(project=project), params)


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


def trace_summaries_attach(traces: list[Trace]) -> list[Trace]:
    """Adds ``score_summary`` and ``feedback_summary`` to a page of traces: two queries
    for the whole page."""
    ids = [trace.pk for trace in traces]
    scores: dict[int, list[dict[str, Any]]] = defaultdict(list)
    feedback: dict[int, dict[str, Any]] = {}
    if ids:
        score_rows = (
            Score.objects.filter(trace_id__in=ids)
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
    for trace in traces:
        trace.score_summary = scores.get(trace.pk, [])
        trace.feedback_summary = feedback.get(trace.pk, empty_feedback)
    return traces


# --- the trace detail --------------------------------------------------------------------
@dataclass
class SpanNode:
    span: Span
    parent_span_id: str | None
    depth: int
    is_orphan: bool
    offset_ms: float | None
    duration_ms: float | None
    children: list[str] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    annotations: list[Any] = field(default_factory=list)
    comments: list[Any] = field(default_factory=list)


@dataclass
class ReviewAttachments:
    """What review adds to a trace and its spans (annotations, comments), by span."""

    trace_annotations: list[Any] = field(default_factory=list)
    trace_comments: list[Any] = field(default_factory=list)
    span_annotations: dict[int, list[Any]] = field(default_factory=dict)
    span_comments: dict[int, list[Any]] = field(default_factory=dict)


@dataclass
class TraceDetail:
    """A trace with its tree; the trace's own fields read through (``detail.name``)."""

    trace: Trace
    timeline_start: datetime | None  # the timeline's zero: the earliest known start
    spans: list[SpanNode]  # depth-first, children in start order
    scores: list[Score]  # on the trace itself (span scores sit on their span)
    feedback: list[Feedback]
    annotations: list[Any]
    comments: list[Any]

    @property
    def span_count(self) -> int:
        return len(self.spans)

    @property
    def span_external_ids(self) -> dict[int, str]:
        return {node.span.pk: node.span.external_id for node in self.spans}

    def __getattr__(self, name: str) -> Any:
        if name == "trace":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.trace, name)


def trace_get(*, queryset: QuerySet[Trace], external_id: str) -> Trace:
    trace = queryset.select_related("thread").filter(external_id=external_id).first()
    if trace is None:
        raise NotFound("Trace not found.")
    return trace


def trace_review_attachments(*, trace: Trace, spans: list[Span]) -> ReviewAttachments:
    """Annotations and comments on ``trace`` and its ``spans``.

    The review app merges its attachments here; it must stay a fixed number of queries
    (one per kind of attachment, filtered by trace), never one per span.
    """
    return ReviewAttachments()


def trace_detail(*, trace: Trace) -> TraceDetail:
    """The whole span tree with timing, payloads, scores and feedback: four queries
    (spans, scores, feedback, plus whatever review attachments add) for any span count."""
    spans = list(
        Span.objects.filter(trace_id=trace.pk)
        .defer("attributes")
        .order_by(F("start_time").asc(nulls_last=True), "id")
    )
    scores = list(Score.objects.filter(trace_id=trace.pk).order_by("created_at", "id"))
    feedback = list(Feedback.objects.filter(trace_id=trace.pk).order_by("created_at", "id"))
    attachments = trace_review_attachments(trace=trace, spans=spans)

    zero = _earliest(trace.start_time, (span.start_time for span in spans))
    nodes = span_tree(spans, zero=zero)
    by_pk = {node.span.pk: node for node in nodes}
    trace_scores, trace_feedback = [], []
    for score in scores:
        node = by_pk.get(score.span_id) if score.span_id else None
        (node.scores if node else trace_scores).append(score)
    for item in feedback:
        node = by_pk.get(item.span_id) if item.span_id else None
        (node.feedback if node else trace_feedback).append(item)
    for span_pk, span_annotations in attachments.span_annotations.items():
        if span_pk in by_pk:
            by_pk[span_pk].annotations = span_annotations
    for span_pk, span_comments in attachments.span_comments.items():
        if span_pk in by_pk:
            by_pk[span_pk].comments = span_comments
    return TraceDetail(
        trace=trace,
        timeline_start=zero,
        spans=nodes,
        scores=trace_scores,
        feedback=trace_feedback,
        annotations=attachments.trace_annotations,
        comments=attachments.trace_comments,
    )


def span_tree(spans: list[Span], *, zero: datetime | None) -> list[SpanNode]:
    """Spans in depth-first order with parents resolved by external id.

    A span whose parent never arrived (or that sits in a parent cycle) is shown at the
    root level and flagged ``is_orphan``. Iterative, so a deep chain cannot overflow.
    ``spans`` must already be in start order; children keep that order.
    """
    by_external_id = {span.external_id: span for span in spans}
    children: dict[str, list[Span]] = defaultdict(list)
    roots: list[tuple[Span, bool]] = []
    for span in spans:
        parent = span.parent_external_id
        if parent and parent in by_external_id and parent != span.external_id:
            children[parent].append(span)
        else:
            roots.append((span, bool(parent)))

    ordered: list[SpanNode] = []
    visited: set[str] = set()

    def walk(root: Span, *, is_orphan: bool) -> None:
        stack: list[tuple[Span, int, bool]] = [(root, 0, is_orphan)]
        while stack:
            span, depth, orphan = stack.pop()
            if span.external_id in visited:
                continue
            visited.add(span.external_id)
            kids = children.get(span.external_id, [])
            ordered.append(
                SpanNode(
                    span=span,
                    parent_span_id=None if depth == 0 else span.parent_external_id,
                    depth=depth,
                    is_orphan=orphan,
                    offset_ms=_milliseconds(zero, span.start_time),
                    duration_ms=_milliseconds(span.start_time, span.end_time),
                    children=[kid.external_id for kid in kids],
                )
            )
            stack.extend((kid, depth + 1, False) for kid in reversed(kids))

    for root, is_orphan in roots:
        walk(root, is_orphan=is_orphan)
    # Whatever is left hangs in a parent cycle: break it at its earliest span.
    for span in spans:
        if span.external_id not in visited:
            walk(span, is_orphan=True)
    return ordered


def _earliest(first: datetime | None, others: Iterable[datetime | None]) -> datetime | None:
    known = [t for t in (first, *others) if t is not None]
    return min(known) if known else None


def _milliseconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 3)


# --- one span ------------------------------------------------------------------------------
@dataclass
class SpanDetail:
    span: Span
    parent_span_id: str | None
    is_orphan: bool
    children: list[str]
    offset_ms: float | None
    duration_ms: float | None
    scores: list[Score]
    feedback: list[Feedback]


def span_detail(*, trace: Trace, span_external_id: str) -> SpanDetail:
    span = Span.objects.filter(trace_id=trace.pk, external_id=span_external_id).first()
    if span is None:
        raise NotFound("Span not found.")
    span.trace = trace
    parent = span.parent_external_id or None
    parent_exists = (
        parent is not None and Span.objects.filter(trace_id=trace.pk, external_id=parent).exists()
    )
    children = list(
        Span.objects.filter(trace_id=trace.pk, parent_external_id=span.external_id)
        .order_by(F("start_time").asc(nulls_last=True), "id")
        .values_list("external_id", flat=True)
    )
    zero = _earliest(
        trace.start_time,
        [Span.objects.filter(trace_id=trace.pk).aggregate(first=Min("start_time"))["first"]],
    )
    return SpanDetail(
        span=span,
        parent_span_id=parent if parent_exists else None,
        is_orphan=parent is not None and not parent_exists,
        children=children,
        offset_ms=_milliseconds(zero, span.start_time),
        duration_ms=_milliseconds(span.start_time, span.end_time),
        scores=list(Score.objects.filter(span_id=span.pk).order_by("created_at", "id")),
        feedback=list(Feedback.objects.filter(span_id=span.pk).order_by("created_at", "id")),
    )


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
