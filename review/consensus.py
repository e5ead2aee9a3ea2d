"""The reviewers' expected output for an item: one rule, used by review (a dataset
item's verdict) and by datasets (a reviewed item promoted).

An expected output is *stated* when a person wrote one: an annotation's free field or a
question that writes to the expected output, or an adjudicator's decision. The model's
own output is never taken as expected here; whoever promotes decides that explicitly
(``datasets.services.promotion``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from review.models import Adjudication, Annotation


def stated(value: Any) -> bool:
    """A person wrote this expected output (not empty)."""
    return value not in (None, "", {})


def consensus_expected_output(
    annotations: Sequence[Annotation], adjudication: Adjudication | None = None
) -> Any:
    """The expected output the people agree on: the adjudicator's, when they stated
    one; else the most common one the reviewers stated, the earliest among ties
    (annotations in submit order); None if nobody stated one."""
    if adjudication is not None and stated(adjudication.expected_output):
        return adjudication.expected_output
    values = [a.expected_output for a in annotations if stated(a.expected_output)]
    if not values:
        return None
    keyed = [repr(value) for value in values]
    counts = Counter(keyed)
    best = max(counts.values())
    return next(v for v, k in zip(values, keyed, strict=True) if counts[k] == best)
