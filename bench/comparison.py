"""Bradley-Terry strengths with bootstrap intervals: 20 systems, 50,000 judgements, 1,000
resamples (budget: under 10 s), against choix on the same data.

No database: the computation (review.comparison.bradley_terry) is pure numpy. Generates
systems with normal log-strengths, pairs drawn uniformly, outcomes by the Bradley-Terry
model, --ties of the judgements ties; then times:

1. counting the judgements into the outcome array the report hands over;
2. the point estimate (median of --repeat runs);
3. the point estimate and --resamples bootstrap resamples (one run, all resamples solved
   together as one stack of win matrices);
4. choix.mm_pairwise on the same judgements (ties given as one win each way, which the
   half-win rule weighs the same at twice the count; the estimate compared on the
   decisive judgements only);

and prints the load average before and after, the largest difference from choix, and the
correlation of the estimate with the true strengths.

    .venv/bin/python bench/comparison.py
    .venv/bin/python bench/comparison.py --judgements 5000 --resamples 200   # quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from review.comparison import bradley_terry as bt


def generate(systems: int, judgements: int, ties: float, seed: int):
    rng = np.random.default_rng(seed)
    true = rng.normal(size=systems)
    i = rng.integers(0, systems, judgements)
    j = (i + rng.integers(1, systems, judgements)) % systems
    p = 1 / (1 + np.exp(true[j] - true[i]))
    u = rng.random(judgements)
    tie = u < ties
    i_wins = rng.random(judgements) < p
    winner = np.where(i_wins, i, j)
    loser = np.where(i_wins, j, i)
    return true, winner, loser, tie


def count(systems: int, winner, loser, tie) -> np.ndarray:
    out = np.zeros((systems, systems, 2))
    np.add.at(out, (winner[~tie], loser[~tie], 0), 1)
    low, high = np.minimum(winner, loser), np.maximum(winner, loser)
    np.add.at(out, (low[tie], high[tie], 1), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--systems", type=int, default=20)
    parser.add_argument("--judgements", type=int, default=50_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--ties", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    true, winner, loser, tie = generate(args.systems, args.judgements, args.ties, args.seed)
    names = [f"system {k}" for k in range(args.systems)]

    started = time.perf_counter()
    outcomes = count(args.systems, winner, loser, tie)
    counted = time.perf_counter() - started

    point_times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        point = bt.strengths(names, outcomes, resamples=0)
        point_times.append(time.perf_counter() - started)

    started = time.perf_counter()
    full = bt.strengths(names, outcomes, resamples=args.resamples, seed=args.seed)
    bootstrap = time.perf_counter() - started

    import choix

    decisive = list(zip(winner[~tie].tolist(), loser[~tie].tolist(), strict=True))
    started = time.perf_counter()
    reference = choix.mm_pairwise(args.systems, decisive, alpha=bt.DEFAULT_ALPHA)
    choix_time = time.perf_counter() - started
    decisive_only = count(args.systems, winner[~tie], loser[~tie], tie[~tie])
    ours_decisive = bt.strengths(names, decisive_only, resamples=0).strength

    print(
        f"{args.systems} systems, {args.judgements:,} judgements "
        f"({int(tie.sum()):,} ties), {args.resamples:,} resamples"
    )
    print(f"counting the judgements: {counted * 1000:.1f} ms")
    print(
        f"point estimate (median of {args.repeat}): {statistics.median(point_times) * 1000:.1f} ms"
        f" ({point.iterations} iterations)"
    )
    print(
        f"point estimate + {args.resamples:,} bootstrap resamples: {bootstrap:.2f} s "
        f"(slowest resample: {full.iterations} iterations)  budget < 10 s"
    )
    print(f"choix.mm_pairwise, decisive judgements, point only: {choix_time:.2f} s")
    print(f"largest difference from choix: {np.abs(ours_decisive - reference).max():.1e}")
    print(f"correlation with the true strengths: {np.corrcoef(point.strength, true)[0, 1]:.4f}")
    widths = full.ci_high - full.ci_low
    print(f"95% interval width: median {np.median(widths):.3f}, max {widths.max():.3f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
