"""Agreement coefficients: 100,000 items x 3 reviewers, every coefficient, against the
reference libraries on the same data.

No database: the computation (review.quality.agreement) is pure numpy. Generates a 5-level
graded question (each answer copies the item's true level with probability 0.7, else a
uniform level; 10% of answers missing unless --missing 0), then times:

1. ours, point estimates of every coefficient: percent agreement, Fleiss' kappa, Gwet's
   AC1 and AC2 (linear, quadratic), Krippendorff's alpha (nominal, ordinal, interval),
   Cohen's kappa for the 3 reviewer pairs x 3 weightings (median of --repeat runs);
2. ours with --resamples bootstrap resamples for every one of those figures (one run);
3. the reference libraries on the same data, each coefficient once: krippendorff.alpha,
   scikit-learn's cohen_kappa_score, statsmodels' fleiss_kappa (complete items only:
   it needs equal answers per item), irrCAC's gwet;

and prints peak memory of ours (tracemalloc, numpy's allocations included) and the
process's peak RSS, and the largest difference between ours and each reference.

    .venv/bin/python bench/agreement.py
    .venv/bin/python bench/agreement.py --items 20000 --resamples 200   # quick
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from review.quality.agreement import Level, Ratings, compute

CATEGORIES = [1, 2, 3, 4, 5]
WEIGHTINGS = ("identity", "linear", "quadratic")
LEVELS = (Level.NOMINAL, Level.ORDINAL, Level.INTERVAL)


def generate(items: int, raters: int, missing: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, items)
    noise = rng.integers(1, 6, (items, raters))
    data = np.where(rng.random((items, raters)) < 0.7, truth[:, None], noise).astype(float)
    data[rng.random((items, raters)) < missing] = np.nan
    return data


def ours(data: np.ndarray, resamples: int) -> tuple[float, float, dict, dict, int]:
    """Seconds to code the answers, seconds to compute, the figures, peak bytes."""
    tracemalloc.start()
    started = time.perf_counter()
    table = [[None if np.isnan(v) else int(v) for v in row] for row in data.tolist()]
    ratings = Ratings.from_matrix(table, categories=CATEGORIES, ordered=True)
    coded = time.perf_counter()
    overall, pairs = compute(
        ratings, levels=LEVELS, weightings=WEIGHTINGS, resamples=resamples, seed=1
    )
    done = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return coded - started, done - coded, overall, pairs, peak


def references(data: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    import krippendorff
    import pandas as pd
    from irrCAC.raw import CAC
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import fleiss_kappa

    values: dict[str, float] = {}
    seconds: dict[str, float] = {}

    def timed(name: str, func) -> None:
        started = time.perf_counter()
        values[name] = float(func())
        seconds[name] = time.perf_counter() - started

    for level in LEVELS:
        timed(f"krippendorff_alpha_{level}", lambda lv=str(level): krippendorff.alpha(
            reliability_data=data.T, level_of_measurement=lv, value_domain=CATEGORIES))  # fmt: skip
    for a, b in ((0, 1), (0, 2), (1, 2)):
        both = ~np.isnan(data[:, a]) & ~np.isnan(data[:, b])
        for weighting in WEIGHTINGS:
            timed(f"cohen_kappa {a}-{b} {weighting}", lambda a=a, b=b, both=both, w=weighting:
                  cohen_kappa_score(data[both, a], data[both, b], labels=CATEGORIES,
                                    weights=None if w == "identity" else w))  # fmt: skip
    complete = data[~np.isnan(data).any(axis=1)]
    timed("fleiss_kappa (complete items)", lambda: fleiss_kappa(
        np.stack([(complete == c).sum(axis=1) for c in CATEGORIES], axis=1)))  # fmt: skip
    frame = pd.DataFrame(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for weighting in WEIGHTINGS:
            name = "gwet_ac1" if weighting == "identity" else f"gwet_ac2_{weighting}"
            timed(name, lambda w=weighting: _est(
                CAC(frame, weights=w, categories=CATEGORIES, digits=15).gwet()))  # fmt: skip
        timed("fleiss_kappa (irrCAC, missing answers)", lambda: _est(
            CAC(frame, categories=CATEGORIES, digits=15).fleiss()))  # fmt: skip
    return values, seconds


def _est(result: dict) -> float:
    return result["est"]["coefficient_value"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--raters", type=int, default=3)
    parser.add_argument("--missing", type=float, default=0.1)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    data = generate(args.items, args.raters, args.missing, args.seed)
    answers = int((~np.isnan(data)).sum())
    print(f"{args.items:,} items x {args.raters} reviewers, {answers:,} answers, "
          f"{len(CATEGORIES)} levels, numpy {np.__version__}")  # fmt: skip

    runs = [ours(data, 0) for _ in range(args.repeat)]
    coding = statistics.median(r[0] for r in runs)
    point = statistics.median(r[1] for r in runs)
    _, _, overall, pairs, point_peak = runs[0]
    n_figures = len(overall) + sum(len(f) for f in pairs.values())
    print(f"ours, coding the answers (Python tuples -> Ratings): median {coding:.2f} s")
    print(f"ours, point estimates of {n_figures} figures: median {point:.2f} s "
          f"over {args.repeat} runs ({', '.join(f'{r[1]:.2f}' for r in runs)}), "
          f"peak {point_peak / 2**20:.0f} MiB")  # fmt: skip
    _, boot, _, _, boot_peak = ours(data, args.resamples)
    print(f"ours, with {args.resamples} bootstrap resamples for each: {boot:.2f} s (one run), "
          f"peak {boot_peak / 2**20:.0f} MiB")  # fmt: skip

    values, seconds = references(data)
    by_pair = {
        f"cohen_kappa {min(a, b)}-{max(a, b)} {w}": figures["cohen_kappa" if w == "identity" else
                                            f"cohen_kappa_{w}"].value
        for (a, b), figures in pairs.items() for w in WEIGHTINGS
    }  # fmt: skip
    print(f"\n{'reference':44} {'seconds':>8} {'|ours - reference|':>20}")
    for name, value in values.items():
        if name.startswith("cohen_kappa"):
            mine = by_pair[name]
        elif name.startswith("fleiss_kappa (complete"):
            complete = data[~np.isnan(data).any(axis=1)].astype(int).tolist()
            mine = compute(Ratings.from_matrix(complete, categories=CATEGORIES),
                           pairs=False, resamples=0)[0]["fleiss_kappa"].value  # fmt: skip
        elif name.startswith("fleiss_kappa"):
            mine = overall["fleiss_kappa"].value
        else:
            mine = overall[name].value
        print(f"{name:44} {seconds[name]:8.2f} {abs(mine - value):20.2e}")
    print(f"{'all references':44} {sum(seconds.values()):8.2f}")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process (references included): {peak_rss:.0f} MiB")


if __name__ == "__main__":
    main()
