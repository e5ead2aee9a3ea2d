"""Reads for the calibration and alignment pages: sets with their gold answers and
rounds, a round's progress and results, the rounds of a set side by side, the mappings
with their latest report. Figures are what ``review.quality.services.calibration`` and
``review.quality.services.alignment`` stored; nothing is computed here."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q
from django.urls import reverse

from hitl.replica import reads_from_replica
from projects.hooks import WorkPage
from projects.models import Membership, Project
from projects.selectors import membership_sees_project
from review.models import (
    Annotation,
    ItemStatus,
    QueueItem,
    QueueReviewer,
    ReviewQueue,
    ScoreConfig,
)
from review.quality.models import (
    AlignmentMapping,
    AlignmentReport,
    CalibrationResult,
    CalibrationRound,
    CalibrationSet,
    GoldAnswer,
    QueueCalibration,
)
from review.selectors import pool_candidates
from traces.models import Trace
from traces.score_kinds import data_types, score_kind

# Traces offered as suggestions when adding a gold answer.
RECENT_TRACES = 50


def set_questions(calibration_set: CalibrationSet) -> list[ScoreConfig]:
    """The set's questions in the set's order."""
    by_id = {c.pk: c for c in ScoreConfig.objects.filter(pk__in=calibration_set.config_ids)}
    return [by_id[i] for i in calibration_set.config_ids if i in by_id]


def gold_configs(project: Project) -> list[ScoreConfig]:
    """Questions a set may ask: the project's live ones with an answer to compare
    (free text has none)."""
    return list(
        ScoreConfig.objects.filter(project=project, archived_at__isnull=True)
        .exclude(data_type__in=data_types(lambda kind: kind.free_text))
        .order_by("name", "id")
    )


def question_form(configs: list[ScoreConfig]) -> list[dict[str, Any]]:
    """Each question as the answer inputs need it (``review.pages.reviewer_forms.AnswersForm``
    builds its fields from the same shape)."""
    return [
        {
            "config_id": c.pk,
            "name": c.name,
            "data_type": c.data_type,
            "kind": score_kind(c.data_type),
            "options": [o["label"] for o in c.options],
            "min_value": c.min_value,
            "max_value": c.max_value,
            "step": c.step,
            "levels": c.rubric,
        }
        for c in configs
    ]


def calibration_sets_overview(project: Project) -> list[dict[str, Any]]:
    """Every set of the project with its gold answers, rounds and the latest round's
    outcome (passed of scored)."""
    sets = list(
        CalibrationSet.objects.filter(project=project)
        .annotate(
            gold_count=Count("gold_answers", distinct=True),
            round_count=Count("rounds", distinct=True),
        )
        .order_by("name", "id")
    )
    latest = {
        r.calibration_set_id: r
        for r in CalibrationRound.objects.filter(calibration_set__in=sets)
        .order_by("calibration_set_id", "-number")
        .distinct("calibration_set_id")
    }
    outcome = {
        row["round_id"]: row
        for row in CalibrationResult.objects.filter(round__in=list(latest.values()))
        .values("round_id")
        .annotate(total=Count("id"), passed=Count("id", filter=Q(passed=True)))
    }
    names = dict(
        ScoreConfig.objects.filter(pk__in={i for s in sets for i in s.config_ids}).values_list(
            "pk", "name"
        )
    )
    return [
        {
            "set": s,
            "questions": [names.get(i, f"#{i}") for i in s.config_ids],
            "latest": latest.get(s.pk),
            "outcome": outcome.get(latest[s.pk].pk) if s.pk in latest else None,
        }
        for s in sets
    ]


def _shown(config: ScoreConfig, value: Any) -> str:
    return score_kind(config.data_type).render(value)


def gold_rows(calibration_set: CalibrationSet, configs: list[ScoreConfig]) -> list[dict[str, Any]]:
    """The set's traces with each question's gold answer, as shown and as a form
    value, and the explanation."""
    golds = list(
        GoldAnswer.objects.filter(calibration_set=calibration_set).order_by("created_at", "id")
    )
    external = dict(
        Trace.objects.filter(pk__in=[g.trace_id for g in golds]).values_list("pk", "external_id")
    )
    rows = []
    for gold in golds:
        answers = []
        for config in configs:
            value = gold.values.get(str(config.pk))
            raw = _shown(config, value) if value is not None else ""
            answers.append({"config": config, "shown": _shown(config, value), "raw": raw})
        rows.append({"gold": gold, "external_id": external.get(gold.trace_id), "answers": answers})
    return rows


def recent_trace_ids(project: Project) -> list[str]:
    return list(
        Trace.objects.filter(project=project)
        .order_by("-start_time", "-id")
        .values_list("external_id", flat=True)[:RECENT_TRACES]
    )


def reviewer_choices(project: Project) -> list[Membership]:
    """Members who may review and see the project (a round is sent to some of them)."""
    return [m for m in pool_candidates() if membership_sees_project(m, project)]


@reads_from_replica
def rounds_compared(calibration_set: CalibrationSet) -> dict[str, Any]:
    """Every round of the set side by side: when, how many passed, the mean accuracy,
    the group's agreement overall and per question (rewrite a level, run again, and
    see whether the figures moved)."""
    configs = set_questions(calibration_set)
    rounds = list(
        CalibrationRound.objects.filter(calibration_set=calibration_set)
        .annotate(
            results_total=Count("results"),
            results_passed=Count("results", filter=Q(results__passed=True)),
        )
        .order_by("number")
    )
    accuracies: dict[int, list[float]] = defaultdict(list)
    for round_id, accuracy in CalibrationResult.objects.filter(round__in=rounds).values_list(
        "round_id", "accuracy"
    ):
        if accuracy is not None:
            accuracies[round_id].append(accuracy)
    rows = []
    for round_ in rounds:
        per_question = {q["config_id"]: q for q in (round_.figures or {}).get("questions", [])}
        values = accuracies.get(round_.pk, [])
        rows.append(
            {
                "round": round_,
                "mean_accuracy": sum(values) / len(values) if values else None,
                "questions": [
                    {
                        "agreement": per_question.get(c.pk, {}).get("agreement"),
                        "reason": per_question.get(c.pk, {}).get("agreement_reason"),
                    }
                    for c in configs
                ],
            }
        )
    return {"configs": configs, "rows": rows}


@reads_from_replica
def round_detail(round_: CalibrationRound) -> dict[str, Any]:
    """A round's progress (each reviewer's submissions of the round's items), its
    results against gold (overall, per question and per gold level), and the group's
    agreement per question with which gold level was answered as which."""
    calibration_set = round_.calibration_set
    configs = set_questions(calibration_set)
    items = QueueItem.objects.filter(queue_id=round_.queue_id).count()
    submitted = dict(
        Annotation.objects.filter(queue_id=round_.queue_id)
        .values("reviewer_id")
        .annotate(n=Count("id"))
        .values_list("reviewer_id", "n")
    )
    pool = list(
        Membership.objects.filter(
            pk__in=round_.queue.reviewers.values_list("membership_id", flat=True)
        )
        .select_related("user")
        .order_by("user__email")
    )
    results = {
        r.reviewer_id: r
        for r in CalibrationResult.objects.filter(round=round_).select_related("reviewer")
    }
    reviewers = []
    for membership in pool:
        result = results.get(membership.user_id)
        questions = (result.figures or {}).get("questions", {}) if result else {}
        reviewers.append(
            {
                "email": membership.user.email,
                "user_id": membership.user_id,
                "submitted": submitted.get(membership.user_id, 0),
                "result": result,
                "questions": [
                    {"name": c.name, **questions[str(c.pk)]} if str(c.pk) in questions else None
                    for c in configs
                ],
            }
        )
    questions = []
    for figure in (round_.figures or {}).get("questions", []):
        levels = [
            {
                "level": level,
                **counts,
                "confused": sorted(
                    ((given, n) for given, n in counts["answers"].items() if given != level),
                    key=lambda pair: -pair[1],
                ),
            }
            for level, counts in sorted(figure.get("levels", {}).items())
        ]
        questions.append({**figure, "level_rows": levels})
    return {
        "configs": configs,
        "items": items,
        "reviewers": reviewers,
        "done": sum(1 for r in reviewers if items and r["submitted"] >= items),
        "questions": questions,
        "scored": round_.scored_at is not None,
    }


def alignment_overview(project: Project) -> list[dict[str, Any]]:
    """Every mapping with its latest report (or none yet) and how many reports it has."""
    mappings = list(
        AlignmentMapping.objects.filter(project=project)
        .select_related("config")
        .annotate(report_count=Count("reports"))
        .order_by("score_name", "source_version", "id")
    )
    latest = {
        r.mapping_id: r
        for r in AlignmentReport.objects.filter(mapping__in=mappings)
        .order_by("mapping_id", "-computed_at", "-id")
        .distinct("mapping_id")
    }
    return [{"mapping": m, "report": latest.get(m.pk)} for m in mappings]


def alignment_queue_choices(project: Project) -> list[ReviewQueue]:
    """Queues an alignment mapping may be narrowed to: the project's live queues, not
    calibration rounds (their answers are never production answers)."""
    rounds = CalibrationRound.objects.filter(project=project).values_list("queue_id", flat=True)
    return list(
        ReviewQueue.objects.filter(project=project, archived_at__isnull=True)
        .exclude(pk__in=rounds)
        .order_by("name", "id")
    )


def queue_and_calibration_set(
    project: Project, queue_id: int, calibration_set_id: int
) -> tuple[ReviewQueue, CalibrationSet] | None:
    """The project's queue and calibration set named by these ids (None if either is not
    the project's)."""
    queue = ReviewQueue.objects.filter(project=project, pk=queue_id).first()
    calibration_set = CalibrationSet.objects.filter(project=project, pk=calibration_set_id).first()
    if queue is None or calibration_set is None:
        return None
    return queue, calibration_set


# --- a reviewer's own calibration -------------------------------------------------------------


def pending_rounds(*, membership: Membership) -> Any:
    """Rounds of live queues whose pool holds ``membership`` and that have no result of
    theirs yet: the calibration waiting for them (newest first)."""
    return (
        CalibrationRound.objects.filter(queue__archived_at__isnull=True)
        .filter(
            Exists(
                QueueReviewer.objects.filter(queue_id=OuterRef("queue_id"), membership=membership)
            )
        )
        .exclude(
            Exists(
                CalibrationResult.objects.filter(
                    round_id=OuterRef("pk"), reviewer_id=membership.user_id
                )
            )
        )
        .order_by("-created_at", "-id")
    )


def calibration_work_page(*, membership: Membership) -> WorkPage | None:
    """My calibration, when a round waits for the member with traces still to answer:
    where they land after signing in, before My work (``projects.hooks.work_page``)."""
    waiting = pending_rounds(membership=membership).filter(
        Exists(
            QueueItem.objects.filter(queue_id=OuterRef("queue_id"), status=ItemStatus.OPEN).exclude(
                Exists(
                    Annotation.objects.filter(
                        item_id=OuterRef("pk"), reviewer_id=membership.user_id
                    )
                )
            )
        )
    )
    if not waiting.exists():
        return None
    url = reverse("review-my-calibration", kwargs={"org_slug": membership.organization.slug})
    return WorkPage(url=url, has_work=True)


def my_rounds(*, membership: Membership) -> list[dict[str, Any]]:
    """The calibration rounds the member is in (live queues, newest first): each with
    its set, how many of its traces they answered, their result when scored, and the
    queues of the set's project the member reviews in that require passing the set."""
    rounds = list(
        CalibrationRound.objects.filter(queue__archived_at__isnull=True)
        .filter(
            Exists(
                QueueReviewer.objects.filter(queue_id=OuterRef("queue_id"), membership=membership)
            )
        )
        .select_related("calibration_set", "queue", "project")
        .order_by("-created_at", "-id")
    )
    queue_ids = [r.queue_id for r in rounds]
    items = dict(
        QueueItem.objects.filter(queue_id__in=queue_ids)
        .values("queue_id")
        .annotate(n=Count("id"))
        .values_list("queue_id", "n")
    )
    answered = dict(
        Annotation.objects.filter(queue_id__in=queue_ids, reviewer_id=membership.user_id)
        .values("queue_id")
        .annotate(n=Count("item_id", distinct=True))
        .values_list("queue_id", "n")
    )
    results = {
        r.round_id: r
        for r in CalibrationResult.objects.filter(
            round_id__in=[r.pk for r in rounds], reviewer_id=membership.user_id
        )
    }
    gated: dict[int, list[str]] = defaultdict(list)
    for set_id, name in (
        QueueCalibration.objects.filter(
            calibration_set_id__in={r.calibration_set_id for r in rounds},
            require_pass=True,
            queue__archived_at__isnull=True,
        )
        .filter(
            Exists(
                QueueReviewer.objects.filter(queue_id=OuterRef("queue_id"), membership=membership)
            )
        )
        .order_by("queue__name")
        .values_list("calibration_set_id", "queue__name")
    ):
        gated[set_id].append(name)
    return [
        {
            "round": r,
            "set": r.calibration_set,
            "items": items.get(r.queue_id, 0),
            "answered": answered.get(r.queue_id, 0),
            "result": results.get(r.pk),
            "gates": gated.get(r.calibration_set_id, []),
            "to_do": r.pk not in results and answered.get(r.queue_id, 0) < items.get(r.queue_id, 0),
        }
        for r in rounds
    ]
