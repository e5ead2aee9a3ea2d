"""Shapes of the ingestion endpoints, for the OpenAPI schema and the single-item
endpoints. The batch endpoint validates events itself (``traces.ingest.validation``)
so that one bad event rejects only itself."""

from __future__ import annotations

from rest_framework import serializers

from hitl.api.serializers import StrictSerializer
from traces.ingest import validation
from traces.models import AUTOMATED_SCORE_SOURCES, Feedback, Score


class IngestEventSerializer(StrictSerializer):
    type = serializers.ChoiceField(choices=validation.EVENT_TYPES)
    id = serializers.CharField(required=False, help_text="Client event id, echoed in rejections.")
    body = serializers.DictField(
        help_text=(
            "trace: id, name, thread_id|session_id, input, output, metadata, tags, user_id, "
            "environment, release, start_time, end_time, status, error. "
            "span: id, trace_id, parent_id, kind, name, model, provider, input, output, "
            "attributes, start_time, end_time, input_tokens, output_tokens, cached_tokens, "
            "reasoning_tokens, total_tokens, cost, status, error. "
            "score: id, trace_id [+ span_id] | thread_id, name, value | label, data_type, "
            "rationale, source (llm_judge|code), source_name, source_version, metadata. "
            "feedback: id, trace_id [+ span_id] | thread_id, kind (thumbs|rating|comment), "
            "value, comment, end_user_id, metadata."
        )
    )


class _TargetFields(serializers.Serializer):
    trace_id = serializers.CharField(required=False)
    span_id = serializers.CharField(required=False, help_text="Needs trace_id.")
    thread_id = serializers.CharField(required=False)


class ScoreBodySerializer(_TargetFields):
    id = serializers.CharField(required=False, help_text="Client id: re-sending updates.")
    name = serializers.CharField()
    value = serializers.JSONField(required=False, help_text="A number, or true/false.")
    label = serializers.CharField(required=False)
    data_type = serializers.ChoiceField(choices=sorted(validation.DATA_TYPES), required=False)
    rationale = serializers.CharField(required=False)
    source = serializers.ChoiceField(choices=sorted(AUTOMATED_SCORE_SOURCES))
    source_name = serializers.CharField(required=False)
    source_version = serializers.CharField(required=False)
    metadata = serializers.DictField(required=False)
    timestamp = serializers.DateTimeField(required=False)


class FeedbackBodySerializer(_TargetFields):
    id = serializers.CharField(required=False, help_text="Client id: re-sending updates.")
    kind = serializers.ChoiceField(choices=sorted(validation.FEEDBACK_KINDS))
    value = serializers.JSONField(required=False, help_text="up/down, a rating, ...")
    comment = serializers.CharField(required=False)
    end_user_id = serializers.CharField(required=False)
    metadata = serializers.DictField(required=False)
    timestamp = serializers.DateTimeField(required=False)


class IngestBatchSerializer(StrictSerializer):
    events = IngestEventSerializer(many=True)


class RejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.CharField(allow_null=True)
    type = serializers.CharField()
    code = serializers.CharField()
    reason = serializers.CharField()


class IngestResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    accepted = serializers.IntegerField()
    stored = serializers.DictField(child=serializers.IntegerField())
    rejected = RejectionSerializer(many=True)


class ScoreSerializer(serializers.ModelSerializer):
    trace_id = serializers.CharField(source="trace.external_id", default=None)
    span_id = serializers.CharField(source="span.external_id", default=None)
    thread_id = serializers.CharField(source="thread.external_id", default=None)
    id = serializers.CharField(source="external_id")

    class Meta:
        model = Score
        fields = ["id", "trace_id", "span_id", "thread_id", "name", "data_type", "value",
                  "label", "rationale", "source", "source_name", "source_version",
                  "metadata", "created_at", "updated_at"]  # fmt: skip


class FeedbackSerializer(serializers.ModelSerializer):
    trace_id = serializers.CharField(source="trace.external_id", default=None)
    span_id = serializers.CharField(source="span.external_id", default=None)
    thread_id = serializers.CharField(source="thread.external_id", default=None)
    id = serializers.CharField(source="external_id")

    class Meta:
        model = Feedback
        fields = ["id", "trace_id", "span_id", "thread_id", "kind", "value", "comment",
                  "end_user_id", "metadata", "created_at"]  # fmt: skip
