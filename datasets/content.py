"""What an item is, as exported: the record, its hash, and the dataset's schema check.

The record (``ItemState.record()``) is what a revision stores and what JSONL exports
write line by line; its keys are the stable export columns (``COLUMNS``) plus
``reviews`` (the full review snapshot) and ``answers`` (one entry per reviewer and
question, ``"<reviewer>/<question>"``, and per turn a reviewer rated in a conversation,
``"<reviewer>/turn <n> rating"`` and ``"... note"``, which CSV and Parquet spread into
one column each).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from datasets.models import SCHEMA_SECTIONS
from hitl.exceptions import DomainError

MAX_KEY_LENGTH = 300

# What a person or client writes on a dataset item, in order: what the API and pages
# edit, an import reads, promotion may override, and every export starts with.
ITEM_CONTENT_FIELDS = (
    "input",
    "expected_output",
    "expected_tool_calls",
    "expected_outcome",
    "metadata",
    "tags",
    "failure_reason",
    "failure_modes",
    "explanation",
)
# Stable columns of every export, in order; answer columns follow them.
COLUMNS = (
    "id",
    *ITEM_CONTENT_FIELDS,
    "source_type",
    "source_trace_id",
    "source_span_id",
    "source_thread_id",
    "source_queue_item_id",
    "annotation_ids",
    "adjudication_id",
)
# Columns that hold JSON values (written as JSON text in CSV and Parquet).
JSON_COLUMNS = frozenset({"input", "expected_output", "expected_tool_calls", "metadata", "reviews"})
ANSWER_PREFIX = "answer:"


@dataclass
class ItemState:
    """Everything a dataset item says; the services build one per change."""

    key: str
    input: Any = None
    expected_output: Any = None
    expected_tool_calls: Any = None
    expected_outcome: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    failure_reason: str = ""
    failure_modes: list[str] = field(default_factory=list)
    explanation: str = ""
    source_type: str = "manual"
    trace_id: int | None = None
    span_id: int | None = None
    thread_id: int | None = None
    queue_item_id: int | None = None
    adjudication_id: int | None = None
    annotation_ids: list[int] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    # External ids of the sources, for the record (people and eval jobs know these).
    source_trace_id: str | None = None
    source_span_id: str | None = None
    source_thread_id: str | None = None

    def answers(self) -> dict[str, Any]:
        flat: dict[str, Any] = {}
        for review in self.reviews:
            who = review.get("reviewer") or "unknown"
            if review.get("adjudication"):
                who = f"adjudication ({who})"
            for question, value in (review.get("answers") or {}).items():
                flat[f"{who}/{question}"] = value
            # A conversation's turns rated one by one: "<who>/turn <n> rating" (and
            # "... note"), so the CSV and Parquet columns spread them too.
            for trace_id, entry in (review.get("turns") or {}).items():
                if not isinstance(entry, dict):
                    continue
                place = entry.get("turn") or trace_id
                if entry.get("rating"):
                    flat[f"{who}/turn {place} rating"] = entry["rating"]
                if entry.get("note"):
                    flat[f"{who}/turn {place} note"] = entry["note"]
        return flat

    def record(self) -> dict[str, Any]:
        return {
            "id": self.key,
            "input": self.input,
            "expected_output": self.expected_output,
            "expected_tool_calls": self.expected_tool_calls,
            "expected_outcome": self.expected_outcome,
            "metadata": self.metadata,
            "tags": list(self.tags),
            "failure_reason": self.failure_reason,
            "failure_modes": list(self.failure_modes),
            "explanation": self.explanation,
            "source_type": self.source_type,
            "source_trace_id": self.source_trace_id,
            "source_span_id": self.source_span_id,
            "source_thread_id": self.source_thread_id,
            "source_queue_item_id": self.queue_item_id,
            "annotation_ids": list(self.annotation_ids),
            "adjudication_id": self.adjudication_id,
            "reviews": self.reviews,
            "answers": self.answers(),
        }

    def item_fields(self) -> dict[str, Any]:
        """The DatasetItem columns this state sets."""
        return {
            "input": self.input,
            "expected_output": self.expected_output,
            "expected_tool_calls": self.expected_tool_calls,
            "expected_outcome": self.expected_outcome,
            "metadata": self.metadata,
            "tags": list(self.tags),
            "failure_reason": self.failure_reason,
            "failure_modes": list(self.failure_modes),
            "explanation": self.explanation,
            "source_type": self.source_type,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "thread_id": self.thread_id,
            "queue_item_id": self.queue_item_id,
            "adjudication_id": self.adjudication_id,
            "annotation_ids": list(self.annotation_ids),
            "reviews": self.reviews,
        }


ITEM_FIELDS = tuple(ItemState(key="").item_fields())


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def content_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


# --- the dataset's schema ------------------------------------------------------------------


def check_schema(schema: Any) -> dict[str, Any]:
    """A dataset schema: an object with optional JSON Schemas for input, expected_output
    and metadata. Raises DomainError naming the section that is wrong."""
    if schema in (None, ""):
        return {}
    if not isinstance(schema, dict):
        raise DomainError("The schema must be an object.", details={"schema": ["Not an object."]})
    errors: dict[str, list[str]] = {}
    for section, sub in schema.items():
        if section not in SCHEMA_SECTIONS:
            errors[section] = [f"Unknown section; use {', '.join(SCHEMA_SECTIONS)}."]
            continue
        if not isinstance(sub, dict):
            errors[section] = ["A JSON Schema object."]
            continue
        try:
            Draft202012Validator.check_schema(sub)
        except SchemaError as exc:
            errors[section] = [f"Not a valid JSON Schema: {exc.message}"]
    if errors:
        raise DomainError("The schema is not valid.", code="invalid_schema", details=errors)
    return schema


# --- a fast path for the common schemas ----------------------------------------------------
# jsonschema builds a validator object per subschema it descends into: about 80 µs a row
# for a small three-section schema, a quarter of a 100,000-row import. Schemas made only
# of the keywords below compile into plain Python checks that answer "valid" or "not
# sure"; "not sure" (and any schema with another keyword) asks jsonschema, which stays
# the authority and words the error. So the fast path only ever accepts what jsonschema
# accepts (tests/datasets/test_schema_fast_path.py compares the two).

Check = Callable[[Any], bool]
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "deprecated", "readOnly",
     "writeOnly", "format"}  # format is an annotation: Draft202012Validator asserts none
)  # fmt: skip
_TYPES: dict[str, Check] = {
    "null": lambda v: v is None,
    "boolean": lambda v: v is True or v is False,
    # 1.0 is an integer to jsonschema too, but "not sure" is always safe.
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) is int or type(v) is float,
    "string": lambda v: type(v) is str,
    "array": lambda v: type(v) is list,
    "object": lambda v: type(v) is dict,
}
_SCALARS = (str, int, float, bool, type(None))


class _Unsupported(Exception):
    pass


def _same(value: Any, allowed: Any) -> bool:
    # Scalars only, bool apart from numbers (as jsonschema's equal); a list or an
    # object is "not sure".
    if not isinstance(value, _SCALARS) or not isinstance(allowed, _SCALARS):
        return False
    if isinstance(value, bool) or isinstance(allowed, bool):
        return value is allowed
    if isinstance(value, str) or isinstance(allowed, str):
        return value == allowed
    return value == allowed


def _number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _compile(schema: Any) -> Check:
    """A check that is True only where jsonschema (Draft 2020-12) finds no error;
    raises _Unsupported for a keyword it does not know."""
    if schema is True or schema == {}:
        return lambda value: True
    if schema is False or not isinstance(schema, dict):
        raise _Unsupported
    checks: list[Check] = []
    for keyword, arg in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        if keyword == "type":
            names = [arg] if isinstance(arg, str) else arg
            if not isinstance(names, list) or any(n not in _TYPES for n in names):
                raise _Unsupported
            tests = [_TYPES[n] for n in names]
            checks.append(lambda v, tests=tests: any(t(v) for t in tests))
        elif keyword == "required" and isinstance(arg, list):
            names = list(arg)
            checks.append(lambda v, names=names: type(v) is not dict or all(n in v for n in names))
        elif (
            keyword == "properties" and isinstance(arg, dict) and "patternProperties" not in schema
        ):
            subs = {name: _compile(sub) for name, sub in arg.items()}
            checks.append(
                lambda v, subs=subs: (
                    type(v) is not dict or all(check(v[n]) for n, check in subs.items() if n in v)
                )
            )
        elif keyword == "additionalProperties" and "patternProperties" not in schema:
            known = set(schema.get("properties") or {})
            extra = _compile(arg) if arg is not False else None
            checks.append(
                lambda v, known=known, extra=extra: (
                    type(v) is not dict
                    or all(extra is not None and extra(v[n]) for n in v if n not in known)
                )
            )
        elif keyword == "items" and "prefixItems" not in schema:
            item = _compile(arg) if arg is not False else None
            checks.append(
                lambda v, item=item: (
                    type(v) is not list or (item is not None and all(item(e) for e in v)) or not v
                )
            )
        elif keyword in ("minItems", "maxItems", "minLength", "maxLength") and type(arg) is int:
            kind = list if keyword.endswith("Items") else str
            low = keyword.startswith("min")
            checks.append(
                lambda v, kind=kind, low=low, n=arg: (
                    type(v) is not kind or (len(v) >= n if low else len(v) <= n)
                )
            )
        elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") and (
            _number(arg)
        ):
            test = {
                "minimum": lambda v, n: v >= n,
                "maximum": lambda v, n: v <= n,
                "exclusiveMinimum": lambda v, n: v > n,
                "exclusiveMaximum": lambda v, n: v < n,
            }[keyword]
            checks.append(lambda v, test=test, n=arg: not _number(v) or test(v, n))
        elif keyword == "enum" and isinstance(arg, list):
            checks.append(lambda v, allowed=arg: any(_same(v, a) for a in allowed))
        elif keyword == "const":
            checks.append(lambda v, allowed=arg: _same(v, allowed))
        else:
            raise _Unsupported
    return lambda value: all(check(value) for check in checks)


def fast_check(schema: Any) -> Check | None:
    """The fast check of a schema, or None when it uses a keyword the fast path does
    not know (then jsonschema alone decides)."""
    try:
        return _compile(schema)
    except _Unsupported:
        return None


class SchemaCheck:
    """Compiled validators of a dataset's schema; ``errors(state)`` names every
    section that fails, with the path and reason."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.validators = {
            section: Draft202012Validator(sub)
            for section, sub in (schema or {}).items()
            if section in SCHEMA_SECTIONS and sub
        }
        self.fast = {section: fast_check(schema[section]) for section in self.validators}

    def errors(self, state: ItemState) -> list[str]:
        found: list[str] = []
        for section, validator in self.validators.items():
            value = getattr(state, section)
            fast = self.fast[section]
            if fast is not None and fast(value):
                continue
            error = next(iter(validator.iter_errors(value)), None)
            if error is not None:
                where = "/".join(str(part) for part in error.absolute_path)
                place = f"{section}/{where}" if where else section
                found.append(f"{place}: {error.message}")
        return found


def check_key(key: Any) -> str | None:
    """Why ``key`` cannot be an item id, or None."""
    if not isinstance(key, str | int) or isinstance(key, bool):
        return "id must be a string or an integer"
    text = str(key)
    if not text.strip():
        return "id is empty"
    if len(text) > MAX_KEY_LENGTH:
        return f"id is longer than {MAX_KEY_LENGTH} characters"
    if "\x00" in text:
        return "id contains a NUL character"
    return None
