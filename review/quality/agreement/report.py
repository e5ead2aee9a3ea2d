"""One question's agreement report: every coefficient with its interval, and the
breakdowns a lead reads to fix a rubric (reviewer pairs, each reviewer against the
others, which levels are confused with which, the items that disagree most)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from review.quality.agreement.coefficients import Weighting, agreement_weights, compute
from review.quality.agreement.ratings import Level, Ratings

# Breakdowns over categories (confusion, consensus) are shown up to this many levels;
# a numeric scale with more distinct answers gets the coefficients and pairs only.
MAX_TABLE_CATEGORIES = 64
# Krippendorff's ordinal distances need a categories x categories table per resample.
MAX_ORDINAL_CATEGORIES = 200
TOP_ITEMS = 20
# Fewer items answered by two or more reviewers than this give a figure that swings with
# every answer (one disagreement over two items is an alpha of -0.5 whose bootstrap
# interval is that one point): it is shown with a warning, not as a bare number.
MIN_STABLE_ITEMS = 10


def small_sample_warning(n_items: int | None) -> str | None:
    """The warning a figure over ``n_items`` items answered by two or more reviewers
    carries, or None (enough items, or no figure at all)."""
    if not n_items or n_items >= MIN_STABLE_ITEMS:
        return None
    items = "item" if n_items == 1 else "items"
    return (
        f"Only {n_items} {items} answered by two or more reviewers: too few for a stable "
        f"figure (at least {MIN_STABLE_ITEMS}); the value and its interval will move with "
        "the next answers."
    )


def _figure(figure: Any) -> dict[str, Any]:
    out = figure.as_dict()
    out["warning"] = small_sample_warning(figure.n_items) if figure.value is not None else None
    return out


def _jsonable(value: Hashable) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def levels_for(level: Level, ratings: Ratings) -> list[Level]:
    """Krippendorff's alpha at the question's level, and the coarser ones beside it."""
    out = [Level.NOMINAL]
    if level in (Level.ORDINAL, Level.INTERVAL) and ratings.n_categories <= MAX_ORDINAL_CATEGORIES:
        out.append(Level.ORDINAL)
    if level == Level.INTERVAL or (level == Level.ORDINAL and _numeric(ratings)):
        out.append(Level.INTERVAL)
    return out


def _numeric(ratings: Ratings) -> bool:
    return all(isinstance(c, int | float) and not isinstance(c, bool) for c in ratings.categories)


def agreement_report(
    ratings: Ratings,
    *,
    level: Level,
    resamples: int = 1000,
    seed: int = 0,
    top_items: int = TOP_ITEMS,
) -> dict[str, Any]:
    """The report as JSON-ready data; reviewers and items are named by their ids."""
    level = Level(level)
    weightings: tuple[Weighting, ...] = (
        ("identity", "linear", "quadratic") if ratings.ordered else ("identity",)
    )
    overall, by_pair = compute(
        ratings,
        levels=levels_for(level, ratings),
        weightings=weightings,
        resamples=resamples,
        seed=seed,
    )
    primary = f"krippendorff_alpha_{level}"
    pairable = int((ratings.answer_counts >= 2).sum())
    return {
        "level": str(level),
        "ordered": ratings.ordered,
        "categories": [_jsonable(c) for c in ratings.categories],
        "n_items": ratings.n_items,
        "n_pairable_items": pairable,
        "warning": small_sample_warning(pairable),
        "n_answers": ratings.n_answers,
        "n_reviewers": len(ratings.rater_ids),
        "primary": primary if primary in overall else "krippendorff_alpha_nominal",
        "coefficients": {name: _figure(figure) for name, figure in overall.items()},
        "pairs": _pairs(ratings, by_pair),
        "reviewers": _against_consensus(ratings),
        "levels": _level_confusion(ratings),
        "most_disagreeing_items": _most_disagreeing(ratings, top_items),
        "bootstrap": {"resamples": resamples, "seed": seed, "confidence": 0.95},
    }


def _pairs(ratings: Ratings, by_pair: dict[tuple[Any, Any], dict[str, Any]]) -> list[dict]:
    _, ca, cb, ra, rb = ratings.pairs
    index = {rater: i for i, rater in enumerate(ratings.rater_ids)}
    out = []
    for (first, second), figures in by_pair.items():
        a, b = index[first], index[second]
        mask = (ra == a) & (rb == b)
        shared = int(mask.sum())
        agree = float((ca[mask] == cb[mask]).mean()) if shared else None
        out.append(
            {
                "reviewers": [_jsonable(ratings.rater_ids[a]), _jsonable(ratings.rater_ids[b])],
                "n_items": shared,
                "percent_agreement": agree,
                **{name: _figure(figure) for name, figure in figures.items()},
            }
        )
    return out


def _against_consensus(ratings: Ratings) -> list[dict[str, Any]]:
    """Each reviewer against the others on the items they share: how often they give
    the others' most common answer (ties left out), and for ordered scales how far they
    are from the others' mean score."""
    codes, raters, q = ratings.codes, ratings.raters, ratings.n_categories
    filled = codes >= 0
    scores = ratings.scores
    out = []
    for index, rater in enumerate(ratings.rater_ids):
        mine = raters == index
        rows = np.nonzero(mine.any(axis=1))[0]
        own = codes[rows][mine[rows]]
        others = filled[rows] & ~mine[rows]
        has_others = others.sum(axis=1) > 0
        rows, own, others = rows[has_others], own[has_others], others[has_others]
        entry: dict[str, Any] = {"reviewer": _jsonable(rater), "n_items": len(rows)}
        if len(rows) and q <= MAX_TABLE_CATEGORIES:
            local = np.repeat(np.arange(len(rows)), others.sum(axis=1))
            tally = np.bincount(local * q + codes[rows][others], minlength=len(rows) * q).reshape(
                len(rows), q
            )
            top = tally.max(axis=1)
            tie = (tally == top[:, None]).sum(axis=1) > 1
            mode = tally.argmax(axis=1)
            decided = ~tie
            entry["ties"] = int(tie.sum())
            entry["agreement_with_consensus"] = (
                float((own[decided] == mode[decided]).mean()) if decided.any() else None
            )
        else:
            entry["ties"] = None
            entry["agreement_with_consensus"] = None
        if len(rows) and ratings.ordered:
            other_scores = np.where(others, scores[np.maximum(codes[rows], 0)], 0.0)
            mean_others = other_scores.sum(axis=1) / others.sum(axis=1)
            entry["mean_abs_difference"] = float(np.abs(scores[own] - mean_others).mean())
        out.append(entry)
    return out


def _level_confusion(ratings: Ratings) -> dict[str, Any]:
    """Answer pairs on the same item by the two levels they chose (symmetric; the
    diagonal holds agreeing pairs), and per level how often another reviewer chose it
    too when one did."""
    q = ratings.n_categories
    labels = [_jsonable(c) for c in ratings.categories]
    if q > MAX_TABLE_CATEGORIES:
        return {"labels": labels, "pair_counts": None, "by_level": None,
                "reason": f"More than {MAX_TABLE_CATEGORIES} distinct answers."}  # fmt: skip
    _, ca, cb, _, _ = ratings.pairs
    table = np.bincount(ca * q + cb, minlength=q * q).reshape(q, q)
    table = table + table.T - np.diag(np.diag(table))
    ends = table.sum(axis=1) + np.diag(table)
    by_level = [
        {
            "label": labels[k],
            "answer_pairs": int(ends[k]),
            "agreement": float(2 * table[k, k] / ends[k]) if ends[k] else None,
            "confused_with": [
                {"label": labels[other], "pairs": int(table[k, other])}
                for other in np.argsort(-table[k], kind="stable")
                if other != k and table[k, other]
            ][:3],
        }
        for k in range(q)
    ]
    return {"labels": labels, "pair_counts": table.tolist(), "by_level": by_level, "reason": None}


def _most_disagreeing(ratings: Ratings, limit: int) -> list[dict[str, Any]]:
    """Items by the mean distance between their answer pairs (0 to 1; unordered labels
    count 1 for any difference), largest first, ties by item order."""
    pair_items, ca, cb, _, _ = ratings.pairs
    if not len(pair_items) or not limit:
        return []
    weighting: Weighting = "linear" if ratings.ordered else "identity"
    distance = 1.0 - agreement_weights(ratings.scores, weighting)[ca, cb]
    n = ratings.n_items
    pairs = np.bincount(pair_items, minlength=n)
    mean = np.bincount(pair_items, distance, minlength=n) / np.maximum(pairs, 1)
    order = np.lexsort((np.arange(n), -mean))
    order = order[mean[order] > 0][:limit]
    out = []
    for row in order:
        filled = ratings.codes[row] >= 0
        out.append(
            {
                "item_id": _jsonable(ratings.item_ids[row]),
                "disagreement": float(mean[row]),
                "answers": [
                    {
                        "reviewer": _jsonable(ratings.rater_ids[rater]),
                        "answer": _jsonable(ratings.categories[code]),
                    }
                    for rater, code in zip(
                        ratings.raters[row][filled], ratings.codes[row][filled], strict=True
                    )
                ],
            }
        )
    return out
