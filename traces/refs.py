"""Traces, spans and threads named the way an API client names them: by the ids it sent
at ingestion (``traces/<id>/``, ``traces/<trace id>/spans/<id>/``, ``threads/<id>/``).
A span's id is unique within its trace only, so a span is named by both ids.

Endpoints that take or answer a trace, span or thread go through here; internal row ids
never reach a client. External ids may be numeric strings, so a number is never read as
a row id.
"""

from __future__ import annotations

from dataclasses import dataclass

from hitl.exceptions import DomainError
from projects.models import Project
from traces.models import Span, Thread, Trace


@dataclass(frozen=True)
class RowIds:
    """The internal row ids behind a client's external ids (None: not named)."""

    trace_id: int | None = None
    span_id: int | None = None
    thread_id: int | None = None


def _missing(field: str, what: str, external_id: str) -> DomainError:
    return DomainError(
        f"No {what} {external_id!r} in this project.", details={field: ["not found"]}
    )


def row_ids(
    project: Project,
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    thread_id: str | None = None,
) -> RowIds:
    """Resolves external ids within ``project`` (another project's id is unknown).
    ``span_id`` needs ``trace_id`` (the span's trace)."""
    trace_pk = span_pk = thread_pk = None
    if span_id is not None and trace_id is None:
        raise DomainError(
            "A span is named by trace_id and span_id (span ids are unique within a trace).",
            details={"trace_id": ["required with span_id"]},
        )
    if trace_id is not None:
        trace = (
            Trace.objects.filter(project=project, external_id=trace_id)
            .values("pk", "created_at")
            .first()
        )
        if trace is None:
            raise _missing("trace_id", "trace", trace_id)
        trace_pk = trace["pk"]
        if span_id is not None:
            # created_at is the trace's: the span's partition (docs/ARCHITECTURE.md).
            span_pk = (
                Span.objects.filter(
                    project=project,
                    trace_id=trace_pk,
                    created_at=trace["created_at"],
                    external_id=span_id,
                )
                .values_list("pk", flat=True)
                .first()
            )
            if span_pk is None:
                raise _missing("span_id", "span", span_id)
    if thread_id is not None:
        thread_pk = (
            Thread.objects.filter(project=project, external_id=thread_id)
            .values_list("pk", flat=True)
            .first()
        )
        if thread_pk is None:
            raise _missing("thread_id", "thread", thread_id)
    return RowIds(trace_id=trace_pk, span_id=span_pk, thread_id=thread_pk)


def target_row_ids(
    project: Project,
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    thread_id: str | None = None,
) -> dict[str, int]:
    """The row ids a review target takes, only those named: a span alone (its trace
    follows from it), else the trace; and the thread."""
    ids = row_ids(project, trace_id=trace_id, span_id=span_id, thread_id=thread_id)
    named: dict[str, int] = {}
    if ids.span_id is not None:
        named["span_id"] = ids.span_id
    elif ids.trace_id is not None:
        named["trace_id"] = ids.trace_id
    if ids.thread_id is not None:
        named["thread_id"] = ids.thread_id
    return named
