"""What an item is, as exported: the record, its hash, and the dataset's schema check.

The record (``ItemState.record()``) is what a revision stores and what JSONL exports
write line by line; its keys are the stable export columns (``COLUMNS``) plus
``reviews`` (the full review snapshot) and ``answers`` (one entry per reviewer and
question, ``"<reviewer>/<question>"``, which CSV and Parquet spread into one column
each).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from datasets.models import SCHEMA_SECTIONS
from hitl.exceptions import DomainError

MAX_KEY_LENGTH = 300

# Stable columns of every export, in order; answer columns follow them.
COLUMNS = (
    "id",
    "input",
    "expected_output",
    "expected_tool_calls",
    "expected_outcome",
    "metadata",
    "tags",
    "failure_reason",
    "failure_modes",
    "explanation",
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


class SchemaCheck:
    """Compiled validators of a dataset's schema; ``errors(state)`` names every
    section that fails, with the path and reason."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.validators = {
            section: Draft202012Validator(sub)
            for section, sub in (schema or {}).items()
            if section in SCHEMA_SECTIONS and sub
        }

    def errors(self, state: ItemState) -> list[str]:
        found: list[str] = []
        for section, validator in self.validators.items():
            error = next(iter(validator.iter_errors(getattr(state, section))), None)
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
