"""Rows for the trace read tests, written directly (the read side needs no ingestion)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hitl.tenancy import tenant_scope
from projects.models import Project
from traces.models import Feedback, Score, Span, Thread, Trace

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def at(seconds: float = 0, *, days: int = 0) -> datetime:
    return T0 + timedelta(days=days, seconds=seconds)


def make_thread(project: Project, external_id: str, **fields: Any) -> Thread:
    with tenant_scope(project.organization_id):
        return Thread.objects.create(project=project, external_id=external_id, **fields)


def make_trace(project: Project, external_id: str, **fields: Any) -> Trace:
    if "cost" in fields and fields["cost"] is not None:
        fields["cost"] = Decimal(str(fields["cost"]))
    with tenant_scope(project.organization_id):
        return Trace.objects.create(project=project, external_id=external_id, **fields)


def make_span(trace: Trace, external_id: str, *, parent: str = "", **fields: Any) -> Span:
    with tenant_scope(trace.organization_id):
        return Span.objects.create(
            project_id=trace.project_id,
            trace=trace,
            external_id=external_id,
            parent_external_id=parent,
            **fields,
        )


def make_score(
    trace: Trace, name: str, value: float | None = None, *, source: str = "llm_judge", **fields
) -> Score:
    fields.setdefault("data_type", "numeric" if value is not None else "categorical")
    with tenant_scope(trace.organization_id):
        return Score.objects.create(
            project_id=trace.project_id,
            trace=trace,
            name=name,
            value=value,
            source=source,
            **fields,
        )


def make_feedback(trace: Trace, kind: str, value: float | None = None, **fields) -> Feedback:
    with tenant_scope(trace.organization_id):
        return Feedback.objects.create(
            project_id=trace.project_id, trace=trace, kind=kind, value=value, **fields
        )
