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
