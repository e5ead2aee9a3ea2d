"""The review form's questions as the pages show them: levels and choices, answers
as posted, stored answers as the form shows them, and a draft as text.
"""

from __future__ import annotations

import json
from typing import Any

from review.models import (
    Annotation,
    ReviewDraft,
)
from review.pages.reviewer_forms import (
    TURN_COMMENT,
    TURN_NOTE,
    TURN_RATING,
    AnswersForm,
    failure_modes_of,
)
from traces.score_kinds import score_kind


def _number_text(value: float) -> str:
    return f"{value:g}"


def prepare_questions(
    form: list[dict[str, Any]], *, posted: dict[str, Any], errors: dict[str, str]
) -> None:
    """Adds what the question template needs: its levels, field name, the answer to
    show checked or filled, and its error."""
    for question in form:
        question["kind"] = score_kind(question["data_type"])  # what the template asks of it
        question["levels"] = _levels(question)
        question["field_name"] = f"q-{question['config_id']}"
        question["posted"] = posted.get(question["field_name"], "")
        question["error"] = errors.get(str(question["config_id"]), "")


def _levels(question: dict[str, Any]) -> list[dict[str, Any]]:
    """The choices a question offers, each with the rubric level that defines it:
    options for categorical, yes/no for boolean, each step for a stepped number range
    (at most nine, so a digit picks each). Empty: a free number or text field."""
    rubric = {str(level.get("label", "")).lower(): level for level in question["rubric"]}
    kind = score_kind(question["data_type"])
    choices: list[tuple[str, str]] = []
    if kind.has_options:
        choices = [(str(o["label"]), str(o["label"])) for o in question["options"]]
    elif kind.yes_no:
        choices = [("true", "Yes"), ("false", "No")]
    elif kind.numeric and question["step"]:
        low, high, step = question["min_value"], question["max_value"], question["step"]
        count = round((high - low) / step) + 1
        if count <= 9:
            values = [low + i * step for i in range(count)]
            choices = [(_number_text(v), _number_text(v)) for v in values]
    levels = []
    for index, (value, label) in enumerate(choices):
        level = rubric.get(label.lower())
        if level is None and kind.numeric and len(question["rubric"]) == len(choices):
            level = question["rubric"][index]
        levels.append(
            {
                "key": index + 1,
                "value": value,
                "label": label,
                "rubric_label": level.get("label") if level and level.get("label") != label else "",
                "definition": level.get("definition", "") if level else "",
                "examples": level.get("examples", []) if level else [],
            }
        )
    return levels


def answer_as_field(value: Any) -> str:
    """An answer as the review form's field holds it (a level's value, a number's text)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_text(value)
    return str(value)


def prepare_suggestions(form: list[dict[str, Any]], suggestions: dict[str, Any]) -> None:
    """Adds each question's judge suggestion as the review form shows it (``suggestion``:
    its text, its value as the field holds it, who suggested it, and whether it waits
    for the question's answer to appear), from ``review.selectors.suggestions_for_reviewer``."""
    mode = suggestions["mode"]
    for question in form:
        found = suggestions["questions"].get(str(question["config_id"]))
        if found is None:
            question["suggestion"] = None
            continue
        question["suggestion"] = {
            **found,
            "field_value": answer_as_field(found["value"]),
            "by": found["source_name"] or found["score_name"],
            "after": mode == "after" and not question.get("posted"),
        }


def saved_as_posted(form: list[dict[str, Any]], annotation: Annotation) -> dict[str, Any]:
    """A saved annotation as the edit form's posted values."""
    shown: dict[str, Any] = {
        "explanation": annotation.explanation,
        "expected_output": as_editable(annotation.expected_output),
        "picked_failure_modes": list(annotation.failure_modes),
        "failure_modes": "",
    }
    for question in form:
        value = annotation.values.get(str(question["config_id"]))
        shown[f"q-{question['config_id']}"] = answer_as_field(value)
    return shown


def as_editable(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def _turns_said(turns: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Turn ratings as (rating, note) by turn, those that say something."""
    said = {
        str(k): (str(v.get("rating") or ""), str(v.get("note") or "").strip())
        for k, v in turns.items()
        if isinstance(v, dict)
    }
    return {k: v for k, v in said.items() if any(v)}


def same_answers(annotation: Annotation, answers: AnswersForm) -> bool:
    """Whether a form sent for an item already submitted says what the stored answer
    says (the same submit sent twice), as opposed to other answers (another tab)."""
    values = {k: v for k, v in answers.values().items() if v is not None}
    if values != annotation.values:
        return False
    if answers.cleaned_data["explanation"] != annotation.explanation:
        return False
    if answers.failure_modes_list() != list(annotation.failure_modes):
        return False
    if _turns_said(answers.turn_ratings()) != _turns_said(annotation.turns or {}):
        return False
    expected = answers.expected()
    return expected in (None, "", {}) or expected == annotation.expected_output


def draft_as_text(form: list[dict[str, Any]], draft: ReviewDraft | None) -> str:
    """A draft as plain text to copy: each answer by its question, then the notes."""
    if draft is None:
        return ""
    data = draft.data
    lines = []
    for question in form:
        answer = str(data.get(f"q-{question['config_id']}", "")).strip()
        if answer:
            lines.append(f"{question['name']}: {answer}")
    modes = failure_modes_of(data)
    if modes:
        lines.append(f"Failure modes: {', '.join(modes)}")
    for key, label in (
        ("explanation", "Explanation"),
        ("expected_output", "Expected output"),
        ("comment", "Comment"),
    ):
        text = str(data.get(key, "")).strip()
        if text:
            lines.append(f"{label}:\n{text}")
    # A conversation's turns, in the order the draft kept them: rating, note, comment.
    turn_labels = ((TURN_RATING, "rating"), (TURN_NOTE, "note"), (TURN_COMMENT, "comment"))
    for key, value in data.items():
        for prefix, what in turn_labels:
            text = str(value or "").strip()
            if key.startswith(prefix) and text:
                lines.append(f"Turn “{key[len(prefix) :]}” {what}: {text}")
    return "\n\n".join(lines)
