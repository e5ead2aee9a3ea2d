"""Reads of the comparison wing: a comparison as one reviewer sees it (outputs in their
lease's order), a disputed comparison as its adjudicator sees it (outputs in canonical
order, the reviewers' preferences, the criteria they split on), a queue's comparison
questions, and a queue's preferences read back onto the systems (every report and
export starts from :func:`queue_preferences` and :func:`judgements_of`).

An adjudicated preference is the item's decision (``review.Adjudication``, its
``values["preferences"]``: per criterion the winner, ranking and strength on the
outputs). Where one exists for an item and criterion, the judgements, the report's
pairs and strengths, the export and the gate read it instead of the reviewers'
preferences; agreement and position bias keep reading what the reviewers said."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from review import visibility
from review.comparison.models import (
    ComparisonItem,
    ComparisonOutput,
    ComparisonQueue,
    Preference,
)
from review.comparison.ordering import LETTERS, shown_order
from review.models import Adjudication, Annotation, Assignment, QueueItem, ReviewQueue

# The key of an adjudication's values holding its preferences, by criterion.
DECIDED_KEY = "preferences"


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
    ``winner`` beat ``loser``, or they tied (then in canonical order). ``adjudicated``:
    it comes from the item's decision (``reviewer_id`` is then the adjudicator)."""

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
    adjudicated: bool = False


@dataclass(frozen=True)
class DecidedPreference:
    """An adjudicator's final preference on one criterion of one item, on the outputs:
    ``winner`` (None: a tie), ``ranking`` (output ids, best first) and ``strength``."""

    criterion: str
    item_id: int
    comparison_id: int
    adjudicator_id: int
    winner_id: int | None
    ranking: list[int]
    strength: int = 1


@dataclass
class QueuePreferences:
    preferences: list[Preference] = field(default_factory=list)
    labels: dict[int, str] = field(default_factory=dict)  # output id -> system
    outputs_of: dict[int, list[int]] = field(default_factory=dict)  # comparison -> outputs
    # (item id, criterion) -> the adjudicated preference that replaces the reviewers'.
    decided: dict[tuple[int, str], DecidedPreference] = field(default_factory=dict)


def decided_preferences(
    adjudications: Iterable[Adjudication], comparison_of: dict[int, int]
) -> dict[tuple[int, str], DecidedPreference]:
    """The adjudicated preferences stored on decisions (oldest first: a later decision
    on the same item and criterion wins); ``comparison_of`` maps item ids to their
    comparison. A decision without preferences (or of another item) adds nothing."""
    out: dict[tuple[int, str], DecidedPreference] = {}
    for adjudication in adjudications:
        comparison_id = comparison_of.get(adjudication.item_id)
        decided = (adjudication.values or {}).get(DECIDED_KEY)
        if comparison_id is None or not isinstance(decided, dict):
            continue
        for criterion, answer in decided.items():
            if not isinstance(answer, dict) or not isinstance(answer.get("ranking"), list):
                continue
            out[(adjudication.item_id, criterion)] = DecidedPreference(
                criterion=criterion,
                item_id=adjudication.item_id,
                comparison_id=comparison_id,
                adjudicator_id=adjudication.adjudicator_id,
                winner_id=answer.get("winner"),
                ranking=[int(o) for o in answer["ranking"]],
                strength=int(answer.get("strength") or 1),
            )
    return out


def queue_preferences(queue: ReviewQueue, *, criterion: str | None = None) -> QueuePreferences:
    rows = Preference.objects.filter(queue=queue).order_by("item_id", "reviewer_id", "criterion")
    if criterion is not None:
        rows = rows.filter(criterion=criterion)
    preferences = list(rows)
    comparison_of = {p.item_id: p.comparison_id for p in preferences}
    adjudications = Adjudication.objects.filter(
        queue=queue, item_id__in=list(comparison_of), values__has_key=DECIDED_KEY
    ).order_by("created_at", "id")
    decided = decided_preferences(adjudications, comparison_of)
    if criterion is not None:
        decided = {k: v for k, v in decided.items() if k[1] == criterion}
    comparison_ids = set(comparison_of.values())
    out = QueuePreferences(preferences=preferences, decided=decided)
    for pk, comparison_id, label in (
        ComparisonOutput.objects.filter(comparison_id__in=comparison_ids)
        .order_by("comparison_id", "position")
        .values_list("pk", "comparison_id", "label")
    ):
        out.labels[pk] = label
        out.outputs_of.setdefault(comparison_id, []).append(pk)
    return out


def _judgements_of_answer(
    base: dict[str, Any],
    outputs: list[int],
    labels: dict[int, str],
    *,
    winner_id: int | None,
    ranking: list[int],
    strength: int,
    first_shown: int | None,
) -> Iterator[Judgement]:
    def judged(winner: int, loser: int, **rest: Any) -> Judgement:
        return Judgement(
            **base,
            winner=labels[winner],
            loser=labels[loser],
            winner_output_id=winner,
            loser_output_id=loser,
            **rest,
        )

    if len(outputs) == 2:
        if winner_id is None:
            a, b = sorted(outputs)
            yield judged(a, b, tie=True, winner_shown_first=False)
            return
        loser = next(o for o in outputs if o != winner_id)
        yield judged(
            winner_id,
            loser,
            tie=False,
            winner_shown_first=winner_id == first_shown,
            strength=strength,
        )
        return
    if len(ranking) == 1:  # best of N
        ranking_pairs = [(ranking[0], o) for o in outputs if o != ranking[0]]
    else:
        ranking_pairs = [
            (ranking[i], ranking[j])
            for i in range(len(ranking))
            for j in range(i + 1, len(ranking))
        ]
    for w, lose in ranking_pairs:
        yield judged(w, lose, tie=False, winner_shown_first=False)


def judgements_of(prefs: QueuePreferences) -> Iterator[Judgement]:
    """Every pairwise outcome the preferences imply: a pairwise answer is one; best of N
    is the winner over each other output; a ranking is each output over every one below
    it. Where an item's criterion was adjudicated, its decision is the one answer read
    (the reviewers' preferences on it are left out)."""
    labels = prefs.labels
    for p in prefs.preferences:
        if (p.item_id, p.criterion) in prefs.decided:
            continue
        base = {
            "criterion": p.criterion,
            "item_id": p.item_id,
            "comparison_id": p.comparison_id,
            "reviewer_id": p.reviewer_id,
        }
        yield from _judgements_of_answer(
            base,
            prefs.outputs_of.get(p.comparison_id, []),
            labels,
            winner_id=p.winner_id,
            ranking=list(p.ranking),
            strength=p.strength,
            first_shown=p.shown_order[0] if p.shown_order else None,
        )
    for (item_id, criterion), d in sorted(prefs.decided.items()):
        base = {
            "criterion": criterion,
            "item_id": item_id,
            "comparison_id": d.comparison_id,
            "reviewer_id": d.adjudicator_id,
            "adjudicated": True,
        }
        yield from _judgements_of_answer(
            base,
            prefs.outputs_of.get(d.comparison_id, []),
            labels,
            winner_id=d.winner_id,
            ranking=d.ranking,
            strength=d.strength,
            first_shown=None,
        )


def split_criteria(preferences: Iterable[Preference]) -> list[str]:
    """The criteria the preferences name different winners on (or a winner and a tie):
    what sends a comparison item to adjudication and what its decision settles."""
    winners: dict[str, set[int | None]] = {}
    for p in preferences:
        winners.setdefault(p.criterion, set()).add(p.winner_id)
    return sorted(c for c, w in winners.items() if len(w) > 1)


def queue_criteria(queue: ReviewQueue) -> list[str]:
    setup = comparison_setup_of(queue)
    return setup.criterion_names if setup else []


# --- adjudication ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewerPreferences:
    """One reviewer's answers on a comparison item, in words on the canonical letters."""

    reviewer: str
    answers: dict[str, str]
    explanation: str


@dataclass(frozen=True)
class ComparisonForAdjudication:
    """What the adjudicator of a comparison item sees: the outputs in canonical order
    (``a`` the first), with their systems; each reviewer's preferences; the criteria
    they split on; what they agreed on (the decision's starting answer, as the form
    takes it: ``{"c": letter or "tie" or ranking letters, "s": "2" for much better}``);
    and the decision already recorded, in words."""

    comparison: ComparisonItem
    outputs: list[ShownOutput]
    criteria: list[dict[str, str]]
    mode: str
    allow_strength: bool
    reviews: list[ReviewerPreferences]
    split: list[str]
    agreed: dict[str, dict[str, str]]
    decided: dict[str, str]
    decision: Adjudication | None


def preference_words(
    *,
    winner_id: int | None,
    ranking: list[int],
    strength: int,
    outputs: list[ShownOutput],
) -> str:
    """An answer on the outputs in words: "A (baseline)", "B (candidate), much better",
    "tie", "C > A > B"."""
    named = {o.output_id: f"{o.letter.upper()} ({o.label})" for o in outputs}
    letter = {o.output_id: o.letter.upper() for o in outputs}
    if len(outputs) > 2 and len(ranking) > 1:
        return " > ".join(letter.get(o, "?") for o in ranking)
    if winner_id is None:
        return "tie"
    words = named.get(winner_id, "?")
    return f"{words}, much better" if strength == 2 else words


def _form_answer(p: Preference, outputs: list[ShownOutput], mode: str) -> dict[str, str]:
    letter = {o.output_id: o.letter for o in outputs}
    if mode == "ranking":
        return {"c": "".join(letter.get(o, "") for o in p.ranking)}
    if p.winner_id is None:
        return {"c": "tie"}
    return {"c": letter.get(p.winner_id, ""), "s": str(p.strength)}


def comparison_for_adjudication(
    item: QueueItem, *, viewer: Any
) -> ComparisonForAdjudication | None:
    """A comparison item as ``viewer`` adjudicates it; None when the item is not a
    comparison or its queue has no comparison questions. Reviewers' preferences and
    the decision are read through the blind rule (``review.visibility``)."""
    if item.comparison_id is None:
        return None
    setup = ComparisonQueue.objects.filter(queue_id=item.queue_id).first()
    if setup is None:
        return None
    comparison = ComparisonItem.objects.get(pk=item.comparison_id)
    rows = list(ComparisonOutput.objects.filter(comparison=comparison).order_by("position"))
    outputs = [ShownOutput(LETTERS[i], o.pk, o.label, o.content) for i, o in enumerate(rows)]
    mode = "pairwise" if len(outputs) == 2 else setup.n_way
    visible = Annotation.objects.filter(item=item).filter(visibility.annotations_visible_to(viewer))
    preferences = list(
        Preference.objects.filter(item=item, annotation__in=visible)
        .select_related("reviewer", "annotation")
        .order_by("submitted_at", "reviewer_id", "criterion")
    )
    reviews: dict[int, ReviewerPreferences] = {}
    for p in preferences:
        review = reviews.setdefault(
            p.reviewer_id,
            ReviewerPreferences(
                reviewer=p.reviewer.email,
                answers={},
                explanation=p.annotation.explanation if p.annotation else "",
            ),
        )
        review.answers[p.criterion] = preference_words(
            winner_id=p.winner_id, ranking=list(p.ranking), strength=p.strength, outputs=outputs
        )
    split = split_criteria(preferences)
    agreed: dict[str, dict[str, str]] = {}
    for p in preferences:
        if p.criterion not in split:
            agreed.setdefault(p.criterion, _form_answer(p, outputs, mode))
    decision = (
        Adjudication.objects.filter(item=item, values__has_key=DECIDED_KEY)
        .filter(visibility.adjudications_visible_to(viewer))
        .select_related("adjudicator")
        .order_by("-created_at", "-id")
        .first()
    )
    decided: dict[str, str] = {}
    if decision is not None:
        found = decided_preferences([decision], {item.pk: comparison.pk})
        for (_item, criterion), d in found.items():
            decided[criterion] = preference_words(
                winner_id=d.winner_id, ranking=d.ranking, strength=d.strength, outputs=outputs
            )
    return ComparisonForAdjudication(
        comparison=comparison,
        outputs=outputs,
        criteria=list(setup.criteria),
        mode=mode,
        allow_strength=setup.allow_strength and mode == "pairwise",
        reviews=list(reviews.values()),
        split=split,
        agreed=agreed,
        decided=decided,
        decision=decision,
    )


def decision_words(preferences: dict[str, Any]) -> str:
    """A decision's preferences (``values["preferences"]``) in words, by system:
    "helpfulness: candidate preferred (much better); safety: tie"; a ranking as
    "beta > alpha > gamma". For its history, where the ids of outputs say nothing."""
    parts = []
    for criterion, answer in sorted(preferences.items()):
        if not isinstance(answer, dict):
            parts.append(f"{criterion}: {answer}")
            continue
        systems = [str(s) for s in answer.get("systems") or []]
        if len(systems) > 2:
            said = " > ".join(systems)
        elif answer.get("winner") is None:
            said = "tie"
        else:
            said = f"{answer.get('preferred') or 'output ' + str(answer['winner'])} preferred"
            if answer.get("strength") == 2:
                said += " (much better)"
        parts.append(f"{criterion}: {said}")
    return "; ".join(parts) or "—"


def split_words(split: dict[str, Any]) -> str:
    """What the reviewers said on the criteria they split on (a decision's
    ``disagreement["preferences"]``): "helpfulness: baseline 1, candidate 1"."""
    parts = []
    for criterion, counts in sorted(split.items()):
        if isinstance(counts, dict):
            said = ", ".join(f"{system} {n}" for system, n in sorted(counts.items()))
        else:
            said = str(counts)
        parts.append(f"{criterion}: {said}")
    return "; ".join(parts) or "—"
