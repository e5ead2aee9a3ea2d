"""Sums over items, for the sample and for bootstrap resamples, in one mechanism.

Every coefficient here is a function of a few sums over items of per-item quantities
(agreeing pairs, answers per category, ...). A bootstrap resample draws items with
replacement, which is the same as weighting each item by how often it was drawn, so the
sums of resample ``b`` are ``W[b] @ per_item``. :class:`Block` collects the per-item
quantities; :meth:`Block.evaluate` returns the sums for the sample (``W`` = ones) or for
a batch of resamples at once: one matrix product for the columns, and a gather and
``add.reduceat`` per sorted group for counts over many categories. The point estimate and
every resample go through the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Counts over at most this many keys are kept as dense columns (one matrix product);
# beyond, as sorted records (a gather and a segmented sum per batch).
DENSE_KEYS = 64
# Resample weights are drawn in batches of about this many cells (items x resamples).
BATCH_CELLS = 1 << 22


def resample_batches(
    n_items: int, resamples: int, seed: int
) -> list[tuple[int, np.random.Generator]]:
    """How to split ``resamples`` into batches, each with its own seeded generator, so
    the draws do not depend on the batch size of another call."""
    size = max(1, min(resamples, BATCH_CELLS // max(n_items, 1)))
    streams = np.random.SeedSequence(seed).spawn((resamples + size - 1) // size)
    batches = []
    left = resamples
    for stream in streams:
        batches.append((min(size, left), np.random.default_rng(stream)))
        left -= size
    return batches


def resample_weights(rng: np.random.Generator, n_items: int, size: int) -> np.ndarray:
    """``size`` resamples of ``n_items`` items drawn with replacement, as how many times
    each item was drawn (shape ``(size, n_items)``)."""
    drawn = rng.integers(0, n_items, size=(size, n_items))
    drawn += (np.arange(size, dtype=np.int64) * n_items)[:, None]
    counts = np.bincount(drawn.ravel(), minlength=size * n_items)
    return counts.reshape(size, n_items).astype(np.float64)


@dataclass(frozen=True)
class _Counts:
    n_keys: int
    dense_at: int | None  # first column in the dense matrix, or
    items: np.ndarray | None  # sorted records: row of each record
    weights: np.ndarray | None
    keys_present: np.ndarray | None
    starts: np.ndarray | None


class Block:
    """Per-item quantities over some rows (all items, or a subset such as the items two
    reviewers share); ``rows[r]`` is the item index of row ``r``."""

    def __init__(self, rows: np.ndarray | None, n_rows: int) -> None:
        self.rows = rows
        self.n_rows = n_rows
        self._columns: list[np.ndarray] = []
        self._counts: list[_Counts] = []
        self._matrix: np.ndarray | None = None

    def column(self, values: np.ndarray) -> int:
        """Adds a per-row quantity; its sum is ``result.column(handle)``."""
        self._columns.append(np.asarray(values, dtype=np.float64))
        self._matrix = None
        return len(self._columns) - 1

    def counts(
        self, rows: np.ndarray, keys: np.ndarray, n_keys: int, weights: np.ndarray | None = None
    ) -> int:
        """Adds records ``(row, key, weight)``; ``result.counts(handle)[..., k]`` sums the
        weights of key ``k`` (a category, a cell of a table)."""
        w = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=np.float64)
        if n_keys <= DENSE_KEYS:
            dense = np.bincount(
                rows * n_keys + keys, weights=w, minlength=self.n_rows * n_keys
            ).reshape(self.n_rows, n_keys)
            at = len(self._columns)
            self._columns.extend(dense.T)
            self._matrix = None
            self._counts.append(_Counts(n_keys, at, None, None, None, None))
        else:
            order = np.argsort(keys, kind="stable")
            sorted_keys = keys[order]
            present, starts = np.unique(sorted_keys, return_index=True)
            self._counts.append(_Counts(n_keys, None, rows[order], w[order], present, starts))
        return len(self._counts) - 1

    def evaluate(self, weights: np.ndarray | None) -> Result:
        """Sums for the sample (``weights`` None) or per resample (``weights`` of shape
        ``(resamples, all items)``)."""
        if self._matrix is None and self._columns:
            self._matrix = np.column_stack(self._columns)
        if weights is None:
            dense = (
                self._matrix.sum(axis=0)[None, :] if self._matrix is not None else np.zeros((1, 0))
            )
            row_weights = None
        else:
            row_weights = weights if self.rows is None else weights[:, self.rows]
            dense = row_weights @ self._matrix if self._matrix is not None else None
        sparse: dict[int, np.ndarray] = {}
        for handle, spec in enumerate(self._counts):
            if spec.dense_at is not None:
                continue
            out = np.zeros((1 if weights is None else len(weights), spec.n_keys))
            if len(spec.items):
                if row_weights is None:
                    summed = np.add.reduceat(spec.weights, spec.starts)[None, :]
                else:
                    summed = np.add.reduceat(
                        row_weights[:, spec.items] * spec.weights, spec.starts, axis=1
                    )
                out[:, spec.keys_present] = summed
            sparse[handle] = out
        return Result(dense, sparse, self._counts)


class Result:
    """The sums of one :class:`Block`: each is an array over resamples (one row for the
    sample itself)."""

    def __init__(
        self, dense: np.ndarray | None, sparse: dict[int, np.ndarray], counts: list[_Counts]
    ) -> None:
        self._dense = dense
        self._sparse = sparse
        self._specs = counts

    def column(self, handle: int) -> np.ndarray:
        return self._dense[:, handle]

    def counts(self, handle: int) -> np.ndarray:
        spec = self._specs[handle]
        if spec.dense_at is not None:
            return self._dense[:, spec.dense_at : spec.dense_at + spec.n_keys]
        return self._sparse[handle]
