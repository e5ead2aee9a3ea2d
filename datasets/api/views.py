"""Datasets endpoints: thin views over datasets.services and datasets.selectors."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from datasets import filters, selectors, services
from datasets.api import serializers as s
from datasets.gate import gate_verdict
from datasets.models import (
    Dataset,
    DatasetExport,
    DatasetItem,
    DatasetItemRevision,
    DatasetVersion,
    Experiment,
    ExperimentResult,
    JobState,
    QualityGate,
)
from datasets.services.exports import export_key
from hitl import storage
from hitl.api.history import HistoryActionMixin
from hitl.api.pagination import CreatedCursorPagination
from hitl.api.serializers import StrictSerializer
from hitl.api.views import validated
from hitl.exceptions import Conflict, DomainError, NotFound, PermissionDenied
from projects.api.bases import ProjectScopedViewSet
from projects.models import ALL_ROLES, MANAGE_ROLES


class KeyCursorPagination(CreatedCursorPagination):
    ordering = ("key", "id")


class NumberCursorPagination(CreatedCursorPagination):
    ordering = ("-number",)


def _query(request: Request, serializer_class: type[StrictSerializer]) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    if not serializer.is_valid():
        raise DomainError(
            "Invalid query parameters.", code="invalid_parameters", details=serializer.errors
        )
    return serializer.validated_data


def _blind_item_ids(request: Request) -> set[int]:
    """Dataset items the reader labels in a blind queue without having answered yet
    (``review.visibility``): their expected output and what others said stay hidden."""
    from review.visibility import blind_dataset_item_ids
    from traces.hooks import viewer_of

    return set(blind_dataset_item_ids(viewer_of(request)))


# What a diff still shows of an item its reader is blind on.
BLIND_DIFF_FIELDS = ("input", "tags", "source_type", "source_trace_id", "source_span_id",
                     "source_thread_id")  # fmt: skip


class _DatasetScoped(ProjectScopedViewSet):
    """Endpoints under ``datasets/<dataset_pk>/``: the dataset is the project's."""

    _scoping_base = True
    read_roles = ALL_ROLES
    write_roles = MANAGE_ROLES

    def dataset(self) -> Dataset:
        found = Dataset.objects.filter(project=self.project, pk=self.kwargs["dataset_pk"]).first()
        if found is None:
            raise NotFound("Dataset not found.")
        return found

    def narrow_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(dataset__project=self.project, dataset_id=self.kwargs["dataset_pk"])


class _DatasetList(mixins.ListModelMixin):
    """A list under a dataset: a missing or foreign dataset answers 404, not []."""

    def list(self, request: Request, **kwargs: Any) -> Response:
        self.dataset()
        return super().list(request, **kwargs)


# --- datasets ---------------------------------------------------------------------------------


class DiffQuerySerializer(StrictSerializer):
    source = serializers.IntegerField(min_value=1)
    to = serializers.IntegerField(min_value=1)

    def to_internal_value(self, data: Any) -> Any:
        data = {("source" if k == "from" else k): v for k, v in data.items()}
        return super().to_internal_value(data)


class DatasetViewSet(
    HistoryActionMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet
):
    """Datasets of the project, their schema, promotion, diffs and the quality gate."""

    scoped_model = Dataset
    serializer_class = s.DatasetSerializer
    filterset_class = filters.DatasetFilter
    read_roles = ALL_ROLES
    write_roles = MANAGE_ROLES

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.order_by("-created_at", "-id")

    @extend_schema(request=s.DatasetCreateSerializer, responses={201: s.DatasetSerializer})
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.DatasetCreateSerializer)
        dataset = services.dataset_create(actor=self.actor, project=self.project, **data)
        return Response(s.DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.DatasetUpdateSerializer, responses=s.DatasetSerializer)
    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.DatasetUpdateSerializer)
        dataset = services.dataset_update(actor=self.actor, dataset=self.get_object(), **data)
        return Response(s.DatasetSerializer(dataset).data)

    @extend_schema(
        request=s.PromoteSerializer,
        responses={201: s.PromotionSerializer, 200: s.PromotionSerializer},
        description="Promotes a trace, span (trace_id + span_id), thread or reviewed queue "
        "item: 201 with the new item. If the dataset has the source already (a retry of a "
        "promotion that landed, too): 409 `already_in_dataset` with the item's `item_id` "
        "and `id` in the error's details, unless update_existing (then 200, updated or "
        "unchanged). The expected output is one a person accepted, never the model's "
        "output on its own: a reviewed queue item's reviewers' or adjudicator's, else "
        "`overrides.expected_output` (the one you type), else the model's output (the "
        "trace's, span's, thread's last turn's) only with `expected_output_from: "
        '"output"`; otherwise it stays empty and the item says `needs_expected_output`.',
    )
    @action(detail=True, methods=["post"])
    def promote(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.PromoteSerializer)
        overrides = data.pop("overrides", {})
        result = services.dataset_promote(
            actor=self.actor, dataset=self.get_object(), overrides=overrides, **data
        )
        if result.status == "exists":
            # A retry of a promotion that landed answers this too: the details name the
            # item, so the client can read it instead of guessing.
            raise Conflict(
                "The dataset already has this source; send update_existing to update it.",
                code="already_in_dataset",
                details={"item_id": result.item.pk, "id": result.item.key},
            )
        body = {
            "status": result.status,
            "item": result.item,  # the instance: PromotionSerializer serializes it
            "version": result.version.number if result.version else None,
        }
        code = status.HTTP_201_CREATED if result.status == "created" else status.HTTP_200_OK
        return Response(s.PromotionSerializer(body).data, status=code)

    @extend_schema(request=s.BulkPromoteSerializer, responses=s.BulkPromotionSerializer)
    @action(detail=True, methods=["post"], url_path="promote-bulk")
    def promote_bulk(self, request: Request, **kwargs: Any) -> Response:
        """From a trace filter (the trace list's parameters), or from a queue's reviewed
        items, optionally where the reviewers' answer and a judge's score meet
        conditions (e.g. reviewers failed it, the judge passed it). Expected outputs as
        in a single promotion: a model's output only with `expected_output_from:
        "output"`."""
        data = validated(request, s.BulkPromoteSerializer)
        common = {
            "actor": self.actor,
            "dataset": self.get_object(),
            "update_existing": data["update_existing"],
            "overrides": data.get("overrides") or {},
            "accept_output": data["accept_output"],
        }
        if "trace_filter" in data:
            report = services.dataset_promote_from_trace_filter(
                params=data["trace_filter"], **common
            )
        else:
            report = services.dataset_promote_from_reviews(
                queue_id=data["queue_id"],
                human=data.get("human"),
                judge=data.get("judge"),
                **common,
            )
        return Response(s.BulkPromotionSerializer(report).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("from", int, required=True),
            OpenApiParameter("to", int, required=True),
        ],
        responses=s.DiffSerializer,
    )
    @action(detail=True, methods=["get"])
    def diff(self, request: Request, **kwargs: Any) -> Response:
        """Items added, removed and changed (field by field) between two versions."""
        query = _query(request, DiffQuerySerializer)
        dataset = self.get_object()
        diff = selectors.version_diff(
            dataset=dataset, from_number=query["source"], to_number=query["to"]
        )
        blind = _blind_item_ids(request)
        if blind:
            hidden = set(
                DatasetItem.objects.filter(dataset=dataset, pk__in=blind).values_list(
                    "key", flat=True
                )
            )
            for change in diff["changed"]:
                if change["id"] in hidden:
                    change["fields"] = {
                        k: v for k, v in change["fields"].items() if k in BLIND_DIFF_FIELDS
                    }
                    change["hidden"] = True
        return Response(s.DiffSerializer(diff).data)

    @extend_schema(methods=["GET"], responses=s.GateSerializer)
    @extend_schema(methods=["PUT"], request=s.GateInputSerializer, responses=s.GateSerializer)
    @action(detail=True, methods=["get", "put"])
    def gate(self, request: Request, **kwargs: Any) -> Response:
        """The dataset's quality gate (PUT replaces the fields given)."""
        dataset = self.get_object()
        if request.method == "PUT":
            data = validated(request, s.GateInputSerializer)
            if "baseline_experiment_id" in data:
                baseline_id = data.pop("baseline_experiment_id")
                baseline = None
                if baseline_id is not None:
                    baseline = Experiment.objects.filter(
                        project=self.project, pk=baseline_id
                    ).first()
                    if baseline is None:
                        raise NotFound("Baseline experiment not found.")
                data["baseline_experiment"] = baseline
            gate = services.quality_gate_set(actor=self.actor, dataset=dataset, **data)
            return Response(s.GateSerializer(gate).data)
        gate = QualityGate.objects.filter(dataset=dataset).first()
        if gate is None:
            raise NotFound("This dataset has no quality gate.", code="no_gate")
        return Response(s.GateSerializer(gate).data)


# --- items ------------------------------------------------------------------------------------


class DatasetItemViewSet(
    HistoryActionMixin, _DatasetList, mixins.RetrieveModelMixin, _DatasetScoped
):
    """The current items of a dataset; every change makes a new version."""

    scoped_model = DatasetItem
    serializer_class = s.DatasetItemSerializer
    filterset_class = filters.DatasetItemFilter
    pagination_class = KeyCursorPagination

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        # The live record holds the sources' external ids the serializer answers.
        live = DatasetItemRevision.objects.filter(
            dataset_id=OuterRef("dataset_id"), key=OuterRef("key"), removed_in__isnull=True
        )
        return queryset.annotate(live_record=Subquery(live.values("content")[:1]))

    def blind_item_ids(self) -> set[int]:
        return _blind_item_ids(self.request)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "blind_item_ids": self.blind_item_ids()}

    @extend_schema(request=s.DatasetItemCreateSerializer, responses={201: s.ItemChangeSerializer})
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.DatasetItemCreateSerializer)
        key = data.pop("id")
        item, version = services.dataset_item_create(
            actor=self.actor, dataset=self.dataset(), key=key, **data
        )
        body = {"item": item, "version": version.number if version else None}
        return Response(s.ItemChangeSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.DatasetItemUpdateSerializer, responses=s.ItemChangeSerializer)
    def partial_update(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.DatasetItemUpdateSerializer)
        item, version = services.dataset_item_update(
            actor=self.actor, item=self.get_object(), **data
        )
        return Response(
            s.ItemChangeSerializer(
                {"item": item, "version": version.number if version else None}
            ).data
        )

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request: Request, **kwargs: Any) -> Response:
        services.dataset_item_delete(actor=self.actor, item=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def check_history_readable(self, obj: DatasetItem) -> None:
        if obj.pk in self.blind_item_ids():
            raise PermissionDenied(
                "You are labelling this item in a blind queue: its history shows once you "
                "have answered.",
                code="blind",
            )


class DatasetImportViewSet(_DatasetScoped):
    """Upload a JSONL or CSV file of items (multipart ``file``)."""

    scoped_model = DatasetItem
    parser_classes = [MultiPartParser, FormParser]
    max_body_bytes = settings.HITL_IMPORT_MAX_BYTES
    serializer_class = s.ImportReportSerializer

    @extend_schema(
        request={"multipart/form-data": s.ImportSerializer},
        responses=s.ImportReportSerializer,
        description="Each bad row is reported with its line and reason. atomic=true: any "
        "bad row and nothing lands (400 `import_rejected`); otherwise the good rows land "
        "as one new version.",
    )
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.ImportSerializer)
        upload = data["file"]
        file_format = data.get("format") or (
            "csv" if upload.name.lower().endswith(".csv") else "jsonl"
        )
        report = services.dataset_import(
            actor=self.actor,
            dataset=self.dataset(),
            stream=upload.open("rb"),
            file_format=file_format,
            atomic=data["atomic"],
            message=data.get("message") or f"import {upload.name}",
        )
        return Response(s.ImportReportSerializer(report.as_dict()).data)


# --- versions and exports ----------------------------------------------------------------------


class RecordsQuerySerializer(StrictSerializer):
    after = serializers.CharField(max_length=300, required=False, allow_blank=True)
    limit = serializers.IntegerField(min_value=1, max_value=1000, required=False, default=100)


class DatasetVersionViewSet(_DatasetList, mixins.RetrieveModelMixin, _DatasetScoped):
    """Immutable versions, newest first (``versions/<number>/``)."""

    scoped_model = DatasetVersion
    serializer_class = s.DatasetVersionSerializer
    filterset_class = filters.DatasetVersionFilter
    pagination_class = NumberCursorPagination
    lookup_field = "number"
    lookup_url_kwarg = "number"

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("created_by")

    @extend_schema(
        parameters=[RecordsQuerySerializer],
        responses=s.VersionRecordsSerializer,
        description="The version's records (as an export writes them) in id order, "
        "``limit`` at a time; ``next_after`` is the id to pass as ``after`` for the next "
        "page, null on the last. What an eval job runs its application over.",
    )
    @action(detail=True, methods=["get"])
    def records(self, request: Request, **kwargs: Any) -> Response:
        query = _query(request, RecordsQuerySerializer)
        version = self.get_object()
        blind = _blind_item_ids(request)
        mine = DatasetItem.objects.filter(dataset_id=version.dataset_id, pk__in=blind)
        if blind and mine.exists():
            raise PermissionDenied(
                "You are labelling items of this dataset in a blind queue: its records open "
                "once you have answered.",
                code="blind",
            )
        records, next_after = selectors.version_records_page(
            version, after=query.get("after", ""), limit=query["limit"]
        )
        return Response({"records": records, "next_after": next_after})


class DatasetExportViewSet(_DatasetList, mixins.RetrieveModelMixin, _DatasetScoped):
    """Exports of a version, written by a worker; download when ``state`` is done."""

    scoped_model = DatasetExport
    serializer_class = s.DatasetExportSerializer
    filterset_class = filters.DatasetExportFilter

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("version")

    @extend_schema(request=s.ExportStartSerializer, responses={202: s.DatasetExportSerializer})
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.ExportStartSerializer)
        export = services.dataset_export_start(
            actor=self.actor,
            dataset=self.dataset(),
            version=data.get("version"),
            file_format=data["format"],
        )
        return Response(s.DatasetExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={
            (200, "application/octet-stream"): bytes,
            302: OpenApiResponse(
                description="Exports stored in an S3 bucket with signed URLs: the file's "
                "URL, signed, for HITL_S3_URL_EXPIRES_SECONDS (docs/SCALING.md)."
            ),
        }
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, **kwargs: Any) -> Any:
        export = self.get_object()
        blind = _blind_item_ids(request)
        items = DatasetItem.objects.filter(dataset_id=export.dataset_id, pk__in=blind)
        if blind and items.exists():
            raise PermissionDenied(
                "You are labelling items of this dataset in a blind queue: its exports open "
                "once you have answered.",
                code="blind",
            )
        if export.state != JobState.DONE:
            raise Conflict(
                f"The export is {export.state}, not ready to download.",
                code="export_not_ready",
            )
        # Streamed from the shared storage (or a signed URL of it), whichever process
        # wrote it; the row above is the tenant's, so is the file.
        return storage.download_response(
            export_key(export),
            filename=export.file_name,
            missing=lambda: NotFound("The export file is gone; start a new export.", code="gone"),
        )


# --- experiments ------------------------------------------------------------------------------


class BaselineQuerySerializer(StrictSerializer):
    baseline = serializers.IntegerField(min_value=1, required=False)


class ExperimentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet):
    """Runs of the application over pinned dataset versions, posted by eval jobs."""

    scoped_model = Experiment
    serializer_class = s.ExperimentSerializer
    filterset_class = filters.ExperimentFilter
    read_roles = ALL_ROLES
    write_roles = MANAGE_ROLES

    def safely_get_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("version")

    def _baseline(self, request: Request) -> Experiment | None:
        query = _query(request, BaselineQuerySerializer)
        if "baseline" not in query:
            return None
        baseline = (
            Experiment.objects.select_related("version")
            .filter(project=self.project, pk=query["baseline"])
            .first()
        )
        if baseline is None:
            raise NotFound("Baseline experiment not found.")
        return baseline

    @extend_schema(request=s.ExperimentCreateSerializer, responses={201: s.ExperimentSerializer})
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.ExperimentCreateSerializer)
        dataset = Dataset.objects.filter(project=self.project, pk=data.pop("dataset_id")).first()
        if dataset is None:
            raise NotFound("Dataset not found.", details={"dataset_id": ["Not found."]})
        experiment = services.experiment_create(actor=self.actor, dataset=dataset, **data)
        return Response(s.ExperimentSerializer(experiment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.FinishSerializer, responses=s.ExperimentSerializer)
    @action(detail=True, methods=["post"])
    def finish(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.FinishSerializer)
        experiment = services.experiment_finish(
            actor=self.actor, experiment=self.get_object(), summary=data.get("summary")
        )
        return Response(s.ExperimentSerializer(experiment).data)

    @extend_schema(
        parameters=[OpenApiParameter("baseline", int, required=True)],
        responses=s.CompareSerializer,
    )
    @action(detail=True, methods=["get"])
    def compare(self, request: Request, **kwargs: Any) -> Response:
        """Per-metric deltas and regressed/improved items against ``baseline``."""
        baseline = self._baseline(request)
        if baseline is None:
            raise DomainError(
                "Name the baseline experiment.",
                code="invalid_parameters",
                details={"baseline": ["Required."]},
            )
        comparison = selectors.experiment_compare(baseline=baseline, candidate=self.get_object())
        return Response(s.CompareSerializer(comparison).data)

    @extend_schema(
        parameters=[OpenApiParameter("baseline", int, required=False)],
        responses=s.VerdictSerializer,
        description="The dataset's quality gate on this experiment: pass/fail per "
        "threshold with the numbers. 409 `experiment_running` until the experiment is "
        "finished; 404 `no_gate` if the dataset has no gate.",
    )
    @action(detail=True, methods=["get"])
    def gate(self, request: Request, **kwargs: Any) -> Response:
        verdict = gate_verdict(experiment=self.get_object(), baseline=self._baseline(request))
        return Response(s.VerdictSerializer(verdict).data)


class ExperimentResultViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, ProjectScopedViewSet
):
    """Per-item results of an experiment; POST a batch (idempotent per item)."""

    scoped_model = ExperimentResult
    serializer_class = s.ExperimentResultSerializer
    filterset_class = filters.ExperimentResultFilter
    pagination_class = KeyCursorPagination
    read_roles = ALL_ROLES
    write_roles = MANAGE_ROLES

    def narrow_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(
            experiment__project=self.project, experiment_id=self.kwargs["experiment_pk"]
        )

    def _experiment(self) -> Experiment:
        experiment = (
            Experiment.objects.select_related("version")
            .filter(project=self.project, pk=self.kwargs["experiment_pk"])
            .first()
        )
        if experiment is None:
            raise NotFound("Experiment not found.")
        return experiment

    def list(self, request: Request, **kwargs: Any) -> Response:
        self._experiment()
        return super().list(request, **kwargs)

    @extend_schema(request=s.ResultsBatchSerializer, responses=s.ResultsStoredSerializer)
    def create(self, request: Request, **kwargs: Any) -> Response:
        data = validated(request, s.ResultsBatchSerializer)
        stored = services.experiment_results_post(
            actor=self.actor, experiment=self._experiment(), results=data["results"]
        )
        return Response(s.ResultsStoredSerializer(stored).data)
