"""REST batch events -> normalised records, one verdict per event.

A bad event is rejected with its index, id and reason; the others go on. Unknown
fields are rejected too, so a typo never passes silently.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from django.utils import timezone

from hitl import text
from traces.ingest import limits
from traces.ingest.jsonsafe import JsonRejected, clean_text, dump_json
from traces.ingest.records import (
    Batch,
    FeedbackRecord,
    ScoreRecord,
    SpanRecord,
    Target,
    TraceRecord,
)
from traces.models import (
    AUTOMATED_SCORE_SOURCES,
    FeedbackKind,
    ScoreDataType,
    ScoreSource,
    SpanKind,
    Status,
)
from traces.score_kinds import ScoreRefused, infer_data_type, score_kind

# Printable ASCII without spaces, quotes or slashes' lookalikes: UUIDs, hex, ULIDs,
# "run-42:step.3" all pass; whitespace, control characters and NUL do not.
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=#~-]*")
EVENT_TYPES = ("trace", "span", "score", "feedback")
SPAN_KINDS = frozenset(SpanKind.values)
STATUSES = frozenset(Status.values)
DATA_TYPES = frozenset(ScoreDataType.values)
FEEDBACK_KINDS = frozenset(FeedbackKind.values)


class EventInvalid(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def valid_id(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise EventInvalid("invalid_id", f"{what} must be a string")
    if not 1 <= len(value) <= limits.MAX_ID_LENGTH:
        raise EventInvalid(
            "invalid_id", f"{what} must be 1 to {limits.MAX_ID_LENGTH} characters long"
        )
    if not _ID_PATTERN.fullmatch(value):
        raise EventInvalid(
            "invalid_id",
            f"{what} may only contain letters, digits and . _ : @ / + = # ~ - "
            "(and must start with a letter or digit)",
        )
    return value


def valid_time(value: Any, what: str) -> datetime:
    """ISO 8601 (naive means UTC) or Unix seconds, within [1970, now + 1 day]."""
    if isinstance(value, bool):
        raise EventInvalid("invalid_timestamp", f"{what} must be an ISO 8601 string or a number")
    if isinstance(value, int | float):
        if not math.isfinite(value) or not 0 <= value < 1e11:
            raise EventInvalid("timestamp_out_of_range", f"{what} is out of range")
        moment = datetime.fromtimestamp(value, tz=UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise EventInvalid(
                "invalid_timestamp", f"{what} is not an ISO 8601 timestamp"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    else:
        raise EventInvalid("invalid_timestamp", f"{what} must be an ISO 8601 string or a number")
    if moment < limits.EARLIEST_TIME or moment > timezone.now() + limits.FUTURE_TOLERANCE:
        raise EventInvalid(
            "timestamp_out_of_range",
            f"{what} must lie between 1970-01-01 and one day from now",
        )
    return moment


class _Body:
    """Typed access to one event body, collecting which fields were read."""

    __slots__ = ("data", "type")

    def __init__(self, data: Any, type_: str, allowed: frozenset[str]) -> None:
        if not isinstance(data, dict):
            raise EventInvalid("invalid_body", f"a {type_} body must be an object")
        unknown = data.keys() - allowed
        if unknown:
            raise EventInvalid(
                "unknown_field", f"unknown field(s): {', '.join(sorted(map(str, unknown)))}"
            )
        self.data = data
        self.type = type_

    def id(self, key: str, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise EventInvalid("missing_field", f"{key} is required")
            return None
        return valid_id(value, key)

    def text(self, key: str, max_length: int, *, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise EventInvalid("missing_field", f"{key} is required")
            return None
        if not isinstance(value, str):
            raise EventInvalid("invalid_type", f"{key} must be a string")
        value = clean_text(value)
        if len(value) > max_length:
            raise EventInvalid("too_long", f"{key} is longer than {max_length} characters")
        if required and not value:
            raise EventInvalid("missing_field", f"{key} must not be empty")
        return value

    def choice(self, key: str, choices: frozenset[str], default: str | None = None) -> str | None:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or value not in choices:
            raise EventInvalid(
                "invalid_choice", f"{key} must be one of: {', '.join(sorted(choices))}"
            )
        return value

    def time(self, key: str) -> datetime | None:
        value = self.data.get(key)
        return None if value is None else valid_time(value, key)

    def count(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise EventInvalid("invalid_type", f"{key} must be an integer")
        if not 0 <= value <= limits.MAX_TOKENS:
            raise EventInvalid("out_of_range", f"{key} must be between 0 and {limits.MAX_TOKENS}")
        return value

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EventInvalid("invalid_type", f"{key} must be a number")
        value = float(value)
        if not math.isfinite(value):
            raise EventInvalid("invalid_type", f"{key} must be a finite number")
        return value

    def cost(self, key: str) -> Decimal | None:
        value = self.number(key)
        if value is None:
            return None
        if not 0 <= value < limits.MAX_COST:
            raise EventInvalid("out_of_range", f"{key} must be between 0 and {limits.MAX_COST}")
        try:
            return Decimal(repr(value)).quantize(Decimal("0.00000001"))
        except InvalidOperation:  # pragma: no cover - finite floats always convert
            raise EventInvalid("invalid_type", f"{key} must be a number") from None

    def json(self, key: str, max_bytes: int) -> str | None:
        if key not in self.data or self.data[key] is None:
            return None
        try:
            return dump_json(self.data[key], max_bytes=max_bytes, what=key)
        except JsonRejected as exc:
            raise EventInvalid(exc.code, exc.message) from None

    def mapping(self, key: str, max_bytes: int) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, dict):
            raise EventInvalid("invalid_type", f"{key} must be an object")
        return self.json(key, max_bytes)

    def tags(self, key: str) -> list[str] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
            raise EventInvalid("invalid_type", f"{key} must be a list of strings")
        if len(value) > limits.MAX_TAGS:
            raise EventInvalid("too_many", f"{key} may hold at most {limits.MAX_TAGS} tags")
        cleaned = [clean_text(tag) for tag in value]
        if any(not tag or len(tag) > limits.MAX_TAG_LENGTH for tag in cleaned):
            raise EventInvalid(
                "invalid_tag", f"each tag must be 1 to {limits.MAX_TAG_LENGTH} characters"
            )
        return list(dict.fromkeys(cleaned))


def _check_order(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end < start:
        raise EventInvalid("invalid_timestamp", "end_time is before start_time")


TRACE_FIELDS = frozenset(
    {"id", "name", "thread_id", "session_id", "input", "output", "metadata", "tags",
     "user_id", "environment", "release", "start_time", "end_time", "status", "error"}
)  # fmt: skip


def parse_trace(index: int, data: Any) -> TraceRecord:
    body = _Body(data, "trace", TRACE_FIELDS)
    if data.get("thread_id") is not None and data.get("session_id") is not None:
        raise EventInvalid("invalid_body", "send thread_id or session_id, not both")
    record = TraceRecord(
        index=index,
        external_id=body.id("id", required=True),
        name=body.text("name", limits.MAX_NAME_LENGTH),
        thread_external_id=body.id("thread_id") or body.id("session_id"),
        input_json=body.json("input", limits.MAX_PAYLOAD_BYTES),
        output_json=body.json("output", limits.MAX_PAYLOAD_BYTES),
        metadata_json=body.mapping("metadata", limits.MAX_METADATA_BYTES),
        tags=body.tags("tags"),
        user_id=body.text("user_id", limits.MAX_USER_ID_LENGTH),
        environment=body.text("environment", limits.MAX_ENVIRONMENT_LENGTH),
        release=body.text("release", limits.MAX_RELEASE_LENGTH),
        start_time=body.time("start_time"),
        end_time=body.time("end_time"),
        status=body.choice("status", STATUSES),
        error_message=body.text("error", limits.MAX_ERROR_MESSAGE_LENGTH),
    )
    _check_order(record.start_time, record.end_time)
    if record.error_message and record.status is None:
        record.status = Status.ERROR
    return record


SPAN_FIELDS = frozenset(
    {"id", "trace_id", "parent_id", "kind", "name", "model", "provider", "input", "output",
     "attributes", "start_time", "end_time", "input_tokens", "output_tokens",
     "cached_tokens", "reasoning_tokens", "total_tokens", "cost", "status", "error"}
)  # fmt: skip


def parse_span(index: int, data: Any) -> SpanRecord:
    body = _Body(data, "span", SPAN_FIELDS)
    external_id = body.id("id", required=True)
    parent = body.id("parent_id") or ""
    if parent == external_id:
        raise EventInvalid("parent_cycle", "a span cannot be its own parent")
    input_tokens = body.count("input_tokens") or 0
    output_tokens = body.count("output_tokens") or 0
    total = body.count("total_tokens")
    record = SpanRecord(
        index=index,
        trace_external_id=body.id("trace_id", required=True),
        external_id=external_id,
        parent_external_id=parent,
        kind=body.choice("kind", SPAN_KINDS, SpanKind.OTHER),
        name=body.text("name", limits.MAX_NAME_LENGTH) or "",
        model=body.text("model", limits.MAX_MODEL_LENGTH) or "",
        provider=body.text("provider", limits.MAX_PROVIDER_LENGTH) or "",
        input_json=body.json("input", limits.MAX_PAYLOAD_BYTES),
        output_json=body.json("output", limits.MAX_PAYLOAD_BYTES),
        attributes_json=body.mapping("attributes", limits.MAX_ATTRIBUTES_BYTES) or "{}",
        start_time=body.time("start_time"),
        end_time=body.time("end_time"),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=body.count("cached_tokens") or 0,
        reasoning_tokens=body.count("reasoning_tokens") or 0,
        total_tokens=total if total is not None else input_tokens + output_tokens,
        cost=body.cost("cost"),
        status=body.choice("status", STATUSES, Status.UNSET),
        error_message=body.text("error", limits.MAX_ERROR_MESSAGE_LENGTH) or "",
    )
    _check_order(record.start_time, record.end_time)
    if record.error_message and "status" not in data:
        record.status = Status.ERROR
    return record


def _target(body: _Body) -> Target:
    target = Target(
        trace_external_id=body.id("trace_id"),
        span_external_id=body.id("span_id"),
        thread_external_id=body.id("thread_id"),
    )
    if target.span_external_id and not target.trace_external_id:
        raise EventInvalid("invalid_target", "span_id needs the trace_id of its trace")
    if target.thread_external_id and target.trace_external_id:
        raise EventInvalid("invalid_target", "target a trace (or span) or a thread, not both")
    if not target.thread_external_id and not target.trace_external_id:
        raise EventInvalid(
            "invalid_target", "trace_id (with optional span_id) or thread_id is required"
        )
    return target


def _metadata(body: _Body) -> dict:
    value = body.data.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventInvalid("invalid_type", "metadata must be an object")
    # Validates depth, size and NUL; the ORM stores the cleaned dict.
    return orjson.loads(body.mapping("metadata", limits.MAX_METADATA_BYTES))


SCORE_FIELDS = frozenset(
    {"id", "trace_id", "span_id", "thread_id", "name", "value", "label", "data_type",
     "rationale", "source", "source_name", "source_version", "metadata", "timestamp"}
)  # fmt: skip


def parse_score(index: int, data: Any) -> ScoreRecord:
    body = _Body(data, "score", SCORE_FIELDS)
    raw_value = data.get("value")
    label = body.text("label", limits.MAX_LABEL_LENGTH) or ""
    data_type = body.choice("data_type", DATA_TYPES)
    if data_type is None:
        data_type = infer_data_type(raw_value, label)
        if data_type is None:
            raise EventInvalid("missing_field", "a score needs a value or a label")
    kind = score_kind(data_type)
    number = body.number("value") if kind.ingests_number else None
    try:
        value = kind.ingested_value(raw_value, number, label)
    except ScoreRefused as refused:
        raise EventInvalid(refused.code, str(refused)) from None
    label = kind.ingested_label(value, label)
    source = body.choice("source", frozenset(ScoreSource.values))
    if source is None:
        raise EventInvalid("missing_field", "source is required (llm_judge or code)")
    if source not in AUTOMATED_SCORE_SOURCES:
        raise EventInvalid(
            "invalid_choice", "ingested scores are automated: source must be llm_judge or code"
        )
    return ScoreRecord(
        index=index,
        target=_target(body),
        name=body.text("name", limits.MAX_NAME_LENGTH // 2, required=True),
        data_type=data_type,
        source=source,
        external_id=body.id("id"),
        value=value,
        label=label,
        rationale=body.text("rationale", limits.MAX_TEXT_LENGTH) or "",
        source_name=body.text("source_name", limits.MAX_NAME_LENGTH // 2) or "",
        source_version=body.text("source_version", limits.MAX_SOURCE_VERSION_LENGTH) or "",
        metadata=_metadata(body),
        created_at=body.time("timestamp"),
    )


FEEDBACK_FIELDS = frozenset(
    {"id", "trace_id", "span_id", "thread_id", "kind", "value", "comment", "end_user_id",
     "metadata", "timestamp"}
)  # fmt: skip
_THUMBS = {True: 1.0, False: -1.0, -1: -1.0, "up": 1.0, "down": -1.0}  # 1 == True


def parse_feedback(index: int, data: Any) -> FeedbackRecord:
    body = _Body(data, "feedback", FEEDBACK_FIELDS)
    kind = body.choice("kind", FEEDBACK_KINDS)
    if kind is None:
        raise EventInvalid("missing_field", "kind is required (thumbs, rating or comment)")
    raw_value = data.get("value")
    comment = body.text("comment", limits.MAX_TEXT_LENGTH) or ""
    if kind == FeedbackKind.THUMBS:
        if not isinstance(raw_value, bool | int | str) or raw_value not in _THUMBS:
            raise EventInvalid(
                "invalid_value", "thumbs feedback needs value up/down, true/false or 1/-1"
            )
        value: float | None = _THUMBS[raw_value]
    elif kind == FeedbackKind.RATING:
        value = body.number("value")
        if value is None:
            raise EventInvalid("missing_field", "rating feedback needs a numeric value")
    else:
        value = body.number("value")
        if not comment:
            raise EventInvalid("missing_field", "comment feedback needs a comment")
    return FeedbackRecord(
        index=index,
        target=_target(body),
        kind=kind,
        external_id=body.id("id"),
        value=value,
        comment=comment,
        end_user_id=body.text("end_user_id", limits.MAX_USER_ID_LENGTH) or "",
        metadata=_metadata(body),
        created_at=body.time("timestamp"),
    )


_PARSERS: dict[str, tuple[Callable[[int, Any], Any], str]] = {
    "trace": (parse_trace, "traces"),
    "span": (parse_span, "spans"),
    "score": (parse_score, "scores"),
    "feedback": (parse_feedback, "feedback"),
}


def _event_id(event: dict) -> str | None:
    for candidate in (event.get("id"), (event.get("body") or {}).get("id")
                      if isinstance(event.get("body"), dict) else None):  # fmt: skip
        if isinstance(candidate, str):
            return candidate[: limits.MAX_ID_LENGTH]
    return None


class LenientDocument(dict):
    """A request body that orjson refused but the standard library read: it holds a
    number past a double (``1e400``, a 400-digit integer) or a lone surrogate escape
    somewhere, so each event is checked for them (``hitl.text``) and refused alone."""


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def lenient_loads(body: bytes) -> Any:
    """The body read by the standard library (NaN and Infinity still refused), as a
    ``LenientDocument`` when it is an object; None when it is not JSON at all."""
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None
    return LenientDocument(document) if isinstance(document, dict) else document


def check_document(data: Any) -> None:
    """For a single-event endpoint: raises ``EventInvalid`` if a ``LenientDocument``
    holds a value that cannot be stored."""
    if isinstance(data, LenientDocument):
        _check_values(data)


def _check_values(event: Any) -> None:
    # NUL is stripped from ingested text by contract (jsonsafe); the rest is refused.
    found = text.find_unstorable(event, nul=False)
    if found is not None:
        where, problem = found
        raise EventInvalid("invalid_value", f"{where}: {problem}")


def parse_events(events: list[Any], *, check_values: bool = False) -> Batch:
    """Validates every event; the batch holds the good records and the rejections.
    ``check_values``: the body was a ``LenientDocument``, so look for values that
    cannot be stored in each event first."""
    batch = Batch(received=len(events))
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            batch.reject(index, None, "", "invalid_event", "an event must be an object")
            continue
        if check_values:
            try:
                _check_values(event)
            except EventInvalid as exc:
                # The id and type are echoed back only if they themselves can be.
                event_id, event_type = _event_id(event), str(event.get("type") or "")[:32]
                batch.reject(
                    index, None if event_id is None or text.unstorable(event_id) else event_id,
                    "" if text.unstorable(event_type) else event_type, exc.code, exc.message,
                )  # fmt: skip
                continue
        event_type = event.get("type")
        event_id = _event_id(event)
        unknown = event.keys() - {"type", "id", "body"}
        if unknown:
            batch.reject(
                index, event_id, str(event_type or ""), "unknown_field",
                f"unknown event field(s): {', '.join(sorted(map(str, unknown)))}",
            )  # fmt: skip
            continue
        if not isinstance(event_type, str) or event_type not in _PARSERS:
            batch.reject(
                index, event_id, str(event_type or "")[:32], "unknown_type",
                f"type must be one of: {', '.join(EVENT_TYPES)}",
            )  # fmt: skip
            continue
        parser, bucket = _PARSERS[event_type]
        try:
            record = parser(index, event.get("body"))
        except EventInvalid as exc:
            batch.reject(index, event_id, event_type, exc.code, exc.message)
            continue
        getattr(batch, bucket).append(record)
    return batch
