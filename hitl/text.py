"""What PostgreSQL can store: the one check for text and JSON from outside.

PostgreSQL ``text`` and ``jsonb`` cannot hold NUL (``\\u0000``), a UTF-8 database cannot
hold a lone surrogate (``"\\ud800"`` in JSON decodes to one; it has no UTF-8 form), and
JSON has no NaN or infinity (``1e400`` overflows a double). Every edge asks here before
the database sees a value, and refuses it with a reason that names where it was:

- query strings and form fields of every request: ``hitl.middleware`` (400);
- JSON bodies of the API: ``hitl.api.parsers.JSONParser`` (400, with the JSON path);
- dataset imports, line by line: ``datasets.services.imports``;
- trace ingestion, per event (NUL is stripped there by contract, the rest refused).
"""

from __future__ import annotations

import math
from typing import Any

NUL = "\x00"
# JSON integers are hashed, compared and read back as 64-bit values.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def unstorable(value: str, *, nul: bool = True) -> str | None:
    """Why ``value`` cannot be stored as text, or None. ``nul=False`` lets NUL through
    (for callers that strip it)."""
    if nul and NUL in value:
        return "NUL characters (\\u0000) are not allowed."
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return (
                "Lone surrogate characters (e.g. \\ud800) are not allowed: "
                "the text is not valid Unicode."
            )
    return None


def find_unstorable(value: Any, *, nul: bool = True, path: str = "") -> tuple[str, str] | None:
    """The first place in a decoded JSON ``value`` that cannot be stored, as
    ``(path, reason)`` with a path like ``items[3].input.question``; None if all can.
    Keys are checked as well as values; numbers must be finite."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            problem = unstorable(node, nul=nul)
            if problem:
                return where or "(value)", problem
        elif isinstance(node, float):
            if not math.isfinite(node):
                return where or "(value)", "Numbers must be finite (no NaN, Infinity or 1e400)."
        elif isinstance(node, int) and not isinstance(node, bool):
            if not INT64_MIN <= node <= INT64_MAX:
                return where or "(value)", "Whole numbers must fit in 64 bits (at most 19 digits)."
        elif isinstance(node, dict):
            for key, item in node.items():
                if isinstance(key, str):
                    problem = unstorable(key, nul=nul)
                    if problem:  # the key itself is not echoed back: it cannot be
                        return where or "(value)", f"A key: {problem}"
                stack.append((item, f"{where}.{key}" if where else str(key)))
        elif isinstance(node, list | tuple):
            stack.extend((item, f"{where}[{index}]") for index, item in enumerate(node))
    return None
