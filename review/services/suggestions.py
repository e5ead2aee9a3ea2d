"""Judge suggestions: the queue settings that govern them, and the record of what a
reviewer was shown, written on their annotation by the submit service.

The record (``Annotation.suggestions``) is the server's own: which mode the item was
reviewed in and its A/B arm (``review.selectors.suggestion_mode_for``), and per
question with a suggestion, the judge's value as the server read it. The client only
says which suggestions it displayed (``seen``) and which the reviewer took with the
accept key (``accepted``); both are checked against what the mode shows, and a claim
the mode cannot have produced is refused with its reason::

    {"mode": "before", "arm": "shown", "questions": {"12": {
        "question": "Correct", "value": true, "text": "true", "score_id": 5,
        "score_name": "Correct", "source": "llm_judge", "source_name": "gpt-judge",
        "source_version": "v3",
        "visible": "before", "accepted_by_key": true, "outcome": "accepted"}}}

``visible``: ``before`` (beside the question before answering), ``after`` (revealed once
the question was answered), ``panel`` (suggestions off in an open queue, where the
item's scores panel shows the judge's score anyway), ``no`` (a blind queue, an item held
out: the review page then leaves the judge's score out of the scores panel too).
``outcome``: ``accepted`` (the answer is the suggestion), ``changed`` (another answer)
or ``unanswered``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hitl.exceptions import DomainError
from review.models import QueueItem, ReviewQueue, SuggestionMode
from review.selectors import (
    FormQuestion,
    item_suggestions,
    suggestion_arm,
    suggestion_mode_for,
)
from traces.score_kinds import score_kind

BLIND_REFUSED = (
    "A blind queue shows no judge suggestions unless you choose it explicitly "
    "(suggestions_in_blind): they would show reviewers the judge's score before they answer."
)


def suggestion_settings_errors(
    fields: Mapping[str, Any], current: ReviewQueue | None = None
) -> dict[str, list[str]]:
    """Why the suggestion settings in ``fields`` (over ``current``'s, when updating) are
    refused: an unknown mode, a hold-out share outside 0..100, or suggestions in a blind
    queue without ``suggestions_in_blind``."""
    errors: dict[str, list[str]] = {}

    def setting(name: str, default: Any) -> Any:
        if name in fields:
            return fields[name]
        return getattr(current, name) if current is not None else default

    mode = setting("suggestion_mode", SuggestionMode.OFF)
    if mode not in SuggestionMode.values:
        errors["suggestion_mode"] = [f"One of: {', '.join(SuggestionMode.values)}."]
    share = setting("suggestion_holdout_percent", 0)
    if not isinstance(share, int) or isinstance(share, bool) or not 0 <= share <= 100:
        errors["suggestion_holdout_percent"] = ["A whole percentage between 0 and 100."]
    blind = setting("blind_mode", True)
    if blind and mode != SuggestionMode.OFF and not setting("suggestions_in_blind", False):
        errors["suggestions_in_blind"] = [BLIND_REFUSED]
    return errors


def _ids(values: Sequence[Any] | None) -> list[str]:
    return [str(v) for v in (values or [])]


def suggestion_record(
    *,
    item: QueueItem,
    queue: ReviewQueue,
    form: Sequence[FormQuestion],
    answers: Mapping[str, Any],
    seen: Sequence[Any] | None = None,
    accepted: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """What the reviewer of ``item`` was shown of the suggestions, with their answers
    (``answers``: config id -> answer, validated); see the module. Refuses (400) a claim
    to have seen a suggestion the mode does not show, and an accept of a suggestion
    that was not visible or that the answer is not."""
    mode = suggestion_mode_for(item, queue)
    suggestions = item_suggestions(item, form)
    seen_ids, accepted_ids = _ids(seen), _ids(accepted)
    errors: dict[str, list[str]] = {}
    shown = set(suggestions) if mode != SuggestionMode.OFF else set()
    not_shown = [key for key in seen_ids if key not in shown]
    if not_shown:
        errors["suggestions_seen"] = [
            f"No suggestion was shown for question {', '.join(sorted(set(not_shown)))} "
            f"(suggestions here: {'off' if mode == SuggestionMode.OFF else mode}); "
            "reload the item."
        ]
    configs = {str(q.config.pk): q.config for q in form}
    questions: dict[str, dict[str, Any]] = {}
    for key, suggestion in suggestions.items():
        config = configs[key]
        if key in shown and key in seen_ids:
            visible = mode
        elif queue.suggestion_mode == SuggestionMode.OFF and not queue.blind_mode:
            visible = "panel"
        else:
            visible = "no"
        answer = answers.get(key)
        if answer is None:
            outcome = "unanswered"
        elif score_kind(config.data_type).equal(answer, suggestion["value"]):
            outcome = "accepted"
        else:
            outcome = "changed"
        by_key = key in accepted_ids
        if by_key and (visible not in (SuggestionMode.BEFORE, SuggestionMode.AFTER)):
            errors.setdefault("suggestions_accepted", []).append(
                f"{config.name}: its suggestion was not shown, so it cannot be accepted."
            )
        elif by_key and outcome != "accepted":
            errors.setdefault("suggestions_accepted", []).append(
                f"{config.name}: the answer sent is not the suggestion accepted."
            )
        questions[key] = {
            "question": config.name,
            **suggestion,
            "visible": visible,
            "accepted_by_key": by_key,
            "outcome": outcome,
        }
    unknown = [key for key in accepted_ids if key not in suggestions]
    if unknown:
        errors.setdefault("suggestions_accepted", []).append(
            f"No suggestion for question {', '.join(sorted(set(unknown)))}."
        )
    if errors:
        reasons = " ".join(reason for found in errors.values() for reason in found)
        raise DomainError(f"What the review says it was shown does not match: {reasons}",
                          details=errors)  # fmt: skip
    return {"mode": mode, "arm": suggestion_arm(item, queue), "questions": questions}


VISIBLE_WORDS = {
    "before": "shown before answering",
    "after": "shown once answered",
    "panel": "in the scores panel",
    "no": "not shown",
}


def suggestions_in_words(record: Any) -> str:
    """What an annotation's reviewer was shown of the judges' suggestions
    (``Annotation.suggestions``), as an auditor reads it in the history."""
    if not isinstance(record, dict) or not record:
        return "—"
    mode = record.get("mode", "off")
    parts = [f"suggestions {mode}" + (" (item held out)" if record.get("arm") == "hidden" else "")]
    for entry in (record.get("questions") or {}).values():
        if not isinstance(entry, dict):
            continue
        by = entry.get("source_name") or entry.get("score_name") or "judge"
        version = f" {entry['source_version']}" if entry.get("source_version") else ""
        taken = ", taken with the key" if entry.get("accepted_by_key") else ""
        parts.append(
            f"{entry.get('question', '?')}: {by}{version} suggested “{entry.get('text', '')}”, "
            f"{VISIBLE_WORDS.get(entry.get('visible'), entry.get('visible'))}, "
            f"{entry.get('outcome', '?')}{taken}"
        )
    return "; ".join(parts)
