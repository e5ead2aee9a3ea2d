"""OpenTelemetry spans -> ingestion records.

Maps the OpenTelemetry GenAI conventions (current ``gen_ai.input.messages`` /
``gen_ai.output.messages`` / ``gen_ai.system_instructions`` and the older indexed
``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` attributes and
``gen_ai.content.prompt`` / ``gen_ai.content.completion`` events) and the OpenInference
conventions (``openinference.span.kind``, ``input.value``, ``llm.*``,
``retrieval.documents.N.document.*``, ``tool.*``) onto span fields. Every original
attribute is kept in ``attributes``; OTLP-level extras (events, links, span kind,
scope) are kept under ``otel.*`` keys.

A span's messages, whatever convention sent them (GenAI attributes with parts, GenAI
span events with their body in ``gen_ai.event.content``, OpenInference flattened
messages and tool calls, the older indexed attributes), are stored as one canonical
message list (``traces.messages``). A GenAI attribute that is already canonical is
stored once, as sent; one that was converted stays in ``attributes`` as sent.

The root span (no parent) names its trace and gives its input, output, timing and
status; resource attributes (``service.name`` ...) become trace metadata.
``session.id`` / ``gen_ai.conversation.id`` on any span put the trace in a thread.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from traces.ingest import limits
from traces.ingest.jsonsafe import JsonRejected, check_depth, clean_text, dump_json
from traces.ingest.moved import MOVED_KEY
from traces.ingest.records import Batch, SpanRecord, TraceRecord
from traces.ingest.validation import EventInvalid, valid_id
from traces.messages import json_or_text, to_messages

_OPENINFERENCE_KINDS = {
    "LLM": "llm", "CHAIN": "chain", "TOOL": "tool", "RETRIEVER": "retrieval",
    "RERANKER": "retrieval", "EMBEDDING": "embedding", "AGENT": "agent",
    "GUARDRAIL": "guardrail", "EVALUATOR": "other", "PROMPT": "other", "UNKNOWN": "other",
}  # fmt: skip
_GENAI_OPERATIONS = {
    "chat": "llm", "text_completion": "llm", "generate_content": "llm",
    "embeddings": "embedding", "execute_tool": "tool", "invoke_agent": "agent",
    "create_agent": "agent", "invoke_workflow": "chain", "retrieval": "retrieval",
}  # fmt: skip
_SPAN_KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer",
                    5: "consumer"}  # fmt: skip
_INDEXED = re.compile(r"(\d+)(?:\.(.+))?$")


class SpanRejected(ValueError):
    pass


# --- values ---------------------------------------------------------------------------
def any_value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def attributes_dict(attributes: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in attributes}


def _nanos(value: int, what: str) -> datetime | None:
    if not value:
        return None
    seconds, nanos = divmod(value, 1_000_000_000)
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=nanos // 1000)
    except (OverflowError, OSError, ValueError):
        moment = None
    if (
        moment is None
        or moment < limits.EARLIEST_TIME
        or moment > timezone.now() + limits.FUTURE_TOLERANCE
    ):
        raise SpanRejected(f"{what} is out of range (1970 to one day from now)")
    return moment


def _unflatten(attrs: dict[str, Any], prefix: str) -> list[Any] | None:
    """``prefix.0.message.role = x`` ... -> ``[{"message": {"role": x}}, ...]``."""
    items: dict[int, Any] = {}
    start = len(prefix)
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        match = _INDEXED.match(key, start)
        if match is None:
            continue
        index, rest = int(match.group(1)), match.group(2)
        if rest is None:
            items[index] = value
            continue
        node = items.setdefault(index, {})
        if not isinstance(node, dict):
            continue
        parts = rest.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = value
    if not items:
        return None
    return [_lists(items[index]) for index in sorted(items)]


def _lists(node: Any) -> Any:
    """Dicts whose keys are all digits (from ``_unflatten``) become lists."""
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        return [_lists(node[key]) for key in sorted(node, key=int)]
    return {key: _lists(value) for key, value in node.items()}


def _first(attrs: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def _count(attrs: dict[str, Any], *keys: str) -> int | None:
    value = _first(attrs, *keys)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and 0 <= value <= limits.MAX_TOKENS:
        return int(value)
    if isinstance(value, str) and value.isdigit() and int(value) <= limits.MAX_TOKENS:
        return int(value)
    return None


def _cost(attrs: dict[str, Any]) -> Decimal | None:
    value = _first(attrs, "llm.cost.total", "gen_ai.usage.cost", "gen_ai.cost.usd")
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 <= value < limits.MAX_COST
    ):
        return Decimal(repr(float(value))).quantize(Decimal("0.00000001"))
    return None


def _text(value: Any, max_length: int) -> str:
    if value is None:
        return ""
    return clean_text(str(value))[:max_length]


# --- field mapping ---------------------------------------------------------------------
def span_kind(attrs: dict[str, Any]) -> str:
    openinference = attrs.get("openinference.span.kind")
    if isinstance(openinference, str) and openinference.upper() in _OPENINFERENCE_KINDS:
        return _OPENINFERENCE_KINDS[openinference.upper()]
    operation = attrs.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation in _GENAI_OPERATIONS:
        return _GENAI_OPERATIONS[operation]
    if _first(attrs, "gen_ai.tool.name", "tool.name") is not None:
        return "tool"
    if _first(attrs, "gen_ai.request.model", "llm.model_name") is not None:
        return "llm"
    return "other"


def _messages_of(items: list[Any] | None, wrapper: str) -> list[Any] | None:
    if items is None:
        return None
    return [item.get(wrapper, item) if isinstance(item, dict) else item for item in items]


def _event_payload(events: list[dict[str, Any]], name: str, attribute: str) -> Any:
    for event in events:
        if event["name"] == name:
            return json_or_text(event["attributes"].get(attribute))
    return None


_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


_EVENT_BODY_KEYS = ("gen_ai.event.content", "event.body", "body")


def _event_messages(events: list[dict[str, Any]], output: bool) -> list[Any] | None:
    """Messages sent as span events (GenAI conventions v1.28 to v1.36):
    ``gen_ai.{system,user,assistant,tool}.message`` in, ``gen_ai.choice`` out."""
    messages = []
    for event in events:
        role = "assistant" if event["name"] == "gen_ai.choice" else None
        if output != (role is not None):
            continue
        role = role or _MESSAGE_EVENTS.get(event["name"])
        if role is None:
            continue
        attributes = event["attributes"]
        body = {
            key: json_or_text(value)
            for key, value in attributes.items()
            if not key.startswith("gen_ai.") and key not in _EVENT_BODY_KEYS
        }
        for key in _EVENT_BODY_KEYS:  # the event's body, as an SDK records it on a span
            sent = json_or_text(attributes.get(key))
            if isinstance(sent, dict):
                body.update(sent)
            elif isinstance(sent, str) and sent:
                body.setdefault("content", sent)
        messages.append({"role": role, **body})
    return messages or None


def span_input(attrs: dict[str, Any], events: list[dict[str, Any]]) -> Any:
    return span_input_source(attrs, events)[0]


def span_output(attrs: dict[str, Any], events: list[dict[str, Any]]) -> Any:
    return span_output_source(attrs, events)[0]


def _from(attrs: dict[str, Any], key: str) -> tuple[Any, str | None]:
    value = attrs.get(key)
    # Only a string attribute can be stored once (as the payload column's text).
    return json_or_text(value), (key if isinstance(value, str) else None)


def _canonical(value: Any, sent: str | None) -> tuple[Any, str | None]:
    """A message convention's value as canonical messages (``traces.messages``). A value
    already canonical keeps its attribute (stored once, as sent); a converted one is the
    canonical list, and the attribute stays in ``attributes`` as sent."""
    messages = to_messages(value)
    if messages is None or messages is value:
        return value, sent
    return messages, None


def span_input_source(
    attrs: dict[str, Any], events: list[dict[str, Any]]
) -> tuple[Any, str | None]:
    """The span's input, and the attribute it is when one attribute alone gave it."""
    messages = json_or_text(attrs.get("gen_ai.input.messages"))
    instructions = json_or_text(attrs.get("gen_ai.system_instructions"))
    if instructions is None and messages is not None:
        return _canonical(*_from(attrs, "gen_ai.input.messages"))
    if messages is not None or instructions is not None:
        messages = list(messages) if isinstance(messages, list) else (
            [] if messages is None else [messages]
        )  # fmt: skip
        if instructions is not None:
            parts = instructions if isinstance(instructions, list) else [instructions]
            messages.insert(0, {"role": "system", "parts": parts})
        return _canonical(messages, None)
    for candidate in (
        _messages_of(_unflatten(attrs, "llm.input_messages."), "message"),
        _unflatten(attrs, "gen_ai.prompt."),
        _event_payload(events, "gen_ai.content.prompt", "gen_ai.prompt"),
        _event_messages(events, output=False),
    ):
        if candidate is not None:
            return _canonical(candidate, None)
    for key in ("gen_ai.tool.call.arguments", "input.value", "tool.parameters",
                "gen_ai.retrieval.query.text"):  # fmt: skip
        if attrs.get(key) is not None:
            if key == "gen_ai.retrieval.query.text":
                return attrs[key], (key if isinstance(attrs[key], str) else None)
            return _from(attrs, key)
    return None, None


def span_output_source(
    attrs: dict[str, Any], events: list[dict[str, Any]]
) -> tuple[Any, str | None]:
    """The span's output, and the attribute it is when one attribute alone gave it."""
    if attrs.get("gen_ai.output.messages") is not None:
        return _canonical(*_from(attrs, "gen_ai.output.messages"))
    for candidate in (
        _messages_of(_unflatten(attrs, "llm.output_messages."), "message"),
        _unflatten(attrs, "gen_ai.completion."),
        _event_payload(events, "gen_ai.content.completion", "gen_ai.completion"),
        _event_messages(events, output=True),
    ):
        if candidate is not None:
            return _canonical(candidate, None)
    documents = _messages_of(_unflatten(attrs, "retrieval.documents."), "document")
    if documents is not None:
        return documents, None
    for key in ("gen_ai.retrieval.documents", "gen_ai.tool.call.result", "output.value"):
        if attrs.get(key) is not None:
            return _from(attrs, key)
    return None, None


def _invocation_model(attrs: dict[str, Any]) -> Any:
    """OpenInference puts the requested model in ``llm.invocation_parameters`` (JSON);
    a failed call has no ``llm.model_name``, so the model comes from there."""
    parameters = json_or_text(attrs.get("llm.invocation_parameters"))
    if isinstance(parameters, dict):
        model = parameters.get("model", parameters.get("model_name"))
        if isinstance(model, str) and model:
            return model
    return None


def _hex_id(raw: bytes, length: int, what: str) -> str:
    if len(raw) != length or not any(raw):
        raise SpanRejected(f"{what} must be {length} bytes and not all zero")
    return raw.hex()


@dataclass
class _TraceFacts:
    """What the spans of one trace in this request say about the trace."""

    root: TraceRecord | None = None
    thread: str | None = None
    user_id: str | None = None
    first_index: int = 0
    hints: list[TraceRecord] = field(default_factory=list)


def _json_field(value: Any, max_bytes: int, what: str) -> str | None:
    if value is None:
        return None
    try:
        return dump_json(value, max_bytes=max_bytes, what=what)
    except JsonRejected as exc:
        raise SpanRejected(exc.message) from None


def _payload_json(value: Any, sent: str | None, what: str) -> tuple[str | None, bool]:
    """A payload as jsonb text, and whether it is the attribute ``sent`` stored once:
    a JSON document attribute is kept as its own text (checked, never re-encoded); any
    other string attribute as that JSON string."""
    if value is None:
        return None, False
    if sent is not None and "\x00" not in sent and "\\u0000" not in sent:
        if value is not sent:  # a JSON document, parsed from ``sent``
            try:
                check_depth(value)
            except JsonRejected as exc:
                raise SpanRejected(exc.message) from None
            if len(sent) * 4 > limits.MAX_PAYLOAD_BYTES and (
                len(sent.encode()) > limits.MAX_PAYLOAD_BYTES
            ):
                raise SpanRejected(f"{what} is over the limit of {limits.MAX_PAYLOAD_BYTES} bytes")
            return sent, True
        return _json_field(value, limits.MAX_PAYLOAD_BYTES, what), True
    return _json_field(value, limits.MAX_PAYLOAD_BYTES, what), False


def _span_record(
    index: int, span: trace_pb2.Span, scope: dict[str, Any]
) -> tuple[SpanRecord, dict[str, Any]]:
    trace_id = _hex_id(span.trace_id, 16, "traceId")
    span_id = _hex_id(span.span_id, 8, "spanId")
    parent = _hex_id(span.parent_span_id, 8, "parentSpanId") if span.parent_span_id else ""
    if parent == span_id:
        raise SpanRejected("a span cannot be its own parent")
    start = _nanos(span.start_time_unix_nano, "startTimeUnixNano")
    end = _nanos(span.end_time_unix_nano, "endTimeUnixNano")
    if start and end and end < start:
        raise SpanRejected("endTimeUnixNano is before startTimeUnixNano")
    attrs = attributes_dict(span.attributes)
    events = [
        {
            "name": event.name,
            "time": _nanos(event.time_unix_nano, "event time") if event.time_unix_nano else None,
            "attributes": attributes_dict(event.attributes),
        }
        for event in span.events
    ]
    input_value, input_key = span_input_source(attrs, events)
    output_value, output_key = span_output_source(attrs, events)
    input_json = _payload_json(input_value, attrs.get(input_key) if input_key else None, "input")
    output_json = _payload_json(
        output_value, attrs.get(output_key) if output_key else None, "output"
    )
    moved = {}
    if input_key and input_json[1]:
        moved[input_key] = "input"
    if output_key and output_json[1] and output_key != input_key:
        moved[output_key] = "output"
    if moved:
        stored_attrs = {key: value for key, value in attrs.items() if key not in moved}
        stored_attrs[MOVED_KEY] = moved
    else:
        stored_attrs = dict(attrs)
    stored_attrs["otel.span_kind"] = _SPAN_KIND_NAMES.get(span.kind, str(span.kind))
    if scope:
        stored_attrs["otel.scope"] = scope
    if events:
        stored_attrs["otel.events"] = [
            {**event, "time": event["time"].isoformat() if event["time"] else None}
            for event in events
        ]
    if span.links:
        stored_attrs["otel.links"] = [
            {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(),
             "attributes": attributes_dict(link.attributes)}
            for link in span.links
        ]  # fmt: skip
    status = {1: "ok", 2: "error"}.get(span.status.code, "unset")
    error_message = span.status.message if status == "error" else ""
    if status == "error" and not error_message:
        exception = _event_payload(events, "exception", "exception.message")
        error_message = str(exception) if exception is not None else ""
    input_tokens = (
        _count(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
               "llm.token_count.prompt") or 0
    )  # fmt: skip
    output_tokens = (
        _count(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
               "llm.token_count.completion") or 0
    )  # fmt: skip
    total = _count(attrs, "gen_ai.usage.total_tokens", "llm.token_count.total")
    record = SpanRecord(
        index=index,
        trace_external_id=trace_id,
        external_id=span_id,
        parent_external_id=parent,
        kind=span_kind(attrs),
        name=_text(span.name, limits.MAX_NAME_LENGTH),
        model=_text(
            _first(
                attrs,
                "gen_ai.response.model",
                "gen_ai.request.model",
                "llm.model_name",
                "embedding.model_name",
            )
            or _invocation_model(attrs),
            limits.MAX_MODEL_LENGTH,
        ),
        provider=_text(
            _first(attrs, "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"),
            limits.MAX_PROVIDER_LENGTH,
        ),
        input_json=input_json[0],
        output_json=output_json[0],
        attributes_json=_json_field(stored_attrs, limits.MAX_ATTRIBUTES_BYTES, "attributes")
        or "{}",
        start_time=start,
        end_time=end,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=_count(
            attrs,
            "gen_ai.usage.cache_read.input_tokens",
            "llm.token_count.prompt_details.cache_read",
            "gen_ai.usage.cache_read_input_tokens",
        )
        or 0,
        reasoning_tokens=_count(
            attrs,
            "gen_ai.usage.reasoning.output_tokens",
            "llm.token_count.completion_details.reasoning",
        )
        or 0,
        total_tokens=total if total is not None else input_tokens + output_tokens,
        cost=_cost(attrs),
        status=status,
        error_message=_text(error_message, limits.MAX_ERROR_MESSAGE_LENGTH),
    )
    return record, attrs


def _trace_record(span: SpanRecord, attrs: dict[str, Any], resource: dict[str, Any]) -> TraceRecord:
    metadata = dict(resource)
    extra = json_or_text(attrs.get("metadata"))
    if isinstance(extra, dict):
        metadata.update(extra)
    tags = attrs.get("tag.tags")
    if isinstance(tags, list):
        tags = [_text(tag, limits.MAX_TAG_LENGTH) for tag in tags if tag][: limits.MAX_TAGS]
    else:
        tags = None
    try:
        metadata_json = dump_json(metadata, max_bytes=limits.MAX_METADATA_BYTES, what="metadata")
    except JsonRejected:
        metadata_json = None
    environment = _first(resource, "deployment.environment.name", "deployment.environment")
    return TraceRecord(
        index=span.index,
        external_id=span.trace_external_id,
        name=span.name,
        input_json=span.input_json,
        output_json=span.output_json,
        metadata_json=metadata_json,
        tags=list(dict.fromkeys(tags)) if tags else None,
        environment=_text(environment, limits.MAX_ENVIRONMENT_LENGTH) or None,
        release=_text(resource.get("service.version"), limits.MAX_RELEASE_LENGTH) or None,
        start_time=span.start_time,
        end_time=span.end_time,
        status=span.status,
        error_message=span.error_message,
    )


def _thread_id(attrs: dict[str, Any]) -> str | None:
    value = _first(attrs, "session.id", "gen_ai.conversation.id")
    if value is None:
        return None
    value = str(value)
    try:
        return valid_id(value, "session.id")
    except EventInvalid:
        return None


def batch_from_request(request: Any) -> Batch:
    """An ExportTraceServiceRequest as ingestion records; bad spans are rejections."""
    batch = Batch()
    facts: dict[str, _TraceFacts] = {}
    index = 0
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = {}
            if scope_spans.scope.name:
                scope = {"name": scope_spans.scope.name, "version": scope_spans.scope.version}
            for span in scope_spans.spans:
                try:
                    record, attrs = _span_record(index, span, scope)
                except SpanRejected as exc:
                    batch.reject(
                        index, span.span_id.hex() or None, "span", "invalid_span", str(exc)
                    )
                    index += 1
                    continue
                batch.spans.append(record)
                trace_facts = facts.setdefault(
                    record.trace_external_id, _TraceFacts(first_index=index)
                )
                trace_facts.thread = trace_facts.thread or _thread_id(attrs)
                user = _first(attrs, "user.id", "enduser.id")
                if user is not None and trace_facts.user_id is None:
                    trace_facts.user_id = _text(user, limits.MAX_USER_ID_LENGTH)
                if not record.parent_external_id:
                    trace_facts.root = _trace_record(record, attrs, resource)
                index += 1
    batch.received = index
    for trace_id, trace_facts in facts.items():
        record = trace_facts.root or TraceRecord(
            index=trace_facts.first_index, external_id=trace_id, is_hint=True
        )
        record.thread_external_id = trace_facts.thread
        record.user_id = record.user_id or trace_facts.user_id
        batch.traces.append(record)
    return batch
