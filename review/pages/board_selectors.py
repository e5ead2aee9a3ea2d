"""Reads for the board: each column's count and first cards (priority first), a
column's label and count, and the labels of chosen items.
"""

from __future__ import annotations

from typing import Any

from django.db.models import TextField
from django.db.models.functions import Cast, Left

from hitl.replica import reads_from_replica
from review.models import (
    QueueItem,
    QueueReviewer,
    ReviewQueue,
)
from review.selectors import BOARD_COLUMNS, filter_by_board_status, queue_board
from review.services.items import SELECTABLE_COLUMNS

BOARD_CARDS_PER_COLUMN = 20


@reads_from_replica
def board(queue: ReviewQueue) -> dict[str, Any]:
    """The kanban: each column's count and its first cards (priority first), the pool
    for reassigning, and per assignee what is done and pending, time on task and
    reviews per hour (``review.selectors.queue_board``, the API's board)."""
    summary = queue_board(queue=queue)
    pool = list(
        QueueReviewer.objects.filter(queue=queue)
        .select_related("membership__user")
        .order_by("membership__user__email")
    )
    emails = {r.membership.user_id: r.membership.user.email for r in pool}
    columns = []
    for status in BOARD_COLUMNS:
        items = list(
            filter_by_board_status(QueueItem.objects.filter(queue=queue), status)
            .select_related("trace", "thread")
            .only(
                "id",
                "priority",
                "assignees",
                "status",
                "submissions",
                "live_leases",
                "target_type",
                "created_at",
                "trace__external_id",
                "trace__name",
                "trace__start_time",
                "thread__external_id",
            )
            # The head of the trace's input, to tell cards apart (not the whole input).
            .annotate(input_head=Left(Cast("trace__input", TextField()), INPUT_HEAD))
            .order_by("-priority", "created_at", "id")[:BOARD_CARDS_PER_COLUMN]
        )
        cards = [
            {
                "item": item,
                "label": _item_label(item),
                "assignees": [emails.get(a, f"user {a}") for a in item.assignees],
                "assignee": item.assignees[0] if len(item.assignees) == 1 else None,
            }
            for item in items
        ]
        columns.append(
            {
                "status": status,
                "label": column_label(status),
                "count": summary["columns"][status],
                "cards": cards,
                "selectable": status in SELECTABLE_COLUMNS,
            }
        )
    return {
        "columns": columns,
        "total": summary["total"],
        "assignees": summary["assignees"],
        "pool": [(r.membership.user_id, r.membership.user.email) for r in pool],
    }


# How much of a trace's input (as JSON text) a board card reads for its snippet.
INPUT_HEAD = 400


def column_label(status: str) -> str:
    return status.replace("_", " ").capitalize()


def column_count(queue: ReviewQueue, status: str) -> int:
    """How many items one board column holds now."""
    return filter_by_board_status(QueueItem.objects.filter(queue=queue), status).count()


def item_labels(queue: ReviewQueue, item_ids: list[int]) -> dict[int, str]:
    """item id -> how the board names it (its trace's name), for every id given; an id
    not in the queue is "item <id>"."""
    items = (
        QueueItem.objects.filter(queue=queue, pk__in=item_ids)
        .select_related("trace", "thread")
        .only("id", "trace__external_id", "trace__name", "thread__external_id")
    )
    labels = {item_id: f"item {item_id}" for item_id in item_ids}
    labels.update({item.pk: f"“{_item_label(item)}” (item {item.pk})" for item in items})
    return labels


def _item_label(item: QueueItem) -> str:
    if item.trace_id and item.trace is not None:
        return item.trace.name or item.trace.external_id
    if item.thread_id and item.thread is not None:
        return f"thread {item.thread.external_id}"
    return f"item {item.pk}"
