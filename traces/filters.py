"""The trace filter: one FilterSet behind the trace list, routing rules and bulk actions.

Parameters are query-string values. Repeatable ones (``tags``, ``metadata``, ``score``)
are given once per value: ``?score=correctness<0.5&score=toxicity>=0.8``. Every value is
validated; a bad one is reported under its parameter name, never silently ignored.

Conditions on related rows (span models, scores, feedback) are ``EXISTS`` subqueries
keyed on the trace, so they combine with the list's newest-first index scan and never
multiply rows.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import django_filters
from django import forms
from django.db.models import BooleanField, Exists, Func, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field

from hitl import filtering, text
from hitl.filtering import MAX_TEXT_LENGTH, StrictBooleanFilter, TextFilter
from traces import hooks, score_summary
from traces.models import (
    AUTOMATED_SCORE_SOURCES,
    Feedback,
    FeedbackKind,
    Score,
    ScoreSource,
    Span,
    Status,
    Thread,
    Trace,
)

MAX_REPEATED_VALUES = 20
MIN_SEARCH_LENGTH = 3

# The same expression as the trigram index in migration 0100_read_indexes: PostgreSQL
# uses an expression index only when the query spells the expression identically.
TRACE_TEXT_SQL = "(coalesce((input)::text, '') || ' ' || coalesce((output)::text, ''))"


class IdInArray(Func):
    """``id = ANY(array)``: a list of ids as one array parameter."""

    template = "(%(expressions)s))"
    arg_joiner = " = ANY("
    output_field = BooleanField()


# --- fields ------------------------------------------------------------------------
class RepeatedValuesWidget(forms.TextInput):
    """Reads every occurrence of a parameter (``?tags=a&tags=b``)."""

    def format_value(self, value):
        # The browsable API's filter form shows the values as one line.
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value) or None
        return super().format_value(value)

    def value_from_datadict(self, data, files, name):
        if hasattr(data, "getlist"):
            return data.getlist(name)
        value = data.get(name)
        if value is None:
            return []
        return list(value) if isinstance(value, list | tuple) else [value]


class RepeatedValuesField(forms.Field):
    """A list of strings, each checked by ``parse_one``; errors name the bad value."""

    widget = RepeatedValuesWidget

    def __init__(self, *, parse_one=None, **kwargs) -> None:
        self.parse_one = parse_one or _parse_plain_text
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in (None, ""):
            return []
        values = value if isinstance(value, list | tuple) else [value]
        return [v for v in values if isinstance(v, str) and v.strip() != ""]

    def clean(self, value):
        values = self.to_python(value)
        if len(values) > MAX_REPEATED_VALUES:
            raise forms.ValidationError(f"At most {MAX_REPEATED_VALUES} values.")
        parsed, errors = [], []
        for raw in values:
            try:
                parsed.append(self.parse_one(raw))
            except forms.ValidationError as exc:
                errors.extend(f"{raw!r}: {message}" for message in exc.messages)
        if errors:
            raise forms.ValidationError(errors)
        return parsed


def _parse_plain_text(raw: str) -> str:
    value = raw.strip()
    if len(value) > MAX_TEXT_LENGTH:
        raise forms.ValidationError(f"At most {MAX_TEXT_LENGTH} characters.")
    problem = text.unstorable(value)
    if problem:
        raise forms.ValidationError(problem)
    return value


@dataclass(frozen=True)
class MetadataCondition:
    key: str
    value: str


def parse_metadata_condition(raw: str) -> MetadataCondition:
    key, sep, value = raw.partition(":")
    key = key.strip()
    if not sep or not key:
        raise forms.ValidationError("Use key:value, e.g. customer:acme.")
    return MetadataCondition(key=_parse_plain_text(key), value=_parse_plain_text(value))


SCORE_OPERATORS = ("<=", ">=", "!=", "<", ">", "=")
_SCORE_PATTERN = re.compile(
    r"^\s*(?P<name>[^<>=!]+?)\s*(?:(?P<op><=|>=|!=|<|>|=)\s*(?P<value>.*?))?\s*$"
)


@dataclass(frozen=True)
class ScoreCondition:
    name: str
    operator: str | None = None  # None: any score of that name
    number: float | None = None
    label: str | None = None


def parse_score_condition(raw: str) -> ScoreCondition:
    match = _SCORE_PATTERN.match(raw)
    if not match:
        raise forms.ValidationError(
            "Use name<op>value with op one of < <= > >= = !=, e.g. correctness<0.5."
        )
    name = _parse_plain_text(match["name"])
    operator, value = match["op"], match["value"]
    if operator is None:
        return ScoreCondition(name=name)
    if value == "":
        raise forms.ValidationError(f"A value is needed after {operator}.")
    lowered = value.lower()
    if lowered in ("true", "false"):
        # Boolean scores are stored as 1 and 0.
        value = "1" if lowered == "true" else "0"
    try:
        number = float(value)
    except ValueError:
        if operator not in ("=", "!="):
            raise forms.ValidationError(
                f"{operator} needs a number; compare labels with = or !=."
            ) from None
        return ScoreCondition(name=name, operator=operator, label=_parse_plain_text(value))
    if not math.isfinite(number):
        raise forms.ValidationError("The value must be a finite number.")
    return ScoreCondition(name=name, operator=operator, number=number)


# --- filters -------------------------------------------------------------------------
@extend_schema_field({"type": "array", "items": {"type": "string"}})
class RepeatedValuesFilter(django_filters.Filter):
    field_class = RepeatedValuesField


class FeedbackChoice:
    THUMBS_UP = "thumbs_up"
    THUMBS_DOWN = "thumbs_down"
    ANY = "any"
    NONE = "none"
    choices = (
        (THUMBS_UP, "At least one thumbs up"),
        (THUMBS_DOWN, "At least one thumbs down"),
        (ANY, "Any end-user feedback"),
        (NONE, "No end-user feedback"),
    )


def _range(field_name: str, label: str) -> tuple:
    """At least and at most; the column's type bounds the values (``hitl.filtering``)."""
    number_filter = django_filters.NumberFilter
    low = number_filter(field_name=field_name, lookup_expr="gte", label=f"{label}, at least")
    high = number_filter(field_name=field_name, lookup_expr="lte", label=f"{label}, at most")
    return low, high


class TraceFilter(filtering.FilterSet):
    start_time_from = django_filters.IsoDateTimeFilter(
        field_name="start_time", lookup_expr="gte", label="Started at or after (ISO 8601)"
    )
    start_time_to = django_filters.IsoDateTimeFilter(
        field_name="start_time", lookup_expr="lt", label="Started before (ISO 8601)"
    )
    name = TextFilter(field_name="name", label="Trace name, exactly")
    name_contains = TextFilter(
        field_name="name", lookup_expr="icontains", label="Trace name contains (any case)"
    )
    tags = RepeatedValuesFilter(
        method="filter_tags", label="Has every one of these tags (repeat the parameter)"
    )
    thread = TextFilter(field_name="thread__external_id", label="Thread (session) external id")
    user_id = TextFilter(field_name="user_id", label="End user id")
    environment = TextFilter(field_name="environment", label="Environment")
    release = TextFilter(field_name="release", label="Release")
    model = TextFilter(method="filter_model", label="At least one span used this model")
    status = django_filters.ChoiceFilter(
        field_name="status", choices=Status.choices, label="Trace status"
    )
    has_error = StrictBooleanFilter(
        method="filter_has_error", label="true: status is error; false: it is not"
    )
    latency_ms_min, latency_ms_max = _range("latency_ms", "Latency in ms")
    cost_min, cost_max = _range("cost", "Cost")
    total_tokens_min, total_tokens_max = _range("total_tokens", "Total tokens")
    input_tokens_min, input_tokens_max = _range("input_tokens", "Input tokens")
    output_tokens_min, output_tokens_max = _range("output_tokens", "Output tokens")
    metadata = RepeatedValuesFilter(
        method="filter_metadata",
        label="Metadata key:value, e.g. customer:acme (repeat for more; all must match)",
        parse_one=parse_metadata_condition,
    )
    score = RepeatedValuesFilter(
        method="filter_score",
        label=(
            "Automated score (LLM judge or code) condition name<op>value, op one of "
            "< <= > >= = !=, e.g. correctness<0.5; a label with = or !=; a bare name means "
            "any score of that name (repeat for more; all must match)"
        ),
        parse_one=parse_score_condition,
    )
    feedback = django_filters.ChoiceFilter(
        method="filter_feedback", choices=FeedbackChoice.choices, label="End-user feedback"
    )
    feedback_rating_min = django_filters.NumberFilter(
        method="filter_feedback_rating", label="Has an end-user rating of at least this"
    )
    feedback_rating_max = django_filters.NumberFilter(
        method="filter_feedback_rating", label="Has an end-user rating of at most this"
    )
    reviewed = StrictBooleanFilter(
        method="filter_reviewed", label="true: a person has scored it; false: nobody has"
    )
    reviewer = django_filters.NumberFilter(
        method="filter_reviewer", label="This person (a user id) has scored it"
    )
    q = django_filters.CharFilter(
        method="filter_text",
        min_length=MIN_SEARCH_LENGTH,
        max_length=MAX_TEXT_LENGTH,
        label="Text in the trace's input or output (any case, at least 3 characters)",
    )

    class Meta:
        model = Trace
        fields: list[str] = []

    def __init__(
        self, *args, project: Any = None, rare_limit: int = 0, viewer: Any = None, **kwargs
    ) -> None:
        """``project`` (the queryset's) also narrows the related rows a condition reads,
        so PostgreSQL can use their per-project indexes when it hashes them.

        With ``rare_limit``, each condition on scores or feedback that at most that many
        rows of the project satisfy also records those rows' trace ids (one short
        index-only query) in ``rare_trace_ids``: a superset of the matching traces that
        a list can fetch by id instead of probing the newest traces one by one.

        ``viewer`` (the signed-in reader; None for an API key or a task) limits the
        scores a condition may look at to those the viewer may see."""
        super().__init__(*args, **kwargs)
        self.project = project
        self.viewer = viewer
        self.rare_limit = rare_limit
        self.rare_trace_ids: list[set[int]] = []
        self._visible: Q | None = None

    def _where_related(
        self,
        queryset: QuerySet,
        matching: QuerySet,
        *,
        negate: bool = False,
        visible: Q | None = None,
        signal: Q | None = None,
    ) -> QuerySet:
        """Traces with (or, ``negate``, without) a row in ``matching`` (a queryset of
        scores or feedback) pointing at them; with ``visible``, a row the reader may see.

        The rare read of trace ids leaves ``visible`` out: a row the reader may not see
        only adds a trace to the superset, which the exact condition (with ``visible``)
        then leaves out, so the list is the same. Kept in, the blind rule's correlated
        subquery (which needs each row's thread and author) would run for every matching
        row of the project, and the read could no longer come from the covering index
        (``score_project_name_value_trace``) alone.

        ``signal`` (from ``traces.score_summary``) is what the trace's own row must say for
        the condition to be possible: the walk skips the others without probing
        ``matching``. It only ever narrows to a superset, so the exact condition stays."""
        if self.project is not None:
            matching = matching.filter(project=self.project)
        if self.rare_limit > 0 and not negate:
            trace_ids = list(
                matching.filter(trace_id__isnull=False)
                .order_by()
                .values_list("trace_id", flat=True)[: self.rare_limit + 1]
            )
            if len(trace_ids) <= self.rare_limit:
                self.rare_trace_ids.append(set(trace_ids))
        if visible is not None:
            matching = matching.filter(visible)
        correlated = Exists(matching.filter(trace_id=OuterRef("pk")))
        if negate:
            return queryset.exclude(correlated)
        if signal is not None:
            queryset = queryset.filter(signal)
        return queryset.filter(correlated)

    # --- methods --------------------------------------------------------------------
    def filter_tags(self, queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
        return queryset.filter(tags__contains=value)

    def filter_model(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # Always a probe per trace: a project uses a handful of models, so a model is
        # rarely rare, and reading span rows (1M of them) by model would cost more.
        return queryset.filter(Exists(Span.objects.filter(trace_id=OuterRef("pk"), model=value)))

    def filter_has_error(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        if value:
            return queryset.filter(status=Status.ERROR)
        return queryset.exclude(status=Status.ERROR)

    def filter_metadata(
        self, queryset: QuerySet, name: str, value: list[MetadataCondition]
    ) -> QuerySet:
        for condition in value:
            # "tier:3" matches the string "3" and the number 3; "beta:true" the boolean.
            alternatives = Q(metadata__contains={condition.key: condition.value})
            scalar = _json_scalar(condition.value)
            if scalar is not None:
                alternatives |= Q(metadata__contains={condition.key: scalar})
            queryset = queryset.filter(alternatives)
        return queryset

    def _scores_visible(self) -> Q:
        """The scores a condition may look at: those the reader may see (a blind reviewer
        cannot learn a hidden judge score by filtering on it). Asked once per filter."""
        if self._visible is None:
            self._visible = hooks.scores_visible_to(self.viewer)
        return self._visible

    def filter_score(self, queryset: QuerySet, name: str, value: list[ScoreCondition]) -> QuerySet:
        for condition in value:
            scores = Score.objects.filter(name=condition.name, source__in=AUTOMATED_SCORE_SOURCES)
            queryset = self._where_related(
                queryset,
                _apply_score_condition(scores, condition),
                visible=self._scores_visible(),
                signal=score_summary.score_may_match(
                    condition.name, condition.operator, condition.number
                ),
            )
        return queryset

    def filter_feedback(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        feedback = Feedback.objects.all()
        if value == FeedbackChoice.NONE:
            return self._where_related(queryset, feedback, negate=True)
        if value == FeedbackChoice.THUMBS_UP:
            feedback = feedback.filter(kind=FeedbackKind.THUMBS, value__gt=0)
        elif value == FeedbackChoice.THUMBS_DOWN:
            feedback = feedback.filter(kind=FeedbackKind.THUMBS, value__lt=0)
        return self._where_related(
            queryset, feedback, signal=score_summary.feedback_may_match(value)
        )

    def filter_feedback_rating(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        # Both ends are applied together, on the same rating row, by filter_queryset.
        return queryset

    def filter_reviewed(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        human_scores = Score.objects.filter(source=ScoreSource.HUMAN)
        return self._where_related(
            queryset,
            human_scores,
            negate=not value,
            visible=self._scores_visible(),
            signal=score_summary.human_scored(),
        )

    def filter_reviewer(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        if value != int(value) or not 0 < value <= text.INT64_MAX:
            return queryset.none()  # no user has that id
        scores = Score.objects.filter(source=ScoreSource.HUMAN, author_id=int(value))
        return self._where_related(
            queryset, scores, visible=self._scores_visible(), signal=score_summary.human_scored()
        )

    def filter_text(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        pattern = "%" + _escape_like(value) + "%"
        # The SQL is a constant (it must match the index); the search text is a parameter.
        matches = RawSQL(f"{TRACE_TEXT_SQL} ILIKE %s", (pattern,), output_field=BooleanField())  # noqa: S611
        return queryset.filter(matches)

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        low = self.form.cleaned_data.get("feedback_rating_min")
        high = self.form.cleaned_data.get("feedback_rating_max")
        if low is not None or high is not None:
            ratings = Feedback.objects.filter(kind=FeedbackKind.RATING)
            if low is not None:
                ratings = ratings.filter(value__gte=low)
            if high is not None:
                ratings = ratings.filter(value__lte=high)
            queryset = self._where_related(
                queryset, ratings, signal=score_summary.rating_may_match(low, high)
            )
        return queryset


def _apply_score_condition(scores: QuerySet, condition: ScoreCondition) -> QuerySet:
    if condition.operator is None:
        return scores
    if condition.label is not None:
        if condition.operator == "=":
            return scores.filter(label=condition.label)
        return scores.exclude(label=condition.label)
    lookups = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "=": "exact"}
    if condition.operator == "!=":
        return scores.filter(value__isnull=False).exclude(value=condition.number)
    return scores.filter(**{f"value__{lookups[condition.operator]}": condition.number})


def _json_scalar(text: str) -> Any:
    """The number or boolean a metadata value spells, if it spells one."""
    if text in ("true", "false"):
        return text == "true"
    try:
        number = json.loads(text)
    except ValueError:
        return None
    if isinstance(number, bool) or not isinstance(number, int | float):
        return None
    if isinstance(number, float) and not math.isfinite(number):
        return None  # NaN, Infinity, 1e999: JSON has no such number, so no value is one
    return number


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ThreadFilter(filtering.FilterSet):
    """The thread list's parameters."""

    created_from = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="First seen at or after (ISO 8601)"
    )
    created_to = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label="First seen before (ISO 8601)"
    )

    class Meta:
        model = Thread
        fields: list[str] = []


# --- the list's order ------------------------------------------------------------------
SORT_COLUMNS = {
    "start_time": "Started",
    "latency_ms": "Duration",
    "total_tokens": "Tokens",
    "cost": "Cost",
}
SCORE_SORT_PREFIX = "score:"
DEFAULT_SORT = "-start_time"
SORT_HELP = (
    "Sort by start_time, latency_ms, total_tokens, cost or score:<name> (the average of "
    "that score's values on the trace); a leading - sorts descending. Traces without a "
    "value come last either way."
)


@dataclass(frozen=True)
class TraceSort:
    """The order of a trace list: a column (or a score's average, ``score_name``), its
    direction, ties broken by id in the same direction, traces without a value last."""

    column: str = "start_time"
    descending: bool = True
    score_name: str = ""

    @property
    def key(self) -> str:
        """The sort as a parameter value (``-start_time``, ``score:correctness``)."""
        body = f"{SCORE_SORT_PREFIX}{self.score_name}" if self.score_name else self.column
        return ("-" if self.descending else "") + body

    @property
    def label(self) -> str:
        if self.column == "start_time":
            return "Newest first" if self.descending else "Oldest first"
        name = f"score “{self.score_name}”" if self.score_name else SORT_COLUMNS[self.column]
        return f"{name}, {'highest' if self.descending else 'lowest'} first"


def parse_sort(raw: str) -> TraceSort:
    """A sort parameter as a ``TraceSort``; ``forms.ValidationError`` with the reason."""
    value = (raw or "").strip() or DEFAULT_SORT
    descending = value.startswith("-")
    body = value[1:] if descending else value
    if body.startswith(SCORE_SORT_PREFIX):
        name = body[len(SCORE_SORT_PREFIX) :].strip()
        if not name:
            raise forms.ValidationError("Name the score to sort by, e.g. score:correctness.")
        return TraceSort(column="score", descending=descending, score_name=_parse_plain_text(name))
    if body not in SORT_COLUMNS:
        raise forms.ValidationError(
            "Sort by one of start_time, latency_ms, total_tokens, cost or score:<name>, "
            "with a leading - for descending."
        )
    return TraceSort(column=body, descending=descending)


NO_VALUE = object()  # a cursor's value that could not be read


def sort_cursor(sort: TraceSort, value: Any, pk: int) -> str:
    """``<value>|<id>`` of the last row of a page, the value empty when the row has none."""
    if value is None:
        shown = ""
    elif isinstance(value, datetime):
        shown = value.isoformat()
    elif isinstance(value, float):
        shown = repr(value)
    else:
        shown = str(value)
    return f"{shown}|{pk}"


def parse_sort_cursor(sort: TraceSort, raw: str) -> tuple[Any, int] | None:
    """A cursor written by ``sort_cursor`` for ``sort``, or None when it is not one."""
    shown, sep, pk = raw.rpartition("|")
    if not sep or not pk.isascii() or not pk.isdigit() or int(pk) > text.INT64_MAX:
        return None
    if shown == "":
        return None, int(pk)
    value: Any = NO_VALUE
    try:
        if sort.column == "start_time":
            value = parse_datetime(shown)
            if value is None or value.tzinfo is None:
                value = NO_VALUE
        elif sort.column == "total_tokens":
            if shown.lstrip("-").isascii() and shown.lstrip("-").isdigit():
                value = int(shown)
                if abs(value) > text.INT64_MAX:
                    value = NO_VALUE
        elif sort.column == "cost":
            value = Decimal(shown)
            if not value.is_finite() or abs(value) >= 10**10:
                value = NO_VALUE
        else:
            value = float(shown)
            if not math.isfinite(value):
                value = NO_VALUE
    except (ValueError, ArithmeticError):
        value = NO_VALUE
    if value is NO_VALUE:
        return None
    return value, int(pk)
