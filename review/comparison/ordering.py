"""The order a reviewer sees a comparison's outputs in, and reading answers back.

The order is drawn per lease: a seeded shuffle of the output ids by the assignment's id
and the comparison's, so the same lease always shows the same order (a reload, the next
item fetched ahead) and two reviewers of the same item see independent orders. The
order shown is stored with each answer (``Preference.shown_order``); :func:`canonical`
maps an answer given on screen (letters: ``a`` the leftmost output) onto the outputs.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping, Sequence
from typing import Any

from hitl.exceptions import DomainError

LETTERS = string.ascii_lowercase


def shown_order(assignment_id: int, comparison_id: int, output_ids: Sequence[int]) -> list[int]:
    """The output ids, left to right, as the holder of ``assignment_id`` sees them."""
    order = sorted(int(i) for i in output_ids)
    random.Random(f"comparison:{comparison_id}:lease:{assignment_id}").shuffle(order)
    return order


def _letter_index(value: Any, n: int, where: str) -> int:
    if not isinstance(value, str) or len(value) != 1 or value.lower() not in LETTERS[:n]:
        raise DomainError(
            f"{where}: one of {', '.join(LETTERS[:n])}.", details={where: ["bad_letter"]}
        )
    return LETTERS.index(value.lower())


def canonical(
    answer: Mapping[str, Any], shown: Sequence[int], *, n_way: str, allow_strength: bool
) -> dict[str, Any]:
    """An answer on screen read back onto the outputs: ``winner`` (output id or None for a
    tie), ``ranking`` (output ids, best first) and ``strength``; plus ``answer_shown``, the
    answer as given, normalized. ``DomainError`` with the reason for anything else.

    Two outputs: ``{"choice": "a" | "b" | "tie", "strength": 1 | 2}``. More: best of N
    ``{"choice": "c"}``, or a full ranking ``{"ranking": ["c", "a", "b"]}``."""
    n = len(shown)
    if n == 2 or n_way == "best":
        choice = answer.get("choice")
        if n == 2 and choice in ("tie", "="):
            return {
                "winner": None,
                "ranking": list(sorted(shown)),
                "strength": 1,
                "answer_shown": {"choice": "tie"},
            }
        index = _letter_index(choice, n, "choice")
        strength = answer.get("strength", 1)
        if strength is None:
            strength = 1
        if strength not in (1, 2) or isinstance(strength, bool):
            raise DomainError(
                "strength: 1 (better) or 2 (much better).", details={"strength": ["bad"]}
            )
        if strength == 2 and not (allow_strength and n == 2):
            raise DomainError(
                "strength: this queue does not ask how much better.",
                details={"strength": ["not_asked"]},
            )
        winner = shown[index]
        shown_answer: dict[str, Any] = {"choice": LETTERS[index]}
        if n == 2:
            shown_answer["strength"] = strength
            ranking = [winner, shown[1 - index]]
        else:
            ranking = [winner]
        return {
            "winner": winner,
            "ranking": ranking,
            "strength": strength if n == 2 else 1,
            "answer_shown": shown_answer,
        }
    letters = answer.get("ranking")
    if not isinstance(letters, list) or len(letters) != n:
        raise DomainError(
            f"ranking: all {n} outputs, best first, as letters.", details={"ranking": ["length"]}
        )
    indexes = [_letter_index(v, n, "ranking") for v in letters]
    if len(set(indexes)) != n:
        raise DomainError("ranking: each output once.", details={"ranking": ["repeated"]})
    ranking = [shown[i] for i in indexes]
    return {
        "winner": ranking[0],
        "ranking": ranking,
        "strength": 1,
        "answer_shown": {"ranking": [LETTERS[i] for i in indexes]},
    }
