"""Thread rules: routing rules whose target is a whole conversation (a ``Thread``, its
turns being its traces) rather than one trace.

A thread rule's conditions (``RoutingRule.thread_conditions``) hold together, with its
trace filter (``filter_params``, optional) applied to any turn:

* ``thumbs_down``: a turn has a thumbs-down from an end user (feedback on one of its
  traces or spans, or on the thread itself);
* ``min_turns``: the thread has at least that many turns;
* ``error``: a turn failed (a trace or one of its spans has error status);
* ``idle_minutes``: the conversation ended: no turn arrived or changed for at least that
  many minutes.

``thread_conditions_check`` is the one check of the conditions (the API's serializer
field, the lead's form and the rule services all call it); ``threads_matching`` is the
one query (``Exists``/``Count`` subqueries on the traces by thread, in the tenant and the
project), read by routing (``review.services.routing``), its periodic run
(``review.route_threads``: the idle condition fires without new ingestion) and the
preview (``thread_rule_preview``). Rows are read here as the strategies' ``choose``
reads scores: a read the routing services need, beside them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from hitl.exceptions import DomainError
from projects.models import Project
from review.models import ItemTarget, QueueItem, ReviewQueue, RoutingStrategy, RoutingTarget
from review.services.common import sampled_in, time_now
from traces.models import Feedback, FeedbackKind, Span, Status, Thread, Trace

# The conditions a thread rule takes, in the order they are worded.
THREAD_CONDITIONS = ("thumbs_down", "error", "min_turns", "idle_minutes")
# Bounds of the numbers (a conversation of more turns, or idle for longer, is not one a
# rule should wait for; the periodic run looks back this far plus SWEEP_LOOKBACK).
MIN_TURNS_MAX = 10_000
IDLE_MINUTES_MAX = 30 * 24 * 60
# How long after it matched (after it ended, for an idle condition) the periodic run
# still considers a thread: the run takes threads with a turn that arrived since then.
SWEEP_LOOKBACK = timedelta(days=1)
# At most this many threads routed by one rule in one run (the next run takes the rest).
THREADS_PER_RUN = 1000
# The preview's rows.
PREVIEW_SHOWN = 20


# --- the conditions ------------------------------------------------------------------------


def _whole_number(value: Any, low: int, high: int, noun: str) -> int | str:
    """``value`` as a whole number within [low, high], else the reason it is not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"A whole number of {noun} (not text, true or false)."
    if isinstance(value, float) and not math.isfinite(value):
        return f"A finite whole number of {noun} (not NaN or infinity)."
    if isinstance(value, float) and not value.is_integer():
        return f"A whole number of {noun}."
    number = int(value)
    if number < low:
        return f"At least {low}."
    if number > high:
        return f"At most {high}."
    return number


def thread_conditions_check(raw: Any) -> dict[str, Any]:
    """A thread rule's conditions, checked: the object to store (its keys in a fixed
    order; a condition that is off or null left out). Raises ``DomainError`` with a
    reason per key: an unknown key, a flag that is not true or false, a number of turns
    or minutes that is not a whole number within its bounds (negative, NaN, text,
    huge)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise DomainError(
            "Invalid thread conditions.",
            details={"thread_conditions": ["An object of conditions."]},
        )
    errors: dict[str, list[str]] = {}
    for key in raw:
        if key not in THREAD_CONDITIONS:
            shown = str(key).replace("\x00", "\\x00")[:60]
            errors[shown] = [f"Not a thread condition; one of {', '.join(THREAD_CONDITIONS)}."]
    checked: dict[str, Any] = {}
    for key in ("thumbs_down", "error"):
        value = raw.get(key)
        if value is None or value is False:
            continue
        if value is not True:
            errors[key] = ["true or false."]
            continue
        checked[key] = True
    for key, high, noun in (
        ("min_turns", MIN_TURNS_MAX, "turns"),
        ("idle_minutes", IDLE_MINUTES_MAX, "minutes"),
    ):
        value = raw.get(key)
        if value is None:
            continue
        number = _whole_number(value, 1, high, noun)
        if isinstance(number, str):
            errors[key] = [number]
        else:
            checked[key] = number
    if errors:
        raise DomainError("Invalid thread conditions.", details=errors)
    return {key: checked[key] for key in THREAD_CONDITIONS if key in checked}


def thread_rule_check(
    *, target: str, conditions: Mapping[str, Any], filter_params: Mapping[str, Any], strategy: str
) -> None:
    """What a rule's target asks of the rest of it (conditions already checked): a
    thread rule matches and samples (strategies pick among traces) and has at least one
    condition or a filter on its turns; a trace rule has no thread conditions."""
    if target == RoutingTarget.THREAD:
        if strategy != RoutingStrategy.MATCH_AND_SAMPLE:
            raise DomainError(
                "A thread rule matches and samples; strategies pick among traces.",
                details={"strategy": ["Match and sample, for a thread rule."]},
            )
        if not conditions and not filter_params:
            raise DomainError(
                "A thread rule needs a condition.",
                details={
                    "thread_conditions": [
                        "At least one: a thumbs-down, a number of turns, an error, ended after"
                        " a time idle, or a trace filter on any turn."
                    ]
                },
            )
    elif conditions:
        raise DomainError(
            "Only a thread rule takes thread conditions.",
            details={"thread_conditions": ["Leave them empty for a trace rule."]},
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def idle_words(minutes: int) -> str:
    """A time idle as a person says it: "30 minutes", "2 hours", "1 day"."""
    if minutes % (24 * 60) == 0:
        return _count(minutes // (24 * 60), "day")
    if minutes % 60 == 0:
        return _count(minutes // 60, "hour")
    return _count(minutes, "minute")


def _listed(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def thread_conditions_words(conditions: Any, filter_words: str = "") -> str:
    """A thread rule in words: "threads with a thumbs-down in any turn and at least 3
    turns, ended after 30 minutes idle" (``filter_words``: its trace filter in words,
    read as a turn it matches). The rule's page, its list and its history say it so."""
    if not isinstance(conditions, Mapping):
        return "—" if conditions is None else str(conditions)
    parts = []
    if conditions.get("thumbs_down"):
        parts.append("a thumbs-down in any turn")
    if conditions.get("error"):
        parts.append("an error in any turn")
    turns = conditions.get("min_turns")
    if isinstance(turns, int):
        parts.append(f"at least {_count(turns, 'turn')}")
    if filter_words:
        parts.append(f"a turn where {filter_words}")
    idle = conditions.get("idle_minutes")
    ended = f"ended after {idle_words(idle)} idle" if isinstance(idle, int) else ""
    if not parts:
        return f"threads {ended}" if ended else "any thread"
    return f"threads with {_listed(parts)}" + (f", {ended}" if ended else "")


# --- the query -----------------------------------------------------------------------------


def _turns(project: Project) -> QuerySet[Trace]:
    return Trace.objects.filter(project=project, thread_id=OuterRef("pk")).order_by()


def threads_matching(
    *,
    project: Project,
    conditions: Mapping[str, Any],
    filter_params: Mapping[str, Any],
    now: datetime,
    candidates: QuerySet | Sequence[int] | None = None,
) -> QuerySet[Thread]:
    """The project's threads (of ``candidates`` when given: ids, or a query of ids)
    whose turns meet ``conditions`` and, on any turn, the trace filter
    ``filter_params``; annotated with ``turns`` (how many) and ``last_activity`` (when
    its latest turn arrived or changed). A thread without a turn never matches. Raises
    ``DomainError`` for an invalid filter. Needs the project's tenant in scope."""
    from traces.selectors import traces_matching

    by_thread = _turns(project).values("thread_id")
    threads = Thread.objects.filter(project=project)
    if candidates is not None:
        threads = threads.filter(pk__in=candidates)
    threads = threads.annotate(
        turns=Coalesce(
            Subquery(by_thread.annotate(n=Count("id")).values("n"), output_field=IntegerField()),
            Value(0),
        ),
        last_activity=Subquery(
            by_thread.annotate(t=Max("updated_at")).values("t"), output_field=DateTimeField()
        ),
    ).filter(turns__gte=max(1, int(conditions.get("min_turns") or 1)))
    if conditions.get("thumbs_down"):
        down = Feedback.objects.filter(project=project, kind=FeedbackKind.THUMBS, value__lt=0)
        threads = threads.filter(
            Exists(down.filter(trace__thread_id=OuterRef("pk")))
            | Exists(down.filter(thread_id=OuterRef("pk"), trace__isnull=True))
        )
    if conditions.get("error"):
        threads = threads.filter(
            Exists(_turns(project).filter(status=Status.ERROR))
            | Exists(
                Span.objects.filter(
                    project=project, trace__thread_id=OuterRef("pk"), status=Status.ERROR
                )
            )
        )
    idle = conditions.get("idle_minutes")
    if idle:
        threads = threads.filter(last_activity__lte=now - timedelta(minutes=int(idle)))
    if filter_params:
        turns = traces_matching(project=project, params=filter_params)
        threads = threads.filter(Exists(turns.filter(thread_id=OuterRef("pk")).order_by()))
    return threads


def thread_candidates(
    *, project: Project, conditions: Mapping[str, Any], now: datetime
) -> QuerySet:
    """The threads a periodic run considers for a rule: those with a turn that arrived
    within its idle time plus ``SWEEP_LOOKBACK`` (one index range of the project's
    traces), as a query of thread ids."""
    since = now - timedelta(minutes=int(conditions.get("idle_minutes") or 0)) - SWEEP_LOOKBACK
    return (
        Trace.objects.filter(project=project, created_at__gte=since, thread_id__isnull=False)
        .order_by()
        .values("thread_id")
    )


def thread_reason(row: Mapping[str, Any], conditions: Mapping[str, Any], now: datetime) -> str:
    """Why a thread was chosen, in words, stored on its item ("5 turns (at least 3), a
    thumbs-down in a turn, idle for 47 minutes (ended after 30 minutes)")."""
    parts = []
    if conditions.get("thumbs_down"):
        parts.append("a thumbs-down in a turn")
    if conditions.get("error"):
        parts.append("an error in a turn")
    turns = _count(row["turns"], "turn")
    if conditions.get("min_turns"):
        turns += f" (at least {conditions['min_turns']})"
    parts.append(turns)
    idle = conditions.get("idle_minutes")
    if idle and row.get("last_activity") is not None:
        minutes = max(0, int((now - row["last_activity"]).total_seconds() // 60))
        parts.append(f"idle for {idle_words(minutes)} (ended after {idle_words(int(idle))})")
    return ", ".join(parts)


def threads_to_route(
    *,
    project: Project,
    rule: Any,
    thread_ids: Sequence[int] | None,
    now: datetime,
) -> list[tuple[int, str]]:
    """A thread rule's matches not yet in its queue, oldest activity first, at most
    ``THREADS_PER_RUN``: (thread id, reason). ``thread_ids``: the threads of new traces
    (ingestion); None: the periodic run's window."""
    conditions = rule.thread_conditions or {}
    candidates: Any = thread_ids
    if candidates is None:
        candidates = thread_candidates(project=project, conditions=conditions, now=now)
    queued = QueueItem.objects.filter(
        queue_id=rule.queue_id, target_type=ItemTarget.THREAD, thread_id=OuterRef("pk")
    )
    rows = (
        threads_matching(
            project=project,
            conditions=conditions,
            filter_params=rule.filter_params or {},
            now=now,
            candidates=candidates,
        )
        .filter(~Exists(queued))
        .order_by(F("last_activity").asc(nulls_last=True), "pk")
        .values("pk", "turns", "last_activity")[:THREADS_PER_RUN]
    )
    return [(row["pk"], thread_reason(row, conditions, now)) for row in rows]


def thread_rule_preview(
    *,
    project: Project,
    conditions: Mapping[str, Any],
    filter_params: Mapping[str, Any],
    sampling_rate: float,
    rule_id: int | None = None,
    queue: ReviewQueue | None = None,
) -> dict[str, Any]:
    """Which threads a thread rule would match now, among those the periodic run
    considers (a turn within its idle time plus ``SWEEP_LOOKBACK``): the count, and the
    latest ``PREVIEW_SHOWN`` with their external id, number of turns, last activity, the
    first turn's input head (its first user message), why, whether the rule's draw takes
    it (a saved rule's own draw; else an example draw at the same rate) and whether it is
    in ``queue`` already. Raises ``DomainError`` for an invalid filter."""
    from traces.selectors import trace_input_head

    now = time_now()
    matching = threads_matching(
        project=project,
        conditions=conditions,
        filter_params=filter_params,
        now=now,
        candidates=thread_candidates(project=project, conditions=conditions, now=now),
    )
    first_input = (
        Trace.objects.filter(project=project, thread_id=OuterRef("pk"))
        .order_by(F("start_time").asc(nulls_last=True), "created_at", "id")
        .annotate(head=trace_input_head())
        .values("head")[:1]
    )
    rows = matching.annotate(first_input=Subquery(first_input))
    if queue is not None:
        rows = rows.annotate(
            queued=Exists(
                QueueItem.objects.filter(
                    queue=queue, target_type=ItemTarget.THREAD, thread_id=OuterRef("pk")
                )
            )
        )
    else:
        rows = rows.annotate(queued=Value(False))
    shown = list(
        rows.order_by(F("last_activity").desc(nulls_last=True), "-pk").values(
            "pk", "external_id", "turns", "last_activity", "first_input", "queued"
        )[:PREVIEW_SHOWN]
    )
    for row in shown:
        row["reason"] = thread_reason(row, conditions, now)
        key = thread_sample_key(rule_id if rule_id is not None else "preview", row["pk"])
        row["taken"] = sampled_in(key, sampling_rate)
    return {
        "target": RoutingTarget.THREAD.value,
        "matched": matching.count(),
        "rows": shown,
        "exact": rule_id is not None,
        "window_hours": int(
            (SWEEP_LOOKBACK + timedelta(minutes=int(conditions.get("idle_minutes") or 0)))
            / timedelta(hours=1)
        ),
    }


def thread_sample_key(rule_id: int | str, thread_id: int) -> str:
    """The deterministic draw of a thread by a rule (routing and its preview alike)."""
    return f"route:{rule_id}:thread:{thread_id}"
