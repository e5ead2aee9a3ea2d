"""A comparison queue's report: per criterion, win/tie/loss per pair of systems,
Bradley-Terry strengths with bootstrap intervals, how often the output shown first won
(position bias), and agreement between reviewers on their preferences; the preference
pairs as JSONL for preference tuning; and the share of items where a candidate was
preferred or tied (the CI gate's check).

Every figure reads the preferences read back onto the outputs (``Preference.winner`` and
``ranking``), never the letters on screen: the order each reviewer saw is undone first,
and used only for the position figures.

Where an item's criterion was adjudicated, the decision's preference replaces the
reviewers' in the pairs, the strengths, the export and the gate's share
(:func:`review.comparison.selectors.judgements_of`); agreement and position bias read
what the reviewers said, since they measure the reviewers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from review.comparison import bradley_terry
from review.comparison.models import ComparisonItem, ComparisonOutput
from review.comparison.selectors import (
    Judgement,
    QueuePreferences,
    judgements_of,
    queue_criteria,
    queue_preferences,
)
from review.models import ReviewQueue
from review.quality.agreement.coefficients import compute
from review.quality.agreement.ratings import Level, Ratings

TIE = "tie"


def _pairs_table(judgements: list[Judgement]) -> list[dict[str, Any]]:
    table: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"a_wins": 0, "ties": 0, "b_wins": 0}
    )
    for j in judgements:
        a, b = sorted((j.winner, j.loser))
        row = table[(a, b)]
        if j.tie:
            row["ties"] += 1
        elif j.winner == a:
            row["a_wins"] += 1
        else:
            row["b_wins"] += 1
    return [
        {"system_a": a, "system_b": b, **row, "n": sum(row.values())}
        for (a, b), row in sorted(table.items())
    ]


def outcome_counts(judgements: Iterable[Judgement], systems: list[str]) -> np.ndarray:
    """``(k, k, 2)`` counts: decisive wins ``[i, j, 0]``, ties ``[min, max, 1]``."""
    index = {s: i for i, s in enumerate(systems)}
    out = np.zeros((len(systems), len(systems), 2))
    for j in judgements:
        w, lose = index[j.winner], index[j.loser]
        if j.tie:
            out[min(w, lose), max(w, lose), 1] += 1
        else:
            out[w, lose, 0] += 1
    return out


def _strengths(
    judgements: list[Judgement], resamples: int, seed: int, confidence: float
) -> list[dict[str, Any]]:
    systems = sorted({j.winner for j in judgements} | {j.loser for j in judgements})
    if len(systems) < 2:
        return []
    fit = bradley_terry.strengths(
        systems,
        outcome_counts(judgements, systems),
        resamples=resamples,
        seed=seed,
        confidence=confidence,
    )
    rows = [
        {
            "system": s,
            "strength": float(fit.strength[i]),
            "ci_low": float(fit.ci_low[i]) if fit.ci_low is not None else None,
            "ci_high": float(fit.ci_high[i]) if fit.ci_high is not None else None,
        }
        for i, s in enumerate(systems)
    ]
    return sorted(rows, key=lambda r: (-r["strength"], r["system"]))


def _position(prefs: QueuePreferences, criterion: str, confidence: float) -> dict[str, Any]:
    """How often the output shown first won: pairwise (decisive answers; no bias is
    50%) and best of N (picks; no bias is 1/N)."""
    decisive = first = picks = first_picks = 0
    expected: list[float] = []
    for p in prefs.preferences:
        if p.criterion != criterion or p.winner_id is None:
            continue
        n = len(prefs.outputs_of.get(p.comparison_id, []))
        shown_first = p.winner_id == p.shown_order[0]
        if n == 2:
            decisive += 1
            first += shown_first
        else:
            picks += 1
            first_picks += shown_first
            expected.append(1.0 / n)
    interval = bradley_terry.wilson(first, decisive, confidence)
    return {
        "pairwise": {
            "decisive": decisive,
            "first_wins": first,
            "rate": first / decisive if decisive else None,
            "ci_low": interval[0] if interval else None,
            "ci_high": interval[1] if interval else None,
            "expected": 0.5,
        },
        "n_way": {
            "picks": picks,
            "first_picks": first_picks,
            "rate": first_picks / picks if picks else None,
            "expected": float(np.mean(expected)) if expected else None,
        },
    }


def _agreement(
    prefs: QueuePreferences, criterion: str, resamples: int, seed: int
) -> dict[str, Any]:
    """Agreement on the preferred output: each answer coded as the winner's canonical
    position (or "tie"), nominal; Krippendorff's alpha, Gwet's AC1 and the rest, with
    the quality wing's code."""
    position: dict[int, int] = {}
    for outputs in prefs.outputs_of.values():
        for i, pk in enumerate(outputs):
            position[pk] = i
    answers = [
        (p.item_id, p.reviewer_id, TIE if p.winner_id is None else position[p.winner_id] + 1)
        for p in prefs.preferences
        if p.criterion == criterion
    ]
    if not answers:
        return {}
    ratings = Ratings.from_answers(answers)
    overall, _ = compute(
        ratings, levels=(Level.NOMINAL,), pairs=False, resamples=resamples, seed=seed
    )
    return {name: figure.as_dict() for name, figure in overall.items()}


def comparison_report(
    queue: ReviewQueue,
    *,
    criterion: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """The report of a comparison queue, per criterion (only ``criterion`` if given)."""
    names = queue_criteria(queue)
    if criterion is not None:
        names = [n for n in names if n == criterion]
    prefs = queue_preferences(queue)
    all_judgements = list(judgements_of(prefs))
    criteria = []
    for name in names:
        judgements = [j for j in all_judgements if j.criterion == name]
        answered = [p for p in prefs.preferences if p.criterion == name]
        criteria.append(
            {
                "criterion": name,
                "preferences": len(answered),
                "items": len({p.item_id for p in answered}),
                "adjudicated": sum(1 for key in prefs.decided if key[1] == name),
                "judgements": len(judgements),
                "pairs": _pairs_table(judgements),
                "strengths": _strengths(judgements, resamples, seed, confidence),
                "position": _position(prefs, name, confidence),
                "agreement": _agreement(prefs, name, min(resamples, 1000), seed),
            }
        )
    return {
        "queue": queue.pk,
        "resamples": resamples,
        "confidence": confidence,
        "criteria": criteria,
    }


def preference_pairs(queue: ReviewQueue) -> Iterator[dict[str, Any]]:
    """One record per comparison item, criterion and (chosen, rejected) pair that a
    reviewer stated (ties left out), in the shape preference-tuning tools read:
    ``prompt``, ``chosen``, ``rejected``, with the criterion, the systems, the reviewers
    who stated it and the strength as provenance. An adjudicated criterion gives the
    decision's pairs alone, ``adjudicated`` true and the adjudicator as ``reviewers``."""
    prefs = queue_preferences(queue)
    grouped: dict[tuple[int, str, int, int], dict[str, Any]] = {}
    for j in judgements_of(prefs):
        if j.tie:
            continue
        key = (j.comparison_id, j.criterion, j.winner_output_id, j.loser_output_id)
        entry = grouped.setdefault(key, {"reviewers": set(), "strength": 1, "adjudicated": False})
        entry["reviewers"].add(j.reviewer_id)
        entry["adjudicated"] = entry["adjudicated"] or j.adjudicated
        entry["strength"] = max(entry["strength"], j.strength)
    if not grouped:
        return
    comparisons = {c.pk: c for c in ComparisonItem.objects.filter(pk__in={k[0] for k in grouped})}
    outputs = {
        o.pk: o for o in ComparisonOutput.objects.filter(comparison_id__in=list(comparisons))
    }
    from django.contrib.auth import get_user_model

    emails = dict(
        get_user_model()
        .objects.filter(pk__in={r for e in grouped.values() for r in e["reviewers"]})
        .values_list("pk", "email")
    )
    for (comparison_id, criterion, chosen, rejected), entry in sorted(grouped.items()):
        yield {
            "prompt": comparisons[comparison_id].input,
            "chosen": outputs[chosen].content,
            "rejected": outputs[rejected].content,
            "criterion": criterion,
            "reviewers": sorted(emails.get(r, str(r)) for r in entry["reviewers"]),
            "chosen_system": outputs[chosen].label,
            "rejected_system": outputs[rejected].label,
            "strength": entry["strength"],
            "adjudicated": entry["adjudicated"],
            "comparison_id": comparison_id,
            "queue_id": queue.pk,
        }


def preference_pairs_jsonl(queue: ReviewQueue) -> Iterator[str]:
    for record in preference_pairs(queue):
        yield json.dumps(record, ensure_ascii=False, default=str) + "\n"


def candidate_preferred_or_tied(
    *,
    project_id: int,
    queue_id: int,
    candidate_experiment_result_ids: Iterable[int],
    criterion: str | None = None,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Over the items of a comparison queue that hold one of the candidate's outputs
    (its experiment results), the share where reviewers preferred the candidate or tied
    (per item and criterion: its wins and ties at least its losses against the other
    outputs), with the Wilson lower bound of that share."""
    queue = ReviewQueue.objects.filter(pk=queue_id, project_id=project_id).first()
    if queue is None:
        return {"items": 0, "preferred_or_tied": 0, "share": None, "lower_bound": None,
                "reason": "no such queue"}  # fmt: skip
    candidates = set(
        ComparisonOutput.objects.filter(
            experiment_result_id__in=list(candidate_experiment_result_ids),
            comparison__project_id=project_id,
        ).values_list("pk", flat=True)
    )
    prefs = queue_preferences(queue, criterion=criterion)
    tally: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])  # [for, against]
    for j in judgements_of(prefs):
        if j.winner_output_id in candidates:
            tally[(j.item_id, j.criterion)][0] += 1
        elif j.loser_output_id in candidates:
            tally[(j.item_id, j.criterion)][1 if not j.tie else 0] += 1
    n = len(tally)
    good = sum(1 for pro, con in tally.values() if pro >= con)
    return {
        "items": n,
        "preferred_or_tied": good,
        "share": good / n if n else None,
        "lower_bound": bradley_terry.lower_bound(good, n, confidence),
        "reason": "" if n else "no reviewed comparison holds the candidate's outputs",
    }
