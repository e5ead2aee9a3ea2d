"""A conversation reviewed turn by turn: each turn's rating and note on a thread item.

A thread item (``QueueItem.target_type == "thread"``) is one conversation; its turns are
the traces of its thread in start order. The queue's questions are answered for the
whole conversation; beside them a reviewer may rate each turn (``good`` or ``bad``, or
leave it unrated) and add a note. The submit keeps them on the annotation, keyed by the
turn's trace id as clients know it (its external id)::

    annotation.turns = {"<trace external id>": {"turn": 2, "rating": "bad", "note": "..."}}

``turn`` is the turn's place in the conversation when it was reviewed (1 for the first);
``rating`` is absent for a turn left unrated that has a note; ``note`` is absent when
empty. A turn neither rated nor noted is not stored.

Each rated turn is also a human ``Score`` on that turn's trace (``TURN_SCORE_NAME``,
categorical, label ``good``/``bad``, value 1/0, the note as its rationale), written
beside the answers' scores by the same submit (``turn_scores_write``), so the trace
page, the trace filter and exports read it as any human score; the blind rule covers
it (a thread item covers the traces of its thread). Comments on a turn are ordinary
comments on the item naming the turn's trace (``comment_create(item_id=...,
trace_id=...)``). See docs/threads.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db.models import F

from hitl import audit
from hitl.exceptions import DomainError
from hitl.text import unstorable
from review.models import ItemTarget, QueueItem
from review.services.common import human_score_build, time_now
from traces.models import Score, Trace

TURN_RATINGS = ("good", "bad")
TURN_RATING_WORDS = {"good": "good", "bad": "bad"}
TURN_SCORE_NAME = "turn_rating"
TURN_SCORE_VALUES = {"good": 1.0, "bad": 0.0}
MAX_TURN_NOTE = 2000
TURNS_REFUSED = "The turn ratings do not match this conversation."


def thread_turns(thread_id: int | None) -> list[Trace]:
    """The turns of a thread, in the order the review page shows them (start time,
    then creation); none for no thread."""
    if thread_id is None:
        return []
    return list(
        Trace.objects.filter(thread_id=thread_id).order_by(
            F("start_time").asc(nulls_last=True), "created_at", "id"
        )
    )


def validate_turns(item: QueueItem, turns: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The turn ratings of a submit as stored (module docstring), checked against the
    item's conversation. Refuses, each with its reason under ``details["turns"]`` by
    turn id: turns on an item that is not a conversation, a turn id that is not a turn
    of it, a rating other than good or bad, a note that is not text, too long or not
    storable (NUL)."""
    if not turns:
        return {}
    if not isinstance(turns, Mapping):
        raise DomainError(
            "turns maps a turn's trace id to its rating and note.",
            details={"turns": {"(value)": "an object is expected"}},
        )
    if item.target_type != ItemTarget.THREAD:
        raise DomainError(
            "Only a conversation (a thread item) has turns to rate.",
            details={"turns": {"(value)": "this item is not a conversation"}},
        )
    places = {trace.external_id: n for n, trace in enumerate(thread_turns(item.thread_id), 1)}
    errors: dict[str, str] = {}
    cleaned: dict[str, dict[str, Any]] = {}
    for key, entry in turns.items():
        turn_id = str(key)
        shown = turn_id[:80]
        if turn_id not in places:
            errors[shown] = "Not a turn of this conversation."
            continue
        if not isinstance(entry, Mapping):
            errors[shown] = "A turn's rating and note are expected."
            continue
        unknown = set(entry) - {"rating", "note", "turn"}
        if unknown:
            errors[shown] = f"Unknown field {sorted(map(str, unknown))[0][:40]!r}."
            continue
        rating = entry.get("rating")
        if rating in (None, ""):
            rating = None
        elif rating not in TURN_RATINGS:
            errors[shown] = f"Turn {places[turn_id]}: a rating is good or bad (or none)."
            continue
        note = entry.get("note")
        if note is None:
            note = ""
        if not isinstance(note, str):
            errors[shown] = f"Turn {places[turn_id]}: a note is text."
            continue
        note = note.strip()
        problem = unstorable(note)
        if problem:
            errors[shown] = f"Turn {places[turn_id]}'s note: {problem}"
            continue
        if len(note) > MAX_TURN_NOTE:
            errors[shown] = (
                f"Turn {places[turn_id]}'s note: at most {MAX_TURN_NOTE} characters "
                f"(it has {len(note)})."
            )
            continue
        if rating is None and not note:
            continue
        stored: dict[str, Any] = {"turn": places[turn_id]}
        if rating is not None:
            stored["rating"] = rating
        if note:
            stored["note"] = note
        cleaned[turn_id] = stored
    if errors:
        raise DomainError(TURNS_REFUSED, details={"turns": errors})
    return dict(sorted(cleaned.items(), key=lambda pair: pair[1]["turn"]))


def turn_scores_write(
    *,
    item: QueueItem,
    turns: Mapping[str, Mapping[str, Any]],
    author: Any,
    annotation_id: int,
    replace: bool = False,
) -> None:
    """Each rated turn as a human score on its trace (inside the caller's transaction,
    history recorded as for every score). ``replace`` drops the turn scores this
    annotation wrote before (an edit)."""
    if item.target_type != ItemTarget.THREAD:
        return
    if replace:
        Score.objects.filter(
            project_id=item.project_id,
            name=TURN_SCORE_NAME,
            trace__thread_id=item.thread_id,
            metadata__annotation_id=annotation_id,
        ).delete()
    rated = {key: entry for key, entry in turns.items() if entry.get("rating")}
    if not rated:
        return
    traces = dict(
        Trace.objects.filter(thread_id=item.thread_id, external_id__in=list(rated)).values_list(
            "external_id", "pk"
        )
    )
    now = time_now()
    scores = []
    for key, entry in rated.items():
        if key not in traces:
            continue
        scores.append(
            human_score_build(
                item,
                author=author,
                now=now,
                metadata={"annotation_id": annotation_id, "turn": entry.get("turn")},
                trace_id=traces[key],
                name=TURN_SCORE_NAME,
                data_type="categorical",
                value=TURN_SCORE_VALUES[entry["rating"]],
                label=entry["rating"],
                rationale=entry.get("note", ""),
            )
        )
    audit.insert_recorded(scores)  # their history rows in one statement


def turn_in_words(entry: Any) -> str:
    """One turn's rating and note as a person reads them: "bad: “wrong dose”"."""
    if not isinstance(entry, Mapping):
        return "—"
    rating = TURN_RATING_WORDS.get(str(entry.get("rating") or ""), "not rated")
    note = str(entry.get("note") or "")
    return f"{rating}: “{note}”" if note else rating


def turns_in_words(turns: Any) -> str:
    """An annotation's turn ratings in words, turn by turn: "turn 1 good; turn 2 bad:
    “wrong dose”" (none: "no turn rated")."""
    if not isinstance(turns, Mapping) or not turns:
        return "no turn rated"
    parts = []
    for key, entry in turn_rows(turns):
        place = entry.get("turn") if isinstance(entry, Mapping) else None
        name = f"turn {place}" if place else f"turn “{key}”"
        parts.append(f"{name} {turn_in_words(entry)}")
    return "; ".join(parts)


def turn_rows(turns: Any) -> Sequence[tuple[str, Mapping[str, Any]]]:
    """An annotation's turns as (trace id, entry) in conversation order."""
    if not isinstance(turns, Mapping):
        return []
    entries = [(str(k), v if isinstance(v, Mapping) else {}) for k, v in turns.items()]
    return sorted(entries, key=lambda pair: (pair[1].get("turn") or 0, pair[0]))
