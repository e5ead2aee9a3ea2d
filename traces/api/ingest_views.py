"""REST ingestion: one batch endpoint, and single-item endpoints for scores and feedback.

Thin: parse, validate per event, hand the records to ``services.ingest_batch``.
"""

from __future__ import annotations

from typing import Any

import orjson
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from hitl.api.errors import PayloadTooLarge
from hitl.error_shape import error_body
from projects.api.bases import ProjectScopedViewSet
from projects.models import MANAGE_ROLES
from traces import services
from traces.api import ingest_serializers as s
from traces.ingest import limits, validation
from traces.ingest.records import IngestResult
from traces.models import Feedback, Score, Trace
from traces.otlp import decode


class OrjsonParser(BaseParser):
    """JSON bodies parsed by orjson: several times faster than the standard library on
    multi-megabyte batches, and strict (no NaN, no invalid UTF-8)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        body = stream.read() if stream is not None else b""
        request = (parser_context or {}).get("request")
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "") if request is not None else ""
        if encoding:
            # REST clients may gzip batches too; the limit applies to the decompressed body.
            try:
                body = decode.decompress(body, encoding, limits.MAX_BODY_BYTES)
            except decode.BodyTooLarge as exc:
                raise PayloadTooLarge(str(exc)) from None
            except decode.BodyInvalid as exc:
                raise exceptions.ParseError(str(exc)) from None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            # orjson also refuses valid JSON it cannot hold (1e400, a lone surrogate
            # escape); the standard library reads those, and each event that holds one
            # is then refused alone (``validation.LenientDocument``).
            document = validation.lenient_loads(body)
            if document is None:
                raise exceptions.ParseError(f"Malformed JSON: {exc}") from None
            return document


def _result_response(result: IngestResult) -> Response:
    body = {
        "received": result.received,
        "accepted": result.accepted,
        "stored": result.stored,
        "rejected": [rejection.as_dict() for rejection in result.rejections],
    }
    # 207: some events were refused; the body says which and why.
    return Response(body, status=207 if result.rejections else status.HTTP_200_OK)


def _overloaded(exc: services.IngestionOverloaded) -> Response:
    response = Response(error_body(exc.code, exc.message), status=exc.status_code)
    response["Retry-After"] = str(exc.retry_after_seconds)
    return response


class _IngestBase(ProjectScopedViewSet):
    allow_api_keys = True
    parser_classes = [OrjsonParser]
    throttle_scope = "ingest"
    max_body_bytes = limits.MAX_BODY_BYTES
    write_roles = MANAGE_ROLES
    action_api_key_scopes = {"create": "ingest"}


class IngestViewSet(_IngestBase):
    """``POST /api/orgs/<org>/projects/<project>/ingest/``: a batch of traces, spans,
    scores and feedback. Valid events are stored; rejected ones are listed (207)."""

    scoped_model = Trace

    @extend_schema(
        description=(
            "Stores traces, spans, automated scores and end-user feedback. Client ids are "
            "the identity (re-sending updates, never duplicates); spans may precede their "
            "trace or parent. Each invalid event is rejected alone (207 lists index, id, "
            "code and reason). NUL characters are stripped from strings; a lone surrogate "
            "or a number past a double (1e400) rejects its event. Limits: "
            f"{limits.MAX_EVENTS_PER_BATCH} events and {limits.MAX_BODY_BYTES} bytes per "
            "batch (413); throttled with 429 + Retry-After. See docs/ingestion.md."
        ),
        request=s.IngestBatchSerializer,
        responses={
            200: s.IngestResultSerializer,
            207: OpenApiResponse(s.IngestResultSerializer, "Some events were rejected."),
        },
    )
    def create(self, request: Request, org_slug: str, project_slug: str) -> Response:
        data = request.data
        if not isinstance(data, dict) or not isinstance(data.get("events"), list):
            raise exceptions.ValidationError({"events": ["A list of events is required."]})
        unknown = set(data) - {"events"}
        if unknown:
            raise exceptions.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
        events = data["events"]
        if len(events) > limits.MAX_EVENTS_PER_BATCH:
            raise PayloadTooLarge(
                f"The batch has {len(events)} events, over the limit of "
                f"{limits.MAX_EVENTS_PER_BATCH} events per batch."
            )
        batch = validation.parse_events(
            events, check_values=isinstance(data, validation.LenientDocument)
        )
        try:
            result = services.ingest_batch(actor=self.actor, project=self.project, batch=batch)
        except services.IngestionOverloaded as exc:
            return _overloaded(exc)
        return _result_response(result)


class ScoreIngestViewSet(_IngestBase):
    """``POST .../ingest/scores/``: one automated score (upserted by its ``id``)."""

    scoped_model = Score

    @extend_schema(request=s.ScoreBodySerializer, responses={201: s.ScoreSerializer})
    def create(self, request: Request, org_slug: str, project_slug: str) -> Response:
        try:
            validation.check_document(request.data)
            record = validation.parse_score(0, request.data)
        except validation.EventInvalid as exc:
            raise exceptions.ValidationError({"detail": exc.message}, code=exc.code) from None
        try:
            score = services.score_ingest(actor=self.actor, project=self.project, record=record)
        except services.IngestionOverloaded as exc:
            return _overloaded(exc)
        return Response(s.ScoreSerializer(score).data, status=status.HTTP_201_CREATED)


class FeedbackIngestViewSet(_IngestBase):
    """``POST .../ingest/feedback/``: one piece of end-user feedback (upserted by its ``id``)."""

    scoped_model = Feedback

    @extend_schema(request=s.FeedbackBodySerializer, responses={201: s.FeedbackSerializer})
    def create(self, request: Request, org_slug: str, project_slug: str) -> Response:
        try:
            validation.check_document(request.data)
            record = validation.parse_feedback(0, request.data)
        except validation.EventInvalid as exc:
            raise exceptions.ValidationError({"detail": exc.message}, code=exc.code) from None
        try:
            feedback = services.feedback_ingest(
                actor=self.actor, project=self.project, record=record
            )
        except services.IngestionOverloaded as exc:
            return _overloaded(exc)
        return Response(s.FeedbackSerializer(feedback).data, status=status.HTTP_201_CREATED)
