"""OTLP/HTTP request bodies: gzip, protobuf or JSON -> ExportTraceServiceRequest.

OTLP/JSON differs from the protobuf JSON mapping in one place: trace and span ids are
hex strings, not base64 (spec: "OTLP/HTTP JSON encoding"). They are converted before
``json_format`` parses the message; an id that is not valid hex becomes empty, so that
span alone is rejected (partial success) instead of the whole request.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MEDIA_TYPES = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}


class BodyInvalid(ValueError):
    """The body cannot be decoded: 400."""


class BodyTooLarge(ValueError):
    """The decompressed body exceeds the limit: 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"The decompressed body exceeds the limit of {limit} bytes.")
        self.limit = limit


def media_type(content_type: str) -> str | None:
    return MEDIA_TYPES.get(content_type.split(";", 1)[0].strip().lower())


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise BodyInvalid(f"Content-Encoding {encoding!r} is not supported (use gzip).")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BodyInvalid(f"The gzip body cannot be decompressed: {exc}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge(limit)
    if not inflater.eof:
        raise BodyInvalid("The gzip body is truncated.")
    return data


def _hex_to_base64(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except ValueError:
        return ""


_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _fix_ids(node: dict[str, Any]) -> None:
    for key in _ID_KEYS:
        if key in node:
            node[key] = _hex_to_base64(node[key])


def _spans_of(document: dict[str, Any]) -> Any:
    for resource_spans in document.get("resourceSpans") or document.get("resource_spans") or []:
        if not isinstance(resource_spans, dict):
            continue
        for scope_spans in (
            resource_spans.get("scopeSpans") or resource_spans.get("scope_spans") or []
        ):
            if isinstance(scope_spans, dict):
                yield from (s for s in scope_spans.get("spans") or [] if isinstance(s, dict))


def parse(body: bytes, kind: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    if kind == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise BodyInvalid(f"The body is not a valid ExportTraceServiceRequest: {exc}") from None
        return request
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyInvalid(f"Malformed JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BodyInvalid("The JSON body must be an ExportTraceServiceRequest object.")
    for span in _spans_of(document):
        _fix_ids(span)
        for link in span.get("links") or []:
            if isinstance(link, dict):
                _fix_ids(link)
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error, TypeError, ValueError) as exc:
        raise BodyInvalid(f"The JSON is not a valid ExportTraceServiceRequest: {exc}") from None
    return request


def encode_response(rejected: int, message: str, kind: str) -> tuple[bytes, str]:
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if kind == JSON:
        return orjson.dumps(json_format.MessageToDict(response)), JSON
    return response.SerializeToString(), PROTOBUF


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_status(code: int, message: str, kind: str | None) -> tuple[bytes, str]:
    """A ``google.rpc.Status`` (code, message), the body OTLP/HTTP sends with errors."""
    if kind == JSON or kind is None:
        return orjson.dumps({"code": code, "message": message}), JSON
    text = message.encode()
    # Field 1 (code, varint) and field 2 (message, length-delimited).
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text, PROTOBUF
