"""Comparison's models: an item of one input and two or more outputs reviewed side by
side, a queue's comparison settings (its criteria, how more than two outputs are
answered) and each reviewer's preference per criterion.

They belong to the ``review`` app (its label, tables and migrations): ``ReviewConfig``
imports this module beside :mod:`review.models`, as it does the quality wing's. They name
the core's models by their app label ("review.QueueItem"); a queue item whose
``target_type`` is ``comparison`` points at a :class:`ComparisonItem`.

Position bias: a reviewer sees the outputs in an order drawn for their lease
(:func:`review.comparison.ordering.shown_order`). A :class:`Preference` keeps that order
(``shown_order``, output ids left to right) and the answer both as given on screen
(``answer_shown``) and read back onto the outputs themselves (``winner``, ``ranking``),
which is what every report reads.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from hitl.audit import history
from hitl.tenancy import TenantModel

# The most outputs one comparison item holds.
MAX_OUTPUTS = 9


class ComparisonSource(models.TextChoices):
    EXPERIMENTS = "experiments", "Results of experiments on the same dataset item"
    TRACES = "traces", "Traces sharing a grouping key"
    API = "api", "Outputs posted through the API"


class OutputSource(models.TextChoices):
    EXPERIMENT_RESULT = "experiment_result", "An experiment's result"
    TRACE = "trace", "A trace"
    API = "api", "Posted through the API"


class ComparisonItem(TenantModel):
    """One input and its 2..N outputs (:class:`ComparisonOutput`, in canonical order)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    input = models.JSONField(null=True, blank=True)
    # What the outputs share: a dataset item's key, a metadata value, a client's key.
    group_key = models.CharField(max_length=300, blank=True, default="")
    source = models.CharField(max_length=16, choices=ComparisonSource.choices)
    # ``datasets.DatasetItem`` id when the outputs answer one (no foreign key: review
    # sits below datasets).
    dataset_item_id = models.BigIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    history = history()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "group_key"], name="comparison_item_key")]

    def __str__(self) -> str:
        return f"comparison {self.pk}" + (f" ({self.group_key})" if self.group_key else "")


class ComparisonOutput(TenantModel):
    """One system's output in a comparison; ``position`` is its canonical place."""

    comparison = models.ForeignKey(ComparisonItem, on_delete=models.CASCADE, related_name="outputs")
    position = models.PositiveSmallIntegerField()
    # The system's name as reports group it (an experiment's name, a variant).
    label = models.CharField(max_length=200)
    content = models.JSONField(null=True, blank=True)
    source = models.CharField(max_length=20, choices=OutputSource.choices)
    # ``datasets.ExperimentResult`` id (no foreign key: review sits below datasets).
    experiment_result_id = models.BigIntegerField(null=True, blank=True)
    trace = models.ForeignKey(
        "traces.Trace", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    history = history()

    class Meta:
        ordering = ["comparison_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "position"], name="comparison_output_position"
            ),
            models.UniqueConstraint(fields=["comparison", "label"], name="comparison_output_label"),
        ]

    def __str__(self) -> str:
        return f"{self.label} in comparison {self.comparison_id}"


class NWayMode(models.TextChoices):
    BEST = "best", "Pick the best"
    RANKING = "ranking", "Rank them all"


class ComparisonQueue(TenantModel):
    """A queue's comparison questions: one criterion each ("Which is more helpful?")."""

    queue = models.OneToOneField(
        "review.ReviewQueue", on_delete=models.CASCADE, related_name="comparison_setup"
    )
    # [{"name": "helpfulness", "question": "Which answer helps more?"}, ...]
    criteria = models.JSONField(default=list)
    # Two outputs: A, B or tie, with a strength (1 better, 2 much better) when allowed.
    allow_strength = models.BooleanField(default=False)
    # More than two outputs: best of N, or a full ranking.
    n_way = models.CharField(max_length=8, choices=NWayMode.choices, default=NWayMode.BEST)
    updated_at = models.DateTimeField(default=timezone.now)

    history = history()

    def __str__(self) -> str:
        return f"comparison setup of queue {self.queue_id}"

    @property
    def criterion_names(self) -> list[str]:
        return [c["name"] for c in self.criteria]


class Preference(TenantModel):
    """One reviewer's answer to one criterion of one comparison item.

    ``shown_order``: the output ids as they were shown, left (A) to right. ``answer_shown``:
    the answer in screen terms ({"choice": "a"|"b"|"tie", "strength": 1|2}, {"best": 0..},
    {"ranking": [screen indices, best first]}). ``winner`` (null: a tie) and ``ranking``
    (output ids best first; a pairwise tie lists both in canonical order) are the same
    answer on the outputs themselves."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    queue = models.ForeignKey("review.ReviewQueue", on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(
        "review.QueueItem", on_delete=models.CASCADE, related_name="preferences"
    )
    comparison = models.ForeignKey(ComparisonItem, on_delete=models.CASCADE, related_name="+")
    assignment = models.ForeignKey(
        "review.Assignment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    annotation = models.ForeignKey(
        "review.Annotation",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="preferences",
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    criterion = models.CharField(max_length=100)
    shown_order = ArrayField(models.BigIntegerField())
    answer_shown = models.JSONField()
    winner = models.ForeignKey(
        ComparisonOutput, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    ranking = ArrayField(models.BigIntegerField())
    strength = models.PositiveSmallIntegerField(default=1)
    submitted_at = models.DateTimeField(default=timezone.now)

    history = history()

    class Meta:
        ordering = ["item_id", "reviewer_id", "criterion"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "reviewer", "criterion"], name="preference_once_per_criterion"
            )
        ]
        indexes = [models.Index(fields=["queue", "criterion"], name="preference_queue")]

    def __str__(self) -> str:
        return f"preference on {self.criterion} by {self.reviewer_id} on item {self.item_id}"

    @property
    def is_tie(self) -> bool:
        return self.winner_id is None
