"""Routing strategies: how a routing rule picks among the traces its filter matches, and
why it picked each one.

* ``match_and_sample`` (the default): every trace the filter matches.
* ``uncertainty_band``: traces whose automated score ``score_name`` lies in
  ``[low, high]`` (a judge unsure of itself: a probability near 0.5, a grade in the
  middle of its scale).
* ``judges_disagree``: traces where two automated scores, ``score_a`` and ``score_b``,
  disagree: numeric ones by at least ``min_difference`` (absent: any difference),
  categorical or boolean ones by any difference in label or value.
* ``reviewers_disagree``: traces whose item in the rule's ``source_queue`` went to
  adjudication because its reviewers disagreed (``review.adjudication``); the rule's own
  queue, whose pool is the extra or senior reviewers, gets the trace for one more
  review. The source item still waits for its adjudication as before.

Scores read are automated ones (``AUTOMATED_SCORE_SOURCES``) on the trace itself, the
latest of a name per trace; only the project's own are read. Each strategy is a small
class with ``check`` (its parameters, raising ``DomainError`` with per-field reasons)
and ``choose`` (trace id -> reason, in words). After the strategy, routing still draws
its sample and keeps the rule's daily cap (the budget per day).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from hitl import outbox
from hitl.exceptions import DomainError
from projects.models import Project
from review.models import (
    Annotation,
    ItemStatus,
    ItemTarget,
    QueueItem,
    ReviewQueue,
    RoutingRule,
    RoutingStrategy,
)
from traces.models import AUTOMATED_SCORE_SOURCES, Score, ScoreDataType

# The outbox task that routes traces by the project's rules (review.tasks handles it):
# named here, below review.services.routing, which enqueues it too.
ROUTE_TRACES = "review.route_traces"

# Between a band's bottom and top in reasons (an en dash).
DASH = "\u2013"
# The longest score name a strategy takes (Score.name's length).
SCORE_NAME_MAX = 256


class StrategySpec(Protocol):
    """What a strategy reads of a rule (a saved ``RoutingRule`` or a form's draft)."""

    strategy: str
    strategy_params: Mapping[str, Any]
    source_queue_id: int | None


@dataclass
class DraftSpec:
    """A rule not yet saved, for the preview."""

    strategy: str = RoutingStrategy.MATCH_AND_SAMPLE
    strategy_params: Mapping[str, Any] = field(default_factory=dict)
    source_queue_id: int | None = None


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float | int) else str(value)


def _finite(params: Mapping[str, Any], key: str, errors: dict[str, list[str]]) -> float | None:
    raw = params.get(key)
    if raw is None or raw == "" or isinstance(raw, bool):
        errors[key] = ["A number is required."]
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        errors[key] = ["A number is required."]
        return None
    if not math.isfinite(value):
        errors[key] = ["A finite number (not NaN or infinity)."]
        return None
    return value


def _score_name(
    project: Project, params: Mapping[str, Any], key: str, errors: dict[str, list[str]]
) -> str | None:
    raw = params.get(key)
    name = str(raw).strip() if isinstance(raw, str) else ""
    if not name:
        errors[key] = ["A score name is required."]
        return None
    if len(name) > SCORE_NAME_MAX:
        errors[key] = [f"At most {SCORE_NAME_MAX} characters."]
        return None
    known = Score.objects.filter(
        project=project, name=name, source__in=AUTOMATED_SCORE_SOURCES
    ).exists()
    if not known:
        errors[key] = [f"No automated score named “{name}” in this project."]
        return None
    return name


def _latest_scores(project: Project, names: Sequence[str], trace_ids: Sequence[int]):
    """(trace id, name) -> the latest automated score of that name on the trace itself."""
    rows = (
        Score.objects.filter(
            project=project,
            trace_id__in=trace_ids,
            span__isnull=True,
            name__in=names,
            source__in=AUTOMATED_SCORE_SOURCES,
        )
        .order_by("trace_id", "name", "-updated_at", "-id")
        .distinct("trace_id", "name")
        .values("trace_id", "name", "data_type", "value", "label")
    )
    return {(row["trace_id"], row["name"]): row for row in rows}


def _unknown_keys(params: Mapping[str, Any], allowed: set[str], errors: dict) -> None:
    for key in sorted(set(params) - allowed):
        errors[key] = ["Not a parameter of this strategy."]


class MatchAndSample:
    strategy: ClassVar[str] = RoutingStrategy.MATCH_AND_SAMPLE

    def check(self, project: Project, params: Mapping[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        _unknown_keys(params, set(), errors)
        if errors:
            raise DomainError("Invalid strategy parameters.", details=errors)
        return {}

    def choose(
        self, project: Project, spec: StrategySpec, trace_ids: Sequence[int]
    ) -> dict[int, str]:
        return {t: "matched the filter" for t in trace_ids}


class UncertaintyBand:
    strategy: ClassVar[str] = RoutingStrategy.UNCERTAINTY_BAND

    def check(self, project: Project, params: Mapping[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        _unknown_keys(params, {"score_name", "low", "high"}, errors)
        name = _score_name(project, params, "score_name", errors)
        low = _finite(params, "low", errors)
        high = _finite(params, "high", errors)
        if low is not None and high is not None and low > high:
            errors["high"] = [f"The band's top ({high:g}) is below its bottom ({low:g})."]
        if errors:
            raise DomainError("Invalid uncertainty band.", details=errors)
        return {"score_name": name, "low": low, "high": high}

    def choose(
        self, project: Project, spec: StrategySpec, trace_ids: Sequence[int]
    ) -> dict[int, str]:
        params = spec.strategy_params
        name, low, high = params["score_name"], float(params["low"]), float(params["high"])
        chosen = {}
        for (trace_id, _), row in _latest_scores(project, [name], trace_ids).items():
            value = row["value"]
            if value is not None and low <= value <= high:
                chosen[trace_id] = f"{name} {value:g} in band {low:g}{DASH}{high:g}"
        return chosen


class JudgesDisagree:
    strategy: ClassVar[str] = RoutingStrategy.JUDGES_DISAGREE

    def check(self, project: Project, params: Mapping[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        _unknown_keys(params, {"score_a", "score_b", "min_difference"}, errors)
        score_a = _score_name(project, params, "score_a", errors)
        score_b = _score_name(project, params, "score_b", errors)
        if score_a and score_a == score_b:
            errors["score_b"] = ["Two different score names: a judge cannot disagree with itself."]
        min_difference = None
        if params.get("min_difference") not in (None, ""):
            min_difference = _finite(params, "min_difference", errors)
            if min_difference is not None and min_difference <= 0:
                errors["min_difference"] = ["Above 0 (leave it empty for any difference)."]
        if errors:
            raise DomainError("Invalid judges to compare.", details=errors)
        return {"score_a": score_a, "score_b": score_b, "min_difference": min_difference}

    @staticmethod
    def _shown(row: Mapping[str, Any]) -> str:
        if row["data_type"] == ScoreDataType.NUMERIC and row["value"] is not None:
            return _number(row["value"])
        return row["label"] or _number(row["value"])

    def choose(
        self, project: Project, spec: StrategySpec, trace_ids: Sequence[int]
    ) -> dict[int, str]:
        params = spec.strategy_params
        name_a, name_b = params["score_a"], params["score_b"]
        minimum = params.get("min_difference")
        scores = _latest_scores(project, [name_a, name_b], trace_ids)
        chosen = {}
        for trace_id in trace_ids:
            a, b = scores.get((trace_id, name_a)), scores.get((trace_id, name_b))
            if a is None or b is None:
                continue
            numeric = (
                a["data_type"] == b["data_type"] == ScoreDataType.NUMERIC
                and a["value"] is not None
                and b["value"] is not None
            )
            if numeric:
                difference = abs(a["value"] - b["value"])
                if difference < (minimum if minimum is not None else 1e-9):
                    continue
                why = f" (difference {difference:g}"
                why += f" ≥ {minimum:g})" if minimum is not None else ")"
            else:
                if (a["label"], a["value"]) == (b["label"], b["value"]):
                    continue
                why = ""
            chosen[trace_id] = f"{name_a} {self._shown(a)} vs {name_b} {self._shown(b)}{why}"
        return chosen


class ReviewersDisagree:
    strategy: ClassVar[str] = RoutingStrategy.REVIEWERS_DISAGREE

    def check(self, project: Project, params: Mapping[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        _unknown_keys(params, set(), errors)
        if errors:
            raise DomainError("Invalid strategy parameters.", details=errors)
        return {}

    def choose(
        self, project: Project, spec: StrategySpec, trace_ids: Sequence[int]
    ) -> dict[int, str]:
        from review.selectors import item_disagreement, queue_form

        if spec.source_queue_id is None:
            return {}
        source = ReviewQueue.objects.filter(project=project, pk=spec.source_queue_id).first()
        if source is None:
            return {}
        items = list(
            QueueItem.objects.filter(
                queue=source,
                target_type=ItemTarget.TRACE,
                trace_id__in=trace_ids,
                status__in=(ItemStatus.NEEDS_ADJUDICATION, ItemStatus.ADJUDICATED),
            )
        )
        if not items:
            return {}
        form = queue_form(source)
        answers: dict[int, list[Annotation]] = {}
        for annotation in Annotation.objects.filter(item__in=items).order_by("submitted_at", "id"):
            answers.setdefault(annotation.item_id, []).append(annotation)
        chosen = {}
        for item in items:
            disagreement = item_disagreement(form, answers.get(item.pk, []))
            if not disagreement:
                continue
            questions = "; ".join(
                f"{d['config']}: {', '.join(_number(a) for a in d['answers'])}"
                for d in disagreement.values()
            )
            chosen[item.trace_id] = f"reviewers disagreed in “{source.name}” ({questions})"
        return chosen


STRATEGIES: dict[str, Any] = {
    s.strategy: s
    for s in (MatchAndSample(), UncertaintyBand(), JudgesDisagree(), ReviewersDisagree())
}


def strategy_check(
    *,
    project: Project,
    strategy: Any,
    params: Any,
    source_queue_id: Any,
    queue_id: int | None,
) -> dict[str, Any]:
    """A rule's strategy, parameters and source queue, checked: the fields to store.
    Raises ``DomainError`` with a reason per field."""
    strategy = strategy or RoutingStrategy.MATCH_AND_SAMPLE
    if strategy not in STRATEGIES:
        raise DomainError(
            "Invalid routing strategy.",
            details={"strategy": [f"One of {', '.join(RoutingStrategy.values)}."]},
        )
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise DomainError(
            "Invalid strategy parameters.", details={"strategy_params": ["An object."]}
        )
    try:
        checked = STRATEGIES[strategy].check(project, params)
    except DomainError as exc:
        raise DomainError(exc.message, details={"strategy_params": exc.details}) from exc
    source = None
    if strategy == RoutingStrategy.REVIEWERS_DISAGREE:
        if source_queue_id in (None, ""):
            raise DomainError(
                "Which queue's disagreements to route?",
                details={"source_queue_id": ["Required for this strategy."]},
            )
        try:
            source_pk = int(source_queue_id)
        except (TypeError, ValueError):
            source_pk = 0
        source = ReviewQueue.objects.filter(project=project, pk=source_pk).first()
        if source is None:
            raise DomainError(
                "No such queue in this project.", details={"source_queue_id": ["not found"]}
            )
        if queue_id is not None and source.pk == int(queue_id):
            raise DomainError(
                "The extra review goes to another queue (its pool: the extra or senior reviewers).",
                details={"source_queue_id": ["The rule's own queue."]},
            )
    elif source_queue_id not in (None, ""):
        raise DomainError(
            "Only the reviewers_disagree strategy reads a source queue.",
            details={"source_queue_id": ["Leave it empty for this strategy."]},
        )
    return {"strategy": strategy, "strategy_params": checked, "source_queue": source}


def strategy_choose(
    *, project: Project, spec: StrategySpec, trace_ids: Sequence[int]
) -> dict[int, str]:
    """Of ``trace_ids`` (those the rule's filter matched), the ones its strategy picks,
    each with why."""
    if not trace_ids:
        return {}
    strategy = STRATEGIES.get(spec.strategy or RoutingStrategy.MATCH_AND_SAMPLE)
    if strategy is None:
        raise DomainError(
            f"Unknown routing strategy {spec.strategy!r}.", details={"strategy": ["unknown"]}
        )
    return strategy.choose(project, spec, trace_ids)


def strategy_describe(spec: StrategySpec, source_queue_name: str = "") -> str:
    """The strategy in a lead's words, for the rules list and the rule's page."""
    params = spec.strategy_params or {}
    if spec.strategy == RoutingStrategy.UNCERTAINTY_BAND:
        return (
            f"{params.get('score_name')} in band "
            f"{_number(params.get('low'))}{DASH}{_number(params.get('high'))}"
        )
    if spec.strategy == RoutingStrategy.JUDGES_DISAGREE:
        minimum = params.get("min_difference")
        by = f"by at least {_number(minimum)}" if minimum is not None else "at all"
        return f"{params.get('score_a')} and {params.get('score_b')} differ {by}"
    if spec.strategy == RoutingStrategy.REVIEWERS_DISAGREE:
        return f"reviewers disagreed in “{source_queue_name or spec.source_queue_id}”"
    return "match and sample"


def routing_enqueue_for_disagreement(item: QueueItem) -> None:
    """Called in the transaction that sent ``item`` to adjudication (its reviewers
    disagreed): if a rule of the project routes this queue's disagreements, an outbox
    message routes the item's trace by those rules alone."""
    if item.target_type != ItemTarget.TRACE or item.trace_id is None:
        return
    watched = RoutingRule.objects.filter(
        project_id=item.project_id,
        source_queue_id=item.queue_id,
        strategy=RoutingStrategy.REVIEWERS_DISAGREE,
        enabled=True,
    ).exists()
    if not watched:
        return
    outbox.enqueue(
        task=ROUTE_TRACES,
        organization_id=item.organization_id,
        kwargs={
            "project_id": item.project_id,
            "trace_ids": [item.trace_id],
            "strategy": RoutingStrategy.REVIEWERS_DISAGREE.value,
        },
    )
