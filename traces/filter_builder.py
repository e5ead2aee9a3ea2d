"""The trace filter as conditions a person builds with controls: a field, an operator
and a value (and, for a score or a metadata entry, its name), shown as readable chips.

The conditions are only another spelling of the trace filter's parameters
(``traces.filters.TraceFilter``, the API's): ``params_from_conditions`` turns the rows
a page posts into those parameters, ``conditions_from_params`` turns parameters back
into rows, so a filter built on a page and one given to the API are the same object.
Every parameter of the filter has a field here (a test checks it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.utils.dateparse import parse_datetime

from traces.filters import (
    FeedbackChoice,
    parse_metadata_condition,
    parse_score_condition,
)
from traces.models import Status

# Operators: the value a row posts, and how it reads.
OPERATORS: dict[str, str] = {
    "is": "is",
    "contains": "contains",
    "has": "has",
    "after": "at or after",
    "before": "before",
    "lt": "<",
    "le": "≤",
    "gt": ">",
    "ge": "≥",
    "eq": "=",
    "ne": "≠",
    "exists": "exists",
}
SCORE_SYMBOLS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "=", "ne": "!="}
SYMBOL_OPS = {symbol: op for op, symbol in SCORE_SYMBOLS.items()}

YES_NO = (("true", "yes"), ("false", "no"))
FEEDBACK_SHORT = {
    FeedbackChoice.THUMBS_UP: "thumbs up",
    FeedbackChoice.THUMBS_DOWN: "thumbs down",
    FeedbackChoice.ANY: "any feedback",
    FeedbackChoice.NONE: "no feedback",
}


@dataclass(frozen=True)
class Field:
    """A field a condition may be on: ``params`` maps each of its operators to the
    filter parameter it writes; ``kind`` is the value's input (text, number, datetime,
    choice, none); ``key`` names what a row's second input is (a score's or a metadata
    entry's name), empty when there is none."""

    label: str
    params: Mapping[str, str]
    kind: str = "text"
    key: str = ""
    choices: Sequence[tuple[str, str]] = ()
    unit: str = ""


FIELDS: dict[str, Field] = {
    "time": Field("Started", {"after": "start_time_from", "before": "start_time_to"}, "datetime"),
    "name": Field("Name", {"contains": "name_contains", "is": "name"}),
    "status": Field("Status", {"is": "status"}, "choice", choices=tuple(Status.choices)),
    "has_error": Field("Has an error", {"is": "has_error"}, "choice", choices=YES_NO),
    "tags": Field("Tag", {"has": "tags"}),
    "model": Field("Model (any span)", {"is": "model"}),
    "metadata": Field("Metadata", {"is": "metadata"}, key="Metadata key"),
    "score": Field(
        "Automated score",
        {op: "score" for op in ("lt", "le", "gt", "ge", "eq", "ne", "exists")},
        key="Score name",
    ),
    "feedback": Field(
        "End-user feedback",
        {"is": "feedback"},
        "choice",
        choices=tuple(FEEDBACK_SHORT.items()),
    ),
    "rating": Field(
        "End-user rating", {"ge": "feedback_rating_min", "le": "feedback_rating_max"}, "number"
    ),
    "reviewed": Field("Reviewed by a person", {"is": "reviewed"}, "choice", choices=YES_NO),
    "reviewer": Field("Reviewer", {"is": "reviewer"}, "choice"),
    "text": Field("Text (input or output)", {"contains": "q"}),
    "duration": Field(
        "Duration", {"ge": "latency_ms_min", "le": "latency_ms_max"}, "number", unit="ms"
    ),
    "tokens": Field("Tokens", {"ge": "total_tokens_min", "le": "total_tokens_max"}, "number"),
    "input_tokens": Field(
        "Input tokens", {"ge": "input_tokens_min", "le": "input_tokens_max"}, "number"
    ),
    "output_tokens": Field(
        "Output tokens", {"ge": "output_tokens_min", "le": "output_tokens_max"}, "number"
    ),
    "cost": Field("Cost", {"ge": "cost_min", "le": "cost_max"}, "number"),
    "user_id": Field("End user", {"is": "user_id"}),
    "thread": Field("Thread", {"is": "thread"}),
    "environment": Field("Environment", {"is": "environment"}),
    "release": Field("Release", {"is": "release"}),
}
# Parameter -> (field, operator), for every parameter but a score's.
PARAM_FIELDS: dict[str, tuple[str, str]] = {
    param: (name, op)
    for name, spec in FIELDS.items()
    if name != "score"
    for op, param in spec.params.items()
}
REPEATED_PARAMS = ("tags", "metadata", "score")
ROW_PARAMS = ("cf", "ck", "co", "cv")  # a row's field, key, operator and value


@dataclass
class Condition:
    """One row of the builder; ``param``/``raw`` the filter parameter it is."""

    field: str
    op: str
    value: str = ""
    key: str = ""
    param: str = ""
    raw: str = ""
    errors: list[str] = dataclass_field(default_factory=list)

    @property
    def spec(self) -> Field | None:
        return FIELDS.get(self.field)


@dataclass(frozen=True)
class Context:
    """What the pickers offer: the project's score names, its people (user id, email)."""

    score_names: Sequence[str] = ()
    reviewers: Sequence[tuple[str, str]] = ()

    def choices(self, name: str) -> list[tuple[str, str]]:
        if name == "reviewer":
            return list(self.reviewers)
        spec = FIELDS[name]
        return list(spec.choices)


def _listed(params: Mapping[str, Any], name: str) -> list[str]:
    value = params.get(name)
    if value is None:
        return []
    values = value if isinstance(value, list | tuple) else [value]
    return [str(v) for v in values if str(v).strip() != ""]


def conditions_from_params(params: Mapping[str, Any]) -> list[Condition]:
    """The filter's parameters as rows, in the fields' order; a value the filter would
    refuse is kept as typed (the filter's reason is shown beside it)."""
    rows: list[Condition] = []
    order = {param: i for i, param in enumerate(["score", *PARAM_FIELDS])}
    for param in sorted(params, key=lambda p: order.get(p, len(order))):
        for raw in _listed(params, param):
            rows.append(_condition_of(param, raw))
    return rows


def _condition_of(param: str, raw: str) -> Condition:
    if param == "score":
        try:
            score = parse_score_condition(raw)
        except forms.ValidationError:
            return Condition("score", "exists", key=raw, param=param, raw=raw)
        if score.operator is None:
            return Condition("score", "exists", key=score.name, param=param, raw=raw)
        value = score.label if score.label is not None else _number(score.number)
        return Condition(
            "score", SYMBOL_OPS[score.operator], value=value, key=score.name, param=param, raw=raw
        )
    if param == "metadata":
        try:
            entry = parse_metadata_condition(raw)
        except forms.ValidationError:
            return Condition("metadata", "is", value=raw, param=param, raw=raw)
        return Condition("metadata", "is", value=entry.value, key=entry.key, param=param, raw=raw)
    name, op = PARAM_FIELDS.get(param, ("", ""))
    return Condition(name, op, value=raw, param=param, raw=raw)


def _number(number: float | None) -> str:
    if number is None:
        return ""
    return str(int(number)) if number == int(number) else repr(number)


def rows_from_query(query: Any) -> list[Condition]:
    """The rows a page posted (``cf``, ``ck``, ``co``, ``cv`` repeated, one of each a
    row); a row without a field is left out (the blank "add a condition" row)."""
    columns = [query.getlist(name) for name in ROW_PARAMS]
    count = max((len(c) for c in columns), default=0)
    rows = []
    for i in range(count):
        field_name, key, op, value = (c[i].strip() if i < len(c) else "" for c in columns)
        if field_name:
            rows.append(Condition(field_name, op, value=value, key=key))
    return rows


def params_from_conditions(
    rows: Iterable[Condition], context: Context = Context()
) -> dict[str, list[str]]:
    """The filter parameters the rows spell (repeatable ones as lists, the others the
    last row's). A row that cannot be one gets its reason in ``errors`` and is left out;
    the values themselves are checked by the filter, as the API's are."""
    params: dict[str, list[str]] = {}
    for row in rows:
        spec = row.spec
        if spec is None:
            row.errors.append("Choose a field.")
            continue
        param = spec.params.get(row.op)
        if param is None:
            ops = ", ".join(f"“{OPERATORS[op]}”" for op in spec.params)
            row.errors.append(f"{spec.label} takes {ops}.")
            continue
        value = row.value
        if spec.key and not row.key:
            row.errors.append(f"Give the {spec.key.lower()}.")
            continue
        if row.op != "exists" and value == "":
            row.errors.append("Give a value.")
            continue
        if spec.kind == "choice":
            value = _choice_value(value, context.choices(row.field))
            if value is None:
                row.errors.append(f"Choose one of the {spec.label.lower()} values offered.")
                continue
        if row.field == "score":
            value = row.key if row.op == "exists" else f"{row.key}{SCORE_SYMBOLS[row.op]}{value}"
        elif row.field == "metadata":
            value = f"{row.key}:{value}"
        row.param, row.raw = param, value
        if param in REPEATED_PARAMS:
            params.setdefault(param, []).append(value)
        else:
            params[param] = [value]
    return params


def _choice_value(value: str, choices: Sequence[tuple[str, str]]) -> str | None:
    """A choice's value, given its value or its label (typed without the script)."""
    wanted = value.strip().lower()
    for key, label in choices:
        if wanted in (str(key).lower(), str(label).lower()):
            return str(key)
    return None


def chip_text(row: Condition, context: Context = Context()) -> str:
    """One condition as a person reads it: "faithfulness < 0.5", "thumbs down"."""
    spec = row.spec
    if spec is None:
        return f"{row.param} = {row.raw}"
    if row.field == "score":
        if row.op == "exists":
            return f"has a “{row.key}” score"
        return f"{row.key} {OPERATORS.get(row.op, row.op)} {row.value}"
    if row.field == "metadata":
        return f"{row.key} = {row.value}" if row.key else f"metadata {row.value}"
    if row.field == "feedback":
        return FEEDBACK_SHORT.get(row.value, row.value)
    if row.field in ("reviewed", "has_error"):
        yes = row.value.lower() in ("true", "1", "yes")
        if row.field == "reviewed":
            return "reviewed by a person" if yes else "not reviewed"
        return "has an error" if yes else "no error"
    if row.field == "reviewer":
        names = dict(context.reviewers)
        return f"reviewed by {names.get(row.value, 'user ' + row.value)}"
    if row.field == "text":
        return f"text contains “{row.value}”"
    if row.field == "tags":
        return f"tag {row.value}"
    if row.field == "time":
        return f"started {OPERATORS[row.op]} {row.value.replace('T', ' ')}"
    label = spec.label.lower() if row.field not in ("name",) else "name"
    unit = f" {spec.unit}" if spec.unit else ""
    return f"{label} {OPERATORS.get(row.op, row.op)} {row.value}{unit}"


def summary(params: Mapping[str, Any], context: Context = Context()) -> str:
    """A filter in words: "faithfulness < 0.5 and thumbs down"; "every trace" when empty."""
    rows = conditions_from_params(params)
    if not rows:
        return "every trace"
    return " and ".join(chip_text(row, context) for row in rows)


def as_words(params: Any) -> str:
    """A stored or given trace filter as a person reads it ("status is error and
    faithfulness < 0.5"), wherever one is shown (pages, histories); one that cannot be
    read so reads as its query string, and anything else as it is."""
    if not isinstance(params, Mapping):
        return "—" if params is None else str(params)
    try:
        return summary(params)
    except (TypeError, ValueError, AttributeError, KeyError):
        try:
            return urlencode(
                [(key, item) for key, value in params.items()
                 for item in (value if isinstance(value, list | tuple) else [value])]
            )  # fmt: skip
        except (TypeError, ValueError):
            return str(params)


# --- the builder on a page --------------------------------------------------------------


def builder_fields(builder: Context) -> list[dict[str, Any]]:
    """Each field the builder offers with its controls (the template a script puts in a
    row when its field is chosen; a page without the script posts the row as typed)."""
    return [
        field_controls(name, Condition(name, next(iter(spec.params))), builder)
        for name, spec in FIELDS.items()
    ]


def field_controls(name: str, row: Condition, builder: Context) -> dict[str, Any]:
    """A row's controls for its field: the key (a score's name picked among the
    project's, a metadata key), the operators the field takes, the value's input."""
    spec = FIELDS[name]
    key_choices: list[str] = []
    if name == "score":
        key_choices = list(builder.score_names)
        if row.key and row.key not in key_choices:
            key_choices.append(row.key)
    if spec.kind == "datetime" and row.value:
        row = dataclasses.replace(row, value=local_input_time(row.value))
    choices = builder.choices(name)
    if spec.kind == "choice" and row.value and row.value not in {v for v, _l in choices}:
        choices.append((row.value, row.value))
    return {
        "name": name,
        "label": spec.label,
        "key_label": spec.key,
        "key_choices": key_choices,
        "operators": [(op, OPERATORS[op]) for op in spec.params],
        "kind": spec.kind,
        "choices": choices,
        "unit": spec.unit,
        "row": row,
    }


def local_input_time(raw: str) -> str:
    """A time as a datetime-local input shows it (UTC when it has an offset); what
    cannot be read is left as typed."""
    parsed = parse_datetime(raw.strip())
    if parsed is None:
        return raw
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S")


def condition_rows(
    rows: list[Condition],
    *,
    params: dict[str, list[str]],
    errors: dict[str, list[str]],
    builder: Context,
    remove_url: Callable[[dict[str, list[str]]], str] | None = None,
) -> list[dict[str, Any]]:
    """The builder's rows as the page shows them: each row's controls, its chip (the
    condition in words, a link without it) and the reasons the filter gave for it."""
    shown = []
    for row in rows:
        problems = list(row.errors)
        for message in errors.get(row.param, []):
            # A repeated parameter's reasons name the value they are about.
            if row.param not in REPEATED_PARAMS or repr(row.raw) in message:
                problems.append(message.replace(f"{row.raw!r}: ", ""))
        if row.param in REPEATED_PARAMS and not problems:
            problems = [m for m in errors.get(row.param, []) if ": " not in m]
        rest = {k: list(v) for k, v in params.items()}
        if row.param in rest and row.raw in rest[row.param]:
            rest[row.param].remove(row.raw)
        unknown_score = (
            row.field == "score" and builder.score_names and row.key not in builder.score_names
        )
        shown.append(
            {
                "param": row.param,
                "chip": chip_text(row, builder),
                "note": "no score of this name in the project yet" if unknown_score else "",
                "remove_url": remove_url({k: v for k, v in rest.items() if v})
                if remove_url
                else "",
                "errors": problems,
                "controls": field_controls(row.field, row, builder) if row.spec else None,
                "row": row,
            }
        )
    return shown


def merged_params(*filters: Mapping[str, Any]) -> dict[str, list[str]]:
    """Filters' parameters together (all must hold): a repeatable parameter's values
    joined, another one's taken from the last filter that gives it."""
    merged: dict[str, list[str]] = {}
    for params in filters:
        for name in params:
            values = _listed(params, name)
            if not values:
                continue
            if name in REPEATED_PARAMS:
                merged.setdefault(name, []).extend(
                    v for v in values if v not in merged.get(name, [])
                )
            else:
                merged[name] = values[-1:]
    return merged


def page_context(
    rows: list[Condition],
    *,
    params: dict[str, list[str]],
    errors: Mapping[str, list[str]] | None = None,
    builder: Context,
) -> dict[str, Any]:
    """What ``traces/_filter_builder.html`` shows: the rows with their controls, chips
    and reasons, each field's controls (for the script's new rows), the operators, the
    project's score names and the values the pickers know."""
    return {
        "conditions": condition_rows(
            rows, params=params, errors=dict(errors or {}), builder=builder
        ),
        "builder_fields": builder_fields(builder),
        "all_operators": list(OPERATORS.items()),
        "score_names": list(builder.score_names),
        "known_values": sorted({label for name in FIELDS for _v, label in builder.choices(name)}),
    }
