"""Datasets, their items and versions, exports, experiments and the quality gate.

Versions are intervals, not copies. Every change to a dataset's items (one promotion,
one import, one edit) runs under a lock of the dataset row and makes version N+1. The
content of an item at a moment is a :class:`DatasetItemRevision` (immutable: the
exported record and its hash), valid from the version that added it
(``added_in``) until the version that replaced or removed it (``removed_in``, set once,
always to the version being made, which no experiment can have pinned yet). So:

* version N's items are the revisions with ``added_in <= N < removed_in`` (one index
  range scan, nothing copied per version, however large the dataset);
* the diff of versions A < B touches only revisions added or removed between them;
* a version never changes after it is made: later changes add revisions and close
  intervals above it.

:class:`DatasetItem` is the current, editable row with its provenance as foreign keys
and full edit history; its ``key`` is the item's identity in the dataset (``id`` in
exports and imports; ``trace:<id>`` and the like for promoted items, so promoting the
same source twice finds the same item).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from hitl.audit import history
from hitl.tenancy import TenantModel

# The sections of an item a dataset's schema may constrain (JSON Schema each).
SCHEMA_SECTIONS = ("input", "expected_output", "metadata")


class Dataset(TenantModel):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    # {"input": {JSON Schema}, "expected_output": {...}, "metadata": {...}}; each optional.
    schema = models.JSONField(default=dict, blank=True)
    # The newest version's number (0: no version yet).
    current_version = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    history = history()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="dataset_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class SourceType(models.TextChoices):
    TRACE = "trace", "Trace"
    SPAN = "span", "Span"
    THREAD = "thread", "Thread"
    IMPORT = "import", "Imported"
    MANUAL = "manual", "Written by hand"


# --- "needs expected output" ---------------------------------------------------------------
# A promoted item (a trace, span or thread, or a reviewed item: it carries the reviews it
# came from) whose expected output nobody stated: no reviewer or adjudicator wrote one,
# and whoever promoted it neither typed one nor accepted the model's output
# (``datasets.services.promotion``). The model's answer is never stored as expected on
# its own, so such an item waits for a person; exports count it and the gate refuses to
# pass over it. Imported and hand-written items are what their authors wrote (an input
# without an expected output is theirs to make). One rule, for items and records alike.
_EMPTY_EXPECTED = (None, "", {})
PROMOTED_SOURCES = ("trace", "span", "thread")


def needs_expected_output(record: Mapping[str, Any]) -> bool:
    """Whether an item's record (or its field values) waits for an expected output."""
    promoted = bool(record.get("reviews")) or record.get("source_type") in PROMOTED_SOURCES
    return promoted and record.get("expected_output") in _EMPTY_EXPECTED


def _empty_expected(prefix: str) -> models.Q:
    return (
        models.Q(**{f"{prefix}expected_output__isnull": True})
        | models.Q(**{f"{prefix}expected_output": None})
        | models.Q(**{f"{prefix}expected_output": ""})
        | models.Q(**{f"{prefix}expected_output": {}})
    )


def _promoted(prefix: str) -> models.Q:
    return ~models.Q(**{f"{prefix}reviews": []}) | models.Q(
        **{f"{prefix}source_type__in": PROMOTED_SOURCES}
    )


# The same rule as filters: on DatasetItem rows, and on revisions' stored records.
ITEM_NEEDS_EXPECTED_OUTPUT = _promoted("") & _empty_expected("")
REVISION_NEEDS_EXPECTED_OUTPUT = _promoted("content__") & _empty_expected("content__")


class DatasetItem(TenantModel):
    """The current state of one case; its content per version is in the revisions."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="items")
    key = models.CharField(max_length=300)
    input = models.JSONField(null=True, blank=True)
    expected_output = models.JSONField(null=True, blank=True)
    expected_tool_calls = models.JSONField(null=True, blank=True)
    expected_outcome = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    # Provenance: where the case came from and what justified it.
    source_type = models.CharField(max_length=8, choices=SourceType.choices)
    trace = models.ForeignKey(
        "traces.Trace", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # No database constraint: spans are partitioned by time (docs/ARCHITECTURE.md).
    span = models.ForeignKey(
        "traces.Span",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    thread = models.ForeignKey(
        "traces.Thread", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    queue_item = models.ForeignKey(
        "review.QueueItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    annotation_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    adjudication = models.ForeignKey(
        "review.Adjudication", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Snapshot of the reviews at promotion: [{"reviewer": email, "answers": {question:
    # value}, "explanation": ..., "expected_output": ...}, ...] (adjudication included,
    # marked "adjudication": true).
    reviews = models.JSONField(default=list, blank=True)
    explanation = models.TextField(blank=True, default="")
    failure_reason = models.TextField(blank=True, default="")
    failure_modes = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    content_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    history = history()

    class Meta:
        ordering = ["key", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "key"], name="dataset_item_key_unique")
        ]
        indexes = [models.Index(fields=["trace"], name="dataset_item_trace")]

    def __str__(self) -> str:
        return f"{self.key} in dataset {self.dataset_id}"

    @property
    def needs_expected_output(self) -> bool:
        return needs_expected_output(
            {
                "reviews": self.reviews,
                "source_type": self.source_type,
                "expected_output": self.expected_output,
            }
        )


class DatasetItemRevision(TenantModel):
    """The immutable content of one item, valid in versions ``added_in`` to
    ``removed_in - 1``. ``content`` is the exported record (``id`` is the key)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    item_id = models.BigIntegerField()  # the DatasetItem (no foreign key: items may go)
    key = models.CharField(max_length=300)
    content_hash = models.CharField(max_length=64)
    content = models.JSONField()
    added_in = models.PositiveIntegerField()
    removed_in = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["dataset_id", "key", "added_in"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "key", "added_in"], name="dataset_revision_once"
            ),
            # At most one live revision per key.
            models.UniqueConstraint(
                fields=["dataset", "key"],
                condition=models.Q(removed_in__isnull=True),
                name="dataset_revision_live_key",
            ),
        ]
        indexes = [
            # A version's items in key order (export) and changes between versions (diff)
            # read the unique index of dataset_revision_once (dataset, key, added_in).
            models.Index(fields=["dataset", "removed_in"], name="dataset_revision_removed"),
            models.Index(fields=["dataset", "added_in"], name="dataset_revision_added"),
        ]

    def __str__(self) -> str:
        return f"{self.key} @ v{self.added_in}"


class DatasetVersion(TenantModel):
    """An immutable snapshot of a dataset that experiments pin to."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    message = models.CharField(max_length=500, blank=True, default="")
    item_count = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_api_key_prefix = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["dataset_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} v{self.number}"

    @cached_property
    def needs_expected_output(self) -> int:
        """How many of this version's items wait for an expected output (a version
        never changes, so neither does this count)."""
        return (
            DatasetItemRevision.objects.filter(
                models.Q(removed_in__isnull=True) | models.Q(removed_in__gt=self.number),
                REVISION_NEEDS_EXPECTED_OUTPUT,
                dataset_id=self.dataset_id,
                added_in__lte=self.number,
            )
            .order_by()
            .count()
        )


class ExportFormat(models.TextChoices):
    JSONL = "jsonl", "JSON Lines"
    CSV = "csv", "CSV"
    PARQUET = "parquet", "Parquet"
    OPENAI = "openai", "OpenAI chat fine-tuning JSONL"


class JobState(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class DatasetExport(TenantModel):
    """A version written to a file by a worker, for the user to download."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="exports")
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="+")
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    state = models.CharField(max_length=8, choices=JobState.choices, default=JobState.PENDING)
    file_name = models.CharField(max_length=300, blank=True, default="")
    size_bytes = models.BigIntegerField(default=0)
    item_count = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)  # OpenAI: items that are not chats
    # OpenAI: why each skipped item could not become a line ({"item", "reason"}, first 200)
    skip_reasons = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.format})"


class ExperimentStatus(models.TextChoices):
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"


class Experiment(TenantModel):
    """One run of the application over a pinned dataset version."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="experiments")
    version = models.ForeignKey(DatasetVersion, on_delete=models.RESTRICT, related_name="+")
    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=8, choices=ExperimentStatus.choices, default=ExperimentStatus.RUNNING
    )
    metadata = models.JSONField(default=dict, blank=True)
    # {"metrics": {name: mean}, "counts": {...}, "client": {what the job sent}}
    summary = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_api_key_prefix = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class ExperimentResult(TenantModel):
    """The application's output and scores for one item of the pinned version."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="results")
    key = models.CharField(max_length=300)
    revision = models.ForeignKey(DatasetItemRevision, on_delete=models.RESTRICT, related_name="+")
    output = models.JSONField(null=True, blank=True)
    scores = models.JSONField(default=dict, blank=True)  # {metric: number}
    trace_external_id = models.CharField(max_length=256, blank=True, default="")
    trace = models.ForeignKey(
        "traces.Trace", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["key", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="experiment_result_once")
        ]

    def __str__(self) -> str:
        return f"{self.key} in experiment {self.experiment_id}"


class QualityGate(TenantModel):
    """A dataset's release gate.

    ``thresholds``: ``[{"metric": "accuracy", "min": 0.8}, {"metric": "latency_ms",
    "max": 2000}, {"metric": "accuracy", "max_drop": 0.02}, {"metric": "cost",
    "max_rise": 0.1}]``: absolute bounds on the experiment's mean, and bounds on its
    change from the baseline experiment. The human thresholds read what the experts
    said on the version's items: the judge's agreement with the reviewers
    (``min_judge_alignment``, judge score ``judge_score_name`` against the reviewers'
    question ``human_question``, equal within ``alignment_tolerance``) and the reviewers'
    agreement with each other (``min_reviewer_agreement``).
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="gate")
    thresholds = models.JSONField(default=list, blank=True)
    baseline_experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    min_judge_alignment = models.FloatField(null=True, blank=True)
    judge_score_name = models.CharField(max_length=256, blank=True, default="")
    human_question = models.CharField(max_length=200, blank=True, default="")
    alignment_tolerance = models.FloatField(default=0.0)
    min_reviewer_agreement = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    history = history()

    def __str__(self) -> str:
        return f"gate of dataset {self.dataset_id}"
