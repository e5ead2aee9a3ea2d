"""Metric alignment: mappings of an automated score to a reviewers' question, and
reports computed from the scores and answers both sides gave on the same traces
(:mod:`review.quality.alignment`), stored one row per computation.

The reviewers' side of a trace is the adjudicated answer when there is one, else the
mean of their answers (numeric) or the majority verdict (pass/fail; a tie is left out
and counted). Which answers count is the mapping's scope (:class:`AlignmentScope`):
``production`` (the default) leaves out calibration rounds, the gold items mixed into
live queues, and reviewers whose latest calibration round on the question failed (a
newcomer still learning the rubric); ``all`` counts every answer to the question. A
mapping may name one queue: only that queue's answers count. Each report says its
scope and how many answers each rule left out.

The metric's side is its latest score on the trace (of the mapping's judge version,
when it names one); per-version breakdowns use each version's latest.

Anchoring (``figures["anchoring"]``): each answer in scope, one by one, against the
metric, split by whether the judge's suggestion for the question was visible before the
reviewer answered (what the annotation recorded, ``review.services.suggestions``), with
intervals and a verdict (:func:`review.quality.alignment.anchoring_comparison`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db import transaction

from hitl import audit, outbox
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, NotFound
from hitl.replica import reads_from_replica
from projects.models import Project
from review.models import Adjudication, Annotation, ReviewQueue, ScoreConfig
from review.quality.alignment import alignment_figures, anchoring_comparison
from review.quality.models import (
    AlertKind,
    AlignmentMapping,
    AlignmentReport,
    AlignmentScope,
    CalibrationResult,
    CalibrationRound,
    CalibrationSet,
    GoldAnswer,
    QueueCalibration,
)
from review.quality.services.alerts import alert_raise, quality_thresholds, rolling_crossed
from review.services.common import is_number, time_now
from traces.models import AUTOMATED_SCORE_SOURCES, Score
from traces.score_kinds import KINDS, score_kind

logger = logging.getLogger(__name__)

ALIGNMENT_REFRESH = "review.alignment_refresh"


def alignment_mapping_create(
    *,
    actor: Actor,
    project: Project,
    score_name: str,
    config_id: int,
    source_version: str = "",
    metric_threshold: float | None = None,
    human_threshold: float | None = None,
    human_pass_labels: Sequence[str] = (),
    scope: str = AlignmentScope.PRODUCTION,
    queue_id: int | None = None,
) -> AlignmentMapping:
    """Maps an automated score to a question and asks a worker for its first report.
    Mismatched types (a free-text question, a categorical question without pass labels,
    a numeric one without a threshold) are refused here, and the scores' own type is
    checked when a report is computed.
    ``scope`` and ``queue_id`` say whose answers count (see the module)."""
    config = ScoreConfig.objects.filter(project=project, pk=config_id).first()
    if config is None:
        raise NotFound("No such score config in this project.")
    errors: dict[str, list[str]] = {}
    queue = _scope_errors(project, scope, queue_id, errors)
    if score_kind(config.data_type).free_text:
        errors["config_id"] = ["A free-text question has no pass or fail to compare."]
    if score_kind(config.data_type).numeric and not is_number(human_threshold):
        errors["human_threshold"] = ["A numeric question needs the value from which it passes."]
    if score_kind(config.data_type).has_options:
        labels = {o["label"] for o in config.options}
        if not human_pass_labels or not set(human_pass_labels) <= labels:
            errors["human_pass_labels"] = [f"Name the passing options among: {sorted(labels)}."]
    if metric_threshold is not None and not is_number(metric_threshold):
        errors["metric_threshold"] = ["A number."]
    if not score_name.strip():
        errors["score_name"] = ["required"]
    if errors:
        raise DomainError("Invalid alignment mapping.", details=errors)
    with audit.acting_as(actor), transaction.atomic():
        if AlignmentMapping.objects.filter(
            project=project, score_name=score_name, source_version=source_version, config=config
        ).exists():
            raise Conflict("This score is already mapped to this question.")
        mapping = AlignmentMapping.objects.create(
            project=project,
            score_name=score_name,
            source_version=source_version,
            config=config,
            metric_threshold=metric_threshold,
            human_threshold=human_threshold,
            human_pass_labels=list(human_pass_labels),
            scope=scope,
            queue=queue,
            created_by=actor.user,
        )
        alignment_request(mapping=mapping)
        return mapping


def alignment_mapping_delete(*, actor: Actor, mapping: AlignmentMapping) -> None:
    """Removes a mapping with its reports (history keeps who removed it)."""
    with audit.acting_as(actor), transaction.atomic():
        mapping.delete()


def _scope_errors(
    project: Project, scope: str, queue_id: int | None, errors: dict[str, list[str]]
) -> ReviewQueue | None:
    if scope not in AlignmentScope.values:
        errors["scope"] = [f"One of: {', '.join(AlignmentScope.values)}."]
    if queue_id is None:
        return None
    queue = ReviewQueue.objects.filter(project=project, pk=queue_id).first()
    if queue is None:
        errors["queue_id"] = ["No such queue in this project."]
    return queue


def alignment_mapping_scope_set(
    *, actor: Actor, mapping: AlignmentMapping, scope: str, queue_id: int | None = None
) -> AlignmentMapping:
    """Changes whose answers the mapping's reports count, and requests a new report
    (the earlier ones keep the scope they were computed with)."""
    errors: dict[str, list[str]] = {}
    queue = _scope_errors(mapping.project, scope, queue_id, errors)
    if errors:
        raise DomainError("Invalid alignment scope.", details=errors)
    with audit.acting_as(actor), transaction.atomic():
        mapping.scope, mapping.queue = scope, queue
        mapping.save(update_fields=["scope", "queue"])
        alignment_request(mapping=mapping)
    return mapping


def alignment_request(*, mapping: AlignmentMapping) -> None:
    """Asks a worker to compute the mapping's report after this transaction commits."""
    outbox.enqueue(
        task=ALIGNMENT_REFRESH,
        organization_id=mapping.organization_id,
        kwargs={"mapping_id": mapping.pk},
    )


def _human_pass(mapping: AlignmentMapping, value: Any) -> bool:
    return score_kind(mapping.config.data_type).passes(
        value, threshold=mapping.human_threshold, pass_labels=mapping.human_pass_labels
    )


class _Scope:
    """Which answers a mapping's report counts: :meth:`leaves_out` names the rule that
    leaves an answer out (None: it counts); ``left_out`` tallies them per rule."""

    def __init__(self, mapping: AlignmentMapping) -> None:
        self.mapping = mapping
        self.left_out: dict[str, int] = {"calibration_rounds": 0, "gold_items": 0,
                                         "failing_reviewers": 0}  # fmt: skip
        self.production = mapping.scope == AlignmentScope.PRODUCTION
        if not self.production:
            return
        project_id = mapping.project_id
        self.round_queues = set(
            CalibrationRound.objects.filter(project_id=project_id).values_list(
                "queue_id", flat=True
            )
        )
        uses = dict(
            QueueCalibration.objects.filter(project_id=project_id, gold_rate__gt=0).values_list(
                "queue_id", "calibration_set_id"
            )
        )
        gold = defaultdict(set)
        for set_id, trace_id in GoldAnswer.objects.filter(
            calibration_set_id__in=set(uses.values())
        ).values_list("calibration_set_id", "trace_id"):
            gold[set_id].add(trace_id)
        self.gold = {queue_id: gold[set_id] for queue_id, set_id in uses.items()}
        # The latest round result of each reviewer in each set asking this question.
        sets = CalibrationSet.objects.filter(
            project_id=project_id, config_ids__contains=[mapping.config_id]
        ).values_list("pk", flat=True)
        latest = (
            CalibrationResult.objects.filter(calibration_set_id__in=list(sets))
            .order_by("calibration_set_id", "reviewer_id", "-round__number")
            .distinct("calibration_set_id", "reviewer_id")
            .values_list("reviewer_id", "passed")
        )
        self.failing = {reviewer_id for reviewer_id, passed in latest if not passed}

    def leaves_out(self, queue_id: int, trace_id: int, reviewer_id: int | None) -> str | None:
        if not self.production:
            return None
        if queue_id in self.round_queues:
            return "calibration_rounds"
        if trace_id in self.gold.get(queue_id, ()):
            return "gold_items"
        if reviewer_id is not None and reviewer_id in self.failing:
            return "failing_reviewers"
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.mapping.scope,
            "label": AlignmentScope(self.mapping.scope).label,
            "queue_id": self.mapping.queue_id,
            "left_out": dict(self.left_out),
        }


def _human_side(
    mapping: AlignmentMapping, scope: _Scope | None = None
) -> tuple[dict[int, tuple[bool, float | None]], int]:
    """Per trace: the reviewers' verdict and, on a numeric question, their value; and how
    many traces were left out on a tied vote. Only the answers in the mapping's scope
    count (``scope.left_out`` tallies the others)."""
    scope = scope or _Scope(mapping)
    key = str(mapping.config_id)
    adjudications = Adjudication.objects.filter(
        project_id=mapping.project_id, values__has_key=key, item__trace_id__isnull=False
    )
    annotations = Annotation.objects.filter(
        project_id=mapping.project_id, values__has_key=key, trace_id__isnull=False
    )
    if mapping.queue_id is not None:
        adjudications = adjudications.filter(item__queue_id=mapping.queue_id)
        annotations = annotations.filter(queue_id=mapping.queue_id)
    decided = {
        trace_id: values
        for queue_id, trace_id, values in adjudications.order_by("created_at").values_list(
            "item__queue_id", "item__trace_id", "values"
        )
        if scope.leaves_out(queue_id, trace_id, None) is None
    }
    answers: dict[int, list[Any]] = defaultdict(list)
    for queue_id, reviewer_id, trace_id, values in annotations.values_list(
        "queue_id", "reviewer_id", "trace_id", "values"
    ):
        if values.get(key) is None:
            continue
        rule = scope.leaves_out(queue_id, trace_id, reviewer_id)
        if rule is not None:
            scope.left_out[rule] += 1
            continue
        answers[trace_id].append(values[key])
    numeric = score_kind(mapping.config.data_type).numeric
    side: dict[int, tuple[bool, float | None]] = {}
    ties = 0
    for trace_id in set(answers) | set(decided):
        if trace_id in decided and decided[trace_id].get(key) is not None:
            value = decided[trace_id][key]
            side[trace_id] = (_human_pass(mapping, value), float(value) if numeric else None)
            continue
        given = answers[trace_id]
        if numeric:
            mean = sum(given) / len(given)
            side[trace_id] = (mean >= mapping.human_threshold, mean)
            continue
        votes = [_human_pass(mapping, v) for v in given]
        passes = sum(votes)
        if passes * 2 == len(votes):
            ties += 1
            continue
        side[trace_id] = (passes * 2 > len(votes), None)
    return side, ties


def _metric_side(mapping: AlignmentMapping) -> tuple[dict[str, dict[int, Score]], str | None]:
    """The metric's latest score per trace, per judge version ('' = all versions)."""
    scores = Score.objects.filter(
        project_id=mapping.project_id,
        name=mapping.score_name,
        source__in=AUTOMATED_SCORE_SOURCES,
        trace_id__isnull=False,
    )
    if mapping.source_version:
        scores = scores.filter(source_version=mapping.source_version)
    by_version: dict[str, dict[int, Score]] = defaultdict(dict)
    types = set()
    for score in scores.order_by("created_at", "id").only(
        "trace_id", "value", "label", "data_type", "source_version", "created_at"
    ):
        types.add(score.data_type)
        by_version[""][score.trace_id] = score
        by_version[score.source_version][score.trace_id] = score
    # A label passes only among pass labels, which a metric's side has none of.
    kinds = {data_type: KINDS.get(data_type) for data_type in types}
    bad = {data_type for data_type, kind in kinds.items() if kind is None or kind.labelled}
    if bad:
        return {}, (
            f"The score {mapping.score_name!r} is {', '.join(sorted(bad))}: only numeric or "
            "boolean scores have a pass or fail to compare."
        )
    if any(kind.numeric for kind in kinds.values()) and mapping.metric_threshold is None:
        return {}, (
            f"The score {mapping.score_name!r} is numeric: the mapping needs a metric "
            "threshold to say what passes."
        )
    return by_version, None


def _metric_pass(mapping: AlignmentMapping, score: Score) -> bool:
    return score_kind(score.data_type).passes(score.value, threshold=mapping.metric_threshold)


def _figures_for(
    mapping: AlignmentMapping,
    scores: dict[int, Score],
    human: dict[int, tuple[bool, float | None]],
) -> dict[str, Any]:
    traces = sorted(t for t in scores if t in human and scores[t].value is not None)
    numeric = (
        score_kind(mapping.config.data_type).numeric
        and traces
        and all(score_kind(scores[t].data_type).numeric for t in traces)
    )
    return alignment_figures(
        item_ids=[{"trace_id": t} for t in traces],
        metric_pass=[_metric_pass(mapping, scores[t]) for t in traces],
        human_pass=[human[t][0] for t in traces],
        metric_values=[scores[t].value for t in traces] if numeric else None,
        human_values=[human[t][1] for t in traces] if numeric else None,
        metric_threshold=mapping.metric_threshold,
    )


# Where a reviewer saw the judge's suggestion before answering (the annotation's record,
# ``review.services.suggestions``): beside the question, or in the scores panel.
VISIBLE_BEFORE = ("before", "panel")


def _anchoring(
    mapping: AlignmentMapping, scope: _Scope, scores: dict[int, Score]
) -> dict[str, Any]:
    """Each answer in the mapping's scope against the metric's latest score on its trace
    (pass against pass), split by whether the judge's suggestion for the question was
    visible before the reviewer answered (``anchoring_comparison``). Left out and
    counted: answers recorded before suggestions were (``unrecorded``), and answers
    switched to a suggestion revealed only after answering (``revised_after_seeing``)."""
    key = str(mapping.config_id)
    annotations = Annotation.objects.filter(
        project_id=mapping.project_id, values__has_key=key, trace_id__isnull=False
    )
    if mapping.queue_id is not None:
        annotations = annotations.filter(queue_id=mapping.queue_id)
    visible: list[bool] = []
    hidden: list[bool] = []
    left_out = {"unrecorded": 0, "revised_after_seeing": 0}
    for queue_id, reviewer_id, trace_id, values, shown in annotations.values_list(
        "queue_id", "reviewer_id", "trace_id", "values", "suggestions"
    ):
        score = scores.get(trace_id)
        if score is None or score.value is None or values.get(key) is None:
            continue
        if scope.leaves_out(queue_id, trace_id, reviewer_id) is not None:
            continue
        if not shown:
            left_out["unrecorded"] += 1
            continue
        question = (shown.get("questions") or {}).get(key) or {}
        if question.get("visible") == "after" and question.get("accepted_by_key"):
            left_out["revised_after_seeing"] += 1
            continue
        agree = _human_pass(mapping, values[key]) == _metric_pass(mapping, score)
        (visible if question.get("visible") in VISIBLE_BEFORE else hidden).append(agree)
    out = anchoring_comparison(agree_visible=visible, agree_hidden=hidden)
    out["left_out"] = left_out
    return out


def alignment_refresh(*, mapping_id: int) -> AlignmentReport | None:
    """Computes and stores one report of the mapping (None when the mapping is gone);
    a bad input is a report with the reason, never an error. Alerts when the rolling
    agreement rate crosses under the threshold."""
    mapping = AlignmentMapping.objects.select_related("config").filter(pk=mapping_id).first()
    if mapping is None:
        return None
    # The inputs (answers, decisions, scores, gold) from a caught-up read replica when
    # there is one (hitl/replica.py); the report is written to the primary.
    with reads_from_replica():
        scope = _Scope(mapping)
        human, ties = _human_side(mapping, scope)
        by_version, reason = _metric_side(mapping)
        if reason:
            figures: dict[str, Any] = {"n_items": 0, "reason": reason}
        else:
            figures = _figures_for(mapping, by_version.get("", {}), human)
            figures["versions"] = {
                version: _figures_for(mapping, scores, human)
                for version, scores in sorted(by_version.items())
                if version
            }
            for per in figures["versions"].values():
                per.pop("worst_items", None)
            figures["tied_votes_left_out"] = ties
            figures["anchoring"] = _anchoring(mapping, scope, by_version.get("", {}))
            reason = figures["agreement_rate"]["reason"]
        figures["scope"] = scope.describe()
    figures["mapping"] = {
        "score_name": mapping.score_name,
        "source_version": mapping.source_version,
        "config_id": mapping.config_id,
        "config_name": mapping.config.name,
        "metric_threshold": mapping.metric_threshold,
        "human_threshold": mapping.human_threshold,
        "human_pass_labels": mapping.human_pass_labels,
    }
    with transaction.atomic():
        report = AlignmentReport.objects.create(
            project_id=mapping.project_id,
            mapping=mapping,
            computed_at=time_now(),
            n_items=figures.get("n_items", 0),
            value=(figures.get("agreement_rate") or {}).get("value"),
            kappa=(figures.get("kappa") or {}).get("value"),
            reason=reason or "",
            figures=figures,
        )
        _alert_check(mapping)
    return report


def _alert_check(mapping: AlignmentMapping) -> None:
    """Alerts when the rolling agreement rate over the project's window of reports
    crossed under its alignment threshold (:func:`quality_thresholds`)."""
    limits = quality_thresholds(mapping.project_id)
    threshold, window = limits.alignment_threshold, limits.window
    values = list(
        AlignmentReport.objects.filter(mapping=mapping)
        .order_by("-computed_at", "-id")
        .values_list("value", flat=True)[: window + 1]
    )
    mean = rolling_crossed(values, threshold=threshold, window=window)
    if mean is None:
        return
    version = f" ({mapping.source_version})" if mapping.source_version else ""
    alert_raise(
        kind=AlertKind.ALIGNMENT,
        project_id=mapping.project_id,
        config_id=mapping.config_id,
        value=mean,
        threshold=threshold,
        window=min(window, len([v for v in values if v is not None])),
        subject={"mapping_id": mapping.pk, "score_name": mapping.score_name},
        score_names=[mapping.score_name, mapping.config.name],
        message=(
            f"The metric {mapping.score_name!r}{version} agrees with the reviewers on "
            f"{mapping.config.name!r} {mean:.0%} of the time (rolling), under {threshold:.0%}."
        ),
    )


def alignment_sweep() -> int:
    """Requests a report of every mapping (in the organization in scope)."""
    mappings = list(AlignmentMapping.objects.all())
    with transaction.atomic():
        for mapping in mappings:
            alignment_request(mapping=mapping)
    return len(mappings)
