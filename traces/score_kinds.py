"""What each score data type means, in one object per type: ``score_kind(data_type)``.

A score is numeric, categorical, boolean or free text (``traces.models.ScoreDataType``).
Everything that depends on which (ingestion's checks, a reviewer's answer and the score
row it becomes, calibration's equality, alignment's pass, how an answer reads) asks
the kind instead of switching on the type:

    kind = score_kind(config.data_type)
    if reason := kind.answer_error(config, value): ...
    Score(**kind.score_fields(config, value))

A question (``config``) is read by duck typing: ``min_value``, ``max_value``, ``step``,
``options`` (``[{"label", "value"}]``) and ``ordered``, as ``review.models.ScoreConfig``
has them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

from traces.models import ScoreDataType

MAX_TEXT_ANSWER = 20_000  # characters of a free-text answer
MAX_SCORE_LABEL = 256  # characters of Score.label


def is_number(value: Any) -> bool:
    """A finite int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class ScoreRefused(ValueError):
    """An ingested score its kind refuses: ``code`` (missing_field, invalid_value) and why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class ScoreKind:
    """The behaviour of one data type; the four instances are :data:`KINDS`."""

    data_type: ClassVar[str]
    numeric: ClassVar[bool] = False  # answers on a scale: bounds, steps, spreads and tolerances
    has_options: ClassVar[bool] = False  # answers one of the question's options (ordered or not)
    yes_no: ClassVar[bool] = False  # answers true or false
    free_text: ClassVar[bool] = False  # no pass or fail, agreement, adjudication or gold
    labelled: ClassVar[bool] = False  # its answer is a label (may become an expected output)
    ingests_number: ClassVar[bool] = True  # an ingested value is read as a number

    # --- ingestion ---------------------------------------------------------------------
    def ingested_value(self, raw_value: Any, number: float | None, label: str) -> float | None:
        """The stored value of an ingested score, or raises :class:`ScoreRefused`.
        ``number`` is ``raw_value`` read as a number when :attr:`ingests_number` (None
        if absent)."""
        if self.labelled and not label:
            raise ScoreRefused("missing_field", f"a {self.data_type} score needs a label")
        return number

    def ingested_label(self, value: float | None, label: str) -> str:
        return label

    # --- a reviewer's answer -----------------------------------------------------------
    def answer_error(self, config: Any, value: Any) -> str | None:
        """None if ``value`` answers ``config``, else the reason it does not."""
        raise NotImplementedError

    def score_fields(self, config: Any, value: Any) -> dict[str, Any]:
        """The ``value`` and ``label`` of the Score row an answer becomes."""
        raise NotImplementedError

    # --- comparing and reading answers ---------------------------------------------------
    def equal(self, answer: Any, other: Any, tolerance: float = 0.0) -> bool:
        """Whether two answers are the same (calibration against gold)."""
        return answer == other

    def render(self, value: Any) -> str:
        """An answer as a person reads it."""
        return "—" if value is None else str(value)

    def passes(self, value: Any, *, threshold: float | None, pass_labels: Any = ()) -> bool:
        """Whether a value passes (metric alignment): a label among ``pass_labels``; a
        number from ``threshold`` up; a boolean when true."""
        return value in pass_labels


class NumericKind(ScoreKind):
    data_type = ScoreDataType.NUMERIC
    numeric = True

    def ingested_value(self, raw_value: Any, number: float | None, label: str) -> float | None:
        if number is None:
            raise ScoreRefused("missing_field", "a numeric score needs a value")
        return number

    def answer_error(self, config: Any, value: Any) -> str | None:
        if not is_number(value):
            return "A number is expected."
        if value < config.min_value or value > config.max_value:
            return f"Must be between {config.min_value:g} and {config.max_value:g}."
        if config.step:
            steps = (value - config.min_value) / config.step
            if abs(steps - round(steps)) > 1e-9:
                return f"Must be a multiple of {config.step:g} from {config.min_value:g}."
        return None

    def score_fields(self, config: Any, value: Any) -> dict[str, Any]:
        return {"value": float(value), "label": ""}

    def equal(self, answer: Any, other: Any, tolerance: float = 0.0) -> bool:
        return is_number(answer) and is_number(other) and abs(answer - other) <= tolerance + 1e-9

    def passes(self, value: Any, *, threshold: float | None, pass_labels: Any = ()) -> bool:
        return value >= threshold

    def render(self, value: Any) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{value:g}"
        return super().render(value)


class CategoricalKind(ScoreKind):
    data_type = ScoreDataType.CATEGORICAL
    labelled = True
    has_options = True

    def answer_error(self, config: Any, value: Any) -> str | None:
        labels = [option["label"] for option in config.options]
        if value not in labels:
            return f"Unknown option {value!r}; one of: {', '.join(labels)}."
        return None

    def score_fields(self, config: Any, value: Any) -> dict[str, Any]:
        option = next(o for o in config.options if o["label"] == value)
        return {"value": float(option["value"]), "label": value}


class BooleanKind(ScoreKind):
    data_type = ScoreDataType.BOOLEAN
    ingests_number = False
    yes_no = True

    def ingested_value(self, raw_value: Any, number: float | None, label: str) -> float | None:
        if isinstance(raw_value, bool):
            return 1.0 if raw_value else 0.0
        if raw_value in (0, 1):
            return float(raw_value)
        raise ScoreRefused("invalid_value", "a boolean score needs value true/false (or 1/0)")

    def ingested_label(self, value: float | None, label: str) -> str:
        return label or ("true" if value else "false")

    def answer_error(self, config: Any, value: Any) -> str | None:
        return None if isinstance(value, bool) else "true or false is expected."

    def score_fields(self, config: Any, value: Any) -> dict[str, Any]:
        return {"value": 1.0 if value else 0.0, "label": "true" if value else "false"}

    def passes(self, value: Any, *, threshold: float | None, pass_labels: Any = ()) -> bool:
        return bool(value)

    def render(self, value: Any) -> str:
        return super().render(value) if value is None else ("true" if value else "false")


class TextKind(ScoreKind):
    data_type = ScoreDataType.TEXT
    free_text = True
    labelled = True

    def answer_error(self, config: Any, value: Any) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return "Non-empty text is expected."
        if len(value) > MAX_TEXT_ANSWER:
            return f"At most {MAX_TEXT_ANSWER} characters."
        return None

    def score_fields(self, config: Any, value: Any) -> dict[str, Any]:
        return {"value": None, "label": value[:MAX_SCORE_LABEL]}


KINDS: dict[str, ScoreKind] = {
    kind.data_type: kind for kind in (NumericKind(), CategoricalKind(), BooleanKind(), TextKind())
}


def score_kind(data_type: str) -> ScoreKind:
    """The kind of ``data_type`` (a ``ScoreDataType`` value); ``KeyError`` if unknown."""
    return KINDS[data_type]


def data_types(predicate: Callable[[ScoreKind], bool]) -> list[str]:
    """The data types whose kind satisfies ``predicate`` (e.g. ``lambda k: k.free_text``),
    for a query that filters on the type."""
    return [data_type for data_type, kind in KINDS.items() if predicate(kind)]


def infer_data_type(raw_value: Any, label: str) -> str | None:
    """The data type an ingested score that names none has: a bool is boolean, another
    value numeric, a label alone categorical; None when it has neither."""
    if isinstance(raw_value, bool):
        return ScoreDataType.BOOLEAN
    if raw_value is not None:
        return ScoreDataType.NUMERIC
    if label:
        return ScoreDataType.CATEGORICAL
    return None
