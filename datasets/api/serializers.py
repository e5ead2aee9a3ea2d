"""Input and output shapes of the datasets API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from datasets.content import ITEM_CONTENT_FIELDS
from datasets.models import (
    Dataset,
    DatasetExport,
    DatasetItem,
    DatasetVersion,
    Experiment,
    ExperimentResult,
    ExportFormat,
    QualityGate,
)
from datasets.selectors import item_live_record
from hitl.api.serializers import StrictSerializer

# --- datasets ---------------------------------------------------------------------------------


class DatasetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = [
            "id",
            "name",
            "description",
            "schema",
            "current_version",
            "created_at",
            "updated_at",
        ]


class DatasetCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    schema = serializers.JSONField(required=False, default=dict)


class DatasetUpdateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    schema = serializers.JSONField(required=False)


# --- items ------------------------------------------------------------------------------------

SOURCE_TRACE_HELP = (
    "The source trace's id as it was sent (GET traces/<id>/ takes it); null: not from a trace."
)
SOURCE_SPAN_HELP = (
    "The source span's id as it was sent, within source_trace_id "
    "(GET traces/<source_trace_id>/spans/<id>/ takes it); null: not from a span."
)
SOURCE_THREAD_HELP = (
    "The source thread's id as it was sent (GET threads/<id>/ takes it); null: not from a thread."
)


def _source_ids(item: DatasetItem) -> dict[str, Any]:
    """The item's live record, where its sources' external ids are kept (the item list
    annotates it as ``live_record``; a single item reads it)."""
    record = getattr(item, "live_record", None)
    if record is None:
        record = item_live_record(item)
    return record


class DatasetItemSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="key", read_only=True)
    item_id = serializers.IntegerField(source="pk", read_only=True)
    # The source's ids as the client sent them at ingestion (what ``traces/<id>/``,
    # ``traces/<trace id>/spans/<id>/`` and ``threads/<id>/`` take), the same values the
    # exports carry; they stay when retention deletes the source.
    source_trace_id = serializers.SerializerMethodField(help_text=SOURCE_TRACE_HELP)
    source_span_id = serializers.SerializerMethodField(help_text=SOURCE_SPAN_HELP)
    source_thread_id = serializers.SerializerMethodField(help_text=SOURCE_THREAD_HELP)
    source_queue_item_id = serializers.IntegerField(source="queue_item_id", read_only=True)
    # A reviewed item nobody stated an expected output for (datasets.models).
    needs_expected_output = serializers.BooleanField(read_only=True)

    class Meta:
        model = DatasetItem
        fields = [
            "id",
            "item_id",
            *ITEM_CONTENT_FIELDS,
            "needs_expected_output",
            "source_type",
            "source_trace_id",
            "source_span_id",
            "source_thread_id",
            "source_queue_item_id",
            "annotation_ids",
            "adjudication_id",
            "reviews",
            "content_hash",
            "created_at",
            "updated_at",
        ]

    # What a reviewer still blind on the item (``review.visibility``: they are labelling
    # it in a blind queue) does not read: the expected output and what others said.
    BLIND_HIDDEN = {
        "expected_output": None,
        "needs_expected_output": False,  # it would tell whether one was stated
        "metadata": {},
        "explanation": "",
        "reviews": [],
        "annotation_ids": [],
        "adjudication_id": None,
    }

    def get_source_trace_id(self, item: DatasetItem) -> str | None:
        return _source_ids(item).get("source_trace_id")

    def get_source_span_id(self, item: DatasetItem) -> str | None:
        return _source_ids(item).get("source_span_id")

    def get_source_thread_id(self, item: DatasetItem) -> str | None:
        return _source_ids(item).get("source_thread_id")

    def to_representation(self, instance: DatasetItem) -> dict:
        data = super().to_representation(instance)
        if instance.pk in self.context.get("blind_item_ids", ()):
            data.update(self.BLIND_HIDDEN)
        return data


class _ItemFields(StrictSerializer):
    input = serializers.JSONField(required=False, allow_null=True)
    expected_output = serializers.JSONField(required=False, allow_null=True)
    expected_tool_calls = serializers.JSONField(required=False, allow_null=True)
    expected_outcome = serializers.CharField(required=False, allow_blank=True)
    metadata = serializers.DictField(required=False)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=100
    )
    failure_reason = serializers.CharField(required=False, allow_blank=True)
    failure_modes = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=100
    )
    explanation = serializers.CharField(required=False, allow_blank=True)


class DatasetItemCreateSerializer(_ItemFields):
    id = serializers.CharField(max_length=300)
    input = serializers.JSONField()


class DatasetItemUpdateSerializer(_ItemFields):
    pass


class ItemChangeSerializer(serializers.Serializer):
    item = DatasetItemSerializer()
    version = serializers.IntegerField(allow_null=True)


# --- promotion ----------------------------------------------------------------------------------


class PromoteOverridesSerializer(StrictSerializer):
    expected_output = serializers.JSONField(required=False, allow_null=True)
    expected_tool_calls = serializers.JSONField(required=False, allow_null=True)
    expected_outcome = serializers.CharField(required=False, allow_blank=True)
    metadata = serializers.DictField(required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    failure_reason = serializers.CharField(required=False, allow_blank=True)
    failure_modes = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False
    )


ACCEPT_OUTPUT_HELP = 'The same as expected_output_from: "output" (kept for older clients).'


def expected_output_from_field(help_text: str) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=["output"], required=False, help_text=help_text)


def accepted_output(attrs: dict) -> dict:
    """``expected_output_from: "output"`` and ``accept_output: true`` say the same: the
    model's output is accepted as expected (``datasets.services.promotion``)."""
    chosen = attrs.pop("expected_output_from", None)
    attrs["accept_output"] = attrs.get("accept_output", False) or chosen == "output"
    return attrs


class PromoteSerializer(StrictSerializer):
    trace_id = serializers.CharField(max_length=256, required=False)
    span_id = serializers.CharField(max_length=256, required=False)
    thread_id = serializers.CharField(max_length=256, required=False)
    queue_item_id = serializers.IntegerField(min_value=1, required=False)
    update_existing = serializers.BooleanField(required=False, default=False)
    overrides = PromoteOverridesSerializer(required=False)
    expected_output_from = expected_output_from_field(
        "\"output\": take the model's output (the trace's, span's or the thread's last "
        "turn's) as the expected output when nobody stated one: you accept it as correct. "
        "Without it (or overrides.expected_output, or a reviewer's stated one) the item "
        "is stored with no expected output and says needs_expected_output."
    )
    accept_output = serializers.BooleanField(
        required=False, default=False, help_text=ACCEPT_OUTPUT_HELP
    )

    def validate(self, attrs: dict) -> dict:
        return accepted_output(attrs)


class PromotionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["created", "updated", "unchanged", "exists"])
    item = DatasetItemSerializer()
    version = serializers.IntegerField(allow_null=True)


class BulkPromoteSerializer(StrictSerializer):
    trace_filter = serializers.DictField(required=False)
    queue_id = serializers.IntegerField(min_value=1, required=False)
    human = serializers.DictField(required=False)
    judge = serializers.DictField(required=False)
    update_existing = serializers.BooleanField(required=False, default=False)
    overrides = PromoteOverridesSerializer(required=False)
    expected_output_from = expected_output_from_field(
        "\"output\": take each item's model output (each trace's, or a reviewed item's "
        "target's) as its expected output when nobody stated one: you accept them all as "
        "correct. Without it they are stored with no expected output and say "
        "needs_expected_output."
    )
    accept_output = serializers.BooleanField(
        required=False, default=False, help_text=ACCEPT_OUTPUT_HELP
    )

    def validate(self, attrs: dict) -> dict:
        if ("trace_filter" in attrs) == ("queue_id" in attrs):
            raise serializers.ValidationError(
                {"trace_filter": ["Give trace_filter or queue_id (with human/judge)."]}
            )
        if "trace_filter" in attrs and ({"human", "judge"} & set(attrs)):
            raise serializers.ValidationError({"human": ["Only with queue_id."]})
        return accepted_output(attrs)


class BulkPromotionSerializer(serializers.Serializer):
    matched = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    exists = serializers.IntegerField()
    existing_item_ids = serializers.ListField(child=serializers.IntegerField())
    rejected = serializers.ListField(child=serializers.DictField())
    version = serializers.IntegerField()


# --- import ----------------------------------------------------------------------------------


class ImportSerializer(StrictSerializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=["jsonl", "csv"], required=False)
    atomic = serializers.BooleanField(required=False, default=False)
    message = serializers.CharField(max_length=500, required=False, allow_blank=True)


class ImportReportSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.DictField())
    version = serializers.IntegerField(allow_null=True)


# --- versions and exports ----------------------------------------------------------------------


class DatasetVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.EmailField(source="created_by.email", allow_null=True, default=None)

    class Meta:
        model = DatasetVersion
        fields = [
            "number",
            "message",
            "item_count",
            "added",
            "changed",
            "removed",
            "created_by",
            "created_by_api_key_prefix",
            "created_at",
        ]


class DiffSerializer(serializers.Serializer):
    source = serializers.IntegerField(source="from")
    to = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    added = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())
    changed = serializers.ListField(child=serializers.DictField())
    truncated = serializers.BooleanField()


class DatasetExportSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number")
    download_url = serializers.SerializerMethodField()
    needs_expected_output = serializers.IntegerField(
        source="version.needs_expected_output",
        read_only=True,
        help_text="Items of the exported version that wait for an expected output (their "
        "expected_output is empty).",
    )

    skip_reasons = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField()),
        read_only=True,
        help_text="OpenAI format: why each skipped item could not become a fine-tuning line "
        '({"item": its id, "reason": ...}; the first 200).',
    )

    class Meta:
        model = DatasetExport
        fields = [
            "id",
            "version",
            "format",
            "state",
            "item_count",
            "skipped",
            "skip_reasons",
            "needs_expected_output",
            "size_bytes",
            "error",
            "created_at",
            "finished_at",
            "download_url",
        ]

    def get_download_url(self, export: DatasetExport) -> str | None:
        if export.state != "done":
            return None
        return f"{export.pk}/download/"


class ExportStartSerializer(StrictSerializer):
    format = serializers.ChoiceField(choices=ExportFormat.choices)
    version = serializers.IntegerField(min_value=1, required=False)


# --- experiments and the gate ---------------------------------------------------------------


class ExperimentSerializer(serializers.ModelSerializer):
    dataset_id = serializers.IntegerField(read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)

    class Meta:
        model = Experiment
        fields = [
            "id",
            "name",
            "dataset_id",
            "version",
            "status",
            "metadata",
            "summary",
            "created_by_api_key_prefix",
            "created_at",
            "finished_at",
        ]


class ExperimentCreateSerializer(StrictSerializer):
    dataset_id = serializers.IntegerField(min_value=1)
    version = serializers.IntegerField(min_value=1, required=False)
    name = serializers.CharField(max_length=200)
    metadata = serializers.DictField(required=False)


class ResultInputSerializer(StrictSerializer):
    id = serializers.CharField(max_length=300)
    output = serializers.JSONField(required=False, allow_null=True)
    scores = serializers.DictField(required=False)
    trace_id = serializers.CharField(max_length=256, required=False, allow_blank=True)
    error = serializers.CharField(required=False, allow_blank=True)


class ResultsBatchSerializer(StrictSerializer):
    results = ResultInputSerializer(many=True, allow_empty=False, max_length=1000)


class ResultsStoredSerializer(serializers.Serializer):
    stored = serializers.IntegerField()
    experiment = serializers.IntegerField()


class ExperimentResultSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="key")
    trace_id = serializers.CharField(source="trace_external_id")

    class Meta:
        model = ExperimentResult
        fields = ["id", "output", "scores", "trace_id", "error", "updated_at"]


class FinishSerializer(StrictSerializer):
    summary = serializers.DictField(required=False)


class GateSerializer(serializers.ModelSerializer):
    baseline_experiment_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = QualityGate
        fields = [
            "thresholds",
            "baseline_experiment_id",
            "min_judge_alignment",
            "judge_score_name",
            "human_question",
            "alignment_tolerance",
            "min_reviewer_agreement",
            "updated_at",
        ]


class GateInputSerializer(StrictSerializer):
    thresholds = serializers.JSONField(required=False)
    baseline_experiment_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    min_judge_alignment = serializers.FloatField(required=False, allow_null=True)
    judge_score_name = serializers.CharField(max_length=256, required=False, allow_blank=True)
    human_question = serializers.CharField(max_length=200, required=False, allow_blank=True)
    alignment_tolerance = serializers.FloatField(required=False, min_value=0)
    min_reviewer_agreement = serializers.FloatField(required=False, allow_null=True)


class VerdictSerializer(serializers.Serializer):
    experiment = serializers.IntegerField()
    experiment_name = serializers.CharField()
    dataset = serializers.IntegerField()
    version = serializers.IntegerField()
    baseline = serializers.IntegerField(allow_null=True)
    verdict = serializers.ChoiceField(choices=["pass", "fail"])
    passed = serializers.BooleanField()
    checks = serializers.ListField(child=serializers.DictField())
    counts = serializers.DictField(child=serializers.IntegerField())
    needs_expected_output = serializers.IntegerField()


class CompareSerializer(serializers.Serializer):
    baseline = serializers.IntegerField()
    candidate = serializers.IntegerField()
    baseline_version = serializers.IntegerField()
    candidate_version = serializers.IntegerField()
    metrics = serializers.DictField()
    counts = serializers.DictField(child=serializers.IntegerField())
    regressed = serializers.ListField(child=serializers.DictField())
    improved = serializers.ListField(child=serializers.DictField())


class VersionRecordsSerializer(serializers.Serializer):
    records = serializers.ListField(child=serializers.DictField())
    next_after = serializers.CharField(allow_null=True)
