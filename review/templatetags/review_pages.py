"""Small filters for the review pages."""

from __future__ import annotations

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
