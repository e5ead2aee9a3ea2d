"""Payload rendering for the review page: the one renderer of ``traces.payloads``
(canonical messages as a conversation, documents as cards, Markdown made safe)."""

from traces.payloads import (
    FOLD_CHARS,
    FOLD_LINES,
    looks_like_markdown,
    render_json,
    render_markdown,
    render_payload,
    render_text,
)

__all__ = [
    "FOLD_CHARS",
    "FOLD_LINES",
    "looks_like_markdown",
    "render_json",
    "render_markdown",
    "render_payload",
    "render_text",
]
