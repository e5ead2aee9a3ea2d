"""A long agent trace for the review page: 300 spans under one agent span (steps of ten
spans: a chain step, then model calls, tool calls and searches), three failing tool
calls, every span's body marked with its id, and a 233 KB answer as the trace's output.
Used by the page tests, the browser test and ``bench/review_pages.py``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from hitl import tenancy
from traces.models import Span, Trace
from traces.partitions import span_partition_ensure

ERROR_SPANS = (57, 143, 262)
SEARCHED_SPAN = 233  # the one span named "allergy check"
OUTPUT_BYTES = 233 * 1024
PARAGRAPH = (
    "The patient has compensated cirrhosis; acetaminophen stays the analgesic of choice "
    "at a reduced dose, at most 2 g per day, with no alcohol and a review of interacting "
    "drugs. "
)


def body_marker(number: int) -> str:
    return f"body-of-span-{number:03d}"


def _span_fields(number: int, start: datetime) -> dict[str, Any]:
    step = (number - 1) // 10
    if number == 0:
        kind, name, parent = "agent", "answer the clinical question", ""
    elif (number - 1) % 10 == 0:
        kind, name, parent = "chain", f"step {step}", "s000"
    else:
        kind = ("llm", "tool", "retrieval")[number % 3]
        name = {
            "llm": "compose answer",
            "tool": "dose_calculator",
            "retrieval": "formulary search",
        }[kind]
        name = f"{name} {number}"
        parent = f"s{step * 10 + 1:03d}"
        if number in ERROR_SPANS:
            kind, name = "tool", f"dose_calculator {number}"
        if number == SEARCHED_SPAN:
            kind, name = "tool", "allergy check"
    fields: dict[str, Any] = {
        "external_id": f"s{number:03d}",
        "parent_external_id": parent,
        "kind": kind,
        "name": name,
        "start_time": start + timedelta(milliseconds=20 * number),
        "end_time": start + timedelta(milliseconds=20 * number + (6000 if number == 0 else 15)),
        "input": {"question": f"{body_marker(number)} input. " + PARAGRAPH * 4},
        "output": {"answer": f"{body_marker(number)} output. " + PARAGRAPH * 4},
    }
    if kind == "llm":
        fields["model"] = "gpt-4o"
    if number in ERROR_SPANS:
        fields["status"] = "error"
        fields["error_message"] = f"timed out after 400 ms (span {number})"
    return fields


def add_long_trace(
    *, organization_id: int, project: Any, spans: int = 300, external_id: str = "long-trace"
) -> Trace:
    """The trace, its ``spans`` spans (bulk inserted) and its 233 KB output, in the
    organization's scope."""
    start = timezone.now() - timedelta(minutes=5)
    answer = (PARAGRAPH * (OUTPUT_BYTES // len(PARAGRAPH) + 1))[:OUTPUT_BYTES]
    with tenancy.tenant_scope(organization_id):
        trace = Trace.objects.create(
            project=project,
            external_id=external_id,
            name="long agent run",
            input={"question": "Max acetaminophen dose in cirrhosis, with every check?"},
            output=answer,
            start_time=start,
            end_time=start + timedelta(seconds=6),
            latency_ms=6000,
        )
        span_partition_ensure(trace.created_at)
        Span.objects.bulk_create(
            Span(
                organization_id=organization_id,
                project_id=project.pk,
                trace=trace,
                created_at=trace.created_at,
                **_span_fields(number, start),
            )
            for number in range(spans)
        )
    return trace
