"""The agreement coefficients equal the reference implementations to 1e-9: the
``krippendorff`` package, scikit-learn's ``cohen_kappa_score``, statsmodels'
``fleiss_kappa`` and irrCAC (Gwet's AC1/AC2, and Fleiss' kappa with missing answers),
on seeded random data and on the edge cases (missing answers, one answer per item,
everything identical, two labels only, string labels). Undefined figures are a reason,
never NaN. The bootstrap is checked against a resample rebuilt by hand."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
from irrCAC.raw import CAC
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

from review.quality.agreement import (
    Level,
    Ratings,
    agreement_report,
    cohen_kappa,
    compute,
    fleiss_kappa,
    gwet_ac,
    krippendorff_alpha,
    percent_agreement,
)
from review.quality.agreement.sums import resample_batches, resample_weights

TOLERANCE = 1e-9
WEIGHTINGS = ("identity", "linear", "quadratic")


def _random_table(
    seed: int, items: int, raters: int, categories: list, missing: float, agree: float = 0.6
) -> list[list]:
    """Items x raters; each answer copies a per-item truth with probability ``agree``."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(categories), items)
    noise = rng.integers(0, len(categories), (items, raters))
    codes = np.where(rng.random((items, raters)) < agree, truth[:, None], noise)
    gone = rng.random((items, raters)) < missing
    return [
        [None if gone[i, j] else categories[codes[i, j]] for j in range(raters)]
        for i in range(items)
    ]


def _as_float(table: list[list], categories: list) -> np.ndarray:
    """Numeric stand-in for the reference libraries that want numbers (category index
    + 1, or the value itself when numeric); NaN for no answer."""
    numeric = all(isinstance(c, int | float) and not isinstance(c, bool) for c in categories)
    position = {c: (float(c) if numeric else float(i + 1)) for i, c in enumerate(categories)}
    return np.array(
        [[np.nan if v is None else position[v] for v in row] for row in table], dtype=float
    )


def _reference_alpha(table: list[list], categories: list, level: str) -> float:
    data = _as_float(table, categories)
    numeric = all(isinstance(c, int | float) for c in categories)
    domain = categories if numeric else [float(i + 1) for i in range(len(categories))]
    return float(
        krippendorff.alpha(reliability_data=data.T, level_of_measurement=level, value_domain=domain)
    )


def _reference_gwet(table: list[list], categories: list, weighting: str) -> float:
    frame = pd.DataFrame(table, dtype=object)
    cac = CAC(frame, weights=weighting, categories=list(categories), digits=15)
    return float(cac.gwet()["est"]["coefficient_value"])


def _reference_fleiss_irrcac(table: list[list], categories: list) -> float:
    frame = pd.DataFrame(table, dtype=object)
    cac = CAC(frame, categories=list(categories), digits=15)
    return float(cac.fleiss()["est"]["coefficient_value"])


def _counts_table(table: list[list], categories: list) -> np.ndarray:
    return np.array([[row.count(c) for c in categories] for row in table])


def _shared(table: list[list], a: int, b: int) -> tuple[list, list]:
    rows = [row for row in table if row[a] is not None and row[b] is not None]
    return [row[a] for row in rows], [row[b] for row in rows]


def _reference_cohen(table: list[list], a: int, b: int, categories: list, weighting: str):
    first, second = _shared(table, a, b)
    return cohen_kappa_score(
        first, second, labels=categories, weights=None if weighting == "identity" else weighting
    )


def _close(ours: float | None, reference: float) -> None:
    assert ours is not None
    assert math.isfinite(reference)
    assert abs(ours - reference) <= TOLERANCE, (ours, reference)


CASES = {
    # name: (items x reviewers, the scale)
    "random five levels, complete": (
        _random_table(1, 300, 3, [1, 2, 3, 4, 5], 0.0),
        [1, 2, 3, 4, 5],
    ),
    "random five levels, missing answers": (
        _random_table(2, 400, 6, [1, 2, 3, 4, 5], 0.45),
        [1, 2, 3, 4, 5],
    ),
    "two labels only": (_random_table(3, 250, 4, [0, 1], 0.2, agree=0.8), [0, 1]),
    "string labels": (
        _random_table(4, 300, 5, ["bad", "fair", "good", "great"], 0.3),
        ["bad", "fair", "good", "great"],
    ),
    "many levels, scattered": (
        _random_table(5, 500, 4, list(range(0, 11)), 0.3, agree=0.4),
        list(range(0, 11)),
    ),
    "unused categories on the scale": (_random_table(6, 200, 3, [1, 2, 3], 0.1), [1, 2, 3, 4, 5]),
    "one answer on some items": (
        [
            [1, None, None],
            [2, 2, None],
            [None, 3, 3],
            [1, 2, 3],
            [None, None, 4],
            [4, 4, 1],
            [2, None, 2],
            [3, 3, 3],
            [None, 1, None],
            [1, 1, 2],
        ],
        [1, 2, 3, 4],
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_krippendorff_alpha_equals_krippendorff(case: str, level: str) -> None:
    table, categories = CASES[case]
    if level == "interval" and not all(isinstance(c, int | float) for c in categories):
        scores = [float(i + 1) for i in range(len(categories))]
    else:
        scores = None
    ratings = Ratings.from_matrix(table, categories=categories, scores=scores, ordered=True)
    _close(krippendorff_alpha(ratings, level=Level(level)).value,
           _reference_alpha(table, categories, level))  # fmt: skip


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_gwet_equals_irrcac(case: str, weighting: str) -> None:
    table, categories = CASES[case]
    ratings = Ratings.from_matrix(table, categories=categories, ordered=True)
    _close(gwet_ac(ratings, weighting=weighting).value,
           _reference_gwet(table, categories, weighting))  # fmt: skip


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_fleiss_equals_irrcac_with_missing_answers(case: str) -> None:
    table, categories = CASES[case]
    ratings = Ratings.from_matrix(table, categories=categories)
    _close(fleiss_kappa(ratings).value, _reference_fleiss_irrcac(table, categories))


@pytest.mark.parametrize(
    "case",
    ["random five levels, complete", "two labels only", "unused categories on the scale"],
)
def test_fleiss_equals_statsmodels_on_complete_tables(case: str) -> None:
    table, categories = CASES[case]
    table = [row for row in table if None not in row]
    ratings = Ratings.from_matrix(table, categories=categories)
    _close(fleiss_kappa(ratings).value, float(statsmodels_fleiss(_counts_table(table, categories))))


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_cohen_equals_scikit_learn_for_every_pair(case: str, weighting: str) -> None:
    table, categories = CASES[case]
    if weighting != "identity" and all(isinstance(c, int | float) for c in categories):
        # scikit-learn weighs by the categories' positions: give ours the same scores.
        scores = list(range(len(categories)))
    else:
        scores = None
    ratings = Ratings.from_matrix(table, categories=categories, scores=scores, ordered=True)
    raters = len(table[0])
    checked = 0
    for a in range(raters):
        for b in range(a + 1, raters):
            first, _ = _shared(table, a, b)
            if len(first) < 2:
                continue
            reference = _reference_cohen(table, a, b, categories, weighting)
            if not math.isfinite(reference):
                continue
            _close(cohen_kappa(ratings, a, b, weighting=weighting).value, reference)
            _close(cohen_kappa(ratings, b, a, weighting=weighting).value, reference)
            checked += 1
    assert checked


def test_percent_agreement_by_hand() -> None:
    # Items: 3 of 3 agree (3/3 pairs), 2 of 3 (1/3 pairs), 2 answers disagreeing (0/1),
    # one lone answer (not pairable).
    table = [["a", "a", "a"], ["a", "b", "a"], ["b", None, "a"], [None, "b", None]]
    figure = percent_agreement(Ratings.from_matrix(table))
    _close(figure.value, (1 + 1 / 3 + 0) / 3)
    assert (figure.n_items, figure.n_answers) == (3, 8)


def test_fleiss_on_the_published_example() -> None:
    """The worked example of Fleiss' kappa (10 subjects, 14 raters, 5 categories), whose
    published value is 0.210."""
    counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
              [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
              [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]  # fmt: skip
    table = [[k for k, n in enumerate(row) for _ in range(n)] for row in counts]
    ratings = Ratings.from_matrix(table, categories=[0, 1, 2, 3, 4])
    figure = fleiss_kappa(ratings)
    _close(figure.value, float(statsmodels_fleiss(np.array(counts))))
    assert round(figure.value, 3) == 0.210


# --- edge cases: a reason, never NaN -------------------------------------------------------


def _all_figures(ratings: Ratings) -> dict:
    overall, pairs = compute(
        ratings,
        levels=(Level.NOMINAL, Level.ORDINAL, Level.INTERVAL),
        weightings=WEIGHTINGS,
        resamples=50,
    )
    return {**overall, **{f"{p}:{n}": f for p, figs in pairs.items() for n, f in figs.items()}}


def _no_nan(figures: dict) -> None:
    for name, figure in figures.items():
        for value in (figure.value, figure.ci_low, figure.ci_high):
            assert value is None or math.isfinite(value), name
        assert (figure.value is None) == (figure.reason is not None), name


def test_one_reviewer_has_no_figure() -> None:
    figures = _all_figures(Ratings.from_matrix([[1], [2], [3]], categories=[1, 2, 3]))
    _no_nan(figures)
    assert (
        figures["krippendorff_alpha_nominal"].reason == "Only one reviewer answered this question."
    )
    assert all(f.value is None for f in figures.values())


def test_no_overlapping_items_has_no_figure() -> None:
    table = [[1, None], [None, 2], [3, None], [None, 1]]
    figures = _all_figures(Ratings.from_matrix(table, categories=[1, 2, 3]))
    _no_nan(figures)
    assert figures["fleiss_kappa"].reason == "No item was answered by two or more reviewers."
    assert figures["gwet_ac1"].value is None
    assert not [n for n in figures if n.startswith("(")]  # no pair shares an item


def test_one_label_everywhere_kappa_and_alpha_undefined_ac1_is_one() -> None:
    table = [["yes", "yes", "yes"]] * 12
    ratings = Ratings.from_matrix(table, categories=["no", "yes"])
    figures = _all_figures(ratings)
    _no_nan(figures)
    assert figures["percent_agreement"].value == 1.0
    assert figures["fleiss_kappa"].value is None
    assert "Every answer was 'yes'" in figures["fleiss_kappa"].reason
    assert figures["krippendorff_alpha_nominal"].value is None
    assert figures["krippendorff_alpha_interval"].value is None
    assert figures["(0, 1):cohen_kappa"].value is None
    # Gwet's AC1 stays meaningful where kappa's paradox leaves nothing (as irrCAC).
    assert figures["gwet_ac1"].value == pytest.approx(1.0)
    _close(figures["gwet_ac1"].value, _reference_gwet(table, ["no", "yes"], "identity"))


def test_prevalence_paradox_matches_the_references() -> None:
    """One label dominates: high agreement, low kappa, AC1 high; all as the references."""
    table = [["ok", "ok"]] * 90 + [["ok", "bad"]] * 5 + [["bad", "ok"]] * 4 + [["bad", "bad"]]
    ratings = Ratings.from_matrix(table, categories=["bad", "ok"])
    kappa = cohen_kappa(ratings, 0, 1).value
    _close(kappa, cohen_kappa_score([r[0] for r in table], [r[1] for r in table]))
    ac1 = gwet_ac(ratings).value
    _close(ac1, _reference_gwet(table, ["bad", "ok"], "identity"))
    assert kappa < 0.2 < 0.85 < ac1


def test_scale_of_one_category_has_no_gwet() -> None:
    figure = gwet_ac(Ratings.from_matrix([["x", "x"], ["x", "x"]], categories=["x"]))
    assert figure.value is None and "single category" in figure.reason


def test_answer_outside_the_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of the categories"):
        Ratings.from_matrix([[1, 7]], categories=[1, 2, 3])


# --- the bootstrap ------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["random five levels, missing answers", "many levels, scattered"])
def test_a_resample_equals_the_figure_of_the_resampled_items(case: str) -> None:
    """One resample's figures (the interval of a single resample is that resample) equal
    the point estimates of the same items drawn by hand, every coefficient and pair; the
    many-level case goes through the sparse (gather and segmented sum) path."""
    table, categories = CASES[case]
    ratings = Ratings.from_matrix(table, categories=categories, ordered=True)
    seed = 11
    [(size, rng)] = resample_batches(ratings.n_items, 1, seed)
    drawn = resample_weights(rng, ratings.n_items, size)[0].astype(int)
    kept = [row for row in table if any(v is not None for v in row)]
    resampled = [kept[i] for i in np.repeat(np.arange(len(kept)), drawn)]
    kwargs = {"levels": tuple(Level), "weightings": WEIGHTINGS}
    boot, boot_pairs = compute(ratings, resamples=1, seed=seed, **kwargs)
    again = Ratings.from_matrix(resampled, categories=categories, ordered=True)
    point, point_pairs = compute(again, resamples=0, **kwargs)
    for name, figure in boot.items():
        assert figure.ci_low == figure.ci_high
        _close(figure.ci_low, point[name].value)

    point_pairs = {frozenset(pair): figures for pair, figures in point_pairs.items()}
    compared = 0
    for pair, figures in boot_pairs.items():
        pair = frozenset(pair)
        for name, figure in figures.items():
            if point_pairs[pair][name].value is not None:
                _close(figure.ci_low, point_pairs[pair][name].value)
                compared += 1
    assert compared


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    table, categories = CASES["random five levels, complete"]
    ratings = Ratings.from_matrix(table, categories=categories, ordered=True)
    first = krippendorff_alpha(ratings, level=Level.ORDINAL, resamples=400, seed=3)
    again = krippendorff_alpha(ratings, level=Level.ORDINAL, resamples=400, seed=3)
    other = krippendorff_alpha(ratings, level=Level.ORDINAL, resamples=400, seed=4)
    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)
    assert first.ci_low < first.value < first.ci_high
    assert first.resamples == first.resamples_defined == 400


def test_report_breakdowns() -> None:
    table = [["a", "a", "b"], ["a", "a", "a"], ["b", "b", "a"], ["b", "b", "b"], ["a", "b", None]]
    report = agreement_report(
        Ratings.from_matrix(table, categories=["a", "b"]), level=Level.NOMINAL, resamples=20
    )
    assert report["n_items"] == 5 and report["n_answers"] == 14
    pairs = {tuple(p["reviewers"]): p for p in report["pairs"]}
    assert pairs[(0, 1)]["percent_agreement"] == pytest.approx(4 / 5)
    assert pairs[(0, 2)]["n_items"] == 4
    by_reviewer = {r["reviewer"]: r for r in report["reviewers"]}
    # Reviewer 2 differs from the other two's shared answer on items 0 and 2.
    assert by_reviewer[2]["agreement_with_consensus"] == pytest.approx(2 / 4)
    # Reviewer 0: the others split on items 0 and 2 (ties, left out); on 1, 3 and 4
    # they agree with the others' answer twice.
    assert by_reviewer[0]["ties"] == 2
    assert by_reviewer[0]["agreement_with_consensus"] == pytest.approx(2 / 3)
    levels = report["levels"]
    assert levels["pair_counts"] == [[4, 5], [5, 4]]  # aa: 1+3, bb: 1+3, ab: 2+2+1
    top = report["most_disagreeing_items"]
    assert top[0]["item_id"] == 4 and top[0]["disagreement"] == 1.0
    assert {i["item_id"] for i in top} == {0, 2, 4}
