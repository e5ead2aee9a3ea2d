"""Bradley-Terry, the position and agreement figures of the comparison report, against
reference implementations on generated data (no database)."""

from __future__ import annotations

import choix
import krippendorff
import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from review.comparison import bradley_terry as bt
from review.comparison.models import Preference
from review.comparison.report import _agreement
from review.comparison.selectors import QueuePreferences


def _games(k: int, n: int, seed: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    true = rng.normal(size=k)
    pairs = []
    for _ in range(n):
        i, j = rng.choice(k, 2, replace=False)
        p = 1 / (1 + np.exp(true[j] - true[i]))
        pairs.append((int(i), int(j)) if rng.random() < p else (int(j), int(i)))
    return true, pairs


@pytest.mark.parametrize("alpha", [0.0, 0.01, 1.0])
def test_strengths_equal_choix_mm_pairwise(alpha):
    true, pairs = _games(7, 2000, seed=3)
    winners, losers = zip(*pairs, strict=True)
    ours, _ = bt.fit(bt.win_matrix(7, winners, losers), alpha=alpha, tol=1e-12)
    reference = choix.mm_pairwise(7, pairs, alpha=alpha, tol=1e-12, max_iter=100_000)
    np.testing.assert_allclose(ours, reference, atol=1e-7)
    assert np.corrcoef(ours, true)[0, 1] > 0.95


def test_a_stack_of_win_matrices_is_solved_as_each_alone():
    _, pairs = _games(5, 300, seed=4)
    rng = np.random.default_rng(0)
    stack = []
    for _ in range(4):
        sample = [pairs[i] for i in rng.integers(0, len(pairs), len(pairs))]
        w, lose = zip(*sample, strict=True)
        stack.append(bt.win_matrix(5, w, lose))
    together, _ = bt.fit(np.array(stack), tol=1e-12)
    for matrix, row in zip(stack, together, strict=True):
        alone, _ = bt.fit(matrix, tol=1e-12)
        np.testing.assert_allclose(row, alone, atol=1e-9)


def test_a_tie_counts_as_half_a_win_each_way():
    outcomes = np.zeros((3, 3, 2))
    outcomes[0, 1, 0] = 5
    outcomes[1, 2, 0] = 3
    outcomes[0, 2, 1] = 4  # four ties between 0 and 2
    with_ties = bt.strengths(["a", "b", "c"], outcomes, resamples=0)
    wins = np.zeros((3, 3))
    wins[0, 1], wins[1, 2], wins[0, 2], wins[2, 0] = 5, 3, 2, 2
    plain, _ = bt.fit(wins)
    np.testing.assert_allclose(with_ties.strength, plain, atol=1e-9)


def test_bootstrap_intervals_are_seeded_and_cover_the_estimate():
    true, pairs = _games(6, 3000, seed=5)
    outcomes = np.zeros((6, 6, 2))
    for w, lose in pairs:
        outcomes[w, lose, 0] += 1
    systems = [f"s{i}" for i in range(6)]
    first = bt.strengths(systems, outcomes, resamples=200, seed=7)
    again = bt.strengths(systems, outcomes, resamples=200, seed=7)
    np.testing.assert_array_equal(first.ci_low, again.ci_low)
    assert np.all(first.ci_low <= first.strength) and np.all(first.strength <= first.ci_high)
    centred = true - true.mean()
    assert np.mean((first.ci_low <= centred) & (centred <= first.ci_high)) >= 0.5
    # Fewer judgements, wider intervals.
    small = bt.strengths(systems, np.floor(outcomes / 10), resamples=200, seed=7)
    assert np.mean(small.ci_high - small.ci_low) > np.mean(first.ci_high - first.ci_low)


@pytest.mark.parametrize("successes,n", [(0, 5), (4, 4), (37, 80), (500, 1000)])
def test_wilson_bounds_equal_statsmodels(successes, n):
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    assert bt.lower_bound(successes, n) == pytest.approx(low, abs=1e-12)
    assert bt.wilson(successes, n) == pytest.approx((low, high), abs=1e-12)


def test_preference_agreement_equals_krippendorff():
    rng = np.random.default_rng(11)
    prefs = QueuePreferences()
    matrix = np.full((3, 40), np.nan)  # reviewers x items, the winner's position
    for item in range(40):
        outputs = [1000 + 2 * item, 1001 + 2 * item]
        prefs.outputs_of[item] = outputs
        leaning = rng.integers(0, 3)
        for reviewer in range(3):
            if rng.random() < 0.15:
                continue  # not every reviewer answers every item
            pick = leaning if rng.random() < 0.7 else rng.integers(0, 3)
            winner = None if pick == 2 else outputs[pick]
            prefs.preferences.append(
                Preference(
                    item_id=item,
                    comparison_id=item,
                    reviewer_id=reviewer,
                    criterion="helpfulness",
                    winner_id=winner,
                )
            )
            matrix[reviewer, item] = pick
    figures = _agreement(prefs, "helpfulness", resamples=0, seed=0)
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert figures["krippendorff_alpha_nominal"]["value"] == pytest.approx(expected, abs=1e-9)
    assert "gwet_ac1" in figures
