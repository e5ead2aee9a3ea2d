from __future__ import annotations

from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


def _contains_nul(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if depth > 100:
        return False  # deeper structures are refused by the views' own size checks
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v, depth + 1) for v in value)
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser that refuses NUL characters: PostgreSQL text and jsonb cannot
    store them, and refusing up front beats a half-understood error later. (Trace
    ingestion has its own parser and strips them, as its contract says.)"""

    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: dict | None = None
    ) -> Any:
        data = super().parse(stream, media_type, parser_context)
        if _contains_nul(data):
            raise ParseError("JSON strings may not contain NUL (\\u0000) characters.")
        return data
