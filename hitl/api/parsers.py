from __future__ import annotations

from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from hitl import text

# Deeper JSON than this is refused: no form of ours needs it, and unbounded nesting
# would exhaust the interpreter's stack.
MAX_DEPTH = 64


def _check(value: Any) -> None:
    _check_depth(value)
    found = text.find_unstorable(value)
    if found is not None:
        where, problem = found
        raise ParseError(f"{where}: {problem}")


def _check_depth(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise ParseError(f"JSON may not be nested deeper than {MAX_DEPTH} levels.")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser that refuses what PostgreSQL cannot store (``hitl.text``: NUL,
    lone surrogates, numbers past a double) naming where it is, and nesting deeper than
    ``MAX_DEPTH``. Trace ingestion has its own
    parser and limits, as its contract says."""

    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: dict | None = None
    ) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON may not be nested deeper than {MAX_DEPTH} levels.") from exc
        _check(data)
        return data
