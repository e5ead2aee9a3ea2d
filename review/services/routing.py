"""Routing rules: rule writes, the ingestion hook and applying rules to new traces."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, transaction

from hitl import audit, outbox
from hitl.audit import Actor
from hitl.exceptions import DomainError
from projects.models import Project
from review.models import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    ItemSource,
    ItemTarget,
    QueueItem,
    ReviewQueue,
    RoutingRule,
    RoutingRuleDay,
    RoutingSignal,
    RoutingStrategy,
    RoutingTarget,
)
from review.services import events
from review.services.common import sampled_in, time_now
from review.services.items import ItemTargetRef, items_insert
from review.services.lifecycle import queue_check_open
from review.services.routing_strategies import ROUTE_TRACES, strategy_check, strategy_choose
from review.services.thread_routing import (
    thread_conditions_check,
    thread_rule_check,
    thread_sample_key,
    threads_to_route,
)
from traces.models import Trace

logger = logging.getLogger(__name__)


NAME_MAX = 200


def _check_rule(fields: Mapping[str, Any]) -> dict[str, Any]:
    from traces import selectors as trace_selectors

    data = dict(fields)
    errors = {}
    if "name" in data:
        data["name"] = str(data["name"] or "").strip()
        if not data["name"]:
            errors["name"] = ["A rule needs a name."]
        elif len(data["name"]) > NAME_MAX:
            errors["name"] = [f"At most {NAME_MAX} characters."]
    if "signal" in data and data["signal"] not in RoutingSignal.values:
        errors["signal"] = [f"One of {', '.join(RoutingSignal.values)}."]
    priority = data.get("item_priority")
    if priority is not None and not PRIORITY_MIN <= int(priority) <= PRIORITY_MAX:
        errors["item_priority"] = [f"Between {PRIORITY_MIN} and {PRIORITY_MAX}."]
    if "sampling_rate" in data and not 0 < float(data["sampling_rate"]) <= 1:
        errors["sampling_rate"] = ["A fraction above 0 and at most 1."]
    if data.get("daily_cap") is not None and not 1 <= int(data["daily_cap"]) <= PRIORITY_MAX:
        errors["daily_cap"] = [f"At least 1 (at most {PRIORITY_MAX}), or null for no cap."]
    if "target" in data and data["target"] not in RoutingTarget.values:
        errors["target"] = [f"One of {', '.join(RoutingTarget.values)}."]
    if errors:
        raise DomainError("Invalid routing rule.", details=errors)
    if "thread_conditions" in data:
        # Thread rules: the one check of their conditions (thread_routing).
        try:
            data["thread_conditions"] = thread_conditions_check(data["thread_conditions"])
        except DomainError as exc:
            raise DomainError(exc.message, details={"thread_conditions": exc.details}) from exc
    if "filter_params" in data:
        # A strategy picks among every trace when its filter is empty (routing strategies);
        # a thread rule's filter on its turns is one condition among others.
        strategy = data.get("strategy") or RoutingStrategy.MATCH_AND_SAMPLE
        may_be_empty = (
            strategy != RoutingStrategy.MATCH_AND_SAMPLE
            or data.get("target") == RoutingTarget.THREAD
        )
        if not isinstance(data["filter_params"], Mapping) or not (
            data["filter_params"] or may_be_empty
        ):
            raise DomainError(
                "A routing rule needs a trace filter.", details={"filter_params": ["required"]}
            )
        try:
            data["filter_params"] = trace_selectors.validate_trace_filter(data["filter_params"])
        except DomainError as exc:
            raise DomainError(
                "Invalid trace filter.", details={"filter_params": exc.details}
            ) from exc
    return data


def _check_score_names(project: Project, data: Mapping[str, Any]) -> None:
    """A rule's score conditions name scores the project has (one on an unknown name
    would route nothing, silently)."""
    from traces import selectors as trace_selectors

    if "filter_params" not in data:
        return
    try:
        trace_selectors.trace_filter_check_score_names(
            project=project, params=data["filter_params"]
        )
    except DomainError as exc:
        raise DomainError(
            "Invalid trace filter: a score name is unknown.",
            details={"filter_params": exc.details},
        ) from exc


def routing_rule_create(
    *, actor: Actor, project: Project, queue_id: int, **fields: Any
) -> RoutingRule:
    data = _check_rule(fields)
    _check_score_names(project, data)
    data.update(
        strategy_check(  # routing strategies
            project=project,
            strategy=data.pop("strategy", None),
            params=data.pop("strategy_params", None),
            source_queue_id=data.pop("source_queue_id", None),
            queue_id=queue_id,
        )
    )
    data.setdefault("target", RoutingTarget.TRACE)
    data.setdefault("thread_conditions", {})
    thread_rule_check(
        target=data["target"],
        conditions=data["thread_conditions"],
        filter_params=data.get("filter_params") or {},
        strategy=data["strategy"],
    )
    with audit.acting_as(actor), transaction.atomic():
        queue = ReviewQueue.objects.filter(project=project, pk=queue_id).first()
        if queue is None:
            raise DomainError(
                f"No queue {queue_id} in this project.", details={"queue_id": ["not found"]}
            )
        queue_check_open(queue)
        return RoutingRule.objects.create(
            project=project, queue=queue, created_by=actor.user, **data
        )


def routing_rule_update(*, actor: Actor, rule: RoutingRule, **changes: Any) -> RoutingRule:
    """Edits a rule (any of its create fields, ``queue_id`` to move it, ``enabled``),
    checked as on create. One history row per edit that changes something; an edit
    that changes nothing writes nothing. An edit of the filter or the queue clears the
    rule's failing state: the next routing run tries the new rule afresh (and
    announces again if it fails). A change of target starts from empty thread
    conditions."""
    # The rule's strategy and target decide whether an empty filter is allowed.
    data = _check_rule({"strategy": rule.strategy, "target": rule.target, **changes})
    for kept in ("strategy", "target"):
        if kept not in changes:
            data.pop(kept)
    _check_score_names(rule.project, data)
    _check_strategy_change(rule, data)
    _check_target_change(rule, data)
    with audit.acting_as(actor), transaction.atomic():
        rule = RoutingRule.objects.select_for_update().get(pk=rule.pk)
        changed = refiltered = False
        if "queue_id" in data:
            queue = ReviewQueue.objects.filter(
                project_id=rule.project_id, pk=data.pop("queue_id")
            ).first()
            if queue is None:
                raise DomainError("No such queue in this project.", details={"queue_id": ["?"]})
            changed = refiltered = queue.pk != rule.queue_id
            rule.queue = queue
        for name, value in data.items():
            differs = getattr(rule, name) != value
            changed = changed or differs
            refiltered = refiltered or (
                differs and name in ("filter_params", "target", "thread_conditions")
            )
            setattr(rule, name, value)
        if refiltered and rule.failing_since is not None:
            rule.failing_since, rule.last_error = None, ""
        if changed:
            rule.save()
    return rule


def _check_strategy_change(rule: RoutingRule, data: dict[str, Any]) -> None:
    """An edit of a rule's strategy, its parameters or source queue (routing strategies),
    checked with what it keeps of the rule; a new strategy starts from empty
    parameters. A match-and-sample rule keeps a filter."""
    keys = ("strategy", "strategy_params", "source_queue_id")
    if any(key in data for key in keys):
        strategy = data.pop("strategy", None) or rule.strategy
        same = strategy == rule.strategy
        data.update(
            strategy_check(
                project=rule.project,
                strategy=strategy,
                params=data.pop("strategy_params", rule.strategy_params if same else None),
                source_queue_id=data.pop("source_queue_id", rule.source_queue_id if same else None),
                queue_id=data.get("queue_id", rule.queue_id),
            )
        )
    strategy = data.get("strategy", rule.strategy)
    thread_rule = data.get("target", rule.target) == RoutingTarget.THREAD
    if (
        strategy == RoutingStrategy.MATCH_AND_SAMPLE
        and not thread_rule
        and not data.get("filter_params", rule.filter_params)
    ):
        raise DomainError(
            "A match-and-sample rule needs a trace filter.",
            details={"filter_params": ["required"]},
        )


def _check_target_change(rule: RoutingRule, data: dict[str, Any]) -> None:
    """An edit of a rule's target or thread conditions, checked with what it keeps of
    the rule (a new target starts from empty conditions)."""
    target = data.get("target", rule.target)
    if "thread_conditions" not in data and target != rule.target:
        data["thread_conditions"] = {}
    thread_rule_check(
        target=target,
        conditions=data.get("thread_conditions", rule.thread_conditions),
        filter_params=data.get("filter_params", rule.filter_params) or {},
        strategy=data.get("strategy", rule.strategy),
    )


def routing_rule_delete(*, actor: Actor, rule: RoutingRule) -> None:
    with audit.acting_as(actor), transaction.atomic():
        rule.delete()


def routing_enqueue_for_new_traces(*, project: Project, trace_ids: Sequence[int]) -> None:
    """Called inside the transaction that created or changed the traces (ingestion's
    ``traces_changed`` hook): one indexed probe, and, if the project routes at all, an
    outbox message in the same transaction, so the routing survives a broker outage."""
    if not trace_ids:
        return
    if not RoutingRule.objects.filter(project=project, enabled=True).exists():
        return
    outbox.enqueue(
        task=ROUTE_TRACES,
        organization_id=project.organization_id,
        kwargs={"project_id": project.pk, "trace_ids": sorted({int(t) for t in trace_ids})},
    )


def routing_on_traces_changed(
    sender: object, *, project: Project, trace_ids: Sequence[int], **_: object
) -> None:
    """Receiver of ``traces.hooks.traces_changed``, connected in ``ReviewConfig.ready()``."""
    routing_enqueue_for_new_traces(project=project, trace_ids=trace_ids)


# Errors that are the system's, not a rule's (PostgreSQL SQLSTATE): the connection
# (class 08), resources (53: out of memory, disk full, too many connections), the
# server's own I/O (58), a server shutting down (57P01-57P03), and concurrency
# (40001 serialization failure, 40P01 deadlock, 55P03 lock timeout).
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "58"})
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03"})
# A rule's last error, as its page and the announcement show it.
ERROR_MAX = 300


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error: Django wraps the driver's error, whose
    ``sqlstate`` (psycopg) is on the cause."""
    seen: BaseException | None = exc
    while seen is not None:
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if state:
            return str(state)
        seen = seen.__cause__
    return None


def routing_failure_is_transient(exc: BaseException) -> bool:
    """Whether an error raised while applying one rule is the system's (retry the whole
    routing task later) rather than the rule's (mark that rule failing, go on).

    The system's: a connection that is lost or closed (``InterfaceError``, or an
    ``OperationalError`` without a SQLSTATE, which is what a dropped connection gives),
    and the SQLSTATEs above: lock and statement contention, resources, shutdowns. The
    outbox retries the task on them (``retry_on=(OperationalError,)``), idempotently:
    the rules already applied in that run roll back with it and route again. Everything
    else is the rule's: its filter refused in Python (``DomainError``), or refused by
    PostgreSQL for the values it holds or the data it meets (data exceptions such as a
    time-zone offset out of range, a cast that fails, a statement timeout or a stack
    depth limit on its query), and any other exception (a bug met by one rule's
    values). A rule's error fails that rule alone; the next routing run tries it again.
    """
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, DatabaseError):
        return False
    state = _sqlstate(exc)
    if state is None:
        return isinstance(exc, OperationalError)
    return state[:2] in _TRANSIENT_SQLSTATE_CLASSES or state in _TRANSIENT_SQLSTATES


def _reasons(details: Any) -> str:
    if isinstance(details, Mapping):
        return "; ".join(f"{name}: {_reasons(why)}" for name, why in details.items())
    if isinstance(details, list | tuple):
        return ", ".join(_reasons(why) for why in details)
    return str(details)


def routing_failure_message(exc: BaseException) -> str:
    """A rule's error in one short line for people (no traceback, no SQL)."""
    if isinstance(exc, DomainError):
        reasons = _reasons(exc.details) if exc.details else ""
        text = f"Its trace filter is refused: {reasons or exc.message}"
    elif isinstance(exc, DatabaseError):
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        text = f"The database refused its query: {first or type(exc).__name__}"
    else:
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        text = f"Applying it failed ({type(exc).__name__}{': ' + first if first else ''})"
    text = " ".join(text.split())
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


def routing_apply(
    *, project_id: int, trace_ids: Sequence[int], strategy: str | None = None
) -> dict[int, int]:
    """Evaluates the project's enabled rules (only those of ``strategy`` when given) on
    new traces: filter, strategy (``routing_strategies``), deterministic sample, daily
    cap; a thread rule on the threads of those traces (``thread_routing``). Idempotent:
    a trace or thread already queued is not added again and not counted again. Returns
    the number routed per rule.

    Each rule runs in its own savepoint, and a rule fails alone: an error that is the
    rule's (``routing_failure_is_transient``) rolls back that rule's work, marks it
    failing (``routing_rule_mark_failing``) and the other rules go on; a rule that
    routes again is cleared. A failing rule is still tried on every run (the data or
    the code may have changed). An error that is the system's propagates, so the
    whole task is retried."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not trace_ids:
        return {}
    rules = RoutingRule.objects.filter(project=project, enabled=True)
    if strategy is not None:
        rules = rules.filter(strategy=strategy)
    rows = list(rules.values_list("pk", "target"))
    thread_ids: list[int] | None = None
    if any(target == RoutingTarget.THREAD for _, target in rows):
        # The conversations the new traces are turns of.
        thread_ids = list(
            Trace.objects.filter(project=project, pk__in=trace_ids, thread_id__isnull=False)
            .order_by()
            .values_list("thread_id", flat=True)
            .distinct()
        )

    def apply(rule_id: int, target: str, actor: Actor) -> int | None:
        if target == RoutingTarget.THREAD:
            if not thread_ids:
                return None
            return _thread_rule_apply(
                project=project, rule_id=rule_id, thread_ids=thread_ids, actor=actor
            )
        return _rule_apply(project=project, rule_id=rule_id, trace_ids=trace_ids, actor=actor)

    return _rules_apply(rows, apply)


def routing_apply_threads(*, project_id: int) -> dict[int, int]:
    """The periodic run of the project's enabled thread rules (``review.route_threads``)
    over the threads with a recent turn (``thread_routing.thread_candidates``): a rule
    whose condition is that a conversation ended (``idle_minutes``) fires without new
    ingestion, and feedback that came after its turn is seen. Idempotent, each rule
    failing alone, as ``routing_apply``. Returns the number routed per rule."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {}
    rows = list(
        RoutingRule.objects.filter(
            project=project, enabled=True, target=RoutingTarget.THREAD
        ).values_list("pk", "target")
    )

    def apply(rule_id: int, target: str, actor: Actor) -> int | None:
        return _thread_rule_apply(project=project, rule_id=rule_id, thread_ids=None, actor=actor)

    return _rules_apply(rows, apply)


def _rules_apply(
    rows: Sequence[tuple[int, str]], apply: Callable[[int, str, Actor], int | None]
) -> dict[int, int]:
    """Each rule by ``apply`` in its own savepoint, by the system actor; a rule's own
    error marks it failing and the others go on, the system's propagates."""
    routed: dict[int, int] = {}
    actor = Actor.system()
    with audit.acting_as(actor):
        for rule_id, target in rows:
            try:
                with transaction.atomic():
                    count = apply(rule_id, target, actor)
            except Exception as exc:
                if routing_failure_is_transient(exc):
                    raise
                routing_rule_mark_failing(rule_id=rule_id, error=exc)
                continue
            if count is not None:
                routed[rule_id] = count
    return routed


def _locked_rule(rule_id: int) -> RoutingRule | None:
    """The enabled rule under its row lock (which serializes its daily count across
    workers), None when it is gone, off or its queue archived."""
    rule = (
        RoutingRule.objects.select_for_update()
        .select_related("queue")
        .filter(pk=rule_id, enabled=True)
        .first()
    )
    if rule is None or rule.queue.archived_at:
        return None
    return rule


def _clear_failing(rule: RoutingRule) -> None:
    """The rule's work went through: no longer failing (a history row says so)."""
    if rule.failing_since is not None:
        rule.failing_since, rule.last_error = None, ""
        rule._change_reason = "Routing applied the rule again: no longer failing"
        rule.save(update_fields=["failing_since", "last_error"])


def _rule_apply(
    *, project: Project, rule_id: int, trace_ids: Sequence[int], actor: Actor
) -> int | None:
    """One rule on new traces, in the caller's savepoint: the number of items it added,
    or None when it took none of the traces. Clears the rule's failing state once its
    work went through."""
    from traces import selectors as trace_selectors

    rule = _locked_rule(rule_id)
    if rule is None:
        return None
    matching = trace_selectors.traces_matching(project=project, params=rule.filter_params)
    matched = sorted(matching.filter(pk__in=trace_ids).values_list("pk", flat=True))
    reasons = strategy_choose(project=project, spec=rule, trace_ids=matched)
    sampled = [
        ItemTargetRef(ItemTarget.TRACE, t)
        for t in matched
        if t in reasons and sampled_in(f"route:{rule.pk}:{t}", rule.sampling_rate)
    ]
    chosen = {ItemTargetRef(ItemTarget.TRACE, t): why for t, why in reasons.items()}
    count = _rule_route(rule, sampled, actor, chosen) if sampled else None
    _clear_failing(rule)
    return count


def _thread_rule_apply(
    *, project: Project, rule_id: int, thread_ids: Sequence[int] | None, actor: Actor
) -> int | None:
    """One thread rule, in the caller's savepoint, on ``thread_ids`` (the threads of new
    traces) or, with None, on the periodic run's window: each matching thread not yet in
    the queue, drawn at the rule's rate, one item each within the daily cap. The number
    of items added, or None when it took no thread."""
    rule = _locked_rule(rule_id)
    if rule is None:
        return None
    matched = threads_to_route(project=project, rule=rule, thread_ids=thread_ids, now=time_now())
    chosen = {ItemTargetRef(ItemTarget.THREAD, None, thread_id=t): why for t, why in matched}
    sampled = [
        target
        for target in chosen
        if sampled_in(thread_sample_key(rule.pk, target.thread_id or 0), rule.sampling_rate)
    ]
    count = _rule_route(rule, sampled, actor, chosen) if sampled else None
    _clear_failing(rule)
    return count


def _rule_route(
    rule: RoutingRule,
    sampled: list[ItemTargetRef],
    actor: Actor,
    reasons: Mapping[ItemTargetRef, str],
) -> int:
    """Adds ``sampled`` (all of one target type) to the rule's queue within its daily
    cap, each with why it was chosen, and counts them on the rule's day."""
    day, _ = RoutingRuleDay.objects.get_or_create(
        organization_id=rule.organization_id, rule=rule, day=time_now().date()
    )
    day = RoutingRuleDay.objects.select_for_update().get(pk=day.pk)
    if rule.daily_cap is not None:
        kind = sampled[0].target_type
        field = "thread_id" if kind == ItemTarget.THREAD else "trace_id"
        already = set(
            QueueItem.objects.filter(
                queue=rule.queue,
                target_type=kind,
                **{f"{field}__in": [getattr(t, field) for t in sampled]},
            ).values_list(field, flat=True)
        )
        sampled = [t for t in sampled if getattr(t, field) not in already]
        sampled = sampled[: max(0, rule.daily_cap - day.routed)]
    detail: dict[str, Any] = {
        "rule": rule.name,
        "filter": rule.filter_params,
        "strategy": rule.strategy,
    }
    if rule.target == RoutingTarget.THREAD:
        detail.update(target=rule.target, thread_conditions=rule.thread_conditions)
    items = items_insert(
        queue=rule.queue,
        targets=sampled,
        source=ItemSource.ROUTING_RULE,
        actor=actor,
        priority=rule.item_priority,
        routing_rule=rule,
        signal=rule.signal,
        source_detail=detail,
        # Why each trace or thread was chosen, stored on its item (routing strategies).
        source_details={t: {**detail, "reason": reasons.get(t, "")} for t in sampled},
    )
    if items:
        day.routed += len(items)
        day.save(update_fields=["routed"])
    return len(items)


def routing_rule_mark_failing(*, rule_id: int, error: BaseException) -> RoutingRule | None:
    """Marks a rule failing with ``error`` (its short message), by the system actor,
    with a history row. Announced (``review.routing_rule.failing``) only when the rule
    goes from routing to failing; a rule already failing with the same message writes
    nothing, a new message updates ``last_error`` quietly. Under the rule's row lock,
    so two workers failing on it at once announce once."""
    message = routing_failure_message(error)
    with audit.acting_as(Actor.system()), transaction.atomic():
        rule = (
            RoutingRule.objects.select_for_update()
            .select_related("queue")
            .filter(pk=rule_id)
            .first()
        )
        if rule is None:
            return None
        newly = rule.failing_since is None
        if newly:
            logger.warning("routing rule %s fails: %s", rule_id, message, exc_info=error)
        if not newly and rule.last_error == message:
            return rule
        if newly:
            rule.failing_since = time_now()
        rule.last_error = message
        rule._change_reason = "Routing failed on this rule; the other rules went on"
        rule.save(update_fields=["failing_since", "last_error"])
        if newly:
            events.announce_routing_rule_failing(rule)
    return rule
