"""OTLP message content stored once.

An OpenTelemetry span carries its prompt and completion in attributes
(``gen_ai.input.messages``, ``gen_ai.tool.call.result``, ``input.value`` ...), and the
mapping makes the same content the span's ``input`` / ``output``. When one attribute
alone gave a payload, the attribute is not stored a second time: ``attributes`` keeps
every other key plus ``"otel.moved": {"<attribute>": "input" | "output"}``, and the
payload column holds the attribute's text. The columns are PostgreSQL ``json`` (stored
verbatim), so the attribute is rebuilt exactly as sent:

- a value that was a JSON document (text starting with ``{`` or ``[``) is the column's
  text, byte for byte;
- any other string was stored as a JSON string, and is that string decoded.
"""

from __future__ import annotations

from typing import Any

import orjson

MOVED_KEY = "otel.moved"
COLUMNS = ("input", "output")


def attribute_text(column_text: str) -> str:
    """The attribute value a payload column's text stands for."""
    if column_text[:1] == '"':
        return orjson.loads(column_text)
    return column_text


def attributes_as_sent(
    attributes: dict[str, Any] | None, *, input_text: str | None, output_text: str | None
) -> dict[str, Any]:
    """The span's attributes as the client sent them: moved keys put back from the
    payload columns' text (``input::text``, ``output::text``)."""
    attributes = dict(attributes or {})
    moved = attributes.pop(MOVED_KEY, None)
    if not isinstance(moved, dict):
        return attributes
    texts = {"input": input_text, "output": output_text}
    for key, column in moved.items():
        text = texts.get(column)
        if text is not None:
            attributes[key] = attribute_text(text)
    return attributes
