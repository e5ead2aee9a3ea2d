"""``POST /v1/traces``: OTLP/HTTP trace export (protobuf or JSON, optionally gzip).

The project comes from the API key, never from the body. Responses follow the OTLP/HTTP
spec: 200 with an ExportTraceServiceResponse (``partial_success`` when spans were
rejected) in the request's content type; 400 for an undecodable body; 401/403 for a bad
key; 413 above the size limit; 415 for other content types; 429 and 503 (the only
retryable ones) with ``Retry-After``.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions

from hitl import tenancy
from hitl.api.throttling import CallerRateThrottle
from hitl.audit import Actor
from projects.api_keys import ApiKeyRefused, api_key_from_raw
from projects.models import ApiKey
from traces import services
from traces.ingest import limits
from traces.otlp import decode
from traces.otlp.mapping import batch_from_request

logger = logging.getLogger(__name__)

# google.rpc.Code values used in Status bodies.
INVALID_ARGUMENT, PERMISSION_DENIED, RESOURCE_EXHAUSTED = 3, 7, 8
UNAVAILABLE, UNAUTHENTICATED = 14, 16
MAX_REASONS_IN_MESSAGE = 5


def _status(
    http_status: int,
    code: int,
    message: str,
    kind: str | None,
    retry_after: int | None = None,
) -> HttpResponse:
    body, content_type = decode.encode_status(code, message, kind)
    response = HttpResponse(body, status=http_status, content_type=content_type)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _api_key(request: HttpRequest) -> ApiKey:
    header = request.headers.get("Authorization", "")
    parts = header.split()
    if len(parts) == 2 and parts[0].lower() == "bearer":
        raw = parts[1]
    elif request.headers.get("X-Api-Key"):
        raw = request.headers["X-Api-Key"].strip()
    else:
        raise exceptions.NotAuthenticated(
            "Send the project API key as 'Authorization: Bearer <key>'."
        )
    try:
        return api_key_from_raw(raw)
    except ApiKeyRefused as refused:
        raise exceptions.AuthenticationFailed(str(refused)) from None


@method_decorator(csrf_exempt, name="dispatch")
class OtlpTracesView(View):
    http_method_names: ClassVar[list[str]] = ["post"]
    # The middleware answers 413 above this before the body is read.
    max_body_bytes = limits.MAX_BODY_BYTES
    throttle_scope = "ingest"

    def post(self, request: HttpRequest) -> HttpResponse:
        kind = decode.media_type(request.content_type or request.headers.get("Content-Type", ""))
        try:
            api_key = _api_key(request)
        except exceptions.APIException as exc:
            return _status(401, UNAUTHENTICATED, str(exc.detail), kind)
        if not api_key.has_scope("ingest"):
            return _status(403, PERMISSION_DENIED, "This API key lacks the 'ingest' scope.", kind)
        request.api_key = api_key
        throttle = CallerRateThrottle()
        if not throttle.allow_request(request, self):
            wait = int((throttle.wait() or 1) + 0.999)
            return _status(429, RESOURCE_EXHAUSTED, "Too many requests.", kind, retry_after=wait)
        if kind is None:
            return HttpResponse(
                "Content-Type must be application/x-protobuf or application/json.",
                status=415,
                content_type="text/plain",
            )
        # The size middleware may already have read a chunked body (into _body).
        raw = request._body if hasattr(request, "_body") else request.read()
        try:
            body = decode.decompress(
                raw, request.headers.get("Content-Encoding", ""), limits.MAX_BODY_BYTES
            )
            export = decode.parse(body, kind)
        except decode.BodyTooLarge as exc:
            return _status(413, INVALID_ARGUMENT, str(exc), kind)
        except decode.BodyInvalid as exc:
            return _status(400, INVALID_ARGUMENT, str(exc), kind)

        batch = batch_from_request(export)
        actor = Actor(api_key_id=api_key.pk, api_key_prefix=api_key.prefix, source="api")
        with tenancy.tenant_scope(api_key.organization_id):
            try:
                result = services.ingest_batch(actor=actor, project=api_key.project, batch=batch)
            except services.IngestionOverloaded as exc:
                return _status(
                    503, UNAVAILABLE, exc.message, kind, retry_after=exc.retry_after_seconds
                )
        rejected = [r for r in result.rejections if r.type == "span"]
        message = ""
        if rejected:
            reasons = "; ".join(
                f"span {r.id or '?'}: {r.reason}" for r in rejected[:MAX_REASONS_IN_MESSAGE]
            )
            more = len(rejected) - MAX_REASONS_IN_MESSAGE
            message = f"{len(rejected)} span(s) rejected: {reasons}" + (
                f" (and {more} more)" if more > 0 else ""
            )
        body, content_type = decode.encode_response(len(rejected), message, kind)
        return HttpResponse(body, status=200, content_type=content_type)
