"""A project's trace retention: how many days its traces are kept.

GET: every member role and API keys with the ``read`` scope. PUT: organization owners
and admins, signed in (an API key never shortens what a project keeps). Another
organization's or a hidden project answers 404, like a missing one.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from hitl.api.views import validated
from projects.api.bases import ProjectScopedViewSet
from traces import selectors, services
from traces.models import RETENTION_MAX_DAYS, TraceRetention


class TraceRetentionSerializer(serializers.Serializer):
    days = serializers.IntegerField(
        allow_null=True,
        help_text="The project's own policy in days (0: keep everything); null: it follows "
        "the default.",
    )
    default_days = serializers.IntegerField(
        help_text="The installation's default (HITL_TRACE_RETENTION_DAYS; 0: keep)."
    )
    effective_days = serializers.IntegerField(
        help_text="Days in force for this project (0: traces are kept)."
    )
    updated_at = serializers.DateTimeField(allow_null=True)
    updated_by = serializers.CharField()


class TraceRetentionInputSerializer(serializers.Serializer):
    days = serializers.IntegerField(
        min_value=0,
        max_value=RETENTION_MAX_DAYS,
        allow_null=True,
        help_text="Days to keep traces (0: keep everything); null: follow the default.",
    )


class TraceRetentionViewSet(ProjectScopedViewSet):
    """The project's trace retention (one per project)."""

    scoped_model = TraceRetention
    # No serializer_class: one object per project, no id in the URL (OPTIONS describes
    # no input; the OpenAPI schema does, from the annotations below).

    def _current(self) -> Response:
        setting = selectors.trace_retention_of(project=self.project)
        return Response(TraceRetentionSerializer(setting).data)

    @extend_schema(summary="The project's trace retention", responses=TraceRetentionSerializer)
    def retrieve(self, request: Request, org_slug: str, project_slug: str) -> Response:
        return self._current()

    @extend_schema(
        summary="Set the project's trace retention",
        description=(
            "Traces first seen more than `days` days ago are deleted with their spans, "
            "automated scores and feedback by the periodic retention task; reviewed or "
            "referenced traces are kept. Owners and admins only."
        ),
        request=TraceRetentionInputSerializer,
        responses=TraceRetentionSerializer,
    )
    def update(self, request: Request, org_slug: str, project_slug: str) -> Response:
        if self.membership is None:
            raise exceptions.PermissionDenied(
                "Retention is set by an owner or admin, signed in, not by an API key."
            )
        data = validated(request, TraceRetentionInputSerializer)
        services.trace_retention_set(actor=self.actor, project=self.project, days=data["days"])
        return self._current()
