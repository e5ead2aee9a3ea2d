"""Normalised ingestion records: what both decoders (REST events, OTLP spans) produce
and the one store (``traces.ingest.store``) writes.

JSON payloads are already serialised (``*_json`` are jsonb text), so the store never
touches their content. ``None`` means "not sent": a trace update keeps the stored value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(slots=True)
class Rejection:
    """One event that was not stored, and why."""

    index: int
    id: str | None
    type: str
    code: str
    reason: str

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "id": self.id,
            "type": self.type,
            "code": self.code,
            "reason": self.reason,
        }


@dataclass(slots=True)
class TraceRecord:
    index: int
    external_id: str
    # A hint rather than the trace itself (from a span, score or OTLP child span): it
    # creates a placeholder when the trace is missing and only fills empty fields.
    is_hint: bool = False
    name: str | None = None
    thread_external_id: str | None = None
    input_json: str | None = None
    output_json: str | None = None
    metadata_json: str | None = None
    tags: list[str] | None = None
    user_id: str | None = None
    environment: str | None = None
    release: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    status: str | None = None
    error_message: str | None = None


@dataclass(slots=True)
class SpanRecord:
    index: int
    trace_external_id: str
    external_id: str
    parent_external_id: str = ""
    kind: str = "other"
    name: str = ""
    model: str = ""
    provider: str = ""
    input_json: str | None = None
    output_json: str | None = None
    attributes_json: str = "{}"
    start_time: datetime | None = None
    end_time: datetime | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    cost: Decimal | None = None
    status: str = "unset"
    error_message: str = ""


@dataclass(slots=True)
class Target:
    """What a score or feedback is about: a trace, a span of a trace, or a thread."""

    trace_external_id: str | None = None
    span_external_id: str | None = None
    thread_external_id: str | None = None


@dataclass(slots=True)
class ScoreRecord:
    index: int
    target: Target
    name: str
    data_type: str
    source: str
    external_id: str | None = None
    value: float | None = None
    label: str = ""
    rationale: str = ""
    source_name: str = ""
    source_version: str = ""
    metadata: dict = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(slots=True)
class FeedbackRecord:
    index: int
    target: Target
    kind: str
    external_id: str | None = None
    value: float | None = None
    comment: str = ""
    end_user_id: str = ""
    metadata: dict = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(slots=True)
class Batch:
    """Everything one request asks to store, plus what was already rejected."""

    traces: list[TraceRecord] = field(default_factory=list)
    spans: list[SpanRecord] = field(default_factory=list)
    scores: list[ScoreRecord] = field(default_factory=list)
    feedback: list[FeedbackRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    received: int = 0

    def reject(self, index: int, id: str | None, type: str, code: str, reason: str) -> None:
        self.rejections.append(Rejection(index, id, type, code, reason))


@dataclass(slots=True)
class IngestResult:
    received: int
    stored: dict[str, int]
    rejections: list[Rejection]
    # Internal ids of every trace the batch created or changed (for routing rules).
    trace_ids: list[int] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.received - len(self.rejections)
