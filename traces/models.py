"""Traces, spans, threads, automated scores and end-user feedback.

Client ids are the identity: (project, external_id) for traces and threads, (trace,
external_id) for spans. Re-sending is an update, never a duplicate. Spans may arrive
before their trace (a placeholder trace row is created) or their parent (the parent is
linked by ``parent_external_id`` and resolved when the tree is read).

Large payloads (``input``, ``output``, ``attributes``) live in jsonb columns that
PostgreSQL stores out of line (TOAST); list queries never select them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone

from hitl.audit import history
from hitl.tenancy import TenantModel


class Status(models.TextChoices):
    UNSET = "unset", "Unset"
    OK = "ok", "OK"
    ERROR = "error", "Error"


class SpanKind(models.TextChoices):
    LLM = "llm", "LLM call"
    TOOL = "tool", "Tool call"
    RETRIEVAL = "retrieval", "Retrieval"
    AGENT = "agent", "Agent"
    CHAIN = "chain", "Chain"
    GUARDRAIL = "guardrail", "Guardrail"
    EMBEDDING = "embedding", "Embedding"
    OTHER = "other", "Other"


class Thread(TenantModel):
    """A conversation or session: traces that belong together, in order."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=256)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="thread_external_id")
        ]

    def __str__(self) -> str:
        return self.external_id


class Trace(TenantModel):
    """One run of the application: the root of a span tree."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=256)
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.SET_NULL, related_name="traces"
    )
    name = models.CharField(max_length=512, blank=True, default="")
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    tags = ArrayField(models.CharField(max_length=128), default=list, blank=True)
    user_id = models.CharField(max_length=256, blank=True, default="")  # the end user
    environment = models.CharField(max_length=64, blank=True, default="")
    release = models.CharField(max_length=128, blank=True, default="")
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.UNSET)
    error_message = models.TextField(blank=True, default="")
    # False while only spans have named the trace (it arrived before its trace event).
    is_placeholder = models.BooleanField(default=False)
    # What the trace's scores and feedback say, kept by database triggers so the list
    # can skip traces that cannot match a score or feedback condition (traces/score_summary.py).
    signals = models.JSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="trace_external_id")
        ]
        indexes = [
            # The list's newest-first walk; start_time last so a time window is checked in
            # the index, without reading the rows it passes.
            models.Index(
                fields=["project", "-created_at", "-id", "start_time"],
                name="trace_project_created",
            ),
            models.Index(fields=["project", "-start_time"], name="trace_project_start"),
            models.Index(fields=["thread", "start_time"], name="trace_thread_start"),
            GinIndex(fields=["tags"], name="trace_tags_gin"),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id


class VerbatimJSONField(models.JSONField):
    """JSON kept as sent: PostgreSQL ``json`` stores the text verbatim (validated, not
    rebuilt as jsonb), so an OTLP attribute stored once as a span's payload reads back
    byte for byte (``traces.ingest.moved``), ingestion skips the jsonb conversion, and
    the detail returns the text unparsed. No query looks inside these columns."""

    def db_type(self, connection: Any) -> str:
        return "json"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        # psycopg already parsed the json column (jsonb is loaded as text by Django).
        return value


class Span(TenantModel):
    """One step of a trace: an LLM call, a tool call, a retrieval, ...

    Partitioned by month of ``created_at`` (migration 0104). Indexed by its identity,
    (trace, external id), which also serves every read by trace; no query reads spans by
    organization or project alone, so those foreign keys carry no index of their own (a
    project's deletion scans spans, rarely)."""

    organization = models.ForeignKey(
        "projects.Organization",
        on_delete=models.CASCADE,
        related_name="+",
        editable=False,
        db_index=False,
    )
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="spans", db_index=False)
    external_id = models.CharField(max_length=256)
    parent_external_id = models.CharField(max_length=256, blank=True, default="")
    kind = models.CharField(max_length=16, choices=SpanKind.choices, default=SpanKind.OTHER)
    name = models.CharField(max_length=512, blank=True, default="")
    model = models.CharField(max_length=256, blank=True, default="")
    provider = models.CharField(max_length=128, blank=True, default="")
    input = VerbatimJSONField(null=True, blank=True)
    output = VerbatimJSONField(null=True, blank=True)
    attributes = VerbatimJSONField(default=dict, blank=True)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.UNSET)
    error_message = models.TextField(blank=True, default="")
    # The trace's created_at (when the trace was first seen), not the span's arrival:
    # the table is partitioned by month of it (traces.partitions), one partition per trace.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # created_at is the trace's, so this is (trace, external_id) as before; the
            # partition key must be part of every unique key of a partitioned table.
            models.UniqueConstraint(
                fields=["trace", "external_id", "created_at"], name="span_external_id"
            )
        ]

    def __str__(self) -> str:
        return self.name or self.external_id

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding and self.trace_id is not None:
            # The partition key: every span of a trace lives in its trace's month.
            from traces.partitions import span_partition_ensure

            self.created_at = self.trace.created_at
            span_partition_ensure(self.created_at)
        super().save(*args, **kwargs)


class ScoreSource(models.TextChoices):
    HUMAN = "human", "Human review"
    LLM_JUDGE = "llm_judge", "LLM judge"
    CODE = "code", "Code check"


# The sources of automated scores (LLM judges, code checks): what ingestion accepts, what
# the trace filters and the score summary count as automated, what alignment and the CI
# gate compare people with.
AUTOMATED_SCORE_SOURCES: tuple[ScoreSource, ...] = (ScoreSource.LLM_JUDGE, ScoreSource.CODE)


class ScoreDataType(models.TextChoices):
    NUMERIC = "numeric", "Numeric"
    CATEGORICAL = "categorical", "Categorical"
    BOOLEAN = "boolean", "Boolean"
    TEXT = "text", "Text"


class Score(TenantModel):
    """One number or label on a trace, span or thread, with where it came from.

    Automated scores (LLM judges, code checks) and human review scores sit side by
    side, so judge-versus-human alignment needs no export.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    trace = models.ForeignKey(
        Trace, null=True, blank=True, on_delete=models.CASCADE, related_name="scores"
    )
    span = models.ForeignKey(
        Span, null=True, blank=True, on_delete=models.CASCADE, related_name="scores"
    )
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.CASCADE, related_name="scores"
    )
    external_id = models.CharField(max_length=256, null=True, blank=True)
    name = models.CharField(max_length=256)
    data_type = models.CharField(max_length=16, choices=ScoreDataType.choices)
    value = models.FloatField(null=True, blank=True)
    label = models.CharField(max_length=256, blank=True, default="")
    rationale = models.TextField(blank=True, default="")
    source = models.CharField(max_length=16, choices=ScoreSource.choices)
    source_name = models.CharField(max_length=256, blank=True, default="")  # judge or metric
    source_version = models.CharField(max_length=128, blank=True, default="")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    # Auditors ask who changed a score and when; bulk ingestion records it too.
    history = history()

    class Meta:
        constraints = [
            # Not partial: NULL ids never conflict, and ON CONFLICT can infer the index.
            models.UniqueConstraint(fields=["project", "external_id"], name="score_external_id"),
            models.CheckConstraint(
                condition=models.Q(trace__isnull=False) | models.Q(thread__isnull=False),
                name="score_has_target",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "name", "value"], name="score_project_name_value"),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value if self.value is not None else self.label}"


class TraceScoreAverage(TenantModel):
    """A trace's average of its numeric scores of one name: what the explorer orders by
    when sorted by that score. Written only by triggers on ``traces_score``
    (``traces/score_averages.py``), recomputed from the scores for every statement that
    touches them, so it is never edited and holds no history of its own."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=256)
    average = models.FloatField(null=True)
    scores = models.IntegerField(default=0)  # how many numeric scores the average is of

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trace", "name"], name="score_average_trace_name")
        ]
        indexes = [
            # One index serves both orders (read backwards for the lowest first).
            models.Index(
                fields=["project", "name", "-average", "-trace"], name="score_average_sort"
            ),
        ]

    def __str__(self) -> str:
        average = "none" if self.average is None else f"{self.average:.4g}"
        return f"{self.name}: {average} on average over {self.scores} on “{self.trace}”"


class FeedbackKind(models.TextChoices):
    THUMBS = "thumbs", "Thumbs up/down"
    RATING = "rating", "Rating"
    COMMENT = "comment", "Comment"


class Feedback(TenantModel):
    """What the application's own users said. Its own lane: never a review score."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    trace = models.ForeignKey(
        Trace, null=True, blank=True, on_delete=models.CASCADE, related_name="feedback"
    )
    span = models.ForeignKey(
        Span, null=True, blank=True, on_delete=models.CASCADE, related_name="feedback"
    )
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.CASCADE, related_name="feedback"
    )
    external_id = models.CharField(max_length=256, null=True, blank=True)
    kind = models.CharField(max_length=16, choices=FeedbackKind.choices)
    # thumbs: 1 up, -1 down; rating: the number given (scale in metadata).
    value = models.FloatField(null=True, blank=True)
    comment = models.TextField(blank=True, default="")
    end_user_id = models.CharField(max_length=256, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "feedback"
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="feedback_external_id"),
            models.CheckConstraint(
                condition=models.Q(trace__isnull=False) | models.Q(thread__isnull=False),
                name="feedback_has_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class SavedView(TenantModel):
    """A named trace filter with the columns to show, shared by a project's members in
    the trace explorer. ``filter_params`` is validated by the trace filter on save."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    filter_params = models.JSONField(default=dict, blank=True)
    columns = models.JSONField(default=list, blank=True)
    # The list's order (traces.filters.parse_sort); empty: newest first.
    sort = models.CharField(max_length=300, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = history()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="saved_view_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


# Days a retention policy may say: 0 keeps everything; at most a century.
RETENTION_MAX_DAYS = 36500


class TraceRetention(TenantModel):
    """A project's trace retention: traces first seen more than ``days`` days ago are
    deleted with their spans, automated scores and feedback by the beat task
    (``traces.retention``); 0 keeps them. A project without a row follows
    ``HITL_TRACE_RETENTION_DAYS``. Reviewed or otherwise referenced traces are kept."""

    project = models.OneToOneField("projects.Project", on_delete=models.CASCADE, related_name="+")
    days = models.PositiveIntegerField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    # Auditors ask who shortened a retention, and when.
    history = history()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(days__lte=RETENTION_MAX_DAYS), name="trace_retention_days_max"
            )
        ]

    def __str__(self) -> str:
        return f"{self.days} days" if self.days else "kept"
