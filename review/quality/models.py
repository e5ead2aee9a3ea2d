"""Quality's models: agreement reports, calibration sets with their gold answers, rounds
and results, a live queue's calibration (the onboarding gate and gold items) and its
reviewers' running accuracy on gold, quality settings and alerts, metric alignment
mappings and their reports.

They belong to the ``review`` app (its label, tables and migrations): ``ReviewConfig``
imports this module beside :mod:`review.models`. They name the core's models by their
app label ("review.ReviewQueue"), so this module imports nothing of the core, and the
core nothing of it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from hitl.audit import history
from hitl.tenancy import TenantModel


class AgreementReport(TenantModel):
    """One computation of inter-annotator agreement for one question of one queue.

    A row per computation, never updated: the latest row is the report served, and the
    rows before it show how agreement drifted. ``answers_covered``, ``last_annotation_id``
    and ``last_change_at`` say which answers it covers (the queue's annotations at the
    time), so a recomputation over the same answers is skipped.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey("review.ReviewQueue", on_delete=models.CASCADE, related_name="+")
    config = models.ForeignKey("review.ScoreConfig", on_delete=models.CASCADE, related_name="+")
    config_version = models.PositiveIntegerField()
    computed_at = models.DateTimeField(default=timezone.now)
    answers_covered = models.PositiveIntegerField()
    last_annotation_id = models.BigIntegerField(null=True, blank=True)
    last_change_at = models.DateTimeField(null=True, blank=True)
    n_items = models.PositiveIntegerField(default=0)
    n_answers = models.PositiveIntegerField(default=0)
    # The headline figure (Krippendorff's alpha at the question's level), for history
    # lists; null with ``reason`` when there is none.
    level = models.CharField(max_length=16)
    value = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    figures = models.JSONField(default=dict)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-computed_at", "-id"]
        indexes = [
            models.Index(
                fields=["queue", "config", "-computed_at"], name="agreement_report_latest"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"agreement of config {self.config_id} in queue {self.queue_id} at {self.computed_at}"
        )

    @property
    def pairable_items(self) -> int:
        """Items answered by two or more reviewers (reports before this count was kept:
        the items answered at all)."""
        return int((self.figures or {}).get("n_pairable_items", self.n_items))

    @property
    def small_sample_warning(self) -> str | None:
        """Why the headline figure is not to be trusted yet (too few items), or None."""
        from review.quality.agreement.report import small_sample_warning  # numpy, on use

        return small_sample_warning(self.pairable_items) if self.value is not None else None


# --- calibration ------------------------------------------------------------------------------


class CalibrationSet(TenantModel):
    """Traces with gold answers written by a lead, to calibrate reviewers on a form.

    A reviewer passes a round of the set with accuracy against gold of at least
    ``min_accuracy`` and, when ``min_agreement`` is set, a chance-corrected agreement
    with gold (Cohen's kappa, the lowest over the questions) of at least that. The
    round also reports the group's agreement among the reviewers.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    config_ids = ArrayField(models.BigIntegerField(), default=list)
    # Per numeric question (config id as text): how far from gold an answer may be and
    # still count as right (absent: equal, to 1e-9).
    tolerances = models.JSONField(default=dict, blank=True)
    min_accuracy = models.FloatField(default=0.8)
    min_agreement = models.FloatField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    history = history()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="calibration_set_name")
        ]

    def __str__(self) -> str:
        return self.name


class GoldAnswer(TenantModel):
    """The lead's answers (config id -> value) for one trace of a calibration set."""

    calibration_set = models.ForeignKey(
        CalibrationSet, on_delete=models.CASCADE, related_name="gold_answers"
    )
    trace = models.ForeignKey("traces.Trace", on_delete=models.CASCADE, related_name="+")
    values = models.JSONField(default=dict)
    explanation = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    history = history()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["calibration_set", "trace"], name="gold_answer_trace")
        ]

    def __str__(self) -> str:
        return f"gold answer for trace {self.trace_id} in set {self.calibration_set_id}"


class CalibrationRound(TenantModel):
    """One sending of a calibration set to chosen reviewers: a blind queue of its own
    (overlap = the reviewers), claimed and submitted like any queue, then scored."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    calibration_set = models.ForeignKey(
        CalibrationSet, on_delete=models.CASCADE, related_name="rounds"
    )
    number = models.PositiveIntegerField()
    queue = models.OneToOneField("review.ReviewQueue", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    scored_at = models.DateTimeField(null=True, blank=True)
    agreement = models.FloatField(null=True, blank=True)
    agreement_reason = models.TextField(blank=True, default="")
    # Per question: accuracy of the group, agreement, and per gold rubric level.
    figures = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["calibration_set", "number"], name="calibration_round_number"
            )
        ]

    def __str__(self) -> str:
        return f"round {self.number} of calibration set {self.calibration_set_id}"


class CalibrationResult(TenantModel):
    """One reviewer's result in a scored round. ``passed`` is what the onboarding gate
    reads (one indexed lookup per claim)."""

    round = models.ForeignKey(CalibrationRound, on_delete=models.CASCADE, related_name="results")
    calibration_set = models.ForeignKey(CalibrationSet, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    answered = models.PositiveIntegerField(default=0)
    correct = models.PositiveIntegerField(default=0)
    accuracy = models.FloatField(null=True, blank=True)
    # Cohen's kappa with gold (the lowest over the questions).
    agreement = models.FloatField(null=True, blank=True)
    passed = models.BooleanField(default=False)
    reason = models.TextField(blank=True, default="")
    figures = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["round_id", "reviewer_id"]
        constraints = [
            models.UniqueConstraint(fields=["round", "reviewer"], name="calibration_result_once")
        ]
        indexes = [
            models.Index(
                fields=["calibration_set", "reviewer", "passed"], name="calibration_passed"
            )
        ]

    def __str__(self) -> str:
        return f"{self.reviewer.email} in {self.round}"


class QueueCalibration(TenantModel):
    """A live queue's use of a calibration set: the onboarding gate (``require_pass``:
    only reviewers who passed a round of the set may claim) and gold items mixed in at
    ``gold_rate`` (one per that many ordinary items), unmarked to reviewers, with each
    reviewer's running accuracy on them held against ``gold_min_accuracy``."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    queue = models.OneToOneField("review.ReviewQueue", on_delete=models.CASCADE, related_name="+")
    calibration_set = models.ForeignKey(
        CalibrationSet, on_delete=models.CASCADE, related_name="queue_uses"
    )
    require_pass = models.BooleanField(default=True)
    gold_rate = models.FloatField(default=0.0)
    gold_min_accuracy = models.FloatField(default=0.8)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    history = history()

    def __str__(self) -> str:
        return f"calibration of queue {self.queue_id} by set {self.calibration_set_id}"


class GoldAccuracy(TenantModel):
    """A reviewer's running accuracy on a live queue's gold items, refreshed by a
    worker; ``alerted_at`` is set when it fell below the threshold (one alert per drop,
    cleared when it recovers)."""

    queue = models.ForeignKey("review.ReviewQueue", on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    answered = models.PositiveIntegerField(default=0)
    correct = models.PositiveIntegerField(default=0)
    accuracy = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "gold accuracies"
        constraints = [
            models.UniqueConstraint(fields=["queue", "reviewer"], name="gold_accuracy_once")
        ]

    def __str__(self) -> str:
        return f"gold accuracy of {self.reviewer.email} in queue {self.queue_id}"


class AlertKind(models.TextChoices):
    AGREEMENT = "agreement", "inter-annotator agreement"
    ALIGNMENT = "alignment", "metric alignment"
    GOLD_ACCURACY = "gold_accuracy", "accuracy on gold items"


class QualitySettings(TenantModel):
    """A project's thresholds for quality alerts: agreement between reviewers (the
    headline coefficient of a question, -1..1) and a metric's agreement rate with them
    (0..1), each judged on the rolling mean of the newest ``window`` reports. One row per
    project at most; without it the global ``HITL_QUALITY_ALERT_THRESHOLD`` and
    ``HITL_QUALITY_ALERT_WINDOW`` apply."""

    project = models.OneToOneField("projects.Project", on_delete=models.CASCADE, related_name="+")
    agreement_threshold = models.FloatField()
    alignment_threshold = models.FloatField()
    window = models.PositiveSmallIntegerField()
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)
    history = history()

    class Meta:
        verbose_name_plural = "quality settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(agreement_threshold__gte=-1, agreement_threshold__lte=1),
                name="quality_settings_agreement_range",
            ),
            models.CheckConstraint(
                condition=models.Q(alignment_threshold__gte=0, alignment_threshold__lte=1),
                name="quality_settings_alignment_range",
            ),
            models.CheckConstraint(
                condition=models.Q(window__gte=1, window__lte=50),
                name="quality_settings_window_range",
            ),
        ]

    def __str__(self) -> str:
        return f"quality settings of project {self.project_id}"


class QualityAlert(TenantModel):
    """A figure that fell below its threshold: agreement or alignment over a rolling
    window of reports, or a reviewer's running accuracy on gold items. Written with
    its event (``review.<kind>.alert``), never updated."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    queue = models.ForeignKey(
        "review.ReviewQueue", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    config = models.ForeignKey(
        "review.ScoreConfig", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The alignment mapping's id when kind is alignment (its own row may be deleted).
    subject = models.JSONField(default=dict, blank=True)
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField()
    window = models.PositiveIntegerField(default=1)
    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="quality_alert_recent")]

    def __str__(self) -> str:
        return self.message


# --- metric alignment -------------------------------------------------------------------------


class AlignmentScope(models.TextChoices):
    """Whose answers an alignment report compares with the metric."""

    # Answers in live queues: not calibration rounds, not the gold items mixed into a
    # queue, not reviewers whose latest calibration on the question failed.
    PRODUCTION = "production", "production answers"
    ALL = "all", "every answer to the question"


class AlignmentMapping(TenantModel):
    """An automated score (by name, optionally one judge version) compared with the
    reviewers' answer to a question. Pass/fail where the scales differ: the metric
    passes at ``metric_threshold`` or above (booleans: true); the reviewers pass at
    ``human_threshold`` or above on a numeric question, with a label of
    ``human_pass_labels`` on a categorical one, with true on a boolean one."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    score_name = models.CharField(max_length=256)
    source_version = models.CharField(max_length=128, blank=True, default="")
    config = models.ForeignKey("review.ScoreConfig", on_delete=models.CASCADE, related_name="+")
    # Which reviewers' answers count (review.quality.services.alignment): production answers
    # by default, or every answer to the question; optionally one queue's only.
    scope = models.CharField(
        max_length=16, choices=AlignmentScope.choices, default=AlignmentScope.PRODUCTION
    )
    queue = models.ForeignKey(
        "review.ReviewQueue", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    metric_threshold = models.FloatField(null=True, blank=True)
    human_threshold = models.FloatField(null=True, blank=True)
    human_pass_labels = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    history = history()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "score_name", "source_version", "config"],
                name="alignment_mapping_once",
            )
        ]

    def __str__(self) -> str:
        version = f"@{self.source_version}" if self.source_version else ""
        return f"{self.score_name}{version} vs config {self.config_id}"


class AlignmentReport(TenantModel):
    """One computation of a mapping's alignment, never updated (the rows before the
    latest show drift). ``value`` is the agreement rate on pass/fail (null with
    ``reason`` when there is none); ``figures`` has kappa, the confusion matrix, the
    numeric figures, one breakdown per judge version and the worst disagreements."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    mapping = models.ForeignKey(AlignmentMapping, on_delete=models.CASCADE, related_name="reports")
    computed_at = models.DateTimeField(default=timezone.now)
    n_items = models.PositiveIntegerField(default=0)
    value = models.FloatField(null=True, blank=True)
    kappa = models.FloatField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    figures = models.JSONField(default=dict)

    class Meta:
        ordering = ["-computed_at", "-id"]
        indexes = [models.Index(fields=["mapping", "-computed_at"], name="alignment_report_latest")]

    def __str__(self) -> str:
        return f"alignment of mapping {self.mapping_id} at {self.computed_at}"
