"""Bradley-Terry strengths from pairwise outcomes, with bootstrap confidence intervals.
Pure numpy, no Django.

The model: system ``i`` beats ``j`` with probability ``p_i / (p_i + p_j)``. The estimate
is the maximum a posteriori one that ``choix.mm_pairwise`` computes (Hunter's
minorization-maximization, 2004): with the weights ``p`` scaled to sum to the number of
systems, repeat ``p_i = (W_i + alpha) / (sum_j N_ij / (p_i + p_j) + alpha)`` (``W_i`` the
wins of ``i``, ``N_ij`` the games between ``i`` and ``j``) until the
log-strengths move less than ``tol`` (L1), starting from equal strengths. ``alpha``, a
small prior, keeps a system that never wins (or never loses) at a finite strength;
``alpha=0`` is the plain maximum-likelihood estimate. Strengths are reported as
log-strengths centered on their mean (choix's convention), so ``exp(s_i - s_j)`` is the
odds of ``i`` over ``j``.

A tie counts as half a win each way. The bootstrap resamples judgements with
replacement: the counts of each outcome cell (``i`` beat ``j``, ``i`` tied ``j``) are one
multinomial draw per resample, and all resamples are solved at once, as one array of
win matrices (``tests/review/test_comparison_bt.py`` checks the estimate against choix;
``bench/comparison.py`` times 1,000 resamples of 50,000 judgements over 20 systems).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_ALPHA = 0.01


@dataclass(frozen=True)
class Strengths:
    """Log-strengths (mean zero) per system, with percentile intervals from the bootstrap
    (None when no resamples were drawn)."""

    systems: tuple[str, ...]
    strength: np.ndarray
    ci_low: np.ndarray | None
    ci_high: np.ndarray | None
    iterations: int


def win_matrix(
    n: int, winners: Sequence[int], losers: Sequence[int], ties: Sequence[bool] | None = None
) -> np.ndarray:
    """``W[i, j]``: how often ``i`` beat ``j`` (a tie adds half to both cells)."""
    w = np.zeros((n, n), dtype=float)
    win = np.asarray(winners, dtype=np.int64)
    lose = np.asarray(losers, dtype=np.int64)
    tie = np.zeros(len(win), dtype=bool) if ties is None else np.asarray(ties, dtype=bool)
    np.add.at(w, (win[~tie], lose[~tie]), 1.0)
    np.add.at(w, (win[tie], lose[tie]), 0.5)
    np.add.at(w, (lose[tie], win[tie]), 0.5)
    return w


def fit(
    wins: np.ndarray,
    *,
    alpha: float = DEFAULT_ALPHA,
    tol: float = 1e-8,
    max_iter: int = 10_000,
) -> tuple[np.ndarray, int]:
    """Log-strengths (mean zero) for one win matrix ``(k, k)`` or a stack ``(b, k, k)``;
    and the iterations the slowest one took."""
    w = np.asarray(wins, dtype=float)
    single = w.ndim == 2
    if single:
        w = w[None]
    games = w + np.swapaxes(w, 1, 2)
    total_wins = w.sum(axis=2)
    params = np.zeros(w.shape[:2])
    active = np.ones(w.shape[0], dtype=bool)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        idx = np.flatnonzero(active)
        p = np.exp(params[idx])
        p *= p.shape[1] / p.sum(axis=1, keepdims=True)  # weights summing to k, as choix
        denoms = (games[idx] / (p[:, :, None] + p[:, None, :])).sum(axis=2)
        new = np.log((total_wins[idx] + alpha) / (denoms + alpha))
        new -= new.mean(axis=1, keepdims=True)
        moved = np.abs(new - params[idx]).sum(axis=1)
        params[idx] = new
        active[idx[moved < tol]] = False
        if not active.any():
            break
    if active.any():
        raise RuntimeError(f"Bradley-Terry did not converge in {max_iter} iterations")
    return (params[0] if single else params), iterations


def cells_of(wins: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The outcome cells of a count matrix: their row, column and count."""
    rows, cols = np.nonzero(wins)
    return rows, cols, wins[rows, cols]


def strengths(
    systems: Sequence[str],
    outcomes: np.ndarray,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    alpha: float = DEFAULT_ALPHA,
) -> Strengths:
    """Strengths of ``systems`` from ``outcomes``: a ``(k, k, 2)`` count array, ``[i, j, 0]``
    decisive wins of ``i`` over ``j``, ``[i, j, 1]`` ties between them (counted once, at
    ``i < j``). Percentile intervals from ``resamples`` bootstrap draws of the judgements."""
    k = len(systems)
    outcomes = np.asarray(outcomes, dtype=float)
    decisive, ties = outcomes[:, :, 0], outcomes[:, :, 1]
    wins = decisive + 0.5 * (ties + ties.T)
    point, iterations = fit(wins, alpha=alpha)
    if resamples <= 0 or outcomes.sum() == 0:
        return Strengths(tuple(systems), point, None, None, iterations)
    flat = outcomes.reshape(-1)
    cells = np.flatnonzero(flat)
    counts = flat[cells]
    n = round(float(counts.sum()))
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / counts.sum(), size=resamples).astype(float)
    stack = np.zeros((resamples, k * k * 2))
    stack[:, cells] = draws
    stack = stack.reshape(resamples, k, k, 2)
    b_decisive, b_ties = stack[..., 0], stack[..., 1]
    b_wins = b_decisive + 0.5 * (b_ties + np.swapaxes(b_ties, 1, 2))
    params, more = fit(b_wins, alpha=alpha)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(params, [tail, 100 - tail], axis=0)
    return Strengths(tuple(systems), point, low, high, max(iterations, more))


def lower_bound(successes: float, n: float, confidence: float = 0.95) -> float | None:
    """The Wilson score interval's lower end for ``successes`` of ``n`` (None when n=0)."""
    if n <= 0:
        return None
    z = {0.9: 1.6448536269514722, 0.95: 1.959963984540054, 0.99: 2.5758293035489004}.get(
        round(confidence, 2), 1.959963984540054
    )
    phat = successes / n
    denom = 1 + z * z / n
    centre = phat + z * z / (2 * n)
    margin = z * np.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n))
    return float(max(0.0, (centre - margin) / denom))


def wilson(successes: float, n: float, confidence: float = 0.95) -> tuple[float, float] | None:
    """Both ends of the Wilson score interval (None when n=0)."""
    if n <= 0:
        return None
    low = lower_bound(successes, n, confidence)
    high = 1.0 - (lower_bound(n - successes, n, confidence) or 0.0)
    return (float(low or 0.0), float(high))
