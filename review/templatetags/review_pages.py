"""Small filters for the review pages."""

from __future__ import annotations

import json
import re
from typing import Any

from django import template

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """Seconds as people read them: "42 s", "3 min 5 s", "1 h 2 min"; "-" when unknown."""
    if seconds is None:
        return "-"
    seconds = round(float(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@register.filter
def answer_text(value: Any) -> str:
    """One answer as people read it: Yes/No for booleans, numbers without ".0", "-"
    for no answer."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@register.filter
def answer_for(values: dict[str, Any], config_id: Any) -> str:
    """The answer a values mapping (config id as text -> answer) holds for a question."""
    return answer_text(values.get(str(config_id)) if isinstance(values, dict) else None)


_TEXT_KEYS = ("question", "query", "prompt", "input", "content", "text", "message")


def _first_text(value: Any, depth: int = 0) -> str | None:
    """The first text of a payload: a string, a known key's text, a chat's last user
    message, else the first text found (a few levels deep)."""
    if isinstance(value, str):
        return value
    if depth > 4:
        return None
    if isinstance(value, dict):
        for key in _TEXT_KEYS:
            if key in value:
                found = _first_text(value[key], depth + 1)
                if found:
                    return found
        values = list(value.values())
    elif isinstance(value, list):
        users = [m for m in value if isinstance(m, dict) and m.get("role") == "user"]
        values = [users[-1]] if users else value
    else:
        return None
    for inner in values:
        found = _first_text(inner, depth + 1)
        if found:
            return found
    return None


@register.filter
def input_snippet(value: Any, length: int = 80) -> str:
    """A trace's input in one short line, to tell items apart where a person picks one:
    its first text (a question, the last user message), else compact JSON."""
    if isinstance(value, str) and value[:1] in "{[":
        # The head of an input as JSON text (a board card reads only that much).
        try:
            value = json.loads(value)
        except ValueError:
            quoted = re.search(r':\s*"((?:[^"\\]|\\.)*)', value)
            value = quoted.group(1) if quoted else value
    text = _first_text(value)
    if text is None:
        empty = value is None or value == "" or value == {} or value == []
        text = "" if empty else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1] + "…"
