from __future__ import annotations

from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Deeper JSON than this is refused: no form of ours needs it, and unbounded nesting
# would exhaust the interpreter's stack.
MAX_DEPTH = 64


def _check(value: Any, depth: int = 1) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ParseError("JSON strings may not contain NUL (\\u0000) characters.")
        return
    if not isinstance(value, dict | list):
        return
    if depth > MAX_DEPTH:
        raise ParseError(f"JSON may not be nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth)
            _check(item, depth + 1)
    else:
        for item in value:
            _check(item, depth + 1)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser that refuses NUL characters (PostgreSQL text and jsonb cannot
    store them) and nesting deeper than ``MAX_DEPTH``. Trace ingestion has its own
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
