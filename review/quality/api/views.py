"""Calibration sets, rounds and their results; a queue's calibration (the onboarding gate
and gold items); alignment mappings and their reports; quality alerts. JSON, and CSV
for results and reports. Managers write; managers and auditors read (results name
reviewers and their accuracy). The project's quality settings (alert thresholds and
window) are read by every role and written by managers."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from hitl import csv_safe
from hitl.api.serializers import StrictSerializer
from hitl.api.views import validated
from hitl.exceptions import NotFound
from projects.api.bases import ProjectScopedViewSet
from projects.models import MANAGE_ROLES, Role
from review.quality import filters
from review.quality.models import (
    AlignmentMapping,
    AlignmentReport,
    AlignmentScope,
    CalibrationResult,
    CalibrationRound,
    CalibrationSet,
    GoldAccuracy,
    GoldAnswer,
    QualityAlert,
    QualitySettings,
    QueueCalibration,
)
from review.quality.selectors import calibration as calibration_selectors
from review.quality.services import alerts, alignment, calibration
from review.serializer_fields import TRACE_HELP, TRACE_ID_IN, external_id_field
from traces.refs import row_ids

READ_ROLES = MANAGE_ROLES | {Role.AUDITOR}
CSV_TYPE = {200: OpenApiResponse(OpenApiTypes.STR, description="text/csv")}


def _csv(rows: list[dict[str, Any]], columns: list[str], filename: str) -> HttpResponse:
    text = csv_safe.rows_text(rows, columns)
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- calibration sets -------------------------------------------------------------------------


class GoldAnswerSerializer(serializers.ModelSerializer):
    trace = external_id_field("trace", TRACE_HELP)

    class Meta:
        model = GoldAnswer
        fields = ["id", "trace", "values", "explanation", "created_at"]


class CalibrationSetSerializer(serializers.ModelSerializer):
    gold_answers = GoldAnswerSerializer(many=True, read_only=True)

    class Meta:
        model = CalibrationSet
        fields = [
            "id", "name", "description", "config_ids", "tolerances", "min_accuracy",
            "min_agreement", "created_at", "gold_answers",
        ]  # fmt: skip


TOLERANCES_HELP = (
    "Per numeric question of the set (config id -> a number, 0 or more): how far from "
    "the gold answer a reviewer's answer may be and still count as right (absent: equal)."
)


class CalibrationSetCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    config_ids = serializers.ListField(child=serializers.IntegerField(min_value=1))
    min_accuracy = serializers.FloatField(required=False, default=0.8)
    min_agreement = serializers.FloatField(required=False, allow_null=True, default=None)
    tolerances = serializers.DictField(
        child=serializers.FloatField(),
        required=False,
        default=dict,
        help_text=TOLERANCES_HELP,
    )


class CalibrationSetUpdateSerializer(StrictSerializer):
    description = serializers.CharField(required=False, allow_blank=True)
    min_accuracy = serializers.FloatField(required=False)
    min_agreement = serializers.FloatField(required=False, allow_null=True)
    tolerances = serializers.DictField(
        child=serializers.FloatField(), required=False, help_text=TOLERANCES_HELP
    )


class GoldAnswerWriteSerializer(StrictSerializer):
    trace_id = serializers.CharField(max_length=256, help_text=TRACE_ID_IN)
    values = serializers.DictField(help_text="Score config id -> the gold answer.")
    explanation = serializers.CharField(required=False, allow_blank=True, default="")


class CalibrationSetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    """Calibration sets: traces with gold answers written by a lead."""

    scoped_model = CalibrationSet
    serializer_class = CalibrationSetSerializer
    filterset_class = filters.CalibrationSetFilter
    read_roles = READ_ROLES
    write_roles = MANAGE_ROLES

    def safely_get_queryset(self, queryset: Any) -> Any:
        return queryset.prefetch_related(
            Prefetch("gold_answers", queryset=GoldAnswer.objects.select_related("trace"))
        )

    @extend_schema(
        request=CalibrationSetCreateSerializer, responses={201: CalibrationSetSerializer}
    )
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, CalibrationSetCreateSerializer)
        row = calibration.calibration_set_create(actor=self.actor, project=self.project, **data)
        return Response(CalibrationSetSerializer(row).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=CalibrationSetUpdateSerializer, responses={200: CalibrationSetSerializer}
    )
    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        """Changes what passing the set takes (min_accuracy, min_agreement), its
        description or its numeric tolerances; the fields not given keep their value.
        Results already scored keep their verdict."""
        data = validated(request, CalibrationSetUpdateSerializer)
        row = self.get_object()
        data.setdefault("min_accuracy", row.min_accuracy)
        data.setdefault("min_agreement", row.min_agreement)
        row = calibration.calibration_set_update(actor=self.actor, calibration_set=row, **data)
        row = self.get_queryset().get(pk=row.pk)
        return Response(CalibrationSetSerializer(row).data)

    @extend_schema(request=GoldAnswerWriteSerializer, responses={200: GoldAnswerSerializer})
    @action(detail=True, methods=["post"])
    def gold(self, request: Request, **kwargs: Any) -> Response:
        """Writes (or rewrites) the gold answers of one trace."""
        data = dict(validated(request, GoldAnswerWriteSerializer))
        data["trace_id"] = row_ids(self.project, trace_id=data["trace_id"]).trace_id
        gold = calibration.gold_answer_set(
            actor=self.actor, calibration_set=self.get_object(), **data
        )
        return Response(GoldAnswerSerializer(gold).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"gold/(?P<trace_id>[^/]+)")
    def gold_remove(self, request: Request, trace_id: str, **kwargs: Any) -> Response:
        """Takes a trace out of the set (rounds already started keep their items); the
        trace is named by the id it was sent with, as the gold answers list it."""
        gold = GoldAnswer.objects.filter(
            calibration_set=self.get_object(), trace__external_id=trace_id
        ).first()
        if gold is None:
            raise NotFound("No gold answer for this trace in the set.")
        calibration.gold_answer_remove(actor=self.actor, gold=gold)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- rounds and results -----------------------------------------------------------------------


class CalibrationResultSerializer(serializers.ModelSerializer):
    reviewer_email = serializers.EmailField(source="reviewer.email", read_only=True)

    class Meta:
        model = CalibrationResult
        fields = [
            "reviewer", "reviewer_email", "answered", "correct", "accuracy", "agreement",
            "passed", "reason", "figures", "computed_at",
        ]  # fmt: skip


class CalibrationRoundSerializer(serializers.ModelSerializer):
    results = CalibrationResultSerializer(many=True, read_only=True)

    class Meta:
        model = CalibrationRound
        fields = [
            "id", "calibration_set", "number", "queue", "created_at", "scored_at",
            "agreement", "agreement_reason", "figures", "results",
        ]  # fmt: skip


class CalibrationRoundCreateSerializer(StrictSerializer):
    calibration_set_id = serializers.IntegerField(min_value=1)
    reviewer_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), help_text="User ids of the reviewers."
    )


RESULT_COLUMNS = [
    "round", "reviewer", "reviewer_email", "answered", "correct", "accuracy", "agreement",
    "passed", "reason",
]  # fmt: skip


class CalibrationRoundViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet
):
    """Rounds of a calibration set (each a blind queue of its own) and their results:
    each reviewer's accuracy and Cohen's kappa against gold, the group's agreement,
    per question and per gold rubric level. Rounds are kept, to compare."""

    scoped_model = CalibrationRound
    serializer_class = CalibrationRoundSerializer
    filterset_class = filters.CalibrationRoundFilter
    read_roles = READ_ROLES
    write_roles = MANAGE_ROLES

    def safely_get_queryset(self, queryset: Any) -> Any:
        return queryset.prefetch_related("results__reviewer")

    @extend_schema(
        request=CalibrationRoundCreateSerializer, responses={201: CalibrationRoundSerializer}
    )
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, CalibrationRoundCreateSerializer)
        calibration_set = CalibrationSet.objects.filter(
            project=self.project, pk=data["calibration_set_id"]
        ).first()
        if calibration_set is None:
            raise NotFound("No such calibration set.")
        row = calibration.calibration_round_start(
            actor=self.actor, calibration_set=calibration_set, reviewer_ids=data["reviewer_ids"]
        )
        return Response(CalibrationRoundSerializer(row).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=CalibrationRoundSerializer)
    @action(detail=True, methods=["post"])
    def score(self, request: Request, **kwargs: Any) -> Response:
        """Scores the round from the answers given so far (rerun replaces the results)."""
        row = calibration.calibration_round_score(actor=self.actor, round_=self.get_object())
        return Response(CalibrationRoundSerializer(self.get_queryset().get(pk=row.pk)).data)

    @extend_schema(responses=CSV_TYPE, operation_id="calibration_round_results_csv")
    @action(detail=True, methods=["get"], url_path="csv")
    def results_csv(self, request: Request, **kwargs: Any) -> HttpResponse:
        row = self.get_object()
        rows = [
            {"round": row.number, **CalibrationResultSerializer(r).data}
            for r in row.results.select_related("reviewer")
        ]
        return _csv(rows, RESULT_COLUMNS, f"calibration-round-{row.pk}.csv")


# --- a queue's calibration --------------------------------------------------------------------


class GoldAccuracySerializer(serializers.ModelSerializer):
    class Meta:
        model = GoldAccuracy
        fields = ["reviewer", "answered", "correct", "accuracy", "updated_at", "alerted_at"]


class QueueCalibrationSerializer(serializers.ModelSerializer):
    class Meta:
        model = QueueCalibration
        fields = [
            "id", "queue", "calibration_set", "require_pass", "gold_rate",
            "gold_min_accuracy", "created_at",
        ]  # fmt: skip


class QueueCalibrationWriteSerializer(StrictSerializer):
    queue_id = serializers.IntegerField(min_value=1)
    calibration_set_id = serializers.IntegerField(min_value=1)
    require_pass = serializers.BooleanField(required=False, default=True)
    gold_rate = serializers.FloatField(required=False, default=0.0)
    gold_min_accuracy = serializers.FloatField(required=False, default=0.8)


class GoldMixSerializer(serializers.Serializer):
    added = serializers.IntegerField(help_text="Gold items added now.")


class QueueCalibrationViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet
):
    """A live queue under a calibration set: the onboarding gate (a claim by a reviewer
    who has not passed answers 403 ``calibration_required``) and gold items mixed in."""

    scoped_model = QueueCalibration
    serializer_class = QueueCalibrationSerializer
    filterset_class = filters.QueueCalibrationFilter
    read_roles = READ_ROLES
    write_roles = MANAGE_ROLES

    @extend_schema(
        request=QueueCalibrationWriteSerializer, responses={201: QueueCalibrationSerializer}
    )
    def create(self, request: Request, **kwargs: Any) -> Response:
        """Puts a queue under a calibration set (replacing its previous one)."""
        data = validated(request, QueueCalibrationWriteSerializer)
        found = calibration_selectors.queue_and_calibration_set(
            self.project, data.pop("queue_id"), data.pop("calibration_set_id")
        )
        if found is None:
            raise NotFound("No such queue or calibration set.")
        queue, calibration_set = found
        row = calibration.queue_calibration_set(
            actor=self.actor, queue=queue, calibration_set=calibration_set, **data
        )
        return Response(QueueCalibrationSerializer(row).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, **kwargs: Any) -> Response:
        calibration.queue_calibration_remove(actor=self.actor, row=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: GoldMixSerializer})
    @action(detail=True, methods=["post"], url_path="gold-mix")
    def gold_mix(self, request: Request, **kwargs: Any) -> Response:
        """Adds gold traces to the queue up to its gold rate (idempotent)."""
        row = self.get_object()
        added = calibration.queue_gold_mix(actor=self.actor, queue=row.queue)
        return Response({"added": added})

    @extend_schema(responses=GoldAccuracySerializer(many=True))
    @action(detail=True, methods=["get"], url_path="gold-accuracy")
    def gold_accuracy(self, request: Request, **kwargs: Any) -> Response:
        """Each reviewer's running accuracy on the queue's gold items (refreshed by a
        worker every few minutes)."""
        row = self.get_object()
        rows = GoldAccuracy.objects.filter(queue_id=row.queue_id).order_by("reviewer_id")
        return Response(GoldAccuracySerializer(rows, many=True).data)


# --- alignment --------------------------------------------------------------------------------


class AlignmentMappingSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlignmentMapping
        fields = [
            "id", "score_name", "source_version", "config", "scope", "queue",
            "metric_threshold", "human_threshold", "human_pass_labels", "created_at",
        ]  # fmt: skip


class AlignmentMappingCreateSerializer(StrictSerializer):
    score_name = serializers.CharField(max_length=256)
    config_id = serializers.IntegerField(min_value=1)
    source_version = serializers.CharField(
        max_length=128, required=False, allow_blank=True, default=""
    )
    metric_threshold = serializers.FloatField(required=False, allow_null=True, default=None)
    human_threshold = serializers.FloatField(required=False, allow_null=True, default=None)
    human_pass_labels = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )
    scope = serializers.ChoiceField(
        choices=AlignmentScope.choices,
        required=False,
        default=AlignmentScope.PRODUCTION,
        help_text="production (default): answers in live queues, leaving out calibration "
        "rounds, gold items mixed into queues and reviewers whose latest calibration on "
        "the question failed; all: every answer to the question.",
    )
    queue_id = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None,
        help_text="Only this queue's answers count.",
    )  # fmt: skip


class AlignmentScopeWriteSerializer(StrictSerializer):
    scope = serializers.ChoiceField(choices=AlignmentScope.choices)
    queue_id = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None,
        help_text="Only this queue's answers count (null: every queue in the scope).",
    )  # fmt: skip


class AlignmentReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlignmentReport
        fields = ["id", "mapping", "computed_at", "n_items", "value", "kappa", "reason", "figures"]


ALIGNMENT_COLUMNS = [
    "computed_at", "n_items", "agreement_rate", "kappa", "true_positive", "false_positive",
    "false_negative", "true_negative", "pearson", "spearman", "mae", "rmse", "reason", "scope",
    "agreement_suggestion_visible", "answers_suggestion_visible", "agreement_without_suggestion",
    "answers_without_suggestion", "anchoring_difference", "anchoring_low", "anchoring_high",
    "anchoring_verdict",
]  # fmt: skip


def _alignment_row(report: AlignmentReport) -> dict[str, Any]:
    figures = report.figures
    confusion = figures.get("confusion") or {}
    numeric = figures.get("numeric") or {}
    return {
        "computed_at": report.computed_at.isoformat(),
        "scope": (figures.get("scope") or {}).get("name", AlignmentScope.ALL),
        "n_items": report.n_items,
        "agreement_rate": report.value,
        "kappa": report.kappa,
        **confusion,
        **{
            name: (numeric.get(name) or {}).get("value")
            for name in ("pearson", "spearman", "mae", "rmse")
        },
        "reason": report.reason,
        **_anchoring_row(figures.get("anchoring") or {}),
    }


def _anchoring_row(anchoring: dict[str, Any]) -> dict[str, Any]:
    """The anchoring comparison's columns (empty in reports from before it)."""
    visible, hidden = anchoring.get("visible") or {}, anchoring.get("hidden") or {}
    interval = anchoring.get("interval") or [None, None]
    return {
        "agreement_suggestion_visible": (visible.get("agreement_rate") or {}).get("value"),
        "answers_suggestion_visible": visible.get("n_answers"),
        "agreement_without_suggestion": (hidden.get("agreement_rate") or {}).get("value"),
        "answers_without_suggestion": hidden.get("n_answers"),
        "anchoring_difference": anchoring.get("difference"),
        "anchoring_low": interval[0],
        "anchoring_high": interval[1],
        "anchoring_verdict": anchoring.get("verdict", ""),
    }


class AlignmentMappingViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet
):
    """An automated score mapped to a reviewers' question, and its reports."""

    scoped_model = AlignmentMapping
    serializer_class = AlignmentMappingSerializer
    filterset_class = filters.AlignmentMappingFilter
    read_roles = READ_ROLES
    write_roles = MANAGE_ROLES

    @extend_schema(
        request=AlignmentMappingCreateSerializer, responses={201: AlignmentMappingSerializer}
    )
    def create(self, request: Request, **kwargs: Any) -> Response:
        """Maps the score and requests its first report."""
        data = validated(request, AlignmentMappingCreateSerializer)
        row = alignment.alignment_mapping_create(actor=self.actor, project=self.project, **data)
        return Response(AlignmentMappingSerializer(row).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, **kwargs: Any) -> Response:
        alignment.alignment_mapping_delete(actor=self.actor, mapping=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=AlignmentScopeWriteSerializer, responses={200: AlignmentMappingSerializer}
    )
    @action(detail=True, methods=["put"], url_path="scope")
    def scope(self, request: Request, **kwargs: Any) -> Response:
        """Sets whose answers the mapping's reports count, and requests a new report
        (earlier reports keep the scope they were computed with, in their figures)."""
        data = validated(request, AlignmentScopeWriteSerializer)
        row = alignment.alignment_mapping_scope_set(
            actor=self.actor, mapping=self.get_object(), **data
        )
        return Response(AlignmentMappingSerializer(row).data)

    @extend_schema(request=None, responses={202: None})
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, **kwargs: Any) -> Response:
        """Asks a worker for a new report."""
        from django.db import transaction

        with transaction.atomic():
            alignment.alignment_request(mapping=self.get_object())
        return Response(status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=AlignmentReportSerializer(many=True))
    @action(detail=True, methods=["get"])
    def reports(self, request: Request, **kwargs: Any) -> Response:
        """The reports, newest first (at most 100): agreement rate, Cohen's kappa, the
        confusion matrix, Pearson, Spearman, MAE, RMSE, per judge version, the worst
        disagreements; or why there is no figure."""
        rows = AlignmentReport.objects.filter(mapping=self.get_object())[:100]
        return Response(AlignmentReportSerializer(rows, many=True).data)

    @extend_schema(responses=CSV_TYPE, operation_id="alignment_reports_csv")
    @action(detail=True, methods=["get"], url_path="reports/csv")
    def reports_csv(self, request: Request, **kwargs: Any) -> HttpResponse:
        mapping = self.get_object()
        rows = [_alignment_row(r) for r in AlignmentReport.objects.filter(mapping=mapping)[:1000]]
        return _csv(rows, ALIGNMENT_COLUMNS, f"alignment-{mapping.pk}.csv")


# --- alerts -----------------------------------------------------------------------------------


class QualityAlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = QualityAlert
        fields = [
            "id", "kind", "queue", "config", "reviewer", "subject", "value", "threshold",
            "window", "message", "created_at",
        ]  # fmt: skip


class QualityAlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    """Agreement, alignment or gold accuracy that fell under its threshold (each also
    sent as an event to the organization's notification destinations)."""

    scoped_model = QualityAlert
    serializer_class = QualityAlertSerializer
    filterset_class = filters.QualityAlertFilter
    read_roles = READ_ROLES
    write_roles = MANAGE_ROLES


# --- quality settings -------------------------------------------------------------------------


class QualitySettingsSerializer(serializers.Serializer):
    agreement_threshold = serializers.FloatField(
        help_text="Alert when a question's rolling agreement (headline coefficient) is under it."
    )
    alignment_threshold = serializers.FloatField(
        help_text="Alert when a metric's rolling agreement rate with the reviewers is under it."
    )
    window = serializers.IntegerField(help_text="Reports in the rolling mean.")
    is_default = serializers.BooleanField(
        help_text="True: the project has no settings of its own; the site's defaults apply."
    )
    updated_at = serializers.DateTimeField(allow_null=True)
    updated_by = serializers.IntegerField(allow_null=True)


class QualitySettingsWriteSerializer(StrictSerializer):
    agreement_threshold = serializers.FloatField(min_value=-1, max_value=1)
    alignment_threshold = serializers.FloatField(min_value=0, max_value=1)
    window = serializers.IntegerField(
        min_value=alerts.WINDOW_RANGE[0], max_value=alerts.WINDOW_RANGE[1]
    )


def _settings_data(limits: alerts.QualityThresholds) -> dict[str, Any]:
    return {
        "agreement_threshold": limits.agreement_threshold,
        "alignment_threshold": limits.alignment_threshold,
        "window": limits.window,
        "is_default": not limits.is_custom,
        "updated_at": limits.updated_at,
        "updated_by": limits.updated_by_id,
    }


class QualitySettingsViewSet(ProjectScopedViewSet):
    """The project's quality alert thresholds and rolling window (the site's defaults
    until set): every role reads them, owners and admins change them."""

    scoped_model = QualitySettings
    write_roles = MANAGE_ROLES

    @extend_schema(responses=QualitySettingsSerializer, operation_id="quality_settings_retrieve")
    def show(self, request: Request, **kwargs: Any) -> Response:
        limits = alerts.quality_thresholds(self.project.pk)
        return Response(QualitySettingsSerializer(_settings_data(limits)).data)

    @extend_schema(
        request=QualitySettingsWriteSerializer,
        responses=QualitySettingsSerializer,
        operation_id="quality_settings_update",
    )
    def change(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, QualitySettingsWriteSerializer)
        alerts.quality_settings_update(actor=self.actor, project=self.project, **data)
        limits = alerts.quality_thresholds(self.project.pk)
        return Response(QualitySettingsSerializer(_settings_data(limits)).data)
