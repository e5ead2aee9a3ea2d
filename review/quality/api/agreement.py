"""Agreement of a queue: the latest report per question with its history, as JSON and
CSV. Reports are computed by workers (``review.quality.services.agreement``); reading one never
computes."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from hitl import csv_safe
from hitl.exceptions import NotFound
from projects.api.bases import ProjectScopedViewSet
from projects.models import MANAGE_ROLES, Role
from review.models import ReviewQueue
from review.quality.models import AgreementReport
from review.quality.selectors.agreement import CSV_COLUMNS, agreement_csv_rows, queue_agreement

# Reports name reviewers and show their answers side by side: managers and auditors.
AGREEMENT_READ_ROLES = MANAGE_ROLES | {Role.AUDITOR}


class AgreementHistoryEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    config_id = serializers.IntegerField()
    computed_at = serializers.DateTimeField()
    level = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    n_items = serializers.IntegerField()
    n_answers = serializers.IntegerField()
    answers_covered = serializers.IntegerField()
    reason = serializers.CharField()
    warning = serializers.CharField(
        allow_null=True,
        help_text="Set when too few items were answered by two or more reviewers for a "
        "stable figure (fewer than 10): read the value and interval with it.",
    )


class AgreementReportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    computed_at = serializers.DateTimeField()
    config_version = serializers.IntegerField()
    answers_covered = serializers.IntegerField()
    last_annotation_id = serializers.IntegerField(allow_null=True)
    last_change_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField()
    level = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    reason = serializers.CharField(allow_null=True)
    warning = serializers.CharField(
        allow_null=True,
        help_text="Set when too few items were answered by two or more reviewers for a "
        "stable figure (fewer than 10): read the value and interval with it.",
    )
    figures = serializers.JSONField(
        help_text="coefficients (each with value, ci_low, ci_high, n_items, n_answers, "
        "reason), pairs, reviewers against the consensus, levels (confusion), "
        "most_disagreeing_items, bootstrap settings."
    )


class AgreementQuestionSerializer(serializers.Serializer):
    config = serializers.DictField()
    report = AgreementReportSerializer(allow_null=True)
    reason = serializers.CharField(allow_null=True)
    history = AgreementHistoryEntrySerializer(many=True)


class AgreementReviewerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.CharField()


class QueueAgreementSerializer(serializers.Serializer):
    queue = serializers.DictField()
    reviewers = AgreementReviewerSerializer(
        many=True,
        help_text="The reviewers the reports name: in the figures, each reviewer id is "
        "given with its name and email too (pairs' reviewer_details; reviewers' and "
        "answers' name and email).",
    )
    refresh_pending = serializers.BooleanField(
        help_text="True while the queue has answers (new or edited) that the latest "
        "reports do not cover: a worker is bringing them up to date."
    )
    questions = AgreementQuestionSerializer(many=True)


class QueueAgreementViewSet(ProjectScopedViewSet):
    """Inter-annotator agreement of a queue with overlap, per question."""

    scoped_model = AgreementReport
    read_roles = AGREEMENT_READ_ROLES
    write_roles = MANAGE_ROLES

    def safely_get_queryset(self, queryset: Any) -> Any:
        return queryset.filter(queue_id=self.kwargs["queue_pk"])

    def _summary(self) -> dict[str, Any]:
        queue = ReviewQueue.objects.filter(project=self.project, pk=self.kwargs["queue_pk"]).first()
        if queue is None:
            raise NotFound("No such queue.")
        return queue_agreement(queue)

    @extend_schema(responses=QueueAgreementSerializer, operation_id="queue_agreement")
    def summary(self, request: Request, **kwargs: Any) -> Response:
        """The latest report of each question (every coefficient with its 95% interval
        and the counts behind it, or why there is none) and the history of its headline
        figure, newest first."""
        return Response(QueueAgreementSerializer(self._summary()).data)

    @extend_schema(
        responses={200: OpenApiResponse(OpenApiTypes.STR, description="text/csv")},
        operation_id="queue_agreement_csv",
    )
    def csv(self, request: Request, **kwargs: Any) -> HttpResponse:
        """The latest figures as CSV: one row per coefficient, then per reviewer pair
        (cells quoted; text that a spreadsheet would run as a formula starts with ')."""
        text = csv_safe.rows_text(agreement_csv_rows(self._summary()), CSV_COLUMNS)
        response = HttpResponse(text, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="queue-{self.kwargs["queue_pk"]}-agreement.csv"'
        )
        return response
