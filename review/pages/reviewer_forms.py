"""Forms of the focused review page's side requests: a draft of the answers as the
reviewer types, and the choice after a second tab sent other answers for an item
already submitted. They type and bound the input; the services decide the rest."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from django import forms

from hitl.forms import TextField, WholeNumberField, storable_text
from review.services.turns import MAX_TURN_NOTE, TURN_RATINGS
from traces.score_kinds import score_kind

# Bounds of what a draft keeps (a text answer's own bound is the service's).
MAX_DRAFT_TEXT = 20_000
MAX_TAGS = 50
MAX_TAG = 64


class TagListField(forms.Field):
    """Several values of one name (the failure-mode checkboxes), each a short tag."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "too_many": f"At most {MAX_TAGS} failure modes.",
        "too_long": f"A failure mode has at most {MAX_TAG} characters.",
    }

    def to_python(self, value: Any) -> list[str]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        return [str(v).strip() for v in values if str(v).strip()]

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        if len(value) > MAX_TAGS:
            raise forms.ValidationError(self.error_messages["too_many"], code="too_many")
        if any(len(v) > MAX_TAG for v in value):
            raise forms.ValidationError(self.error_messages["too_long"], code="too_long")


class DraftForm(forms.Form):
    """The review form as it stands, every field optional: one ``q-<config id>`` per
    question of the queue's form, the explanation, expected output, comment and failure
    modes. ``as_draft`` gives it as the page shows posted answers."""

    explanation = forms.CharField(required=False, strip=False, max_length=MAX_DRAFT_TEXT)
    expected_output = forms.CharField(required=False, strip=False, max_length=MAX_DRAFT_TEXT)
    comment = forms.CharField(required=False, strip=False, max_length=MAX_DRAFT_TEXT)
    failure_modes = forms.CharField(required=False, strip=False, max_length=MAX_DRAFT_TEXT)
    failure_mode = TagListField(required=False)

    def __init__(
        self, *args: Any, config_ids: Sequence[int], turn_ids: Sequence[str] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        for config_id in config_ids:
            self.fields[f"q-{config_id}"] = forms.CharField(
                required=False, strip=False, max_length=MAX_DRAFT_TEXT
            )
        # A conversation's turns: each one's rating, note and comment as typed (what the
        # submit refuses, an unknown rating or a long note, is kept to be corrected).
        for turn_id in turn_ids:
            self.fields[TURN_RATING + turn_id] = forms.CharField(
                required=False, strip=False, max_length=MAX_TAG
            )
            for prefix in (TURN_NOTE, TURN_COMMENT):
                self.fields[prefix + turn_id] = forms.CharField(
                    required=False, strip=False, max_length=MAX_DRAFT_TEXT
                )

    def as_draft(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["picked_failure_modes"] = data.pop("failure_mode", [])
        return data


class ConflictChoiceForm(forms.Form):
    """After a second tab sent other answers for an item already submitted: keep the
    stored answer, or replace it with the ones sent (at the version shown)."""

    choice = forms.ChoiceField(choices=[("keep", "Keep the stored answer"), ("replace", "Replace")])
    version = forms.IntegerField(min_value=1, max_value=2_147_483_647)


# --- a conversation's turns ------------------------------------------------------------

# The review form's fields for one turn of a conversation, named by the turn's trace id
# (the rest of the name after the prefix, whatever its characters): its rating, its note
# and a comment on it; a button ``comment_turn=<trace id>`` sends that comment.
TURN_RATING = "turn_rating@"
TURN_NOTE = "turn_note@"
TURN_COMMENT = "turn_comment@"
TURN_PREFIXES = (TURN_RATING, TURN_NOTE, TURN_COMMENT)
TURN_RATING_CHOICES = [("", "Not rated"), *((r, r.capitalize()) for r in TURN_RATINGS)]
UNKNOWN_TURN = "Not a turn of this conversation; reload the item."


def turn_error_key(turn_id: str) -> str:
    """Where a turn's refusal waits for the page (beside the questions' by config id)."""
    return f"turn:{turn_id}"


def add_turn_fields(form: forms.Form, turns: Sequence[tuple[str, int]]) -> None:
    """Each turn's rating, note and comment (``turns``: trace id and place) as fields
    of ``form`` (``unknown_turns`` finds fields sent for turns the conversation lacks)."""
    for turn_id, place in turns:
        rating = forms.ChoiceField(
            choices=TURN_RATING_CHOICES,
            required=False,
            error_messages={"invalid_choice": f"Turn {place}: a rating is good or bad (or none)."},
        )
        rating.label = f"Turn {place} rating"
        form.fields[TURN_RATING + turn_id] = rating
        note = TextField(required=False, max_length=MAX_TURN_NOTE)
        note.label = f"Turn {place} note"
        form.fields[TURN_NOTE + turn_id] = note
        comment = TextField(required=False, max_length=MAX_NOTE)
        comment.label = f"Turn {place} comment"
        form.fields[TURN_COMMENT + turn_id] = comment


def unknown_turns(data: Any, turn_ids: set[str]) -> list[str]:
    """Turn fields sent for turns the conversation does not have (their trace ids)."""
    keys = data.keys() if hasattr(data, "keys") else []
    found = []
    for key in keys:
        for prefix in TURN_PREFIXES:
            if key.startswith(prefix) and key[len(prefix) :] not in turn_ids:
                found.append(key[len(prefix) :])
    return list(dict.fromkeys(found))


# --- the review form's answers, and the other input of the reviewer's pages ------------

# Bounds of text the pages take (a text answer's own bound is the service's).
MAX_NOTE = 20_000
MAX_EXTERNAL_ID = 200
LOST_VERSION = "The form lost the version it was read at; reload the page."


def number_expected(name: str) -> str:
    return f"{name}: a number is expected."


class AnswerNumberField(forms.CharField):
    """A numeric question's answer: a finite number, or None when left empty."""

    def __init__(self, *, question_name: str, **kwargs: Any) -> None:
        self.question_name = question_name
        super().__init__(required=False, validators=[storable_text], **kwargs)

    def to_python(self, value: Any) -> float | None:
        text = super().to_python(value)
        if text == "":
            return None
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise forms.ValidationError(number_expected(self.question_name), code="invalid")
        return number


class AnswerBooleanField(forms.CharField):
    """A yes/no question's answer ("true" or "false"), or None when left empty."""

    def __init__(self, *, question_name: str, **kwargs: Any) -> None:
        self.question_name = question_name
        super().__init__(required=False, validators=[storable_text], **kwargs)

    def to_python(self, value: Any) -> bool | None:
        text = super().to_python(value)
        if text == "":
            return None
        if text not in ("true", "false"):
            raise forms.ValidationError(
                f"{self.question_name}: yes or no is expected.", code="invalid_choice"
            )
        return text == "true"


class AnswersForm(forms.Form):
    """The review form sent: one ``q-<config id>`` per question of the queue's form,
    typed by its data type (a number, yes/no, an option's label or text; None when left
    empty; the service checks each against its question), the explanation, the expected
    output (JSON when it reads as JSON, else the text), the failure modes picked and
    typed, the comment, and, on My history, the version the answer was read at.

    ``values()``, ``failure_modes()`` and ``expected()`` give what the services take;
    ``errors_by_question()`` the refusals as the pages show them (by config id, the rest
    under ``__all__``); ``posted()`` the form as sent, to show it again."""

    explanation = TextField(required=False, max_length=MAX_NOTE)
    expected_output = TextField(required=False, max_length=MAX_NOTE)
    failure_modes = TextField(required=False, max_length=MAX_NOTE)
    failure_mode = TagListField(required=False)
    comment = TextField(required=False, max_length=MAX_NOTE)

    def __init__(
        self,
        data: Any,
        *,
        questions: Sequence[dict[str, Any]],
        with_version: bool = False,
        turns: Sequence[tuple[str, int]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(data, **kwargs)
        self.questions = list(questions)
        self.turns = list(turns)
        add_turn_fields(self, self.turns)
        for question in self.questions:
            name, kind = question["name"], score_kind(question["data_type"])
            field: forms.Field
            if kind.numeric:
                field = AnswerNumberField(question_name=name)
            elif kind.yes_no:
                field = AnswerBooleanField(question_name=name)
            else:
                field = TextField(required=False, max_length=None)
            field.label = name
            self.fields[f"q-{question['config_id']}"] = field
        ids = [(str(q["config_id"]), q["name"]) for q in self.questions]
        for name, what in (("suggestion_seen", "shown"), ("suggestion_accepted", "accepted")):
            self.fields[name] = forms.TypedMultipleChoiceField(
                choices=ids,
                coerce=int,
                required=False,
                widget=forms.MultipleHiddenInput,
                label=f"Suggestions {what}",
                error_messages={
                    "invalid_choice": "A suggestion of a question this form does not ask; "
                    "reload the item.",
                    "invalid_list": "A list of questions is expected.",
                },
            )
        if with_version:
            self.fields["version"] = WholeNumberField(
                error_messages={
                    code: LOST_VERSION for code in ("required", "invalid", "min_value", "max_value")
                }
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for turn_id in unknown_turns(self.data, {turn_id for turn_id, _ in self.turns}):
            self.add_error(None, f"“{turn_id[:80]}”: {UNKNOWN_TURN}")
        return cleaned

    def turn_ratings(self) -> dict[str, dict[str, str]]:
        """Each turn's rating and note as ``assignment_submit`` takes them (trace id ->
        ``{"rating", "note"}``; turns left unrated and without a note are left out)."""
        found: dict[str, dict[str, str]] = {}
        for turn_id, _place in self.turns:
            rating = self.cleaned_data.get(TURN_RATING + turn_id) or ""
            note = self.cleaned_data.get(TURN_NOTE + turn_id) or ""
            if rating or note:
                found[turn_id] = {"rating": rating, "note": note}
        return found

    def turn_comments(self) -> dict[str, str]:
        """Comments typed on turns and not sent yet (trace id -> text): they go with the
        submit, as the comment on the item does."""
        found = {
            turn_id: self.cleaned_data.get(TURN_COMMENT + turn_id) or ""
            for turn_id, _place in self.turns
        }
        return {turn_id: text for turn_id, text in found.items() if text}

    def values(self) -> dict[str, Any]:
        """Each question's answer by config id (None: left empty)."""
        answers = {
            str(q["config_id"]): self.cleaned_data.get(f"q-{q['config_id']}")
            for q in self.questions
        }
        return {key: None if value == "" else value for key, value in answers.items()}

    def suggestions_claimed(self) -> dict[str, list[int]]:
        """The questions whose judge suggestion the page displayed and the reviewer
        took with the accept key, as ``assignment_submit`` takes them."""
        return {
            "suggestions_seen": list(self.cleaned_data.get("suggestion_seen") or []),
            "suggestions_accepted": list(self.cleaned_data.get("suggestion_accepted") or []),
        }

    def failure_modes_list(self) -> list[str]:
        return failure_modes_of(
            {
                "picked_failure_modes": self.cleaned_data.get("failure_mode") or [],
                "failure_modes": self.cleaned_data.get("failure_modes") or "",
            }
        )

    def expected(self) -> Any:
        return parse_expected(self.cleaned_data.get("expected_output") or "")

    def errors_by_question(self) -> dict[str, str]:
        """The refusals as the review pages show them: a question's beside it (by config
        id), the rest as one sentence under ``__all__``."""
        found: dict[str, str] = {}
        rest: list[str] = []
        for name, errors in self.errors.items():
            turn = next((name[len(p) :] for p in TURN_PREFIXES if name.startswith(p)), None)
            if turn is not None:
                label = self.fields[name].label
                said = " ".join(str(e) for e in errors)
                found[turn_error_key(turn)] = (
                    said if said.startswith("Turn ") else f"{label}: {said}"
                )
            elif name.startswith("q-") and name[2:].isdigit():
                field = self.fields[name]
                if isinstance(field, AnswerNumberField | AnswerBooleanField):
                    found[name[2:]] = " ".join(str(e) for e in errors)
                else:
                    found[name[2:]] = f"{field.label}: " + " ".join(str(e) for e in errors)
            elif name == "version":
                rest.extend(str(e) for e in errors)
            else:
                field = self.fields.get(name)
                label = field.label if field is not None and field.label else name
                rest.extend(f"{str(label).replace('_', ' ').capitalize()}: {e}" for e in errors)
        if rest:
            found["__all__"] = " ".join(rest)
        return found

    def posted(self) -> dict[str, Any]:
        """The form as sent, to show again (failure-mode picks as a list)."""
        shown: dict[str, Any] = {}
        for name in self.fields:
            value = self[name].data
            if name == "failure_mode":
                shown["picked_failure_modes"] = [str(v) for v in value or []]
            else:
                shown[name] = "" if value is None else str(value)
        return shown


class TurnCommentForm(forms.Form):
    """A comment on one turn of a conversation, sent from the review form (its button
    ``comment_turn`` names the turn; the text is that turn's ``turn_comment@<id>``
    field): the turn must be one of the conversation's (``turn_ids``)."""

    comment_turn = TextField(max_length=MAX_EXTERNAL_ID)

    def __init__(self, data: Any, *, turn_ids: Sequence[str], **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.turn_ids = list(turn_ids)
        for turn_id in self.turn_ids:
            self.fields[TURN_COMMENT + turn_id] = TextField(required=False, max_length=MAX_NOTE)

    def clean_comment_turn(self) -> str:
        turn_id = self.cleaned_data["comment_turn"]
        if turn_id not in self.turn_ids:
            raise forms.ValidationError(UNKNOWN_TURN, code="unknown_turn")
        return turn_id

    def body(self) -> str:
        return self.cleaned_data.get(TURN_COMMENT + self.cleaned_data["comment_turn"]) or ""

    def error_text(self) -> str:
        return " ".join(str(e) for errors in self.errors.values() for e in errors)


class SkipForm(forms.Form):
    """Skipping an item: why."""

    reason = TextField(
        max_length=MAX_NOTE, error_messages={"required": "Say why you skip this item."}
    )

    def error_text(self) -> str:
        return " ".join(str(e) for errors in self.errors.values() for e in errors)


class SpanCommentForm(forms.Form):
    """A comment on a span of the item under review: the trace and span by their ids,
    the text (the service says when it is empty), and the span's place on the page."""

    trace = TextField(required=False, max_length=MAX_EXTERNAL_ID)
    span = TextField(required=False, max_length=MAX_EXTERNAL_ID)
    body = TextField(required=False, strip=False, max_length=MAX_NOTE)
    index = WholeNumberField(required=False, min_value=0, max_value=100_000)


class ReviewPageQueryForm(forms.Form):
    """The review pages' query: ``?turn=`` (a thread's turn by trace id; anything else
    reads as none), ``?span=`` (the span shown beside the tree, by span id) and
    ``?buffered=1`` (rendered ahead for the page's script)."""

    turn = TextField(required=False, max_length=MAX_EXTERNAL_ID)
    span = TextField(required=False, max_length=MAX_EXTERNAL_ID)
    buffered = forms.CharField(required=False, max_length=8)

    def span_id(self) -> str | None:
        return (self.cleaned_data.get("span") or None) if self.is_valid() else None

    def turn_id(self) -> str | None:
        return (self.cleaned_data.get("turn") or None) if self.is_valid() else None

    def is_buffered(self) -> bool:
        return self.is_valid() and self.cleaned_data.get("buffered") == "1"


def failure_modes_of(data: Any) -> list[str]:
    """Tags picked from the queue's known ones plus those typed (comma separated)."""
    picked = data.get("picked_failure_modes", []) if isinstance(data, dict) else []
    typed = str(data.get("failure_modes", "")).split(",")
    return list(dict.fromkeys(t.strip() for t in [*picked, *typed] if t.strip()))


def parse_expected(text: str) -> Any:
    """An expected output as typed: JSON when it reads as JSON, else the text."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
