"""When reviewers disagree enough that a senior decides: the rule, per question.

Once an item has all its reviews, each question of the queue's form is checked:

* **Categorical and boolean:** any disagreement goes to adjudication. A queue may
  tolerate some dissent with ``max_dissent_share``: the share of answers that differ
  from the most common one (2 of 3 agreeing: 1/3 dissent). A tie for the most common
  answer (1-1, 2-2, 1-1-1) always goes to adjudication: there is no majority to keep.
* **Numeric:** the answers go to adjudication when they spread (highest minus lowest)
  more than ``numeric_tolerance``, by default 0: any two different numbers.
* **Free text:** never; texts differ by nature.

Only the answers given count: a reviewer who left an optional question empty neither
agrees nor disagrees on it, and one answer alone never disagrees. A question can be
switched off (``adjudicates = False``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from traces.score_kinds import score_kind

# Float answers and shares are compared with this slack (0.1 + 0.2 - 0.3 is not 0).
EPSILON = 1e-9


@dataclass(frozen=True)
class DisagreementRule:
    data_type: str
    adjudicates: bool = True
    max_dissent_share: float = 0.0
    numeric_tolerance: float = 0.0

    @classmethod
    def of(cls, form_field: Any) -> DisagreementRule:
        """The rule of one ``QueueFormField`` (its config loaded)."""
        return cls(
            data_type=form_field.config.data_type,
            adjudicates=form_field.adjudicates,
            max_dissent_share=form_field.max_dissent_share,
            numeric_tolerance=form_field.numeric_tolerance,
        )

    @property
    def applies(self) -> bool:
        return self.adjudicates and not score_kind(self.data_type).free_text

    def describe(self) -> str:
        """The rule in the words a review lead would use."""
        if score_kind(self.data_type).free_text:
            return "Free text: never sent to adjudication."
        if not self.adjudicates:
            return "Never sent to adjudication (switched off for this question)."
        empty = " Empty answers do not count."
        if score_kind(self.data_type).numeric:
            if self.numeric_tolerance <= 0:
                return "Any two different answers send the item to adjudication." + empty
            return (
                "Sent to adjudication when the answers spread (highest minus lowest) by "
                f"more than {self.numeric_tolerance:g}." + empty
            )
        if self.max_dissent_share <= 0:
            return "Any disagreement sends the item to adjudication." + empty
        return (
            f"Sent to adjudication when more than {self.max_dissent_share:.0%} of the "
            "answers differ from the most common one, or on a tie." + empty
        )

    def disagreement(self, answers: Sequence[Any]) -> dict[str, Any] | None:
        """How ``answers`` (one per reviewer; None for an empty answer) disagree under
        this rule, or None when they do not."""
        given = [a for a in answers if a is not None]
        if not self.applies or len(given) < 2:
            return None
        if score_kind(self.data_type).numeric:
            spread = max(given) - min(given)
            if spread <= self.numeric_tolerance + EPSILON:
                return None
            return {"answers": given, "spread": spread, "tolerance": self.numeric_tolerance}
        counts = Counter(json.dumps(a) for a in given)
        ranked = counts.most_common()
        top = ranked[0][1]
        tie = len(ranked) > 1 and ranked[1][1] == top
        dissent = 1 - top / len(given)
        if not tie and dissent <= self.max_dissent_share + EPSILON:
            return None
        return {
            "answers": given,
            "counts": [{"answer": json.loads(value), "count": n} for value, n in ranked],
            "dissent_share": dissent,
            "max_dissent_share": self.max_dissent_share,
            "tie": tie,
        }
