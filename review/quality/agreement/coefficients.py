"""Agreement coefficients for one question, with bootstrap confidence intervals.

Definitions (``c[i, k]``: answers of category ``k`` on item ``i``; ``r[i]``: answers on
item ``i``; "pairable" items have ``r >= 2``):

- **Percent agreement**: over pairable items, the mean share of agreeing answer pairs.
- **Cohen's kappa** per reviewer pair, on the items both answered:
  ``1 - sum(d * observed) / sum(d * expected)`` with disagreement weights ``d`` (none,
  linear or quadratic in the categories' scores), as scikit-learn's ``cohen_kappa_score``.
- **Fleiss' kappa**: percent agreement against ``sum(pi**2)``, ``pi[k]`` the mean over
  items of ``c[i, k] / r[i]``; with missing answers, Gwet's generalization (irrCAC's
  ``fleiss``), equal to the classic one (statsmodels) when every item has as many answers.
- **Krippendorff's alpha**: ``1 - D_o / D_e`` from the coincidence matrix of pairable
  items, nominal, ordinal or interval distances; answers on items nobody else answered
  are not pairable and drop out, as the method defines.
- **Gwet's AC1** (identity weights) **/ AC2** (linear or quadratic): weighted percent
  agreement against ``sum(w) / (q (q - 1)) * sum(pi (1 - pi))``, ``q`` the categories of
  the scale (irrCAC's ``gwet``).

A figure that cannot be computed (one reviewer, no shared item, one label everywhere so
chance agreement is total) is ``value=None`` with the reason, never NaN.

The bootstrap resamples items with replacement (seeded); the 95% interval is the 2.5th
and 97.5th percentile of the resampled figures. All coefficients are computed from sums
over items (:mod:`review.quality.agreement.sums`), so a batch of resamples costs one matrix
product and a few segmented sums, never a loop over items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from review.quality.agreement.ratings import Level, Ratings
from review.quality.agreement.sums import Block, Result, resample_batches, resample_weights

Weighting = Literal["identity", "linear", "quadratic"]
WEIGHTINGS: tuple[Weighting, ...] = ("identity", "linear", "quadratic")
# A resampled figure set counts as an interval only if at least this share of the
# resamples had a figure (small samples may draw items that all say the same).
MIN_DEFINED_SHARE = 0.5
# Denominators closer to zero than this (relative) are "no figure", not a huge number.
EPSILON = 1e-12


@dataclass(frozen=True)
class Figure:
    """One coefficient: its value and interval, or why there is none, and what is
    behind it."""

    value: float | None
    n_items: int
    n_answers: int
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str | None = None
    resamples: int = 0
    resamples_defined: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n_items": self.n_items,
            "n_answers": self.n_answers,
            "reason": self.reason,
            "resamples": self.resamples,
            "resamples_defined": self.resamples_defined,
        }


def disagreement_weights(scores: np.ndarray, weighting: Weighting) -> np.ndarray:
    """``d[k, l]``: how far apart categories ``k`` and ``l`` are (0 on the diagonal)."""
    q = len(scores)
    if weighting == "identity":
        return 1.0 - np.eye(q)
    diff = np.abs(scores[:, None] - scores[None, :])
    return diff if weighting == "linear" else diff**2


def agreement_weights(scores: np.ndarray, weighting: Weighting) -> np.ndarray:
    """``w[k, l]`` in [0, 1]: 1 for the same category, falling with distance."""
    d = disagreement_weights(scores, weighting)
    top = d.max() if d.size else 0.0
    return 1.0 - (d / top if top > 0 else d)


# --- the plan: per-item quantities and how each coefficient finishes ---------------------


@dataclass
class _Coefficient:
    block: Block
    finish: Callable[[Result], np.ndarray]
    n_items: int
    n_answers: int
    reason: str | None


@dataclass
class _Plan:
    ratings: Ratings
    main: Block
    coefficients: dict[str, _Coefficient] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    handles: dict[str, int] = field(default_factory=dict)


def _main_block(r: Ratings, plan_handles: dict[str, int]) -> Block:
    n, q = r.n_items, r.n_categories
    counts = r.answer_counts.astype(np.float64)
    pairable = counts >= 2
    pair_items, ca, cb, _, _ = r.pairs
    pairs_per_item = counts * (counts - 1) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        per_pair = np.where(pairable, 1.0 / np.where(pairable, pairs_per_item, 1), 0.0)
        per_other = np.where(pairable, 1.0 / np.where(pairable, counts - 1, 1), 0.0)
    block = Block(None, n)
    h = plan_handles
    h["items"] = block.column(np.ones(n))
    h["pairable"] = block.column(pairable)
    h["pairable_answers"] = block.column(np.where(pairable, counts, 0.0))
    agree = (ca == cb).astype(np.float64)
    h["agree"] = block.column(np.bincount(pair_items, agree, minlength=n) * per_pair)
    # Nominal and interval observed disagreement per unit: sum of d over answer pairs
    # times 2 / (r - 1) (the coincidence matrix counts each pair both ways).
    h["do_nominal"] = block.column(
        np.bincount(pair_items, 1.0 - agree, minlength=n) * 2 * per_other
    )
    item_idx, _, codes = r.answers
    centred = r.scores - (r.scores.max() + r.scores.min()) / 2 if q else r.scores
    if q:
        diff = centred[ca] - centred[cb]
        h["do_interval"] = block.column(
            np.bincount(pair_items, diff * diff, minlength=n) * 2 * per_other
        )
        on_pairable = pairable[item_idx]
        value = centred[codes]
        h["t1"] = block.column(np.bincount(item_idx, np.where(on_pairable, value, 0.0), n))
        h["t2"] = block.column(np.bincount(item_idx, np.where(on_pairable, value * value, 0.0), n))
        h["n_v"] = block.counts(item_idx, codes, q, on_pairable.astype(np.float64))
        h["pi"] = block.counts(item_idx, codes, q, 1.0 / counts[item_idx])
    return block


def _plan(r: Ratings) -> _Plan:
    handles: dict[str, int] = {}
    main = _main_block(r, handles)
    return _Plan(ratings=r, main=main, blocks=[main], handles=handles)


def _no_figure_reason(r: Ratings) -> tuple[str | None, int, int]:
    """Why no multi-reviewer coefficient exists at all, and the items/answers behind it."""
    counts = r.answer_counts
    pairable = counts >= 2
    n_items, n_answers = int(pairable.sum()), int(counts[pairable].sum())
    if len(set(r.raters[r.raters >= 0].tolist())) < 2:
        return "Only one reviewer answered this question.", n_items, n_answers
    if not n_items:
        return "No item was answered by two or more reviewers.", 0, 0
    return None, n_items, n_answers


def _single_label_reason(r: Ratings, codes: np.ndarray) -> str | None:
    used = np.unique(codes)
    if len(used) == 1:
        return (
            f"Every answer was {r.categories[int(used[0])]!r}: agreement expected by "
            "chance is total, so the coefficient is 0/0."
        )
    return None


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return np.where(np.abs(den) > EPSILON, out, np.nan)


def _add_percent_agreement(p: _Plan) -> None:
    h = p.handles
    reason, n_items, n_answers = _no_figure_reason(p.ratings)

    def finish(s: Result) -> np.ndarray:
        return _ratio(s.column(h["agree"]), s.column(h["pairable"]))

    p.coefficients["percent_agreement"] = _Coefficient(p.main, finish, n_items, n_answers, reason)


def _pi(s: Result, h: dict[str, int]) -> np.ndarray:
    return s.counts(h["pi"]) / s.column(h["items"])[:, None]


def _pairable_codes(r: Ratings) -> np.ndarray:
    pairable = r.answer_counts >= 2
    return r.codes[pairable][r.codes[pairable] >= 0]


def _add_fleiss(p: _Plan) -> None:
    h, r = p.handles, p.ratings
    reason, n_items, n_answers = _no_figure_reason(r)
    reason = reason or _single_label_reason(r, r.answers[2])

    def finish(s: Result) -> np.ndarray:
        pa = s.column(h["agree"]) / s.column(h["pairable"])
        pi = _pi(s, h)
        pe = (pi * pi).sum(axis=1)
        return _ratio(pa - pe, 1.0 - pe)

    p.coefficients["fleiss_kappa"] = _Coefficient(p.main, finish, n_items, n_answers, reason)


def _add_gwet(p: _Plan, weighting: Weighting) -> None:
    h, r = p.handles, p.ratings
    q = r.n_categories
    reason, n_items, n_answers = _no_figure_reason(r)
    if reason is None and q < 2:
        reason = "The scale has a single category: chance agreement is total."
    w = agreement_weights(r.scores, weighting)
    key = "agree" if weighting == "identity" else f"agree_{weighting}"
    if key not in h and q:
        pair_items, ca, cb, _, _ = r.pairs
        counts = r.answer_counts.astype(np.float64)
        pairable = counts >= 2
        with np.errstate(divide="ignore", invalid="ignore"):
            per_pair = np.where(pairable, 2.0 / (counts * (counts - 1)), 0.0)
        h[key] = p.main.column(np.bincount(pair_items, w[ca, cb], r.n_items) * per_pair)
    total = w.sum()

    def finish(s: Result) -> np.ndarray:
        pa = s.column(h[key]) / s.column(h["pairable"])
        pi = _pi(s, h)
        pe = total / (q * (q - 1)) * (pi * (1.0 - pi)).sum(axis=1)
        return _ratio(pa - pe, 1.0 - pe)

    name = "gwet_ac1" if weighting == "identity" else f"gwet_ac2_{weighting}"
    p.coefficients[name] = _Coefficient(p.main, finish, n_items, n_answers, reason)


def _ordinal_distances(n_v: np.ndarray) -> np.ndarray:
    """Krippendorff's ordinal metric per resample: ``(sum of n_g for g from k to l
    - (n_k + n_l) / 2) ** 2``, shape ``(resamples, q, q)``."""
    inclusive = np.cumsum(n_v, axis=1)
    exclusive = inclusive - n_v
    lo = np.minimum.outer(np.arange(n_v.shape[1]), np.arange(n_v.shape[1]))
    hi = np.maximum.outer(np.arange(n_v.shape[1]), np.arange(n_v.shape[1]))
    between = inclusive[:, hi] - exclusive[:, lo]
    return (between - (n_v[:, lo] + n_v[:, hi]) / 2.0) ** 2 * (lo != hi)


def _add_alpha(p: _Plan, level: Level) -> None:
    h, r = p.handles, p.ratings
    q = r.n_categories
    reason, n_items, n_answers = _no_figure_reason(r)
    reason = reason or _single_label_reason(r, _pairable_codes(r))
    if level == Level.NOMINAL:

        def finish(s: Result) -> np.ndarray:
            n_v = s.counts(h["n_v"])
            total = n_v.sum(axis=1)
            expected = (total * total - (n_v * n_v).sum(axis=1)) / (total - 1)
            return 1.0 - _ratio(s.column(h["do_nominal"]), expected)

    elif level == Level.INTERVAL:

        def finish(s: Result) -> np.ndarray:
            total = s.column(h["pairable_answers"])
            t1, t2 = s.column(h["t1"]), s.column(h["t2"])
            expected = (2 * total * t2 - 2 * t1 * t1) / (total - 1)
            return 1.0 - _ratio(s.column(h["do_interval"]), expected)

    else:
        if "o_ordinal" not in h and q:
            pair_items, ca, cb, _, _ = r.pairs
            counts = r.answer_counts.astype(np.float64)
            off = ca != cb
            lo, hi = np.minimum(ca, cb)[off], np.maximum(ca, cb)[off]
            h["o_ordinal"] = p.main.counts(
                pair_items[off], lo * q + hi, q * q, 1.0 / (counts[pair_items[off]] - 1)
            )

        def finish(s: Result) -> np.ndarray:
            n_v = s.counts(h["n_v"])
            d = _ordinal_distances(n_v)
            total = n_v.sum(axis=1)
            observed = 2.0 * (s.counts(h["o_ordinal"]) * d.reshape(len(d), -1)).sum(axis=1)
            expected = np.einsum("bk,bkl,bl->b", n_v, d, n_v) / (total - 1)
            return 1.0 - _ratio(observed, expected)

    p.coefficients[f"krippendorff_alpha_{level}"] = _Coefficient(
        p.main, finish, n_items, n_answers, reason
    )


def _pair_rows(r: Ratings, a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items both reviewers answered (by rater index), with each one's code."""
    pair_items, ca, cb, ra, rb = r.pairs
    if a > b:
        a, b = b, a
        flip = True
    else:
        flip = False
    mask = (ra == a) & (rb == b)
    items, first, second = pair_items[mask], ca[mask], cb[mask]
    return (items, second, first) if flip else (items, first, second)


def _add_cohen(p: _Plan, a: int, b: int, weighting: Weighting, name: str) -> None:
    r = p.ratings
    q = r.n_categories
    items, code_a, code_b = _pair_rows(r, a, b)
    n = len(items)
    reason = None
    if a == b:
        reason = "A reviewer is not compared with themself."
    elif not n:
        reason = "These two reviewers answered no item in common."
    elif len(np.unique(np.concatenate((code_a, code_b)))) == 1:
        reason = _single_label_reason(r, code_a)
    d = disagreement_weights(r.scores, weighting)
    block = Block(items, n)
    rows = np.arange(n)
    ones = block.column(np.ones(n))
    observed = block.column(d[code_a, code_b] if n else np.zeros(0))
    first = block.counts(rows, code_a, q)
    second = block.counts(rows, code_b, q)

    def finish(s: Result) -> np.ndarray:
        expected = np.einsum("bk,kl,bl->b", s.counts(first), d, s.counts(second))
        return 1.0 - _ratio(s.column(observed) * s.column(ones), expected)

    p.blocks.append(block)
    p.coefficients[name] = _Coefficient(block, finish, n, 2 * n, reason)


# --- running a plan ---------------------------------------------------------------------


def _run(p: _Plan, resamples: int, seed: int, confidence: float = 0.95) -> dict[str, Figure]:
    point: dict[int, Result] = {id(b): b.evaluate(None) for b in p.blocks}
    values: dict[str, float | None] = {}
    for name, c in p.coefficients.items():
        if c.reason is not None:
            values[name] = None
            continue
        v = float(c.finish(point[id(c.block)])[0])
        values[name] = v if np.isfinite(v) else None
    live = [n for n, c in p.coefficients.items() if values[n] is not None]
    boot: dict[str, list[np.ndarray]] = {n: [] for n in live}
    if resamples and live:
        blocks = {id(p.coefficients[n].block): p.coefficients[n].block for n in live}
        for size, rng in resample_batches(p.ratings.n_items, resamples, seed):
            weights = resample_weights(rng, p.ratings.n_items, size)
            sums = {key: block.evaluate(weights) for key, block in blocks.items()}
            for name in live:
                c = p.coefficients[name]
                boot[name].append(c.finish(sums[id(c.block)]))
    tail = (1.0 - confidence) / 2 * 100
    figures: dict[str, Figure] = {}
    for name, c in p.coefficients.items():
        value = values[name]
        if value is None:
            figures[name] = Figure(
                None,
                c.n_items,
                c.n_answers,
                reason=c.reason or "The coefficient is 0/0 on these answers.",
            )
            continue
        low = high = None
        defined = 0
        if resamples:
            draws = np.concatenate(boot[name])
            draws = draws[np.isfinite(draws)]
            defined = len(draws)
            if defined >= MIN_DEFINED_SHARE * resamples:
                low, high = (float(x) for x in np.percentile(draws, [tail, 100 - tail]))
        figures[name] = Figure(value, c.n_items, c.n_answers, low, high, None, resamples, defined)
    return figures


# --- the public functions -----------------------------------------------------------------


def compute(
    ratings: Ratings,
    *,
    levels: Iterable[Level] = (Level.NOMINAL,),
    weightings: Iterable[Weighting] = ("identity",),
    pairs: bool = True,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[dict[str, Figure], dict[tuple[Any, Any], dict[str, Figure]]]:
    """Every coefficient for one question: percent agreement, Fleiss' kappa, Gwet's AC
    (AC1 and, per weighting, AC2), Krippendorff's alpha per level, and Cohen's kappa per
    reviewer pair and weighting (keyed by the two reviewers' ids, in the order they first
    answer). One set of resamples serves them all."""
    weightings = tuple(weightings)
    p = _plan(ratings)
    _add_percent_agreement(p)
    _add_fleiss(p)
    for weighting in weightings:
        _add_gwet(p, weighting)
    for level in levels:
        _add_alpha(p, Level(level))
    pair_names: dict[tuple[int, int], dict[str, str]] = {}
    if pairs:
        _, _, _, ra, rb = ratings.pairs
        for a, b in sorted(set(zip(ra.tolist(), rb.tolist(), strict=True))):
            names = pair_names.setdefault((a, b), {})
            for weighting in weightings:
                name = f"cohen_kappa:{a}:{b}:{weighting}"
                _add_cohen(p, a, b, weighting, name)
                names[weighting] = name
    figures = _run(p, resamples, seed, confidence)
    overall = {n: f for n, f in figures.items() if not n.startswith("cohen_kappa:")}
    ids = ratings.rater_ids
    by_pair = {
        (ids[a], ids[b]): {_cohen_name(w): figures[name] for w, name in names.items()}
        for (a, b), names in pair_names.items()
    }
    return overall, by_pair


def _cohen_name(weighting: Weighting) -> str:
    return "cohen_kappa" if weighting == "identity" else f"cohen_kappa_{weighting}"


def _single(ratings: Ratings, add: Callable[[_Plan], str], resamples: int, seed: int) -> Figure:
    p = _plan(ratings)
    name = add(p)
    return _run(p, resamples, seed)[name]


def percent_agreement(ratings: Ratings, *, resamples: int = 0, seed: int = 0) -> Figure:
    def add(p: _Plan) -> str:
        _add_percent_agreement(p)
        return "percent_agreement"

    return _single(ratings, add, resamples, seed)


def fleiss_kappa(ratings: Ratings, *, resamples: int = 0, seed: int = 0) -> Figure:
    def add(p: _Plan) -> str:
        _add_fleiss(p)
        return "fleiss_kappa"

    return _single(ratings, add, resamples, seed)


def gwet_ac(
    ratings: Ratings, *, weighting: Weighting = "identity", resamples: int = 0, seed: int = 0
) -> Figure:
    """Gwet's AC1 (identity weights) or AC2 (linear or quadratic)."""

    def add(p: _Plan) -> str:
        _add_gwet(p, weighting)
        return "gwet_ac1" if weighting == "identity" else f"gwet_ac2_{weighting}"

    return _single(ratings, add, resamples, seed)


def krippendorff_alpha(
    ratings: Ratings, *, level: Level = Level.NOMINAL, resamples: int = 0, seed: int = 0
) -> Figure:
    def add(p: _Plan) -> str:
        _add_alpha(p, Level(level))
        return f"krippendorff_alpha_{Level(level)}"

    return _single(ratings, add, resamples, seed)


def cohen_kappa(
    ratings: Ratings,
    rater_a: Any,
    rater_b: Any,
    *,
    weighting: Weighting = "identity",
    resamples: int = 0,
    seed: int = 0,
) -> Figure:
    """Cohen's kappa between two reviewers (by their ids), on the items both answered."""
    ids = {rater: index for index, rater in enumerate(ratings.rater_ids)}
    if rater_a not in ids or rater_b not in ids:
        return Figure(None, 0, 0, reason="One of the reviewers answered nothing.")

    def add(p: _Plan) -> str:
        _add_cohen(p, ids[rater_a], ids[rater_b], weighting, "cohen")
        return "cohen"

    return _single(ratings, add, resamples, seed)
