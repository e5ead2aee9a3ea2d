"""The schema fast path accepts only what jsonschema accepts, and is used for the
schemas people write."""

from __future__ import annotations

import random
from typing import Any

from jsonschema import Draft202012Validator

from datasets.content import ItemState, SchemaCheck, fast_check

KEYS = ["q", "age", "lang", "tags", "x"]
SCALARS: list[Any] = [None, True, False, 0, 1, -3, 1.0, 2.5, "", "a", "abc", "en", "1"]


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.random()
    if depth >= 2 or kind < 0.5:
        return rng.choice(SCALARS)
    if kind < 0.75:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {k: _value(rng, depth + 1) for k in rng.sample(KEYS, rng.randint(0, 3))}


def _schema(rng: random.Random, depth: int = 0) -> Any:
    if depth >= 2 or rng.random() < 0.2:
        return rng.choice([True, False, {}, {"type": "string"}, {"type": ["integer", "null"]}])
    schema: dict[str, Any] = {}
    for _ in range(rng.randint(1, 3)):
        keyword = rng.choice(
            ["type", "required", "properties", "additionalProperties", "items", "minItems",
             "maxItems", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
             "exclusiveMaximum", "enum", "const", "description", "format", "pattern"]
        )  # fmt: skip
        if keyword == "type":
            names = ["null", "boolean", "integer", "number", "string", "array", "object"]
            schema["type"] = rng.choice([rng.choice(names), rng.sample(names, 2)])
        elif keyword == "required":
            schema["required"] = rng.sample(KEYS, rng.randint(0, 2))
        elif keyword == "properties":
            schema["properties"] = {
                k: _schema(rng, depth + 1) for k in rng.sample(KEYS, rng.randint(1, 2))
            }
        elif keyword in ("additionalProperties", "items"):
            schema[keyword] = _schema(rng, depth + 1)
        elif keyword in ("minItems", "maxItems", "minLength", "maxLength"):
            schema[keyword] = rng.randint(0, 2)
        elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            schema[keyword] = rng.choice([0, 1, 1.5])
        elif keyword == "enum":
            schema["enum"] = rng.sample(SCALARS, 3) + rng.choice([[], [[1]], [{"q": "a"}]])
        elif keyword == "const":
            schema["const"] = rng.choice(SCALARS)
        elif keyword == "pattern":
            schema["pattern"] = "^a"  # not in the fast path: jsonschema decides alone
        else:
            schema[keyword] = "date" if keyword == "format" else "about it"
    return schema


def test_the_fast_path_never_accepts_what_jsonschema_refuses():
    rng = random.Random(20261123)
    values = [_value(rng) for _ in range(60)] + SCALARS
    compiled = accepted = 0
    for _ in range(400):
        schema = _schema(rng)
        fast = fast_check(schema)
        if fast is None:
            continue
        compiled += 1
        validator = Draft202012Validator(schema)
        for value in values:
            if fast(value):
                accepted += 1
                assert validator.is_valid(value), (schema, value)
    # The comparison is not vacuous: most schemas compile, many values pass.
    assert compiled > 250 and accepted > 2_000, (compiled, accepted)


def test_common_schemas_take_the_fast_path_and_errors_keep_their_wording():
    schema = {
        "input": {
            "type": "object",
            "required": ["question"],
            "properties": {"question": {"type": "string"}, "patient_age": {"type": "integer"}},
        },
        "expected_output": {"type": "object", "required": ["answer"]},
        "metadata": {"type": "object", "properties": {"lang": {"enum": ["en", "de"]}}},
    }
    check = SchemaCheck(schema)
    assert all(fast is not None for fast in check.fast.values())
    good = ItemState(
        key="a",
        input={"question": "dose?", "patient_age": 40},
        expected_output={"answer": "2 g"},
        metadata={"lang": "de"},
    )
    assert all(check.fast[s](getattr(good, s)) for s in check.fast) and check.errors(good) == []
    bad = ItemState(key="b", input={"question": 5}, expected_output={}, metadata={"lang": "fr"})
    assert check.errors(bad) == [
        "input/question: 5 is not of type 'string'",
        "expected_output: 'answer' is a required property",
        "metadata/lang: 'fr' is not one of ['en', 'de']",
    ]
    # 1.0 is an integer to jsonschema: the fast path is not sure, jsonschema accepts it.
    whole = ItemState(
        key="c",
        input={"question": "q", "patient_age": 40.0},
        expected_output={"answer": "x"},
        metadata={},
    )
    assert not check.fast["input"](whole.input) and check.errors(whole) == []
    # A keyword outside the fast path: jsonschema alone decides.
    assert fast_check({"type": "string", "pattern": "^a"}) is None
    assert fast_check({"$ref": "#/$defs/x", "$defs": {"x": {}}}) is None
