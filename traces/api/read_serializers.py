"""Output shapes of the trace read endpoints, for the OpenAPI schema.

The selectors build the responses as plain data (a 500-span detail is mostly payload;
per-field serializer machinery would cost more than the database); tests hold the two
to the same keys.

Ids are the client's ids: ``trace_id``, ``span_id``, ``thread_id`` are the external ids
the application sent. Scores and feedback carry our own numeric ``id``.
"""

from __future__ import annotations

from rest_framework import serializers

from traces.models import FeedbackKind, ScoreDataType, ScoreSource, SpanKind, Status


class ScoreSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    source = serializers.ChoiceField(choices=ScoreSource.choices)
    count = serializers.IntegerField()
    average = serializers.FloatField(allow_null=True, help_text="Mean of the numeric values.")


class FeedbackSummarySerializer(serializers.Serializer):
    count = serializers.IntegerField()
    thumbs_up = serializers.IntegerField()
    thumbs_down = serializers.IntegerField()
    average_rating = serializers.FloatField(allow_null=True)


class TraceRowSerializer(serializers.Serializer):
    """A lean trace: everything but the payloads."""

    trace_id = serializers.CharField()
    name = serializers.CharField()
    thread_id = serializers.CharField(allow_null=True, help_text="Thread (session) id.")
    tags = serializers.ListField(child=serializers.CharField())
    user_id = serializers.CharField()
    environment = serializers.CharField()
    release = serializers.CharField()
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    latency_ms = serializers.FloatField(allow_null=True)
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=18, decimal_places=8, allow_null=True)
    status = serializers.ChoiceField(choices=Status.choices)
    is_placeholder = serializers.BooleanField(
        help_text="True while only spans have named this trace."
    )
    span_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class TraceListRowSerializer(TraceRowSerializer):
    score_summary = ScoreSummarySerializer(many=True, help_text="Per score name and source.")
    feedback_summary = FeedbackSummarySerializer()


class ScoreReadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    span_id = serializers.CharField(allow_null=True, help_text="Span id, if on a span.")
    name = serializers.CharField()
    data_type = serializers.ChoiceField(choices=ScoreDataType.choices)
    value = serializers.FloatField(allow_null=True)
    label = serializers.CharField()
    rationale = serializers.CharField()
    source = serializers.ChoiceField(choices=ScoreSource.choices)
    source_name = serializers.CharField()
    source_version = serializers.CharField()
    author_id = serializers.IntegerField(allow_null=True)
    metadata = serializers.JSONField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class FeedbackReadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    span_id = serializers.CharField(allow_null=True, help_text="Span id, if on a span.")
    kind = serializers.ChoiceField(choices=FeedbackKind.choices)
    value = serializers.FloatField(allow_null=True, help_text="Thumbs: 1 up, -1 down.")
    comment = serializers.CharField()
    end_user_id = serializers.CharField()
    metadata = serializers.JSONField()
    created_at = serializers.DateTimeField()


class SpanFieldsSerializer(serializers.Serializer):
    """A span's own columns, its place in the tree, its scores and feedback."""

    span_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=SpanKind.choices)
    name = serializers.CharField()
    model = serializers.CharField()
    provider = serializers.CharField()
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    offset_ms = serializers.FloatField(
        allow_null=True, help_text="Start, in ms after the trace's earliest start."
    )
    duration_ms = serializers.FloatField(allow_null=True)
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=18, decimal_places=8, allow_null=True)
    status = serializers.ChoiceField(choices=Status.choices)
    error_message = serializers.CharField()
    input = serializers.JSONField(allow_null=True)
    output = serializers.JSONField(allow_null=True)
    parent_span_id = serializers.CharField(
        allow_null=True, help_text="Null at the root level (including orphans)."
    )
    is_orphan = serializers.BooleanField(
        help_text="Its parent never arrived (or sits in a cycle): shown at the root level."
    )
    children = serializers.ListField(
        child=serializers.CharField(), help_text="Child span ids, in start order."
    )
    scores = ScoreReadSerializer(many=True)
    feedback = FeedbackReadSerializer(many=True)


class SpanNodeSerializer(SpanFieldsSerializer):
    depth = serializers.IntegerField(help_text="0 at the root level.")
    annotations = serializers.ListField(child=serializers.JSONField(), read_only=True)
    comments = serializers.ListField(child=serializers.JSONField(), read_only=True)


class SpanDetailSerializer(SpanFieldsSerializer):
    trace_id = serializers.CharField()
    attributes = serializers.JSONField()


class TraceDetailSerializer(TraceRowSerializer):
    """The whole trace: its fields, payloads, and the span tree in depth-first order."""

    input = serializers.JSONField(allow_null=True)
    output = serializers.JSONField(allow_null=True)
    metadata = serializers.JSONField()
    error_message = serializers.CharField()
    timeline_start = serializers.DateTimeField(
        allow_null=True, help_text="Zero of every span's offset_ms: the earliest known start."
    )
    spans = SpanNodeSerializer(
        many=True, help_text="Depth-first; a span's children follow it in start order."
    )
    scores = ScoreReadSerializer(many=True, help_text="Scores on the trace itself.")
    feedback = FeedbackReadSerializer(many=True, help_text="Feedback on the trace itself.")
    annotations = serializers.ListField(child=serializers.JSONField(), read_only=True)
    comments = serializers.ListField(child=serializers.JSONField(), read_only=True)


class ThreadRowSerializer(serializers.Serializer):
    thread_id = serializers.CharField(source="external_id")
    metadata = serializers.JSONField()
    trace_count = serializers.IntegerField()
    first_start_time = serializers.DateTimeField(allow_null=True)
    last_start_time = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
