"""Routing rules: rule writes, the ingestion hook and applying rules to new traces."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from hitl import audit, outbox
from hitl.audit import Actor
from hitl.exceptions import DomainError
from projects.models import Project
from review.models import (
    ItemSource,
    ItemTarget,
    QueueItem,
    ReviewQueue,
    RoutingRule,
    RoutingRuleDay,
    RoutingSignal,
)
from review.services._common import _now, _sampled
from review.services.items import ItemTargetRef, _insert_items
from review.services.queues import _check_open

logger = logging.getLogger(__name__)


NAME_MAX = 200
# An item's priority is a PostgreSQL integer.
PRIORITY_MIN, PRIORITY_MAX = -(2**31), 2**31 - 1


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
    if errors:
        raise DomainError("Invalid routing rule.", details=errors)
    if "filter_params" in data:
        if not isinstance(data["filter_params"], Mapping) or not data["filter_params"]:
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


def routing_rule_create(
    *, actor: Actor, project: Project, queue_id: int, **fields: Any
) -> RoutingRule:
    data = _check_rule(fields)
    with audit.acting_as(actor), transaction.atomic():
        queue = ReviewQueue.objects.filter(project=project, pk=queue_id).first()
        if queue is None:
            raise DomainError(
                f"No queue {queue_id} in this project.", details={"queue_id": ["not found"]}
            )
        _check_open(queue)
        return RoutingRule.objects.create(
            project=project, queue=queue, created_by=actor.user, **data
        )


def routing_rule_update(*, actor: Actor, rule: RoutingRule, **changes: Any) -> RoutingRule:
    """Edits a rule (any of its create fields, ``queue_id`` to move it, ``enabled``),
    checked as on create. One history row per edit that changes something; an edit
    that changes nothing writes nothing."""
    data = _check_rule(changes)
    with audit.acting_as(actor), transaction.atomic():
        rule = RoutingRule.objects.select_for_update().get(pk=rule.pk)
        changed = False
        if "queue_id" in data:
            queue = ReviewQueue.objects.filter(
                project_id=rule.project_id, pk=data.pop("queue_id")
            ).first()
            if queue is None:
                raise DomainError("No such queue in this project.", details={"queue_id": ["?"]})
            changed = queue.pk != rule.queue_id
            rule.queue = queue
        for name, value in data.items():
            changed = changed or getattr(rule, name) != value
            setattr(rule, name, value)
        if changed:
            rule.save()
    return rule


def routing_rule_delete(*, actor: Actor, rule: RoutingRule) -> None:
    with audit.acting_as(actor), transaction.atomic():
        rule.delete()


ROUTE_TRACES = "review.route_traces"


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


def routing_apply(*, project_id: int, trace_ids: Sequence[int]) -> dict[int, int]:
    """Evaluates the project's enabled rules on new traces: filter, deterministic
    sample, daily cap. Idempotent: a trace already queued is not added again and not
    counted again. Returns the number routed per rule."""
    from traces import selectors as trace_selectors

    project = Project.objects.filter(pk=project_id).first()
    if project is None or not trace_ids:
        return {}
    routed: dict[int, int] = {}
    actor = Actor.system()
    for rule_id in RoutingRule.objects.filter(project=project, enabled=True).values_list(
        "pk", flat=True
    ):
        with audit.acting_as(actor), transaction.atomic():
            # The rule's row lock serializes its daily count across workers.
            rule = (
                RoutingRule.objects.select_for_update()
                .select_related("queue")
                .filter(pk=rule_id, enabled=True)
                .first()
            )
            if rule is None or rule.queue.archived_at:
                continue
            try:
                matching = trace_selectors.traces_matching(
                    project=project, params=rule.filter_params
                )
            except DomainError:
                logger.warning("routing rule %s has an invalid filter; skipped", rule.pk)
                continue
            matched = sorted(matching.filter(pk__in=trace_ids).values_list("pk", flat=True))
            sampled = [t for t in matched if _sampled(f"route:{rule.pk}:{t}", rule.sampling_rate)]
            if not sampled:
                continue
            day, _ = RoutingRuleDay.objects.get_or_create(
                organization_id=rule.organization_id, rule=rule, day=_now().date()
            )
            day = RoutingRuleDay.objects.select_for_update().get(pk=day.pk)
            if rule.daily_cap is not None:
                already = set(
                    QueueItem.objects.filter(
                        queue=rule.queue, target_type=ItemTarget.TRACE, trace_id__in=sampled
                    ).values_list("trace_id", flat=True)
                )
                sampled = [t for t in sampled if t not in already]
                sampled = sampled[: max(0, rule.daily_cap - day.routed)]
            items = _insert_items(
                queue=rule.queue,
                targets=[ItemTargetRef(ItemTarget.TRACE, t) for t in sampled],
                source=ItemSource.ROUTING_RULE,
                actor=actor,
                priority=rule.item_priority,
                routing_rule=rule,
                signal=rule.signal,
                source_detail={"rule": rule.name, "filter": rule.filter_params},
            )
            if items:
                day.routed += len(items)
                day.save(update_fields=["routed"])
            routed[rule.pk] = len(items)
    return routed
