"""Comparison endpoints: comparison items (posted, from traces, from experiments), a
queue's comparison questions and items, a reviewer's view of a leased comparison (the
outputs in their lease's order) and their preferences, the report and the preference
pairs as JSONL. Thin views over ``review.comparison.services`` and ``.selectors``."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from hitl.api.serializers import StrictSerializer
from hitl.api.views import validated
from hitl.exceptions import NotFound
from projects.api.bases import ProjectScopedViewSet
from projects.models import MANAGE_ROLES, REVIEW_ROLES, Role
from review.comparison import report, selectors, services
from review.comparison.filters import ComparisonFilter
from review.comparison.models import (
    MAX_OUTPUTS,
    ComparisonItem,
    ComparisonQueue,
    NWayMode,
    Preference,
)
from review.comparison.services import MAX_BATCH, MAX_CRITERIA
from review.models import PRIORITY_MAX, PRIORITY_MIN, Assignment, ReviewQueue

# Comparisons name the systems; reports name reviewers: managers and auditors read them.
READ_ROLES = MANAGE_ROLES | {Role.AUDITOR}


# --- serializers ------------------------------------------------------------------------


class OutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    position = serializers.IntegerField(read_only=True)
    label = serializers.CharField(max_length=200)
    content = serializers.JSONField(allow_null=True)
    source = serializers.CharField(read_only=True)
    experiment_result_id = serializers.IntegerField(read_only=True, allow_null=True)
    trace_id = serializers.IntegerField(read_only=True, allow_null=True)


class OutputInSerializer(StrictSerializer):
    label = serializers.CharField(max_length=200)
    content = serializers.JSONField(allow_null=True)
    trace_id = serializers.CharField(
        max_length=256,
        required=False,
        help_text="The id its client sent of a trace of this project this output is.",
    )


class ComparisonSerializer(serializers.ModelSerializer):
    outputs = OutputSerializer(many=True, read_only=True)

    class Meta:
        model = ComparisonItem
        fields = [
            "id",
            "input",
            "group_key",
            "source",
            "dataset_item_id",
            "metadata",
            "created_at",
            "outputs",
        ]


class ComparisonCreateSerializer(StrictSerializer):
    input = serializers.JSONField(allow_null=True)
    outputs = OutputInSerializer(many=True, min_length=2, max_length=MAX_OUTPUTS)
    group_key = serializers.CharField(max_length=300, required=False, default="")
    metadata = serializers.DictField(required=False, default=dict)


class FromTracesSerializer(StrictSerializer):
    group_by = serializers.CharField(
        max_length=100, help_text="The metadata key whose values are the systems (variant)."
    )
    trace_ids = serializers.ListField(
        child=serializers.CharField(max_length=256),
        min_length=2,
        max_length=MAX_BATCH * MAX_OUTPUTS,
        help_text="The traces' ids as their client sent them.",
    )


class FromExperimentsSerializer(StrictSerializer):
    experiment_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=2, max_length=MAX_OUTPUTS
    )


class CriterionSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    question = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class SetupSerializer(serializers.ModelSerializer):
    criteria = CriterionSerializer(many=True, min_length=1, max_length=MAX_CRITERIA)
    n_way = serializers.ChoiceField(choices=NWayMode.choices, default=NWayMode.BEST)
    allow_strength = serializers.BooleanField(default=False)

    class Meta:
        model = ComparisonQueue
        fields = ["criteria", "allow_strength", "n_way", "updated_at"]
        read_only_fields = ["updated_at"]


class EnqueueSerializer(StrictSerializer):
    comparison_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=MAX_BATCH
    )
    priority = serializers.IntegerField(min_value=PRIORITY_MIN, max_value=PRIORITY_MAX, default=0)


class EnqueuedSerializer(serializers.Serializer):
    added = serializers.ListField(child=serializers.IntegerField(), help_text="new item ids")


class AnswerSerializer(StrictSerializer):
    choice = serializers.CharField(
        max_length=3,
        required=False,
        help_text="Two outputs: a, b or tie; more: the letter of the best (best of N).",
    )
    strength = serializers.IntegerField(min_value=1, max_value=2, required=False)
    ranking = serializers.ListField(
        child=serializers.CharField(max_length=1),
        max_length=MAX_OUTPUTS,
        required=False,
        help_text="More than two outputs, a full ranking: every letter once, best first.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("choice" in attrs) == ("ranking" in attrs):
            raise serializers.ValidationError("Give either a choice or a ranking.")
        return attrs


class SubmitSerializer(StrictSerializer):
    answers = serializers.DictField(
        child=AnswerSerializer(),
        allow_empty=False,
        help_text="Per criterion, the answer on screen: letters name the outputs in the "
        "order this lease shows them (GET .../comparison/), a the leftmost.",
    )
    explanation = serializers.CharField(
        max_length=20_000, required=False, allow_blank=True, default=""
    )
    accept_lapsed = serializers.BooleanField(default=False)


class ShownOutputSerializer(serializers.Serializer):
    letter = serializers.CharField()
    output_id = serializers.IntegerField()
    label = serializers.CharField(allow_null=True)
    content = serializers.JSONField(allow_null=True)


class LeaseComparisonSerializer(serializers.Serializer):
    comparison_id = serializers.IntegerField()
    input = serializers.JSONField(allow_null=True)
    mode = serializers.CharField()
    allow_strength = serializers.BooleanField()
    criteria = CriterionSerializer(many=True)
    outputs = ShownOutputSerializer(many=True)


class PreferenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Preference
        fields = [
            "id",
            "item",
            "criterion",
            "shown_order",
            "answer_shown",
            "winner",
            "ranking",
            "strength",
            "submitted_at",
        ]


class ReportQuerySerializer(serializers.Serializer):
    criterion = serializers.CharField(max_length=100, required=False)
    resamples = serializers.IntegerField(min_value=0, max_value=5000, default=1000)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)


# --- views ------------------------------------------------------------------------------


class ComparisonViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    """Comparison items: one input, two or more outputs (systems) to compare."""

    scoped_model = ComparisonItem
    serializer_class = ComparisonSerializer
    filterset_class = ComparisonFilter
    read_roles = READ_ROLES
    write_roles = MANAGE_ROLES

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.prefetch_related("outputs").order_by("-created_at", "-id")

    @extend_schema(request=ComparisonCreateSerializer, responses={201: ComparisonSerializer})
    def create(self, request: Request, **kwargs: Any) -> Response:
        """A comparison of posted outputs (a production trace beside a candidate's)."""
        data = validated(request, ComparisonCreateSerializer)
        outputs = [
            services.OutputSpec(
                label=o["label"], content=o["content"], trace_external_id=o.get("trace_id")
            )
            for o in data["outputs"]
        ]
        comparison = services.comparison_item_create(
            actor=self.actor,
            project=self.project,
            input=data["input"],
            outputs=outputs,
            group_key=data["group_key"],
            metadata=data["metadata"],
        )
        return Response(ComparisonSerializer(comparison).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=FromTracesSerializer, responses={201: ComparisonSerializer(many=True)})
    @action(detail=False, methods=["post"], url_path="from-traces")
    def from_traces(self, request: Request, **kwargs: Any) -> Response:
        """One comparison per input answered under two or more values of a metadata key."""
        data = validated(request, FromTracesSerializer)
        made = services.comparison_items_from_traces(
            actor=self.actor,
            project=self.project,
            group_by=data["group_by"],
            trace_external_ids=data["trace_ids"],
        )
        return Response(ComparisonSerializer(made, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=FromExperimentsSerializer, responses={201: ComparisonSerializer(many=True)}
    )
    @action(detail=False, methods=["post"], url_path="from-experiments")
    def from_experiments(self, request: Request, **kwargs: Any) -> Response:
        """One comparison per dataset item the experiments share."""
        data = validated(request, FromExperimentsSerializer)
        made = services.comparison_items_from_experiments(
            actor=self.actor, project=self.project, experiment_ids=data["experiment_ids"]
        )
        return Response(ComparisonSerializer(made, many=True).data, status=status.HTTP_201_CREATED)


class QueueComparisonViewSet(ProjectScopedViewSet):
    """A queue's comparison questions, its comparison items, report and export."""

    scoped_model = ComparisonQueue
    read_roles = READ_ROLES
    write_roles = MANAGE_ROLES
    allow_api_keys = True

    def narrow_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(queue__project=self.project)

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(queue_id=self.kwargs["queue_pk"])

    def _queue(self) -> ReviewQueue:
        queue = ReviewQueue.objects.filter(project=self.project, pk=self.kwargs["queue_pk"]).first()
        if queue is None:
            raise NotFound("No such queue.")
        return queue

    @extend_schema(responses=SetupSerializer, operation_id="queue_comparison_show")
    def show(self, request: Request, **kwargs: Any) -> Response:
        setup = selectors.comparison_setup_of(self._queue())
        if setup is None:
            raise NotFound("This queue has no comparison questions.")
        return Response(SetupSerializer(setup).data)

    @extend_schema(
        request=SetupSerializer, responses=SetupSerializer, operation_id="queue_comparison_set"
    )
    def change(self, request: Request, **kwargs: Any) -> Response:
        """Sets the queue's comparison questions (criteria) and how N outputs are answered."""
        data = validated(request, SetupSerializer)
        setup = services.comparison_setup(actor=self.actor, queue=self._queue(), **data)
        return Response(SetupSerializer(setup).data)

    @extend_schema(
        request=EnqueueSerializer,
        responses={201: EnqueuedSerializer},
        operation_id="queue_comparison_items_add",
    )
    def enqueue(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, EnqueueSerializer)
        items = services.comparison_items_enqueue(actor=self.actor, queue=self._queue(), **data)
        return Response({"added": [i.pk for i in items]}, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[ReportQuerySerializer],
        responses={200: OpenApiTypes.OBJECT},
        operation_id="queue_comparison_report",
    )
    def report(self, request: Request, **kwargs: Any) -> Response:
        """Per criterion: win/tie/loss per pair of systems, Bradley-Terry strengths with
        bootstrap intervals, how often the output shown first won, agreement."""
        query = ReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(report.comparison_report(self._queue(), **query.validated_data))

    @extend_schema(
        responses={200: OpenApiResponse(OpenApiTypes.STR, description="application/jsonl")},
        operation_id="queue_comparison_export",
    )
    def export(self, request: Request, **kwargs: Any) -> HttpResponse:
        """The preference pairs as JSON lines: prompt, chosen, rejected, criterion,
        reviewers, the systems and the strength."""
        queue = self._queue()
        text = "".join(report.preference_pairs_jsonl(queue))
        response = HttpResponse(text, content_type="application/jsonl")
        name = f"queue-{queue.pk}-preferences.jsonl"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class LeaseComparisonViewSet(ProjectScopedViewSet):
    """Your lease on a comparison item: the outputs in the order it shows them, and your
    preferences."""

    scoped_model = Assignment
    read_roles = REVIEW_ROLES
    write_roles = REVIEW_ROLES

    def narrow_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(queue__project=self.project)

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        user = self.actor.user
        if user is None:
            return queryset.none()
        return queryset.filter(reviewer=user, pk=self.kwargs["assignment_pk"]).select_related(
            "item", "queue"
        )

    def _lease(self) -> Assignment:
        lease = self.get_queryset().first()
        if lease is None:
            raise NotFound("No such lease of yours.")
        return lease

    @extend_schema(responses=LeaseComparisonSerializer, operation_id="lease_comparison")
    def show(self, request: Request, **kwargs: Any) -> Response:
        view = selectors.comparison_for_lease(self._lease())
        if view is None:
            raise NotFound("This lease holds no comparison.")
        return Response(
            {
                "comparison_id": view.comparison.pk,
                "input": view.comparison.input,
                "mode": view.mode,
                "allow_strength": view.allow_strength,
                "criteria": view.criteria,
                "outputs": [
                    {
                        "letter": o.letter,
                        "output_id": o.output_id,
                        "label": None if view.blind else o.label,
                        "content": o.content,
                    }
                    for o in view.outputs
                ],
            }
        )

    @extend_schema(
        request=SubmitSerializer,
        responses={201: PreferenceSerializer(many=True)},
        operation_id="lease_comparison_submit",
    )
    def submit(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, SubmitSerializer)
        preferences = services.comparison_submit(
            actor=self.actor, assignment_id=self._lease().pk, **data
        )
        return Response(
            PreferenceSerializer(preferences, many=True).data, status=status.HTTP_201_CREATED
        )
