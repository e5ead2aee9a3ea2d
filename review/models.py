"""Score configs and rubrics, review queues, items, leases, annotations, comments,
adjudication and routing rules.

Claiming is the hot path: :class:`QueueItem` carries denormalized counters
(``live_leases``, ``submissions``, ``open_slots``) kept in step with the
:class:`Assignment` rows by the services, and a partial index over the claimable items in
claim order, so "next item" is one short index scan with ``FOR UPDATE SKIP LOCKED``.
The counters churn on every claim and are left out of the item's edit history; the
assignments themselves are the record of who held what and when.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.utils import timezone

from hitl.audit import history
from hitl.tenancy import TenantModel
from traces.models import ScoreDataType
from traces.score_kinds import ScoreKind, score_kind


class ScoreTarget(models.TextChoices):
    TRACE = "trace", "Trace"
    SPAN = "span", "Span"
    THREAD = "thread", "Thread"
    DATASET_ITEM = "dataset_item", "Dataset item"


class ScoreConfig(TenantModel):
    """One question a reviewer answers, with the rubric that defines its levels.

    ``version`` counts edits; each version's full definition is frozen in a
    :class:`ScoreConfigVersion`, and an annotation records the version it answered.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    data_type = models.CharField(max_length=16, choices=ScoreDataType.choices)
    target = models.CharField(max_length=16, choices=ScoreTarget.choices, default="trace")
    min_value = models.FloatField(null=True, blank=True)
    max_value = models.FloatField(null=True, blank=True)
    step = models.FloatField(null=True, blank=True)
    # Categorical: [{"label": "Correct", "value": 1.0}, ...]
    options = models.JSONField(default=list, blank=True)
    # Categorical: whether the options are ordered levels (ordinal: ordered by their
    # values; agreement weighs near answers as nearly agreeing) or unordered categories
    # (nominal). Chosen by whoever writes the question, never inferred.
    ordered = models.BooleanField(default=False)
    # [{"label": ..., "definition": ..., "examples": ["..."]}, ...]
    rubric = models.JSONField(default=list)
    required = models.BooleanField(default=False)
    writes_expected_output = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    history = history()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="score_config_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def kind(self) -> ScoreKind:
        """What this question's answers are (``traces.score_kinds``)."""
        return score_kind(self.data_type)


class ScoreConfigVersion(TenantModel):
    """The frozen definition of one version of a score config."""

    config = models.ForeignKey(ScoreConfig, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    snapshot = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["config_id", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["config", "version"], name="score_config_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.config_id} v{self.version}"


class AssignmentStrategy(models.TextChoices):
    PULL = "pull", "Reviewers pull the next item"
    ROUND_ROBIN = "round_robin", "Items are pushed to reviewers in turn"
    SKILLS = "skills", "Items go to reviewers with the skills and language they need"
    MANUAL = "manual", "A manager assigns each item"


class ClaimOrder(models.TextChoices):
    """Which claimable item a queue offers next (within an item priority)."""

    BREADTH_FIRST = "breadth_first", "Oldest first: every item gets its first review early"
    COMPLETE_FIRST = (
        "complete_first",
        ("Complete items first: an item already holding a review before an untouched one"),
    )


class SuggestionMode(models.TextChoices):
    """Whether a queue's review page shows the automated scores (LLM judge, code) that
    answer its questions as suggestions (``review.selectors.item_suggestions``)."""

    OFF = "off", "Off: no suggestions"
    AFTER = "after", "After the reviewer answers each question"
    BEFORE = "before", "Beside each question, before the reviewer answers"


class SuggestionArm(models.TextChoices):
    """An item's arm in its queue's own A/B of suggestions (drawn per item)."""

    SHOWN = "shown", "Suggestions shown"
    HIDDEN = "hidden", "Without suggestions"


class ReviewQueue(TenantModel):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    overlap = models.PositiveSmallIntegerField(default=1)
    assignment_strategy = models.CharField(
        max_length=16, choices=AssignmentStrategy.choices, default=AssignmentStrategy.PULL
    )
    # ClaimOrder: the claim statement's ORDER BY (review.services.claims).
    claim_order = models.CharField(
        max_length=16, choices=ClaimOrder.choices, default=ClaimOrder.BREADTH_FIRST
    )
    blind_mode = models.BooleanField(default=True)
    lease_ttl_seconds = models.PositiveIntegerField(default=1800)
    priority = models.IntegerField(default=0)
    include_explanation = models.BooleanField(default=True)
    include_expected_output = models.BooleanField(default=False)
    # Fraction of completed items sampled for a senior audit.
    audit_sample_rate = models.FloatField(default=0.0)
    # Judge suggestions on the review page (SuggestionMode); a blind queue shows them only
    # when ``suggestions_in_blind`` says so; ``suggestion_holdout_percent`` of the items
    # (drawn per item) are reviewed without them, to measure anchoring.
    suggestion_mode = models.CharField(
        max_length=8, choices=SuggestionMode.choices, default=SuggestionMode.OFF
    )
    suggestions_in_blind = models.BooleanField(default=False)
    suggestion_holdout_percent = models.PositiveSmallIntegerField(default=0)
    # Where the next round-robin push starts; churns, so kept out of history.
    round_robin_cursor = models.PositiveIntegerField(default=0)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = history(excluded_fields=["round_robin_cursor"])

    class Meta:
        ordering = ["-priority", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="review_queue_name_unique"),
            models.CheckConstraint(
                condition=models.Q(overlap__gte=1, overlap__lte=20), name="review_queue_overlap"
            ),
            models.CheckConstraint(
                condition=models.Q(suggestion_holdout_percent__lte=100),
                name="review_queue_suggestion_holdout",
            ),
            models.CheckConstraint(
                condition=models.Q(blind_mode=False)
                | models.Q(suggestion_mode=SuggestionMode.OFF)
                | models.Q(suggestions_in_blind=True),
                name="review_queue_suggestions_blind",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class QueueFormField(TenantModel):
    """One question of a queue's form, in order, with its disagreement rule
    (``review.adjudication``: any disagreement adjudicates unless tolerated here)."""

    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="form_fields")
    config = models.ForeignKey(ScoreConfig, on_delete=models.RESTRICT, related_name="+")
    position = models.PositiveSmallIntegerField()
    # False: this question never sends an item to adjudication (free text never does).
    adjudicates = models.BooleanField(default=True)
    # Categorical and boolean: the largest tolerated share of answers that differ from
    # the most common one (0: any dissent adjudicates; a tie always does).
    max_dissent_share = models.FloatField(default=0.0)
    # Numeric: the largest tolerated spread (highest minus lowest answer).
    numeric_tolerance = models.FloatField(default=0.0)

    history = history()

    class Meta:
        ordering = ["queue_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "config"], name="queue_form_config_unique")
        ]


class QueueReviewer(TenantModel):
    """A member of a queue's reviewer pool, with the skills and languages they cover."""

    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="reviewers")
    membership = models.ForeignKey(
        "projects.Membership", on_delete=models.CASCADE, related_name="+"
    )
    skills = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    languages = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    # Seniors adjudicate disagreements and audit samples.
    is_senior = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = history()

    class Meta:
        ordering = ["queue_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "membership"], name="queue_reviewer_unique")
        ]


class ItemTarget(models.TextChoices):
    TRACE = "trace", "Trace"
    SPAN = "span", "Span"
    THREAD = "thread", "Thread"
    # A dataset item (datasets sits above review: a plain id, resolved through
    # ``review.hooks``); its reviews write the item's expected output. The label differs
    # from ScoreTarget's so the API schema keeps two enums (ENUM_NAME_OVERRIDES).
    DATASET_ITEM = "dataset_item", "Dataset item to label"
    # Outputs of two or more systems for one input, side by side (review.comparison).
    COMPARISON = "comparison", "Outputs to compare"


class ItemSource(models.TextChoices):
    MANUAL = "manual", "Added by hand"
    BULK_FILTER = "bulk_filter", "Added in bulk from a trace filter"
    ROUTING_RULE = "routing_rule", "Routed by a rule"


class ItemStatus(models.TextChoices):
    # While open, the board shows pending / in progress / submitted from the counters.
    OPEN = "open", "Open"
    COMPLETE = "complete", "Complete"
    NEEDS_ADJUDICATION = "needs_adjudication", "Needs adjudication"
    ADJUDICATED = "adjudicated", "Adjudicated"


class BoardStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    SUBMITTED = "submitted", "Submitted (fewer than N)"
    COMPLETE = "complete", "Complete"
    NEEDS_ADJUDICATION = "needs_adjudication", "Needs adjudication"
    ADJUDICATED = "adjudicated", "Adjudicated"


class AuditStatus(models.TextChoices):
    NOT_SAMPLED = "not_sampled", "Not sampled"
    PENDING = "pending", "Sampled, awaiting senior audit"
    DONE = "done", "Audited"


# An item's priority is a PostgreSQL integer.
PRIORITY_MIN, PRIORITY_MAX = -(2**31), 2**31 - 1


class QueueItem(TenantModel):
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="items")
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    target_type = models.CharField(max_length=16, choices=ItemTarget.choices)
    # A span item also names its trace, so trace views find everything in one query.
    trace = models.ForeignKey(
        "traces.Trace", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # No database constraint: spans are partitioned (docs/ARCHITECTURE.md, Traces).
    span = models.ForeignKey(
        "traces.Span",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
    )
    thread = models.ForeignKey(
        "traces.Thread", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # ``datasets.DatasetItem`` primary key (no foreign key: review sits below datasets).
    # An item deleted from its dataset later leaves this id unresolved: the pages say
    # it was removed, and its verdict is written nowhere.
    dataset_item_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    # A comparison item's outputs side by side (review.comparison).
    comparison = models.ForeignKey(
        "review.ComparisonItem", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    source = models.CharField(max_length=16, choices=ItemSource.choices)
    routing_rule = models.ForeignKey(
        "RoutingRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    signal = models.CharField(max_length=64, blank=True, default="")
    source_detail = models.JSONField(default=dict, blank=True)
    priority = models.IntegerField(default=0)
    required_skills = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    language = models.CharField(max_length=16, blank=True, default="")
    # User ids this item is pushed to (round robin, manual); empty: anyone in the pool.
    assignees = ArrayField(models.BigIntegerField(), default=list, blank=True)
    status = models.CharField(max_length=20, choices=ItemStatus.choices, default="open")
    audit_status = models.CharField(
        max_length=12, choices=AuditStatus.choices, default=AuditStatus.NOT_SAMPLED
    )
    # SuggestionArm, fixed at the item's first review ('' until then: the arm is drawn
    # from the item's id, ``review.selectors.suggestion_arm``).
    suggestion_arm = models.CharField(
        max_length=8, choices=SuggestionArm.choices, blank=True, default="", db_default=""
    )
    # Claim counters (not historied): live_leases + submissions + open_slots == overlap.
    live_leases = models.PositiveSmallIntegerField(default=0)
    submissions = models.PositiveSmallIntegerField(default=0)
    open_slots = models.SmallIntegerField(default=1)
    completed_at = models.DateTimeField(null=True, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = history(excluded_fields=["live_leases", "submissions", "open_slots"])

    class Meta:
        ordering = ["-priority", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "trace"],
                condition=models.Q(target_type="trace"),
                name="queue_item_trace_unique",
            ),
            models.UniqueConstraint(
                fields=["queue", "span"],
                condition=models.Q(target_type="span"),
                name="queue_item_span_unique",
            ),
            models.UniqueConstraint(
                fields=["queue", "thread"],
                condition=models.Q(target_type="thread"),
                name="queue_item_thread_unique",
            ),
            models.UniqueConstraint(
                fields=["queue", "dataset_item_id"],
                condition=models.Q(target_type="dataset_item"),
                name="queue_item_dataset_item_unique",
            ),
            models.UniqueConstraint(
                fields=["queue", "comparison"],
                condition=models.Q(target_type="comparison"),
                name="queue_item_comparison_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(open_slots__gte=0), name="queue_item_open_slots_nonneg"
            ),
        ]
        indexes = [
            # The claim scan: claimable items of one queue in claim order.
            models.Index(
                "queue",
                models.F("priority").desc(),
                "created_at",
                "id",
                condition=models.Q(status="open", open_slots__gt=0),
                name="queue_item_claimable",
            ),
            # The same for queues offering complete items first (ClaimOrder).
            models.Index(
                "queue",
                models.F("priority").desc(),
                models.F("submissions").desc(),
                "created_at",
                "id",
                condition=models.Q(status="open", open_slots__gt=0),
                name="queue_item_claimable_complete",
            ),
            models.Index(fields=["queue", "status"], name="queue_item_queue_status"),
            models.Index(fields=["trace"], name="queue_item_trace"),
        ]

    def __str__(self) -> str:
        return f"{self.target_type} item {self.pk} of queue {self.queue_id}"

    @property
    def board_status(self) -> str:
        return board_status_of(self.status, self.live_leases, self.submissions)


# The board's columns, each as the one filter on QueueItem that puts an item in it: an
# open item's column comes from its counters, a closed one's is its status.
# :func:`board_status_of` is the same rule for one item in hand.
BOARD_COLUMN_Q: dict[str, models.Q] = {
    BoardStatus.PENDING.value: models.Q(status=ItemStatus.OPEN, submissions=0, live_leases=0),
    BoardStatus.IN_PROGRESS.value: models.Q(
        status=ItemStatus.OPEN, submissions=0, live_leases__gt=0
    ),
    BoardStatus.SUBMITTED.value: models.Q(status=ItemStatus.OPEN, submissions__gt=0),
    BoardStatus.COMPLETE.value: models.Q(status=ItemStatus.COMPLETE),
    BoardStatus.NEEDS_ADJUDICATION.value: models.Q(status=ItemStatus.NEEDS_ADJUDICATION),
    BoardStatus.ADJUDICATED.value: models.Q(status=ItemStatus.ADJUDICATED),
}


def board_status_of(status: str, live_leases: int, submissions: int) -> str:
    if status != ItemStatus.OPEN:
        return status
    if submissions:
        return BoardStatus.SUBMITTED
    if live_leases:
        return BoardStatus.IN_PROGRESS
    return BoardStatus.PENDING


class AssignmentState(models.TextChoices):
    LEASED = "leased", "Leased"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"


class Assignment(TenantModel):
    """One reviewer's lease on one item; a reviewer holds at most one per item, ever."""

    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="assignments")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    state = models.CharField(max_length=10, choices=AssignmentState.choices, default="leased")
    leased_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-leased_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "reviewer"], name="assignment_once_per_item")
        ]
        indexes = [
            models.Index(
                fields=["queue", "expires_at"],
                condition=models.Q(state="leased"),
                name="assignment_live_expiry",
            ),
            models.Index(fields=["queue", "reviewer", "state"], name="assignment_queue_reviewer"),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer.email} on item {self.item_id} ({self.state})"


class Annotation(TenantModel):
    """One reviewer's answers to a queue's form for one item.

    ``values`` maps config id (as a string) to the answer; ``config_versions`` maps the
    same ids to the version answered. ``version`` guards edits (optimistic concurrency).
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="annotations")
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="annotation"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    target_type = models.CharField(max_length=16, choices=ItemTarget.choices)
    trace = models.ForeignKey(
        "traces.Trace", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # No database constraint: spans are partitioned (docs/ARCHITECTURE.md, Traces).
    span = models.ForeignKey(
        "traces.Span",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
    )
    thread = models.ForeignKey(
        "traces.Thread", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    dataset_item_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    values = models.JSONField(default=dict)
    config_versions = models.JSONField(default=dict)
    explanation = models.TextField(blank=True, default="")
    expected_output = models.JSONField(null=True, blank=True)
    failure_modes = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    # What the reviewer was shown of the judges' suggestions (written by the submit
    # service from what the server showed: ``review.services.suggestions``).
    suggestions = models.JSONField(default=dict, blank=True)
    # A conversation's turns rated one by one (thread items only): the turn's trace id
    # -> {"turn": its place, "rating": "good" | "bad", "note": text}; written by the
    # submit (``review.services.turns``, docs/threads.md).
    turns = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    opened_at = models.DateTimeField()
    submitted_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    history = history()

    class Meta:
        ordering = ["-submitted_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "reviewer"], name="annotation_once_per_item")
        ]
        indexes = [
            models.Index(fields=["trace"], name="annotation_trace"),
            models.Index(fields=["queue", "reviewer", "submitted_at"], name="annotation_reviewer"),
        ]

    def __str__(self) -> str:
        return f"annotation {self.pk} by {self.reviewer.email} on item {self.item_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # An annotation names its item's target; a dataset item's id comes from the item
        # (the blind rule matches answers on it by this column).
        if (
            self.target_type == ItemTarget.DATASET_ITEM
            and self.dataset_item_id is None
            and self.item_id is not None
        ):
            self.dataset_item_id = self.item.dataset_item_id
        super().save(*args, **kwargs)

    @property
    def seconds_on_task(self) -> float:
        return max(0.0, (self.submitted_at - self.opened_at).total_seconds())


class AdjudicationKind(models.TextChoices):
    DISAGREEMENT = "disagreement", "Reviews disagreed"
    AUDIT = "audit", "Senior audit sample"


class Adjudication(TenantModel):
    """A senior's final decision, recorded beside the original annotations."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="adjudications")
    kind = models.CharField(max_length=16, choices=AdjudicationKind.choices)
    adjudicator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    values = models.JSONField(default=dict)
    config_versions = models.JSONField(default=dict)
    explanation = models.TextField(blank=True, default="")
    expected_output = models.JSONField(null=True, blank=True)
    # What disagreed, per config id, when the item was sent to adjudication.
    disagreement = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = history()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "kind"], name="adjudication_once_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.kind} decision by {self.adjudicator.email} on item {self.item_id}"


class Comment(TenantModel):
    """A remark on a trace, a span or a queue item, with @mentions of members."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    # A span or item comment also names its trace, so a trace's view reads them at once.
    trace = models.ForeignKey(
        "traces.Trace", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # No database constraint: spans are partitioned (docs/ARCHITECTURE.md, Traces).
    span = models.ForeignKey(
        "traces.Span",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
    )
    item = models.ForeignKey(
        QueueItem, null=True, blank=True, on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    mentions = ArrayField(models.BigIntegerField(), default=list, blank=True)  # user ids
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    edited_at = models.DateTimeField(null=True, blank=True)

    history = history()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(trace__isnull=False) | models.Q(item__isnull=False),
                name="comment_has_target",
            )
        ]
        indexes = [
            models.Index(fields=["trace", "created_at"], name="comment_trace"),
            models.Index(fields=["project", "-created_at", "-id"], name="comment_project_created"),
            GinIndex(SearchVector("body", config="english"), name="comment_body_search"),
        ]

    def __str__(self) -> str:
        return f"comment {self.pk} by {self.author.email}"


class RoutingSignal(models.TextChoices):
    LOW_SCORE = "low_score", "Low automated score"
    THUMBS_DOWN = "thumbs_down", "Thumbs-down from an end user"
    ERROR = "error", "Error"
    TOOL_FAILURE = "tool_failure", "Tool failure"
    HIGH_LATENCY = "high_latency", "High latency"
    HIGH_COST = "high_cost", "High cost"
    TAG = "tag", "Tag"
    OTHER = "other", "Other"


class RoutingStrategy(models.TextChoices):
    """How a routing rule picks among the traces its filter matches
    (review/services/routing_strategies.py)."""

    MATCH_AND_SAMPLE = "match_and_sample", "Match and sample"
    UNCERTAINTY_BAND = "uncertainty_band", "A judge's score in an uncertainty band"
    JUDGES_DISAGREE = "judges_disagree", "Two judges disagree"
    REVIEWERS_DISAGREE = "reviewers_disagree", "The first reviewers disagreed"


class RoutingTarget(models.TextChoices):
    """What a routing rule routes: traces, or whole conversations (threads) whose turns
    meet its thread conditions (review/services/thread_routing.py)."""

    TRACE = "trace", "Traces"
    THREAD = "thread", "Threads"


class RoutingRule(TenantModel):
    """Samples new traces that match a filter into a queue, up to a cap per day; with
    ``target`` thread, whole conversations whose turns meet its thread conditions."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="routing_rules")
    name = models.CharField(max_length=200)
    signal = models.CharField(max_length=16, choices=RoutingSignal.choices)
    filter_params = models.JSONField(default=dict)
    sampling_rate = models.FloatField(default=1.0)
    daily_cap = models.PositiveIntegerField(null=True, blank=True)
    item_priority = models.IntegerField(default=0)
    enabled = models.BooleanField(default=True)
    # RoutingStrategy and its parameters (routing strategies: score names, band, minimum
    # difference; checked by review.services.routing_strategies). reviewers_disagree
    # takes items of ``source_queue`` whose reviewers disagreed.
    strategy = models.CharField(
        max_length=24, choices=RoutingStrategy.choices, default=RoutingStrategy.MATCH_AND_SAMPLE
    )
    strategy_params = models.JSONField(default=dict, blank=True)
    source_queue = models.ForeignKey(
        ReviewQueue, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Thread rules (docs/routing.md): the rule routes threads; ``thread_conditions``
    # (thumbs_down, min_turns, error, idle_minutes; checked by
    # review.services.thread_routing) hold together with ``filter_params`` on any turn.
    target = models.CharField(
        max_length=8, choices=RoutingTarget.choices, default=RoutingTarget.TRACE
    )
    thread_conditions = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Set by routing when applying the rule failed (review/services/routing.py): since
    # when it fails, and why, in one short line. Cleared when it routes again or its
    # filter is edited.
    failing_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    history = history()

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["project", "enabled"], name="routing_rule_project")]

    def __str__(self) -> str:
        return self.name


class RoutingRuleDay(TenantModel):
    """How many items a rule routed on one UTC day (for its daily cap)."""

    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="days")
    day = models.DateField()
    routed = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "day"], name="routing_rule_day")]


class ReviewDraft(TenantModel):
    """A reviewer's answers on one item not yet submitted, kept as they type (one per
    item and reviewer, as their lease is): restored whenever the item is opened again,
    kept when the session or the lease runs out, deleted when the answers are submitted
    (or the item skipped or released). ``data`` is the review form as posted (``q-<config
    id>``, ``explanation``, ``expected_output``, ``comment``, ``failure_modes`` and the
    picked tags as ``picked_failure_modes``). ``conflict``: answers sent for an item this
    reviewer had already submitted (a second tab), kept until they choose between the
    stored answer and these. Not historied: a draft is work in progress; what is
    submitted is."""

    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="+")
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    data = models.JSONField(default=dict)
    conflict = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "reviewer"], name="review_draft_once")
        ]

    def __str__(self) -> str:
        return f"draft of {self.reviewer.email} on item {self.item_id}"
