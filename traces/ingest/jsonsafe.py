"""Client JSON made safe for PostgreSQL jsonb: depth and size capped, NUL removed.

PostgreSQL text and jsonb cannot hold ``\\u0000``. NUL characters are stripped from
every string (values and keys) rather than rejected: they are almost always padding
from C libraries, and losing them loses nothing a reader could see.
"""

from __future__ import annotations

from typing import Any

import orjson

from traces.ingest.limits import MAX_JSON_DEPTH

_NUL_ESCAPE = b"\\u0000"


class JsonRejected(ValueError):
    """The value cannot be stored; the message says why (and names the limit)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """Raises JsonRejected when containers nest deeper than ``limit``."""
    if not isinstance(value, dict | list):
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise JsonRejected("too_deep", f"nested deeper than the limit of {limit} levels")
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))


def strip_nul(value: Any) -> Any:
    """A copy of ``value`` without NUL characters in any string or key."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [strip_nul(item) for item in value]
    if isinstance(value, dict):
        return {key.replace("\x00", ""): strip_nul(item) for key, item in value.items()}
    return value


def dump_json(value: Any, *, max_bytes: int, what: str) -> str:
    """Serialises ``value`` for a jsonb column, enforcing depth and size."""
    check_depth(value)
    try:
        data = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise JsonRejected("invalid_json", f"{what} cannot be stored as JSON: {exc}") from None
    if _NUL_ESCAPE in data:
        # The escape may also be a literal backslash-u0000 text; stripping is harmless then.
        data = orjson.dumps(strip_nul(value))
    if len(data) > max_bytes:
        raise JsonRejected(
            "too_large", f"{what} is {len(data)} bytes, over the limit of {max_bytes} bytes"
        )
    return data.decode()


def clean_text(value: str) -> str:
    """Text for a text column: NUL characters removed."""
    return value.replace("\x00", "") if "\x00" in value else value
