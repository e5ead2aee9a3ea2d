"""Answers to one question as an items x reviewers table of category codes.

Every coefficient reads the same :class:`Ratings`: one row per item that has at least
one answer, the item's answers packed to the left (``codes``) beside who gave them
(``raters``), ``-1`` where there is none. A queue's overlap is at most 20, so rows are
short and every per-item quantity is a handful of vectorized passes over columns.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

MISSING = -1


class Level(StrEnum):
    """Level of measurement: which differences between answers count, and how much."""

    NOMINAL = "nominal"  # labels: equal or not
    ORDINAL = "ordinal"  # ranks: the order counts, distances do not
    INTERVAL = "interval"  # numbers: the distance counts


@dataclass(frozen=True)
class Ratings:
    """Coded answers: ``codes[i, j]`` indexes ``categories``; ``raters[i, j]`` indexes
    ``rater_ids``; both ``-1`` past an item's last answer.

    ``scores`` place the categories on a line for weighted figures: their ranks for an
    ordinal scale, their values for an interval one. ``ordered`` says whether they mean
    anything (nominal labels have no order).
    """

    codes: np.ndarray
    raters: np.ndarray
    categories: tuple[Hashable, ...]
    scores: np.ndarray
    ordered: bool
    item_ids: tuple[Hashable, ...]
    rater_ids: tuple[Hashable, ...]
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # --- building ---------------------------------------------------------------------

    @classmethod
    def from_answers(
        cls,
        answers: Iterable[tuple[Hashable, Hashable, Hashable]],
        *,
        categories: Sequence[Hashable] | None = None,
        scores: Sequence[float] | None = None,
        ordered: bool = False,
    ) -> Ratings:
        """From ``(item id, reviewer id, answer)`` triples (one per item and reviewer).

        ``categories`` is the scale in order (all possible answers, used or not); without
        it, the distinct answers, sorted. ``scores`` default to the categories themselves
        when they are all numbers, else to their ranks.
        """
        items: list[Hashable] = []
        raters: list[Hashable] = []
        values: list[Hashable] = []
        for item, rater, value in answers:
            if value is None:
                continue
            items.append(item)
            raters.append(rater)
            values.append(value)
        if categories is None:
            categories = sorted(set(values), key=_sort_key)
        categories = tuple(categories)
        index = {value: code for code, value in enumerate(categories)}
        if len(index) != len(categories):
            raise ValueError("categories repeat a value")
        try:
            codes = np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))
        except KeyError as exc:
            raise ValueError(f"answer {exc.args[0]!r} is not one of the categories") from None
        item_ids, item_index = _factorize(items)
        rater_ids, rater_index = _factorize(raters)
        n = len(item_ids)
        order = np.lexsort((rater_index, item_index))
        item_index, rater_index, codes = item_index[order], rater_index[order], codes[order]
        if len(order) > 1:
            same = (item_index[1:] == item_index[:-1]) & (rater_index[1:] == rater_index[:-1])
            if same.any():
                raise ValueError("a reviewer answers an item at most once")
        per_item = np.bincount(item_index, minlength=n)
        width = int(per_item.max()) if n else 0
        starts = np.concatenate(([0], np.cumsum(per_item)[:-1])) if n else per_item
        column = np.arange(len(codes)) - np.repeat(starts, per_item)
        packed_codes = np.full((n, width), MISSING, dtype=np.int64)
        packed_raters = np.full((n, width), MISSING, dtype=np.int64)
        packed_codes[item_index, column] = codes
        packed_raters[item_index, column] = rater_index
        return cls(
            codes=packed_codes,
            raters=packed_raters,
            categories=categories,
            scores=_scores(categories, scores),
            ordered=ordered,
            item_ids=tuple(item_ids),
            rater_ids=tuple(rater_ids),
        )

    @classmethod
    def from_matrix(
        cls,
        matrix: Sequence[Sequence[Any]],
        *,
        categories: Sequence[Hashable] | None = None,
        scores: Sequence[float] | None = None,
        ordered: bool = False,
    ) -> Ratings:
        """From rows of items and columns of reviewers; ``None`` (or NaN) is no answer.
        Items are numbered by row and reviewers by column."""
        answers = (
            (i, j, value)
            for i, row in enumerate(matrix)
            for j, value in enumerate(row)
            if not _is_missing(value)
        )
        return cls.from_answers(answers, categories=categories, scores=scores, ordered=ordered)

    # --- what the coefficients read ------------------------------------------------------

    @property
    def n_items(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_categories(self) -> int:
        return len(self.categories)

    @property
    def n_answers(self) -> int:
        return int(self.answer_counts.sum())

    @property
    def answer_counts(self) -> np.ndarray:
        """Answers per item (each at least 1)."""
        return self._cached("answer_counts", lambda: (self.codes >= 0).sum(axis=1))

    @property
    def answers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every answer as ``(item index, rater index, code)``."""

        def build() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            rows, cols = np.nonzero(self.codes >= 0)
            return rows, self.raters[rows, cols], self.codes[rows, cols]

        return self._cached("answers", build)

    @property
    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every unordered pair of answers to the same item, as ``(item, code of the
        lower-numbered reviewer, code of the other, lower reviewer, other reviewer)``."""

        def build() -> tuple[np.ndarray, ...]:
            width = self.codes.shape[1]
            parts: list[tuple[np.ndarray, ...]] = []
            for j in range(width):
                for k in range(j + 1, width):
                    rows = np.nonzero(self.codes[:, k] >= 0)[0]  # column k filled => j too
                    ra, rb = self.raters[rows, j], self.raters[rows, k]
                    ca, cb = self.codes[rows, j], self.codes[rows, k]
                    swap = ra > rb
                    parts.append(
                        (
                            rows,
                            np.where(swap, cb, ca),
                            np.where(swap, ca, cb),
                            np.where(swap, rb, ra),
                            np.where(swap, ra, rb),
                        )
                    )
            if not parts:
                empty = np.zeros(0, dtype=np.int64)
                return (empty,) * 5
            return tuple(np.concatenate(column) for column in zip(*parts, strict=True))

        return self._cached("pairs", build)

    def _cached(self, key: str, build: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _sort_key(value: Hashable) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))


def _factorize(values: list[Hashable]) -> tuple[list[Hashable], np.ndarray]:
    index: dict[Hashable, int] = {}
    codes = np.fromiter(
        (index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values)
    )
    return list(index), codes


def _scores(categories: tuple[Hashable, ...], scores: Sequence[float] | None) -> np.ndarray:
    if scores is not None:
        if len(scores) != len(categories):
            raise ValueError("one score per category")
        return np.asarray(scores, dtype=np.float64)
    numeric = all(isinstance(c, int | float) and not isinstance(c, bool) for c in categories)
    if numeric and categories:
        return np.asarray(categories, dtype=np.float64)
    return np.arange(len(categories), dtype=np.float64)
