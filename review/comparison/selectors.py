"""Reads of the comparison wing: a comparison as one reviewer sees it (outputs in their
lease's order), a queue's comparison questions, and a queue's preferences read back onto
the systems (every report and export starts from :func:`queue_judgements`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from review.comparison.models import (
    ComparisonItem,
    ComparisonOutput,
    ComparisonQueue,
    Preference,
)
from review.comparison.ordering import LETTERS, shown_order
from review.models import Assignment, ReviewQueue


@dataclass(frozen=True)
class ShownOutput:
    letter: str
    output_id: int
    label: str
    content: Any


@dataclass(frozen=True)
class ComparisonForReviewer:
    """What a reviewer holding a lease on a comparison item sees. ``blind``: the
    systems' labels are hidden (the queue is blind), so a label cannot sway the answer."""

    comparison: ComparisonItem
    outputs: list[ShownOutput]
    criteria: list[dict[str, str]]
    mode: str  # "pairwise", "best" or "ranking"
    allow_strength: bool
    blind: bool


def comparison_setup_of(queue: ReviewQueue) -> ComparisonQueue | None:
    return ComparisonQueue.objects.filter(queue=queue).first()


def comparison_for_lease(assignment: Assignment) -> ComparisonForReviewer | None:
    """The comparison item of a lease, its outputs in the lease's order; None when the
    item is not a comparison or its queue has no comparison questions."""
    item = assignment.item
    if item.comparison_id is None:
        return None
    setup = ComparisonQueue.objects.filter(queue_id=item.queue_id).select_related("queue").first()
    if setup is None:
        return None
    comparison = ComparisonItem.objects.get(pk=item.comparison_id)
    outputs = {o.pk: o for o in ComparisonOutput.objects.filter(comparison=comparison)}
    order = shown_order(assignment.pk, comparison.pk, list(outputs))
    shown = [
        ShownOutput(LETTERS[i], pk, outputs[pk].label, outputs[pk].content)
        for i, pk in enumerate(order)
    ]
    mode = "pairwise" if len(shown) == 2 else setup.n_way
    return ComparisonForReviewer(
        comparison=comparison,
        outputs=shown,
        criteria=list(setup.criteria),
        mode=mode,
        allow_strength=setup.allow_strength and mode == "pairwise",
        blind=setup.queue.blind_mode,
    )


@dataclass(frozen=True)
class Judgement:
    """One pairwise outcome implied by a preference, between two systems (labels):
    ``winner`` beat ``loser``, or they tied (then in canonical order)."""

    criterion: str
    item_id: int
    comparison_id: int
    reviewer_id: int
    winner: str
    loser: str
    tie: bool
    winner_output_id: int
    loser_output_id: int
    # Whether the winner was shown first (left) to this reviewer (pairwise only).
    winner_shown_first: bool
    strength: int = 1


@dataclass
class QueuePreferences:
    preferences: list[Preference] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)  # output id -> system
    outputs_of: dict[int, list[int]] = field(default_factory=dict)  # comparison -> outputs


def queue_preferences(queue: ReviewQueue, *, criterion: str | None = None) -> QueuePreferences:
    rows = Preference.objects.filter(queue=queue).order_by("item_id", "reviewer_id", "criterion")
    if criterion is not None:
        rows = rows.filter(criterion=criterion)
    preferences = list(rows)
    comparison_ids = {p.comparison_id for p in preferences}
    out = QueuePreferences(preferences=preferences)
    for pk, comparison_id, label in (
        ComparisonOutput.objects.filter(comparison_id__in=comparison_ids)
        .order_by("comparison_id", "position")
        .values_list("pk", "comparison_id", "label")
    ):
        out.labels[pk] = label
        out.outputs_of.setdefault(comparison_id, []).append(pk)
    return out


def judgements_of(prefs: QueuePreferences) -> Iterator[Judgement]:
    """Every pairwise outcome the preferences imply: a pairwise answer is one; best of N
    is the winner over each other output; a ranking is each output over every one below
    it."""
    labels = prefs.labels
    for p in prefs.preferences:
        outputs = prefs.outputs_of.get(p.comparison_id, [])
        base = {
            "criterion": p.criterion,
            "item_id": p.item_id,
            "comparison_id": p.comparison_id,
            "reviewer_id": p.reviewer_id,
        }
        if len(outputs) == 2:
            first = p.shown_order[0]
            if p.winner_id is None:
                a, b = sorted(outputs)
                yield Judgement(
                    **base,
                    winner=labels[a],
                    loser=labels[b],
                    tie=True,
                    winner_output_id=a,
                    loser_output_id=b,
                    winner_shown_first=False,
                )
            else:
                loser = next(o for o in outputs if o != p.winner_id)
                yield Judgement(
                    **base,
                    winner=labels[p.winner_id],
                    loser=labels[loser],
                    tie=False,
                    winner_output_id=p.winner_id,
                    loser_output_id=loser,
                    winner_shown_first=p.winner_id == first,
                    strength=p.strength,
                )
            continue
        ranking = list(p.ranking)
        if len(ranking) == 1:  # best of N
            ranking_pairs = [(ranking[0], o) for o in outputs if o != ranking[0]]
        else:
            ranking_pairs = [
                (ranking[i], ranking[j])
                for i in range(len(ranking))
                for j in range(i + 1, len(ranking))
            ]
        for w, lose in ranking_pairs:
            yield Judgement(
                **base,
                winner=labels[w],
                loser=labels[lose],
                tie=False,
                winner_output_id=w,
                loser_output_id=lose,
                winner_shown_first=False,
            )


def queue_criteria(queue: ReviewQueue) -> list[str]:
    setup = comparison_setup_of(queue)
    return setup.criterion_names if setup else []
