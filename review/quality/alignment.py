"""Metric alignment: how an automated score (an LLM judge or a code metric) agrees with
the reviewers' answer to a question on the items both scored.

Pure numpy, no Django (the service that loads scores and answers is
:mod:`review.quality.services.alignment`). Every figure that cannot exist is ``None`` with the
reason, never NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

WORST_ITEMS = 20


def _figure(value: float | None, reason: str | None = None) -> dict[str, Any]:
    if value is not None and not np.isfinite(value):
        value, reason = None, reason or "Not a finite number."
    return {"value": None if value is None else float(value), "reason": reason}


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given the mean of the ranks they span (as Spearman needs)."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    counts = np.diff(np.r_[first, len(x)])
    mean_rank = first + (counts + 1) / 2.0
    ranks = np.empty(len(x), dtype=float)
    ranks[order] = mean_rank[group]
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    if len(x) < 2:
        return _figure(None, "Fewer than two items scored by both.")
    dx, dy = x - x.mean(), y - y.mean()
    sx, sy = np.sqrt((dx * dx).sum()), np.sqrt((dy * dy).sum())
    if sx == 0 or sy == 0:
        which = "metric" if sx == 0 else "reviewers"
        return _figure(None, f"The {which} gave the same value to every item.")
    return _figure(float(np.clip((dx * dy).sum() / (sx * sy), -1.0, 1.0)))


def kappa_pass_fail(metric_pass: np.ndarray, human_pass: np.ndarray) -> dict[str, Any]:
    """Cohen's kappa (unweighted) on pass/fail."""
    n = len(metric_pass)
    if n == 0:
        return _figure(None, "No item scored by both.")
    p_o = float((metric_pass == human_pass).mean())
    pm, ph = float(metric_pass.mean()), float(human_pass.mean())
    p_e = pm * ph + (1 - pm) * (1 - ph)
    if p_e >= 1.0:
        return _figure(
            None, "Everything passes (or fails) on both sides: chance agreement is total."
        )
    return _figure((p_o - p_e) / (1 - p_e))


def alignment_figures(
    *,
    item_ids: Sequence[Any],
    metric_pass: Sequence[bool],
    human_pass: Sequence[bool],
    metric_values: Sequence[float] | None = None,
    human_values: Sequence[float] | None = None,
    metric_threshold: float | None = None,
) -> dict[str, Any]:
    """Agreement rate, Cohen's kappa, the confusion matrix (false positive: the metric
    passes what the reviewers fail) and, when both sides are numbers, Pearson,
    Spearman, MAE and RMSE; the items that disagree most (pass/fail disagreements
    first, the metric's distance from its threshold, then the absolute difference)."""
    mp = np.asarray(metric_pass, dtype=bool)
    hp = np.asarray(human_pass, dtype=bool)
    n = len(mp)
    out: dict[str, Any] = {"n_items": n}
    if n == 0:
        reason = "No item has both the automated score and the reviewers' answer."
        out.update(
            agreement_rate=_figure(None, reason),
            kappa=_figure(None, reason),
            confusion=None,
            numeric=None,
            worst_items=[],
        )
        return out
    out["agreement_rate"] = _figure(float((mp == hp).mean()))
    out["kappa"] = kappa_pass_fail(mp, hp)
    out["confusion"] = {
        "true_positive": int((mp & hp).sum()),
        "false_positive": int((mp & ~hp).sum()),
        "false_negative": int((~mp & hp).sum()),
        "true_negative": int((~mp & ~hp).sum()),
    }
    numeric = metric_values is not None and human_values is not None
    if numeric:
        x = np.asarray(metric_values, dtype=float)
        y = np.asarray(human_values, dtype=float)
        diff = x - y
        out["numeric"] = {
            "pearson": pearson(x, y),
            "spearman": pearson(average_ranks(x), average_ranks(y)),
            "mae": _figure(float(np.abs(diff).mean())),
            "rmse": _figure(float(np.sqrt((diff * diff).mean()))),
        }
    else:
        out["numeric"] = None
    disagree = mp != hp
    if numeric:
        gap = np.abs(np.asarray(metric_values, dtype=float) - np.asarray(human_values, dtype=float))
    else:
        gap = np.zeros(n)
    margin = (
        np.abs(np.asarray(metric_values, dtype=float) - metric_threshold)
        if metric_values is not None and metric_threshold is not None
        else np.zeros(n)
    )
    # Disagreements first, then the most confident metric, then the widest gap.
    order = np.lexsort((-gap, -margin, ~disagree))
    worst = []
    for index in order[:WORST_ITEMS]:
        if not disagree[index] and not gap[index]:
            break
        worst.append(
            {
                "item": item_ids[index],
                "metric_pass": bool(mp[index]),
                "human_pass": bool(hp[index]),
                "metric_value": None if metric_values is None else float(metric_values[index]),
                "human_value": None if human_values is None else float(human_values[index]),
                "kind": (
                    "false_positive"
                    if mp[index] and not hp[index]
                    else "false_negative"
                    if hp[index] and not mp[index]
                    else "agree"
                ),
            }
        )
    out["worst_items"] = worst
    return out


# --- anchoring: agreement with the judge, its suggestion visible or not -----------------------

# Answers per group under which the comparison is said to be too small rather than read.
MIN_ANCHORING_ANSWERS = 30
Z_95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` in ``n`` (None when n is 0); equal to
    statsmodels' ``proportion_confint(method="wilson")``."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    margin = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return float(max(0.0, centre - margin)), float(min(1.0, centre + margin))


def newcombe_difference(
    successes_1: int, n_1: int, successes_2: int, n_2: int, z: float = Z_95
) -> tuple[float, float, float] | None:
    """The difference of two proportions (first minus second) with Newcombe's hybrid
    score interval (his method 10, built from both Wilson intervals); equal to
    statsmodels' ``confint_proportions_2indep(method="newcomb")``. None when a group is
    empty."""
    first, second = wilson_interval(successes_1, n_1, z), wilson_interval(successes_2, n_2, z)
    if first is None or second is None:
        return None
    p1, p2 = successes_1 / n_1, successes_2 / n_2
    difference = p1 - p2
    low = difference - np.sqrt((p1 - first[0]) ** 2 + (second[1] - p2) ** 2)
    high = difference + np.sqrt((first[1] - p1) ** 2 + (p2 - second[0]) ** 2)
    return float(difference), float(low), float(high)


def _group(agree: np.ndarray) -> dict[str, Any]:
    n, k = len(agree), int(agree.sum())
    interval = wilson_interval(k, n)
    return {
        "n_answers": n,
        "agreeing": k,
        "agreement_rate": _figure(k / n if n else None, None if n else "No answer."),
        "interval": list(interval) if interval else None,
    }


def anchoring_comparison(
    *, agree_visible: Sequence[bool], agree_hidden: Sequence[bool]
) -> dict[str, Any]:
    """How often reviewers' answers agree with the judge (pass/fail) when its suggestion
    was visible before they answered, against when it was not: each rate with its 95%
    Wilson interval, the difference (visible minus not) with Newcombe's hybrid score
    interval, and a verdict:

    - ``small_sample``: a group has fewer than :data:`MIN_ANCHORING_ANSWERS` answers
      (said, never read as a sign either way);
    - ``anchoring``: the difference's interval lies above 0, reviewers agree with the
      judge more when they see it;
    - ``less_when_visible``: the interval lies below 0;
    - ``no_sign``: the interval holds 0.
    """
    visible = np.asarray(agree_visible, dtype=bool)
    hidden = np.asarray(agree_hidden, dtype=bool)
    out: dict[str, Any] = {
        "method": "95% Wilson score intervals per group; the difference (visible minus "
        "not visible) with Newcombe's hybrid score interval.",
        "min_answers": MIN_ANCHORING_ANSWERS,
        "visible": _group(visible),
        "hidden": _group(hidden),
        "difference": None,
        "interval": None,
    }
    found = newcombe_difference(int(visible.sum()), len(visible), int(hidden.sum()), len(hidden))
    if found is not None:
        out["difference"], low, high = found[0], found[1], found[2]
        out["interval"] = [low, high]
    if found is None or min(len(visible), len(hidden)) < MIN_ANCHORING_ANSWERS:
        out["verdict"] = "small_sample"
        out["message"] = (
            f"{len(visible)} answers with the judge's suggestion visible and {len(hidden)} "
            f"without: too few to tell whether it anchors the reviewers (at least "
            f"{MIN_ANCHORING_ANSWERS} each)."
        )
        return out
    rate_visible, rate_hidden = visible.mean(), hidden.mean()
    words = (
        f"{rate_visible:.0%} agreement with the judge when its suggestion was visible, "
        f"{rate_hidden:.0%} when not (difference {found[0]:+.2f}, 95% interval "
        f"{found[1]:+.2f} to {found[2]:+.2f})"
    )
    if found[1] > 0:
        out["verdict"] = "anchoring"
        out["message"] = (
            f"Reviewers agree with the judge more when they see its suggestion: {words}. "
            "The suggestion likely anchors their answers; this agreement overstates the "
            "judge's alignment."
        )
    elif found[2] < 0:
        out["verdict"] = "less_when_visible"
        out["message"] = f"Reviewers agree with the judge less when they see it: {words}."
    else:
        out["verdict"] = "no_sign"
        out["message"] = f"No sign of anchoring: {words}."
    return out
