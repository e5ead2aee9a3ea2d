"""Reading traces: the filtered list, the detail with its span tree, one span, threads.

Readable by every member role and by API keys with the ``read`` scope. Another
project's or organization's trace answers 404, like a missing one.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from hitl.api.filters import RESPONSE_PARAMETERS
from hitl.api.pagination import CreatedCursorPagination
from hitl.api.renderers import BrowsableAPIRenderer
from hitl.exceptions import DomainError
from hitl.replica import reads_from_replica
from projects.api.bases import ProjectScopedViewSet
from traces import hooks, selectors
from traces.api import read_serializers as s
from traces.filters import (
    SORT_HELP,
    ThreadFilter,
    TraceFilter,
    parse_sort,
    parse_sort_cursor,
    sort_cursor,
)
from traces.models import Thread, Trace

EXTERNAL_ID_REGEX = r"[^/]+"

TRACE_ID_PARAMETER = OpenApiParameter(
    "trace_external_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="Trace id."
)
SPAN_ID_PARAMETER = OpenApiParameter(
    "span_external_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="Span id."
)
THREAD_ID_PARAMETER = OpenApiParameter(
    "thread_external_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="Thread id."
)


class PayloadJSONRenderer(JSONRenderer):
    """JSON, with ``RawJSON`` payloads spliced in as they came from the database.

    Each payload is encoded as a placeholder string holding NUL characters, which no
    stored text can contain (PostgreSQL text and jsonb refuse NUL), then replaced."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        fragments: list[str] = []
        nonce = secrets.token_hex(4)
        base_encoder = self.encoder_class

        class Encoder(base_encoder):
            def default(self, obj):
                if isinstance(obj, selectors.RawJSON):
                    fragments.append(obj.text)
                    return f"\x00{nonce}:{len(fragments) - 1}\x00"
                return super().default(obj)

        self.encoder_class = Encoder
        try:
            rendered = super().render(data, accepted_media_type, renderer_context)
        finally:
            self.encoder_class = base_encoder
        if not fragments:
            return rendered
        placeholder = re.compile(rf'"\\u0000{nonce}:(\d+)\\u0000"'.encode())
        encoded = [
            fragment.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()
            for fragment in fragments
        ]
        return placeholder.sub(lambda match: encoded[int(match.group(1))], rendered)


def _viewer(request: Request) -> Any:
    return hooks.viewer_of(request)


class TraceFilterBackend(DjangoFilterBackend):
    """The trace filter on list requests; unknown parameters are errors, not no-ops."""

    def filter_queryset(self, request: Request, queryset, view):
        if getattr(view, "action", None) != "list":
            return queryset
        params = {
            key: request.query_params.getlist(key)
            for key in request.query_params
            if key not in RESPONSE_PARAMETERS and key != SORT_PARAMETER
        }
        return selectors.trace_list_filter_apply(
            queryset, params, project=view.project, viewer=_viewer(request)
        )


SORT_PARAMETER = "sort"


class TraceListPagination(CreatedCursorPagination):
    """Newest first by arrival, DRF's cursor, unless ``?sort=`` names an order
    (``traces.filters.parse_sort``, the explorer's): then the page is read by
    ``traces.selectors.trace_list_page`` and ``next`` carries a keyset cursor on (sort
    value, id) for that order; such pages go forwards only (``previous`` is null)."""

    def paginate_queryset(self, queryset, request, view=None):
        self.sort = None
        raw = request.query_params.get(SORT_PARAMETER)
        if raw is None:
            return super().paginate_queryset(queryset, request, view)
        try:
            self.sort = parse_sort(raw)
        except ValidationError as exc:
            raise DomainError("Invalid sort.", details={SORT_PARAMETER: exc.messages}) from None
        self.request = request
        self.page_size = self.get_page_size(request)
        after = None
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded:
            after = _decode_sort_cursor(self.sort, encoded)
        rows = selectors.trace_list_page(
            queryset,
            sort=self.sort,
            limit=self.page_size + 1,
            after=after,
            viewer=_viewer(request),
            project=getattr(view, "project", None),
        )
        self.sorted_next = None
        if len(rows) > self.page_size:
            rows = rows[: self.page_size]
            last = rows[-1]
            cursor = sort_cursor(self.sort, last.sort_value, last.pk)
            self.sorted_next = replace_query_param(
                request.build_absolute_uri(),
                self.cursor_query_param,
                base64.urlsafe_b64encode(cursor.encode()).decode(),
            )
        return rows

    def get_paginated_response(self, data):
        if self.sort is None:
            return super().get_paginated_response(data)
        return Response({"next": self.sorted_next, "previous": None, "results": data})


def _decode_sort_cursor(sort, encoded: str) -> tuple[Any, int]:
    refused = DomainError(
        "Invalid cursor.",
        details={"cursor": ["Not a page of this list: ask for the first page again."]},
    )
    try:
        raw = base64.urlsafe_b64decode(encoded.encode("ascii")).decode()
    except (ValueError, UnicodeError):
        raise refused from None
    after = parse_sort_cursor(sort, raw)
    if after is None:
        raise refused
    return after


class TraceFilterSchema(DjangoFilterExtension):
    """Documents every trace filter parameter, read from the FilterSet itself (the
    generic extension would query the tenant-scoped manager outside a tenant)."""

    target_class = "traces.api.read_views.TraceFilterBackend"
    match_subclasses = False
    priority = 1

    def get_schema_operation_parameters(self, auto_schema, *args, **kwargs):
        parameters = []
        for name, filter_field in TraceFilter.base_filters.items():
            parameters += self.resolve_filter_field(
                auto_schema, Trace, TraceFilter, name, filter_field
            )
        return parameters


class TraceViewSet(ProjectScopedViewSet):
    """Traces of a project, newest first."""

    scoped_model = Trace
    lookup_field = "external_id"
    lookup_url_kwarg = "trace_external_id"
    lookup_value_regex = EXTERNAL_ID_REGEX
    filter_backends = [TraceFilterBackend]
    filterset_class = TraceFilter
    pagination_class = TraceListPagination
    serializer_class = s.TraceListRowSerializer
    renderer_classes = [PayloadJSONRenderer, BrowsableAPIRenderer]

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        if getattr(self, "action", None) == "list":
            return selectors.trace_list_rows(queryset)
        return queryset

    @extend_schema(
        summary="List traces",
        description=(
            "Newest first (by arrival), cursor-paginated; with sort, in that order "
            "(next pages only). Every filter parameter narrows the list; repeatable ones "
            "(tags, metadata, score) must all match. An invalid or unknown parameter "
            "answers 400 with a reason per parameter."
        ),
        parameters=[
            OpenApiParameter(
                SORT_PARAMETER, OpenApiTypes.STR, OpenApiParameter.QUERY, description=SORT_HELP
            )
        ],
    )
    def list(self, request: Request, org_slug: str, project_slug: str) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        with reads_from_replica():  # the page and its summaries (hitl/replica.py)
            page = self.paginate_queryset(queryset)
            data = selectors.trace_list_data(page, viewer=_viewer(request))
        return self.get_paginated_response(data)

    @extend_schema(
        summary="One trace with its span tree",
        parameters=[TRACE_ID_PARAMETER],
        responses=s.TraceDetailSerializer,
    )
    def retrieve(
        self, request: Request, org_slug: str, project_slug: str, trace_external_id: str
    ) -> Response:
        trace = selectors.trace_get(queryset=self.get_queryset(), external_id=trace_external_id)
        return Response(
            selectors.trace_detail(trace=trace, raw_payloads=True, viewer=_viewer(request))
        )

    @extend_schema(
        summary="One span of a trace, with its attributes",
        parameters=[TRACE_ID_PARAMETER, SPAN_ID_PARAMETER],
        responses=s.SpanDetailSerializer,
    )
    def span(
        self,
        request: Request,
        org_slug: str,
        project_slug: str,
        trace_external_id: str,
        span_external_id: str,
    ) -> Response:
        trace = selectors.trace_get(queryset=self.get_queryset(), external_id=trace_external_id)
        return Response(
            selectors.span_detail(
                trace=trace, span_external_id=span_external_id, viewer=_viewer(request)
            )
        )


class ThreadTracePagination(LimitOffsetPagination):
    # A conversation is ordered by start time, which may be missing: offsets, not cursors.
    default_limit = 50
    max_limit = 500


class ThreadViewSet(ProjectScopedViewSet):
    """Threads (conversations, sessions) of a project."""

    scoped_model = Thread
    lookup_field = "external_id"
    lookup_url_kwarg = "thread_external_id"
    lookup_value_regex = EXTERNAL_ID_REGEX
    filterset_class = ThreadFilter
    pagination_class = CreatedCursorPagination
    serializer_class = s.ThreadRowSerializer

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return selectors.thread_list_rows(queryset)

    @extend_schema(summary="List threads", description="Newest first, cursor-paginated.")
    def list(self, request: Request, org_slug: str, project_slug: str) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        with reads_from_replica():  # the page of threads (hitl/replica.py)
            page = self.paginate_queryset(queryset)
            data = s.ThreadRowSerializer(page, many=True).data
        return self.get_paginated_response(data)

    @extend_schema(
        summary="One thread: its traces in order",
        description="The conversation's traces by start time (lean rows), paginated.",
        parameters=[
            THREAD_ID_PARAMETER,
            OpenApiParameter("limit", OpenApiTypes.INT, OpenApiParameter.QUERY),
            OpenApiParameter("offset", OpenApiTypes.INT, OpenApiParameter.QUERY),
        ],
        responses=inline_serializer(
            "ThreadTracesPage",
            {
                "thread": s.ThreadRowSerializer(),
                "count": serializers.IntegerField(),
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": s.TraceListRowSerializer(many=True),
            },
        ),
    )
    def retrieve(
        self, request: Request, org_slug: str, project_slug: str, thread_external_id: str
    ) -> Response:
        thread = selectors.thread_get(queryset=self.get_queryset(), external_id=thread_external_id)
        paginator = ThreadTracePagination()
        with reads_from_replica():  # the conversation's traces and their count
            page = paginator.paginate_queryset(
                selectors.thread_traces(thread=thread), request, view=self
            )
            data = selectors.trace_list_data(page, viewer=_viewer(request))
        response = paginator.get_paginated_response(data)
        response.data = {"thread": s.ThreadRowSerializer(thread).data, **response.data}
        return response
