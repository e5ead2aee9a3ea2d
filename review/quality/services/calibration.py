"""Calibration: sets of traces with gold answers, rounds that send a set to chosen
reviewers, their results, the onboarding gate and gold items mixed into live queues.

A round is an ordinary blind queue (overlap = its reviewers), so reviewers claim and
submit through the same services as everywhere; scoring a round compares their
answers with gold and reads the group's agreement from :mod:`review.quality.agreement`, and
announces each reviewer's result (``review.calibration.passed`` or ``.failed``) in the
same transaction.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef

from hitl import audit, sql_rows, tenancy
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, NotFound, PermissionDenied
from projects.models import Membership, Project
from projects.notifications import catalogue, event_emit, is_subscribed, site_reverse
from review.models import (
    Annotation,
    Assignment,
    Comment,
    ItemStatus,
    QueueItem,
    QueueReviewer,
    ReviewQueue,
    ScoreConfig,
)
from review.quality.agreement import Ratings, cohen_kappa
from review.quality.models import (
    AlertKind,
    CalibrationResult,
    CalibrationRound,
    CalibrationSet,
    GoldAccuracy,
    GoldAnswer,
    QueueCalibration,
)
from review.quality.selectors.agreement import latest_reports, scale_of, scaled_answer
from review.quality.selectors.calibration import pending_rounds
from review.quality.services.agreement import agreement_refresh
from review.quality.services.alerts import alert_raise
from review.services.annotations import check_answer
from review.services.common import is_number, time_now
from traces.models import Trace
from traces.score_kinds import score_kind

# A reviewer's gold accuracy is judged once they answered this many gold questions.
GOLD_MIN_ANSWERS = 3


def _rate(value: Any, name: str) -> float:
    if not is_number(value) or not 0 <= value <= 1:
        raise DomainError(f"{name} is a fraction between 0 and 1.", details={name: ["0..1"]})
    return float(value)


def _set_configs(project: Project, config_ids: Sequence[int]) -> list[ScoreConfig]:
    ids = [int(c) for c in config_ids]
    if not ids or len(set(ids)) != len(ids):
        raise DomainError(
            "Name each question of the set once.", details={"config_ids": ["required"]}
        )
    configs = {c.pk: c for c in ScoreConfig.objects.filter(project=project, pk__in=ids)}
    missing = [i for i in ids if i not in configs]
    if missing:
        raise DomainError("No such score config in this project.", details={"config_ids": missing})
    text = [configs[i].name for i in ids if score_kind(configs[i].data_type).free_text]
    if text:
        raise DomainError(
            "Free-text questions have no gold answer to compare with.",
            details={"config_ids": text},
        )
    return [configs[i] for i in ids]


def calibration_set_create(
    *,
    actor: Actor,
    project: Project,
    name: str,
    config_ids: Sequence[int],
    description: str = "",
    min_accuracy: float = 0.8,
    min_agreement: float | None = None,
    tolerances: Mapping[str, Any] | None = None,
) -> CalibrationSet:
    """A new calibration set asking ``config_ids``, passed at ``min_accuracy`` (and
    ``min_agreement`` of the round's group, when set); ``tolerances``: per numeric
    question, how far from gold an answer may be and still be right."""
    configs = _set_configs(project, config_ids)
    tolerances = _tolerances(configs, tolerances or {})
    min_accuracy = _rate(min_accuracy, "min_accuracy")
    min_agreement = _agreement_bar(min_agreement)
    with audit.acting_as(actor), transaction.atomic():
        if CalibrationSet.objects.filter(project=project, name=name).exists():
            raise Conflict(f"A calibration set named {name!r} exists.", details={"name": ["taken"]})
        return CalibrationSet.objects.create(
            project=project,
            name=name,
            description=description,
            config_ids=[c.pk for c in configs],
            tolerances=tolerances,
            min_accuracy=min_accuracy,
            min_agreement=min_agreement,
            created_by=actor.user,
        )


def _tolerances(configs: Sequence[ScoreConfig], given: Mapping[str, Any]) -> dict[str, float]:
    """Checks per-question tolerances: numeric questions of the set, numbers >= 0."""
    numeric = {str(c.pk) for c in configs if score_kind(c.data_type).numeric}
    errors: dict[str, str] = {}
    cleaned: dict[str, float] = {}
    for key, value in given.items():
        key = str(key)
        if key not in numeric:
            errors[key] = "Only a numeric question of this set takes a tolerance."
        elif not is_number(value) or not 0 <= value < float("inf"):
            errors[key] = "A tolerance is a number, 0 or more."
        elif value > 0:
            cleaned[key] = float(value)
    if errors:
        raise DomainError("Invalid tolerances.", details={"tolerances": errors})
    return cleaned


def _agreement_bar(min_agreement: Any) -> float | None:
    if min_agreement is None:
        return None
    if not is_number(min_agreement) or not -1 <= min_agreement <= 1:
        raise DomainError(
            "min_agreement is a coefficient between -1 and 1.",
            details={"min_agreement": ["-1..1"]},
        )
    return float(min_agreement)


def calibration_set_update(
    *,
    actor: Actor,
    calibration_set: CalibrationSet,
    min_accuracy: float,
    min_agreement: float | None,
    description: str | None = None,
    tolerances: Mapping[str, Any] | None = None,
) -> CalibrationSet:
    """Changes what passing the set takes (and its description, and its numeric
    tolerances when given). Results already scored keep their verdict; the next scoring
    of a round, and gold accuracy from then on, use the new ones."""
    min_accuracy = _rate(min_accuracy, "min_accuracy")
    min_agreement = _agreement_bar(min_agreement)
    if tolerances is not None:
        configs = list(ScoreConfig.objects.filter(pk__in=calibration_set.config_ids))
        tolerances = _tolerances(configs, tolerances)
    with audit.acting_as(actor), transaction.atomic():
        row = CalibrationSet.objects.select_for_update().get(pk=calibration_set.pk)
        row.min_accuracy = min_accuracy
        row.min_agreement = min_agreement
        if description is not None:
            row.description = description
        if tolerances is not None:
            row.tolerances = tolerances
        row.save()
    return row


def gold_answer_set(
    *,
    actor: Actor,
    calibration_set: CalibrationSet,
    trace_id: int,
    values: Mapping[str, Any],
    explanation: str = "",
) -> GoldAnswer:
    """Writes (or rewrites) the gold answers for one trace of the set. Every question of
    the set needs an answer valid on its scale."""
    configs = ScoreConfig.objects.filter(pk__in=calibration_set.config_ids)
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for config in configs:
        key = str(config.pk)
        if key not in values or values[key] is None:
            errors[key] = f"A gold answer to {config.name!r} is required."
            continue
        reason = check_answer(config, values[key])
        if reason:
            errors[key] = reason
        cleaned[key] = values[key]
    unknown = sorted(set(map(str, values)) - {str(c.pk) for c in configs})
    for key in unknown:
        errors[key] = "Not a question of this calibration set."
    if errors:
        raise DomainError("Invalid gold answers.", details={"values": errors})
    trace = Trace.objects.filter(project_id=calibration_set.project_id, pk=trace_id).first()
    if trace is None:
        raise NotFound("No such trace in this project.")
    with audit.acting_as(actor), transaction.atomic():
        gold, _created = GoldAnswer.objects.update_or_create(
            calibration_set=calibration_set,
            trace=trace,
            defaults={"values": cleaned, "explanation": explanation},
        )
    return gold


def gold_answer_remove(*, actor: Actor, gold: GoldAnswer) -> None:
    """Takes a trace out of the set. Rounds already started keep their items."""
    with audit.acting_as(actor), transaction.atomic():
        gold.delete()


def calibration_round_start(
    *, actor: Actor, calibration_set: CalibrationSet, reviewer_ids: Sequence[int]
) -> CalibrationRound:
    """Sends the set to the chosen reviewers (user ids): a blind queue of the set's gold
    traces that each of them reviews once. Earlier rounds are kept."""
    from review.services.items import queue_item_add
    from review.services.queues import queue_create

    golds = list(calibration_set.gold_answers.order_by("id"))
    if not golds:
        raise DomainError("The set has no gold answers yet.", code="no_gold_answers")
    reviewer_ids = list(dict.fromkeys(int(r) for r in reviewer_ids))
    if not reviewer_ids:
        raise DomainError("Choose the reviewers.", details={"reviewer_ids": ["required"]})
    memberships = dict(
        Membership.objects.filter(user_id__in=reviewer_ids).values_list("user_id", "pk")
    )
    missing = [r for r in reviewer_ids if r not in memberships]
    if missing:
        raise DomainError("Not members of this organization.", details={"reviewer_ids": missing})
    with audit.acting_as(actor), transaction.atomic():
        locked = CalibrationSet.objects.select_for_update().get(pk=calibration_set.pk)
        number = (
            locked.rounds.order_by("-number").values_list("number", flat=True).first() or 0
        ) + 1
        queue = queue_create(
            actor=actor,
            project=Project.objects.get(pk=locked.project_id),
            form=[{"config_id": c, "adjudicates": False} for c in locked.config_ids],
            reviewers=[{"membership_id": memberships[r]} for r in reviewer_ids],
            name=f"{locked.name}: calibration round {number}",
            description=f"Calibration round {number} of the set {locked.name!r}.",
            overlap=min(len(reviewer_ids), 20),
            blind_mode=True,
        )
        for gold in golds:
            queue_item_add(actor=actor, queue=queue, trace_id=gold.trace_id)
        return CalibrationRound.objects.create(
            project_id=locked.project_id, calibration_set=locked, number=number, queue=queue
        )


def _equal(config: ScoreConfig, answer: Any, gold: Any, tolerance: float = 0.0) -> bool:
    return score_kind(config.data_type).equal(answer, gold, tolerance)


def _level(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _score_answers(
    configs: Sequence[ScoreConfig],
    gold_by_trace: Mapping[int, Mapping[str, Any]],
    annotations: Sequence[tuple[int, int, Mapping[str, Any]]],
    tolerances: Mapping[str, float] | None = None,
) -> dict[int, dict[str, Any]]:
    """Per reviewer: answered and correct overall, per question and per gold level (a
    numeric answer within the question's tolerance of gold is right)."""
    tolerances = tolerances or {}
    per: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"answered": 0, "correct": 0, "questions": {}}
    )
    for reviewer_id, trace_id, values in annotations:
        gold = gold_by_trace.get(trace_id)
        if gold is None:
            continue
        sheet = per[reviewer_id]
        for config in configs:
            key = str(config.pk)
            if key not in gold or values.get(key) is None:
                continue
            right = _equal(config, values[key], gold[key], tolerances.get(key, 0.0))
            question = sheet["questions"].setdefault(
                key, {"name": config.name, "answered": 0, "correct": 0, "levels": {}}
            )
            level = question["levels"].setdefault(
                _level(gold[key]), {"answered": 0, "correct": 0, "answers": {}}
            )
            for counts in (sheet, question, level):
                counts["answered"] += 1
                counts["correct"] += int(right)
            given = _level(values[key])
            level["answers"][given] = level["answers"].get(given, 0) + 1
    for sheet in per.values():
        for counts in [sheet, *sheet["questions"].values()]:
            counts["accuracy"] = (
                counts["correct"] / counts["answered"] if counts["answered"] else None
            )
            for level in counts.get("levels", {}).values():
                level["accuracy"] = level["correct"] / level["answered"]
    return per


_GOLD = "gold"


def _kappa_with_gold(
    configs: Sequence[ScoreConfig],
    gold_by_trace: Mapping[int, Mapping[str, Any]],
    answers: Sequence[tuple[int, Mapping[str, Any]]],
) -> tuple[float | None, str]:
    """One reviewer's chance-corrected agreement with gold: Cohen's kappa (quadratic
    weights on ordered scales) per question, the lowest over the questions, from
    :mod:`review.quality.agreement`; None with the reason when a question has no figure."""
    values: list[float] = []
    reasons: list[str] = []
    for config in configs:
        scale = scale_of(config)
        key = str(config.pk)
        triples = []
        for trace_id, given in answers:
            gold = gold_by_trace.get(trace_id, {}).get(key)
            if gold is None or given.get(key) is None:
                continue
            triples.append((trace_id, 0, scaled_answer(given[key], scale)))
            triples.append((trace_id, _GOLD, scaled_answer(gold, scale)))
        ratings = Ratings.from_answers(
            triples, categories=scale["categories"], ordered=scale["ordered"]
        )
        weighting = "quadratic" if scale["ordered"] else "identity"
        figure = cohen_kappa(ratings, 0, _GOLD, weighting=weighting)
        if figure.value is None:
            reasons.append(f"{config.name}: {figure.reason}")
        else:
            values.append(figure.value)
    if reasons or not values:
        return None, "; ".join(reasons) or "No question answered."
    return min(values), ""


def calibration_round_score(*, actor: Actor, round_: CalibrationRound) -> CalibrationRound:
    """Scores a round: each reviewer's accuracy against gold (overall, per question, per
    gold rubric level) and the group's agreement (the lowest headline coefficient over
    the questions, from :mod:`review.quality.agreement`). Reruns replace the results."""
    # Read afresh: a round held since it started may carry the set as it was then.
    calibration_set = CalibrationSet.objects.get(pk=round_.calibration_set_id)
    configs = list(ScoreConfig.objects.filter(pk__in=calibration_set.config_ids).order_by("pk"))
    gold_by_trace = dict(calibration_set.gold_answers.values_list("trace_id", "values"))
    annotations = list(
        Annotation.objects.filter(queue_id=round_.queue_id).values_list(
            "reviewer_id", "trace_id", "values"
        )
    )
    per = _score_answers(configs, gold_by_trace, annotations, calibration_set.tolerances)
    agreement_refresh(queue_id=round_.queue_id, force=True)
    reports = latest_reports(round_.queue_id)
    values = [reports[c.pk].value if c.pk in reports else None for c in configs]
    if values and all(v is not None for v in values):
        agreement, why = min(values), ""
    else:
        agreement = None
        why = (
            "; ".join(
                f"{c.name}: {reports[c.pk].reason if c.pk in reports else 'no report'}"
                for c, v in zip(configs, values, strict=True)
                if v is None
            )
            or "No questions."
        )
    with audit.acting_as(actor), transaction.atomic():
        # Two scorings of one round take turns, so a result is announced once.
        CalibrationRound.objects.select_for_update().filter(pk=round_.pk).first()
        before = {
            r.reviewer_id: _verdict(r) for r in CalibrationResult.objects.filter(round=round_)
        }
        CalibrationResult.objects.filter(round=round_).delete()
        results = []
        for reviewer_id, sheet in sorted(per.items()):
            own = [(trace_id, values) for r, trace_id, values in annotations if r == reviewer_id]
            kappa, kappa_why = _kappa_with_gold(configs, gold_by_trace, own)
            passed, reason = _passes(calibration_set, sheet["accuracy"], kappa, kappa_why)
            result = CalibrationResult.objects.create(
                round=round_,
                calibration_set=calibration_set,
                reviewer_id=reviewer_id,
                answered=sheet["answered"],
                correct=sheet["correct"],
                accuracy=sheet["accuracy"],
                agreement=kappa,
                passed=passed,
                reason=reason,
                figures={"questions": sheet["questions"]},
            )
            results.append(result)
        round_.scored_at = time_now()
        round_.agreement = agreement
        round_.agreement_reason = why
        round_.figures = {
            "questions": [
                {
                    "config_id": c.pk,
                    "name": c.name,
                    "agreement": reports[c.pk].value if c.pk in reports else None,
                    "agreement_level": reports[c.pk].level if c.pk in reports else None,
                    # The tolerance this scoring used (numeric questions; None: equal).
                    "tolerance": calibration_set.tolerances.get(str(c.pk)),
                    "agreement_reason": (reports[c.pk].reason or None)
                    if c.pk in reports
                    else "no report",
                    "levels": _group_levels(per, str(c.pk)),
                }
                for c in configs
            ]
        }
        round_.save()
        _announce_results(
            round_,
            calibration_set,
            [r for r in results if before.get(r.reviewer_id) != _verdict(r)],
            [c.name for c in configs],
        )
    return round_


def _verdict(result: CalibrationResult) -> tuple[Any, ...]:
    """What a result says; a rescoring that says the same again announces nothing."""
    return (result.passed, result.answered, result.correct, result.accuracy, result.agreement)


def calibration_round_url(round_: CalibrationRound, project: Project) -> str:
    """The round's result page, for events and messages."""
    return site_reverse(
        "calibration-round",
        org_slug=project.organization.slug,
        project_slug=project.slug,
        calibration_round_pk=round_.pk,
    )


def _announce_results(
    round_: CalibrationRound,
    calibration_set: CalibrationSet,
    results: Sequence[CalibrationResult],
    score_names: Sequence[str],
) -> None:
    """``review.calibration.passed`` or ``.failed``: one event per reviewer result that
    is new or changed, inside the scoring transaction (nothing is built when no
    destination subscribes to either type)."""
    if not results or not (
        is_subscribed(catalogue.CALIBRATION_PASSED, project_id=round_.project_id)
        or is_subscribed(catalogue.CALIBRATION_FAILED, project_id=round_.project_id)
    ):
        return
    project = Project.objects.select_related("organization").get(pk=round_.project_id)
    emails = dict(
        get_user_model()
        .objects.filter(pk__in=[r.reviewer_id for r in results])
        .values_list("pk", "email")
    )
    url = calibration_round_url(round_, project)
    for result in results:
        email = emails.get(result.reviewer_id, "a reviewer")
        accuracy = "no accuracy" if result.accuracy is None else f"accuracy {result.accuracy:.2f}"
        if result.passed:
            event_type = catalogue.CALIBRATION_PASSED
            summary = (
                f"{email} passed the calibration set {calibration_set.name!r} "
                f"(round {round_.number}, {accuracy})."
            )
        else:
            event_type = catalogue.CALIBRATION_FAILED
            summary = (
                f"{email} did not pass the calibration set {calibration_set.name!r} "
                f"(round {round_.number}): {result.reason}"
            )
        event_emit(
            event_type,
            organization_id=round_.organization_id,
            project_id=round_.project_id,
            queue_id=round_.queue_id,
            score_names=score_names,
            payload={
                "summary": summary,
                "url": url,
                "source": "calibration_round",
                "result": {
                    "id": result.pk,
                    "reviewer": {"id": result.reviewer_id, "email": email},
                    "passed": result.passed,
                    "answered": result.answered,
                    "correct": result.correct,
                    "accuracy": result.accuracy,
                    "agreement": result.agreement,
                    "reason": result.reason,
                },
                "calibration_set": {
                    "id": calibration_set.pk,
                    "name": calibration_set.name,
                    "min_accuracy": calibration_set.min_accuracy,
                    "min_agreement": calibration_set.min_agreement,
                },
                "round": {
                    "id": round_.pk,
                    "number": round_.number,
                    "queue_id": round_.queue_id,
                    "agreement": round_.agreement,
                },
                "project": {"id": project.pk, "slug": project.slug, "name": project.name},
            },
        )


def _group_levels(per: Mapping[int, Mapping[str, Any]], key: str) -> dict[str, Any]:
    """Every reviewer's answers per gold level of one question: which level is
    confused with which."""
    levels: dict[str, dict[str, Any]] = {}
    for sheet in per.values():
        for level, counts in sheet["questions"].get(key, {}).get("levels", {}).items():
            merged = levels.setdefault(level, {"answered": 0, "correct": 0, "answers": {}})
            merged["answered"] += counts["answered"]
            merged["correct"] += counts["correct"]
            for given, n in counts["answers"].items():
                merged["answers"][given] = merged["answers"].get(given, 0) + n
    for merged in levels.values():
        merged["accuracy"] = merged["correct"] / merged["answered"]
    return levels


def _passes(
    calibration_set: CalibrationSet, accuracy: float | None, agreement: float | None, why: str
) -> tuple[bool, str]:
    if accuracy is None:
        return False, "No gold question answered."
    if accuracy < calibration_set.min_accuracy:
        return False, f"Accuracy {accuracy:.2f} is under {calibration_set.min_accuracy:.2f}."
    if calibration_set.min_agreement is not None:
        if agreement is None:
            return False, f"Agreement with gold has no figure ({why})."
        if agreement < calibration_set.min_agreement:
            return False, (
                f"Agreement with gold (Cohen's kappa) {agreement:.2f} is under "
                f"{calibration_set.min_agreement:.2f}."
            )
    return True, ""


def queue_calibration_set(
    *,
    actor: Actor,
    queue: ReviewQueue,
    calibration_set: CalibrationSet,
    require_pass: bool = True,
    gold_rate: float = 0.0,
    gold_min_accuracy: float = 0.8,
) -> QueueCalibration:
    """Puts a live queue under a calibration set: the onboarding gate and/or gold
    items mixed in at ``gold_rate``."""
    if calibration_set.project_id != queue.project_id:
        raise NotFound("No such calibration set in this project.")
    gold_rate = _rate(gold_rate, "gold_rate")
    gold_min_accuracy = _rate(gold_min_accuracy, "gold_min_accuracy")
    with audit.acting_as(actor), transaction.atomic():
        row, _created = QueueCalibration.objects.update_or_create(
            queue=queue,
            defaults={
                "project_id": queue.project_id,
                "calibration_set": calibration_set,
                "require_pass": bool(require_pass),
                "gold_rate": gold_rate,
                "gold_min_accuracy": gold_min_accuracy,
            },
        )
    return row


def queue_calibration_remove(*, actor: Actor, row: QueueCalibration) -> None:
    """Takes a queue out of its calibration set: no gate, no gold mixed in from now on."""
    with audit.acting_as(actor), transaction.atomic():
        row.delete()


# The gate inside the claim statement (``review.hooks``): true when the queue requires
# a set the reviewer has not passed (the queue's one calibration row, and an index probe
# of ``calibration_passed``).
CALIBRATION_GATE_SQL = """
EXISTS (SELECT 1 FROM review_queuecalibration qc
        WHERE qc.queue_id = %(queue_id)s AND qc.organization_id = %(organization_id)s
          AND qc.require_pass
          AND NOT EXISTS (
              SELECT 1 FROM review_calibrationresult cr
              WHERE cr.calibration_set_id = qc.calibration_set_id
                AND cr.reviewer_id = %(user_id)s AND cr.passed
                AND cr.organization_id = %(organization_id)s))
"""


def calibration_gate_check(*, queue: ReviewQueue, user_id: int) -> None:
    """Refuses a claim from a reviewer who has not passed the calibration set the queue
    requires: one indexed query (the queue's row, and an index probe of the results)."""
    row = (
        QueueCalibration.objects.filter(queue_id=queue.pk, require_pass=True)
        .annotate(
            passed=Exists(
                CalibrationResult.objects.filter(
                    calibration_set_id=OuterRef("calibration_set_id"),
                    reviewer_id=user_id,
                    passed=True,
                )
            )
        )
        .values_list("calibration_set_id", "calibration_set__name", "passed")
        .first()
    )
    if row is None or row[2]:
        return
    set_id, name = row[0], row[1]
    raise PermissionDenied(
        f"This queue requires passing the calibration set {name!r} first.",
        code="calibration_required",
        details={"calibration_set": {"id": set_id, "name": name}},
    )


def calibration_rounds_for_joiner(
    *, actor: Actor, membership: Membership, queue_ids: Sequence[int]
) -> list[str]:
    """The first thing an invitee does, when a queue their invitation names requires a
    calibration set: a round of that set of their own (unless they passed it, or a round
    of it already waits for them). A queue pool joiner of ``projects.hooks``, asked after
    review's (which put the member in the pools); a set without gold answers yet starts
    no round (the gate then says what is missing). Returns no queue names: the rounds are
    the member's next step, not queues they were invited to."""
    if not queue_ids:
        return []
    required = sorted(
        set(
            QueueCalibration.objects.filter(
                queue_id__in=list(queue_ids), require_pass=True, queue__archived_at__isnull=True
            )
            .filter(
                Exists(
                    QueueReviewer.objects.filter(
                        queue_id=OuterRef("queue_id"), membership=membership
                    )
                )
            )
            .values_list("calibration_set_id", flat=True)
        )
    )
    waiting = set(
        pending_rounds(membership=membership).values_list("calibration_set_id", flat=True)
    )
    passed = set(
        CalibrationResult.objects.filter(
            calibration_set_id__in=required, reviewer_id=membership.user_id, passed=True
        ).values_list("calibration_set_id", flat=True)
    )
    for calibration_set in CalibrationSet.objects.filter(pk__in=required).order_by("pk"):
        if calibration_set.pk in passed or calibration_set.pk in waiting:
            continue
        try:
            with transaction.atomic():
                calibration_round_start(
                    actor=actor, calibration_set=calibration_set, reviewer_ids=[membership.user_id]
                )
        except DomainError:
            continue
    return []


logger = logging.getLogger(__name__)


def calibration_round_score_when_done(*, queue: ReviewQueue) -> None:
    """Scores a round once its queue has no open item (every reviewer answered every
    trace), after the answers commit: a reviewer learns their result, and the queue
    their round gates opens to them, with no lead action. Other queues: nothing (rounds
    are blind queues, so a queue that is not blind costs no query). A lead may still
    score a round before it is done; scoring again says nothing new to anyone."""
    if not queue.blind_mode:
        return
    # Asked on every submit to a blind queue: SQL (the ORM's query costs more Python).
    scope, params = tenancy.scope_sql("organization_id")
    with sql_rows.prepared_cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM review_calibrationround WHERE {scope} AND queue_id = %s",  # noqa: S608
            [*params, queue.pk],
        )
        found = cursor.fetchone()
    if found is None:
        return
    (round_id,) = found
    if QueueItem.objects.filter(queue_id=queue.pk, status=ItemStatus.OPEN).exists():
        return

    def score() -> None:
        try:
            round_ = CalibrationRound.objects.get(pk=round_id)
            calibration_round_score(actor=Actor.system(), round_=round_)
        except Exception:  # the answers are stored; a lead can still score the round
            logger.exception("Scoring calibration round %s failed", round_id)

    transaction.on_commit(score)


# Which items gold replaces is drawn from the system's randomness: a draw from ids a
# reviewer can read would let them recompute it.
_RANDOM = secrets.SystemRandom()


# At most this many open items are mixed again with the gold added at once.
MIX_HOSTS = 2_000


def _untouched_hosts(queue: ReviewQueue, gold_traces: Sequence[int]) -> list[QueueItem]:
    """Open items nobody has seen yet (no lease ever, no comment), locked: gold is
    mixed in among them (``review.services.items.queue_items_remix``)."""
    ids = list(
        QueueItem.objects.filter(queue=queue, status=ItemStatus.OPEN, live_leases=0, submissions=0)
        .exclude(trace_id__in=gold_traces)
        .exclude(Exists(Assignment.objects.filter(item=OuterRef("pk"))))
        .exclude(Exists(Comment.objects.filter(item=OuterRef("pk"))))
        .values_list("id", flat=True)
    )
    chosen = _RANDOM.sample(ids, k=min(len(ids), MIX_HOSTS))
    return list(
        QueueItem.objects.select_for_update()
        .filter(pk__in=chosen, status=ItemStatus.OPEN, live_leases=0, submissions=0)
        .order_by("id")
    )


def queue_gold_mix(*, actor: Actor, queue: ReviewQueue) -> int:
    """Adds gold traces to a live queue so they make ``gold_rate`` of its items.
    Nothing tells a reviewer which items are gold: the open items nobody has seen yet
    (up to ``MIX_HOSTS``, at random) are inserted again together with the gold ones in
    an order drawn from the system's randomness (not from anything a reviewer could
    recompute), so ids and claim order interleave, and each gold item takes the
    source, detail, priority, who added it and created_at of one of them. With no such
    item, gold goes at the end of the queue shaped like its latest items. Idempotent:
    returns how many were added now."""
    from review.services.items import queue_items_remix

    use = QueueCalibration.objects.filter(queue=queue).select_related("calibration_set").first()
    if use is None or use.gold_rate <= 0:
        return 0
    gold_traces = list(use.calibration_set.gold_answers.values_list("trace_id", flat=True))
    with audit.acting_as(actor), transaction.atomic():
        queue = ReviewQueue.objects.select_for_update().get(pk=queue.pk)
        queued = set(
            QueueItem.objects.filter(queue=queue, trace_id__isnull=False).values_list(
                "trace_id", flat=True
            )
        )
        ordinary = len(queued - set(gold_traces))
        present = len(queued & set(gold_traces))
        # gold / (gold + ordinary) = rate
        wanted = (
            math.ceil(ordinary * use.gold_rate / (1 - use.gold_rate))
            if use.gold_rate < 1
            else len(gold_traces)
        )
        missing = [t for t in gold_traces if t not in queued]
        todo = _RANDOM.sample(missing, k=min(max(wanted - present, 0), len(missing)))
        if not todo:
            return 0
        like = (
            QueueItem.objects.filter(queue=queue)
            .exclude(trace_id__in=gold_traces)
            .order_by("-created_at", "-id")
            .first()
        )
        queue_items_remix(
            actor=actor,
            queue=queue,
            hosts=_untouched_hosts(queue, gold_traces),
            trace_ids=todo,
            rng=_RANDOM,
            like=like,
        )
    return len(todo)


def gold_accuracy_refresh(*, queue_id: int) -> list[GoldAccuracy]:
    """Recomputes every reviewer's running accuracy on the queue's gold items; a
    reviewer who falls under the threshold (after ``GOLD_MIN_ANSWERS`` answers) raises
    one alert, cleared when they recover. Idempotent."""
    use = (
        QueueCalibration.objects.filter(queue_id=queue_id, gold_rate__gt=0)
        .select_related("calibration_set", "queue")
        .first()
    )
    if use is None:
        return []
    calibration_set = use.calibration_set
    configs = list(ScoreConfig.objects.filter(pk__in=calibration_set.config_ids))
    gold_by_trace = dict(calibration_set.gold_answers.values_list("trace_id", "values"))
    annotations = list(
        Annotation.objects.filter(queue_id=queue_id, trace_id__in=list(gold_by_trace)).values_list(
            "reviewer_id", "trace_id", "values"
        )
    )
    per = _score_answers(configs, gold_by_trace, annotations, calibration_set.tolerances)
    rows = []
    with transaction.atomic():
        for reviewer_id, sheet in sorted(per.items()):
            row, _created = GoldAccuracy.objects.select_for_update().get_or_create(
                queue_id=queue_id, reviewer_id=reviewer_id
            )
            row.answered, row.correct = sheet["answered"], sheet["correct"]
            row.accuracy, row.updated_at = sheet["accuracy"], time_now()
            low = row.answered >= GOLD_MIN_ANSWERS and row.accuracy < use.gold_min_accuracy
            if low and row.alerted_at is None:
                row.alerted_at = row.updated_at
                alert_raise(
                    kind=AlertKind.GOLD_ACCURACY,
                    project_id=use.queue.project_id,
                    queue=use.queue,
                    reviewer_id=reviewer_id,
                    value=row.accuracy,
                    threshold=use.gold_min_accuracy,
                    window=row.answered,
                    message=(
                        f"A reviewer's accuracy on gold items in the queue {use.queue.name!r} "
                        f"fell to {row.accuracy:.2f} ({row.correct} of {row.answered}), under "
                        f"{use.gold_min_accuracy:.2f}."
                    ),
                )
            elif not low:
                row.alerted_at = None
            row.save()
            rows.append(row)
    return rows
