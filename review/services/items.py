"""Queue items: adding by hand or in bulk from a trace filter or a list of dataset items
(and the insert routing uses), priorities, assignees and removal."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from hitl import audit, tenancy
from hitl.audit import Actor
from hitl.exceptions import Conflict, DomainError, NotFound
from projects.models import Project
from review import hooks
from review.models import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    Annotation,
    AssignmentStrategy,
    AuditStatus,
    ItemSource,
    ItemStatus,
    ItemTarget,
    QueueItem,
    ReviewQueue,
    RoutingRule,
)
from review.selectors import filter_by_board_status
from review.services.claims import leases_take_back
from review.services.common import require_manager, time_now
from review.services.events import announce_backlog, announce_items_assigned
from review.services.lifecycle import queue_check_open, queue_pool_user_ids
from traces.models import Span, Thread, Trace

MAX_BULK_ADD = 200_000
# The most items one board selection changes at once.
MAX_SELECTION = 500
# The most items "all in this column" changes at once.
MAX_COLUMN_SELECTION = 20_000
# The board's columns whose items are open: selected, reprioritised, reassigned.
SELECTABLE_COLUMNS = ("pending", "in_progress", "submitted")


BULK_CHUNK = 1_000


@dataclass(frozen=True)
class ItemTargetRef:
    target_type: str
    trace_id: int | None
    span_id: int | None = None
    thread_id: int | None = None
    dataset_item_id: int | None = None


_ITEM_COLUMNS = (
    "organization_id",
    "queue_id",
    "project_id",
    "target_type",
    "trace_id",
    "span_id",
    "thread_id",
    "dataset_item_id",
    "source",
    "routing_rule_id",
    "signal",
    "source_detail",
    "priority",
    "required_skills",
    "language",
    "assignees",
    "status",
    "audit_status",
    "live_leases",
    "submissions",
    "open_slots",
    "added_by_id",
    "created_at",
)


# One row's placeholders, in ``_ITEM_COLUMNS`` order.
_ITEM_PLACEHOLDERS = (
    "(" + ", ".join("%s::jsonb" if c == "source_detail" else "%s" for c in _ITEM_COLUMNS) + ")"
)


def _item_row(
    queue: ReviewQueue,
    target: ItemTargetRef,
    *,
    source: str,
    added_by_id: int | None,
    created_at: Any,
    routing_rule_id: int | None = None,
    signal: str = "",
    source_detail: Mapping[str, Any] | None = None,
    priority: int = 0,
    required_skills: Sequence[str] = (),
    language: str = "",
    assignees: Sequence[int] = (),
) -> list[Any]:
    """A new open item's values, in ``_ITEM_COLUMNS`` order (the one place a raw insert
    of items builds its row)."""
    return [
        queue.organization_id,
        queue.pk,
        queue.project_id,
        target.target_type,
        target.trace_id,
        target.span_id,
        target.thread_id,
        target.dataset_item_id,
        source,
        routing_rule_id,
        signal,
        json.dumps(dict(source_detail or {})),
        priority,
        list(required_skills),
        language,
        list(assignees),
        ItemStatus.OPEN,
        AuditStatus.NOT_SAMPLED,
        0,
        0,
        queue.overlap,
        added_by_id,
        created_at,
    ]


def _round_robin_assignees(queue: ReviewQueue, count: int) -> list[list[int]]:
    """The next ``count`` items' assignees, N distinct pool members each, in turn."""
    pool = queue_pool_user_ids(queue)
    if not pool:
        return [[] for _ in range(count)]
    width = min(queue.overlap, len(pool))
    cursor = queue.round_robin_cursor
    result = []
    for _ in range(count):
        result.append([pool[(cursor + k) % len(pool)] for k in range(width)])
        cursor = (cursor + 1) % len(pool)
    # The cursor churns on every push: kept out of history, written directly.
    ReviewQueue.objects.filter(pk=queue.pk).update(round_robin_cursor=cursor)
    queue.round_robin_cursor = cursor
    return result


def items_insert(
    *,
    queue: ReviewQueue,
    targets: Sequence[ItemTargetRef],
    source: str,
    actor: Actor,
    priority: int = 0,
    routing_rule: RoutingRule | None = None,
    signal: str = "",
    source_detail: Mapping[str, Any] | None = None,
    required_skills: Sequence[str] = (),
    language: str = "",
    assignees: Sequence[int] = (),
    source_details: Mapping[ItemTargetRef, Mapping[str, Any]] | None = None,
) -> list[QueueItem]:
    """Inserts the items not yet in the queue (ON CONFLICT DO NOTHING on the per-target
    unique constraints) and records their creation history. Returns the new items.
    ``source_details``: a target's own source detail (a routed trace's reason), in
    place of ``source_detail``."""
    if not targets:
        return []
    tenancy.assert_writing_in_scope(queue.organization_id)
    if queue.assignment_strategy == AssignmentStrategy.ROUND_ROBIN and not assignees:
        pushed = _round_robin_assignees(queue, len(targets))
    else:
        pushed = [list(assignees)] * len(targets)
    now = time_now()
    params = []
    for target, item_assignees in zip(targets, pushed, strict=True):
        params.extend(
            _item_row(
                queue,
                target,
                source=source,
                routing_rule_id=routing_rule.pk if routing_rule else None,
                signal=signal,
                source_detail=(source_details or {}).get(target, source_detail) or {},
                priority=priority,
                required_skills=required_skills,
                language=language,
                assignees=item_assignees,
                added_by_id=actor.user.pk if actor.user else None,
                created_at=now,
            )
        )
    # Fixed column names; every value is a bound parameter.
    columns, values = ", ".join(_ITEM_COLUMNS), ", ".join([_ITEM_PLACEHOLDERS] * len(targets))
    sql = f"INSERT INTO review_queueitem ({columns}) VALUES {values} ON CONFLICT DO NOTHING"  # noqa: S608
    sql += " RETURNING id"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        new_ids = [row[0] for row in cursor.fetchall()]
    items = list(QueueItem.objects.filter(pk__in=new_ids).order_by("id"))
    audit.bulk_record_created(items, QueueItem)
    announce_items_assigned(queue, _by_assignee(items))
    announce_backlog(queue, len(items))
    return items


def _by_assignee(items: Sequence[QueueItem], before: Mapping[int, Sequence[int]] | None = None):
    """User id -> ids of the items newly assigned to them (not in ``before[item id]``)."""
    pushed: dict[int, list[int]] = {}
    for item in items:
        earlier = set((before or {}).get(item.pk, ()))
        for user_id in item.assignees or ():
            if user_id not in earlier:
                pushed.setdefault(user_id, []).append(item.pk)
    return pushed


def _resolve_target(
    project: Project,
    *,
    trace_id: int | None,
    span_id: int | None,
    thread_id: int | None,
    dataset_item_id: int | None = None,
) -> ItemTargetRef:
    given = [name for name, v in (("trace_id", trace_id), ("span_id", span_id),
                                  ("thread_id", thread_id), ("dataset_item_id", dataset_item_id))
             if v is not None]  # fmt: skip
    if len(given) != 1:
        raise DomainError(
            "Name exactly one of trace_id, span_id, thread_id or dataset_item_id.",
            details={"target": ["exactly one of trace_id, span_id, thread_id, dataset_item_id"]},
        )
    if dataset_item_id is not None:
        # datasets answers for its items; another project's or a deleted item is absent.
        if hooks.dataset_item(project_id=project.pk, pk=dataset_item_id) is None:
            raise DomainError(
                f"No dataset item {dataset_item_id} in this project.",
                details={"dataset_item_id": ["not found"]},
            )
        return ItemTargetRef(ItemTarget.DATASET_ITEM, None, dataset_item_id=dataset_item_id)
    # The tenant manager and the project filter: another organization's id is unknown.
    if trace_id is not None:
        if not Trace.objects.filter(project=project, pk=trace_id).exists():
            raise DomainError(
                f"No trace {trace_id} in this project.", details={"trace_id": ["not found"]}
            )
        return ItemTargetRef(ItemTarget.TRACE, trace_id)
    if span_id is not None:
        span = Span.objects.filter(project=project, pk=span_id).values("trace_id").first()
        if span is None:
            raise DomainError(
                f"No span {span_id} in this project.", details={"span_id": ["not found"]}
            )
        return ItemTargetRef(ItemTarget.SPAN, span["trace_id"], span_id=span_id)
    if not Thread.objects.filter(project=project, pk=thread_id).exists():
        raise DomainError(
            f"No thread {thread_id} in this project.", details={"thread_id": ["not found"]}
        )
    return ItemTargetRef(ItemTarget.THREAD, None, thread_id=thread_id)


def _check_assignees(queue: ReviewQueue, assignees: Sequence[int]) -> list[int]:
    pool = set(queue_pool_user_ids(queue))
    outside = [a for a in assignees if a not in pool]
    if outside:
        raise DomainError(
            "Assignees must be in the queue's reviewer pool.",
            details={"assignees": [f"user {a} is not in the pool" for a in outside]},
        )
    return list(dict.fromkeys(assignees))


def queue_item_add(
    *,
    actor: Actor,
    queue: ReviewQueue,
    trace_id: int | None = None,
    span_id: int | None = None,
    thread_id: int | None = None,
    dataset_item_id: int | None = None,
    priority: int = 0,
    required_skills: Sequence[str] = (),
    language: str = "",
    assignees: Sequence[int] = (),
) -> QueueItem:
    """Adds one trace, span, thread or dataset item by hand."""
    with audit.acting_as(actor), transaction.atomic():
        queue_check_open(queue)
        project = Project.objects.get(pk=queue.project_id)
        target = _resolve_target(
            project,
            trace_id=trace_id,
            span_id=span_id,
            thread_id=thread_id,
            dataset_item_id=dataset_item_id,
        )
        items = items_insert(
            queue=queue,
            targets=[target],
            source=ItemSource.MANUAL,
            actor=actor,
            priority=priority,
            required_skills=required_skills,
            language=language,
            assignees=_check_assignees(queue, assignees),
        )
        if not items:
            existing = QueueItem.objects.filter(
                queue=queue,
                target_type=target.target_type,
                **{f"{target.target_type}_id": getattr(target, f"{target.target_type}_id")},
            ).first()
            raise Conflict(
                "This target is already in the queue.",
                code="already_queued",
                details={"item_id": existing.pk if existing else None},
            )
    return items[0]


REMIX_CHUNK = 1_000  # rows per INSERT (23 parameters each, under PostgreSQL's 65,535)


def _target_of(item: QueueItem) -> ItemTargetRef:
    return ItemTargetRef(
        item.target_type, item.trace_id, item.span_id, item.thread_id, item.dataset_item_id
    )


def queue_items_remix(
    *,
    actor: Actor,
    queue: ReviewQueue,
    hosts: Sequence[QueueItem],
    trace_ids: Sequence[int],
    rng: random.Random,
    like: QueueItem | None = None,
) -> list[QueueItem]:
    """Adds trace items for ``trace_ids`` so that no read tells them from the items
    around them (calibration's gold): ``hosts`` (open items nobody has claimed,
    commented on or reviewed, locked by the caller) are removed and inserted again
    together with the new ones, in ``rng``'s order, so ids interleave; each row
    keeps its host's shape (source, detail, routing, priority, skills, language,
    assignees, who added it, created_at) and each new one takes a random host's. With
    no host, the new items go at the end of the queue shaped like ``like``. History
    records the removal and the insertion; the same people hold the same pushes, so
    nothing is announced but the backlog. Returns the new items."""
    tenancy.assert_writing_in_scope(queue.organization_id)
    queue_check_open(queue)
    shapes = list(hosts) or ([like] if like is not None else [])
    rows: list[tuple[ItemTargetRef, QueueItem | None, bool]] = [
        (_target_of(host), host, False) for host in hosts
    ]
    traced = [h for h in shapes if h.target_type == ItemTarget.TRACE] or shapes
    for trace_id in trace_ids:
        model = rng.choice(traced) if traced else None
        rows.append((ItemTargetRef(ItemTarget.TRACE, trace_id), model, True))
    rng.shuffle(rows)
    if hosts:
        # Set-based: the hosts' "-" history copied from the table, then one DELETE (they
        # have no lease, annotation, decision or comment; a row added meanwhile fails
        # the deferred foreign key at commit, and the mix with it).
        removed = [h.pk for h in hosts]
        audit.bulk_record_from_table(QueueItem, removed, "-")
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM review_queueitem WHERE organization_id = %s AND id = ANY(%s)",
                [queue.organization_id, removed],
            )
    now = time_now()
    row_params = []
    for target, model, new in rows:
        keep_age = model is not None and (bool(hosts) or not new)
        if model is None:
            row = _item_row(
                queue,
                target,
                source=ItemSource.MANUAL,
                added_by_id=actor.user.pk if actor.user else None,
                created_at=now,
            )
        else:
            row = _item_row(
                queue,
                target,
                source=model.source,
                routing_rule_id=model.routing_rule_id,
                signal=model.signal,
                source_detail=model.source_detail,
                priority=model.priority,
                required_skills=model.required_skills,
                language=model.language,
                assignees=model.assignees,
                added_by_id=model.added_by_id,
                created_at=model.created_at if keep_age else now,
            )
        row_params.append(row)
    columns = ", ".join(_ITEM_COLUMNS)
    ids: list[int] = []
    # Fixed column names; every value is a bound parameter. One statement per chunk, in
    # list order, so ids follow the drawn order.
    with connection.cursor() as cursor:
        for start in range(0, len(row_params), REMIX_CHUNK):
            chunk = row_params[start : start + REMIX_CHUNK]
            values = ", ".join([_ITEM_PLACEHOLDERS] * len(chunk))
            sql = f"INSERT INTO review_queueitem ({columns}) VALUES {values} RETURNING id"  # noqa: S608
            cursor.execute(sql, [value for row in chunk for value in row])
            ids.extend(row[0] for row in cursor.fetchall())
    audit.bulk_record_from_table(QueueItem, ids, "+")
    announce_backlog(queue, len(trace_ids))
    items = list(QueueItem.objects.filter(pk__in=ids).order_by("id"))
    added = set(trace_ids)
    return [i for i in items if i.target_type == ItemTarget.TRACE and i.trace_id in added]


def queue_items_add_dataset_items(
    *,
    actor: Actor,
    queue: ReviewQueue,
    dataset_item_ids: Sequence[int],
    priority: int = 0,
    required_skills: Sequence[str] = (),
    language: str = "",
) -> dict[str, int]:
    """Adds dataset items for reviewers to label (their expected output), skipping
    those already in the queue. Every id must be an item of the queue's project, or
    nothing is added."""
    ids = list(dict.fromkeys(int(i) for i in dataset_item_ids))
    if not ids:
        raise DomainError(
            "Choose at least one dataset item.", details={"dataset_item_ids": ["required"]}
        )
    if len(ids) > MAX_BULK_ADD:
        raise DomainError(
            f"{len(ids)} dataset items; at most {MAX_BULK_ADD} can be added at once.",
            code="too_many",
        )
    _check_priority(priority)
    with audit.acting_as(actor), transaction.atomic():
        queue_check_open(queue)
        added = 0
        for start in range(0, len(ids), BULK_CHUNK):
            chunk = ids[start : start + BULK_CHUNK]
            known = hooks.dataset_items(project_id=queue.project_id, ids=chunk)
            missing = [pk for pk in chunk if pk not in known]
            if missing:
                raise DomainError(
                    f"{len(missing)} of the dataset items are not in this project.",
                    details={"dataset_item_ids": [f"not found: {pk}" for pk in missing[:20]]},
                )
            added += len(
                items_insert(
                    queue=queue,
                    targets=[
                        ItemTargetRef(ItemTarget.DATASET_ITEM, None, dataset_item_id=pk)
                        for pk in chunk
                    ],
                    source=ItemSource.MANUAL,
                    actor=actor,
                    priority=priority,
                    required_skills=required_skills,
                    language=language,
                )
            )
    return {"requested": len(ids), "added": added, "already_queued": len(ids) - added}


def queue_items_add_from_filter(
    *,
    actor: Actor,
    queue: ReviewQueue,
    params: Mapping[str, Any],
    priority: int = 0,
    required_skills: Sequence[str] = (),
    language: str = "",
) -> dict[str, int]:
    """Adds every trace the filter matches (all pages), skipping those already queued."""
    from traces import selectors as trace_selectors

    normalized = trace_selectors.validate_trace_filter(params)
    with audit.acting_as(actor), transaction.atomic():
        queue_check_open(queue)
        project = Project.objects.get(pk=queue.project_id)
        matching = trace_selectors.traces_matching(project=project, params=normalized)
        ids = matching.order_by().values_list("id", flat=True)
        matched = ids.count()
        if matched > MAX_BULK_ADD:
            raise DomainError(
                f"The filter matches {matched} traces; at most {MAX_BULK_ADD} can be added at "
                "once. Narrow the filter.",
                code="too_many",
            )
        added, last_id = 0, 0
        while True:
            chunk = list(ids.filter(id__gt=last_id).order_by("id")[:BULK_CHUNK])
            if not chunk:
                break
            last_id = chunk[-1]
            added += len(
                items_insert(
                    queue=queue,
                    targets=[ItemTargetRef(ItemTarget.TRACE, t) for t in chunk],
                    source=ItemSource.BULK_FILTER,
                    actor=actor,
                    priority=priority,
                    source_detail={"filter": normalized},
                    required_skills=required_skills,
                    language=language,
                )
            )
    return {"matched": matched, "added": added, "already_queued": matched - added}


def queue_items_update(
    *,
    actor: Actor,
    queue: ReviewQueue,
    item_ids: Sequence[int],
    priority: int | None = None,
    assignees: Sequence[int] | None = None,
) -> list[QueueItem]:
    """Re-prioritizes or (re)assigns many items at once, one history row each."""
    _check_priority(priority)
    with audit.acting_as(actor), transaction.atomic():
        items = list(
            QueueItem.objects.select_for_update()
            .filter(queue=queue, pk__in=item_ids)
            .order_by("id")
        )
        if len(items) != len(set(item_ids)):
            raise NotFound("One or more items are not in this queue.")
        fields = []
        if priority is not None:
            fields.append("priority")
        if assignees is not None:
            assignees = _check_assignees(queue, assignees)
            fields.append("assignees")
        before = {item.pk: list(item.assignees or ()) for item in items}
        for item in items:
            if priority is not None:
                item.priority = priority
            if assignees is not None:
                item.assignees = list(assignees)
        if fields:
            audit.bulk_update_with_history(items, QueueItem, fields)
        if assignees is not None:
            announce_items_assigned(queue, _by_assignee(items, before))
    return items


def _check_priority(priority: int | None) -> None:
    if priority is not None and not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise DomainError(
            f"A priority is a whole number between {PRIORITY_MIN} and {PRIORITY_MAX}.",
            details={"priority": ["out of range"]},
        )


_NOT_OPEN = {
    ItemStatus.COMPLETE: "already complete",
    ItemStatus.NEEDS_ADJUDICATION: "waiting for adjudication",
    ItemStatus.ADJUDICATED: "already adjudicated",
}


def queue_items_update_each(
    *,
    actor: Actor,
    queue: ReviewQueue,
    item_ids: Sequence[int] = (),
    priority: int | None = None,
    assignees: Sequence[int] | None = None,
    column: str | None = None,
) -> dict[str, Any]:
    """The board's selection: gives every open item of the selection the new priority
    and/or assignees (``[]``: back to the queue, anyone in the pool may claim it, and
    the live leases on it are taken back from whoever holds them, as
    ``claims.leases_take_back`` does), in one transaction with one history row per
    changed item, and says which items could
    not take the change and why: gone from the queue meanwhile, or no longer open
    (complete, waiting for adjudication, adjudicated). An item that already has the
    values is left alone (no history row). What concerns the whole request (nothing
    selected or asked for, an assignee outside the pool, an archived queue) raises
    ``DomainError`` and changes nothing.

    ``column`` (one of the open columns, ``SELECTABLE_COLUMNS``) instead of ids: every
    item the column's condition matches when the rows are locked (PostgreSQL rechecks
    the condition on a row changed meanwhile, so an item claimed or submitted since the
    count was shown is not taken), at most ``MAX_COLUMN_SELECTION``.

    Returns ``{"changed": [ids], "unchanged": [ids], "refused": [{"item_id",
    "reason"}], "taken_back": [ids of changed items whose leases ended]}``, ids in the
    order given (by id for a column)."""
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    if column is not None:
        if ids or column not in SELECTABLE_COLUMNS:
            raise DomainError(
                "Choose the items or one open column, not both.",
                details={"column": [f"one of {', '.join(SELECTABLE_COLUMNS)}, without items"]},
            )
    elif not ids:
        raise DomainError("Select at least one item.", details={"item_id": ["required"]})
    if len(ids) > MAX_SELECTION:
        raise DomainError(
            f"{len(ids)} items selected; at most {MAX_SELECTION} change at once.",
            details={"item_id": [f"at most {MAX_SELECTION}"]},
        )
    if priority is None and assignees is None:
        raise DomainError(
            "Choose a new priority or whom to assign the selected items to.",
            details={"priority": ["or assignees required"]},
        )
    _check_priority(priority)
    with audit.acting_as(actor), transaction.atomic():
        queue_check_open(queue)
        if assignees is not None:
            assignees = _check_assignees(queue, assignees)
        back_to_queue = assignees is not None and not assignees
        # Lock order: item rows first (by id, as every other bulk path locks them).
        locked = QueueItem.objects.select_for_update().filter(queue=queue).order_by("id")
        if column is not None:
            locked = filter_by_board_status(locked, column)[: MAX_COLUMN_SELECTION + 1]
        else:
            locked = locked.filter(pk__in=ids)
        found = {item.pk: item for item in locked}
        if column is not None:
            if len(found) > MAX_COLUMN_SELECTION:
                raise DomainError(
                    f"More than {MAX_COLUMN_SELECTION} items in this column; "
                    "change them a column's part at a time (by priority or reviewer).",
                    details={"column": [f"at most {MAX_COLUMN_SELECTION} items"]},
                )
            ids = list(found)
        changed: list[QueueItem] = []
        unchanged: list[int] = []
        refused: list[dict[str, Any]] = []
        before: dict[int, list[int]] = {}
        for pk in ids:
            item = found.get(pk)
            if item is None:
                refused.append({"item_id": pk, "reason": "not in this queue (removed meanwhile)"})
                continue
            if item.status != ItemStatus.OPEN:
                why = _NOT_OPEN.get(item.status, f"{item.status}")
                refused.append({"item_id": pk, "reason": f"{why}; only open items are changed"})
                continue
            new_priority = item.priority if priority is None else priority
            new_assignees = list(item.assignees or ()) if assignees is None else list(assignees)
            taking = back_to_queue and item.live_leases > 0
            same = new_priority == item.priority and new_assignees == list(item.assignees or ())
            if same and not taking:
                unchanged.append(pk)
                continue
            before[pk] = list(item.assignees or ())
            item.priority, item.assignees = new_priority, new_assignees
            changed.append(item)
        held = [item for item in changed if back_to_queue and item.live_leases > 0]
        if held:
            manager = require_manager(actor, queue.organization_id, "Taking items back")
            taken = leases_take_back(held, by=manager)
        else:
            taken = {}
        if changed:
            fields = [
                name
                for name, given in (("priority", priority), ("assignees", assignees))
                if given is not None
            ]
            audit.bulk_update_with_history(changed, QueueItem, fields)
            if assignees is not None:
                announce_items_assigned(queue, _by_assignee(changed, before))
    return {
        "changed": [item.pk for item in changed],
        "unchanged": unchanged,
        "refused": refused,
        "taken_back": [item.pk for item in changed if item.pk in taken],
    }


def queue_item_remove(*, actor: Actor, item: QueueItem) -> None:
    with audit.acting_as(actor), transaction.atomic():
        item = QueueItem.objects.select_for_update().get(pk=item.pk)
        if item.submissions or Annotation.objects.filter(item=item).exists():
            raise Conflict(
                "This item has submitted reviews; it stays for the record.", code="has_reviews"
            )
        item.delete()
