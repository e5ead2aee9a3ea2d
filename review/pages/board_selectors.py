"""Reads for the board: each column's count and first cards (priority first), a
column's label and count, and the labels of chosen items.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, OuterRef, Prefetch, QuerySet, Subquery, TextField
from django.db.models.functions import Cast, Coalesce, Left

from hitl.replica import reads_from_replica
from review.comparison.models import ComparisonOutput
from review.models import (
    QueueItem,
    QueueReviewer,
    ReviewQueue,
)
from review.selectors import BOARD_COLUMNS, filter_by_board_status, queue_board
from review.services.items import SELECTABLE_COLUMNS
from traces.models import Trace
from traces.selectors import trace_input_head

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
            .select_related("trace", "thread", "comparison")
            .prefetch_related(_comparison_output_labels())
            .only(
                "id",
                "priority",
                "assignees",
                "status",
                "submissions",
                "live_leases",
                "target_type",
                "dataset_item_id",
                "created_at",
                "trace__external_id",
                "trace__name",
                "trace__start_time",
                "thread__external_id",
                "comparison__id",
            )
            # The head of the trace's (the comparison's, the conversation's first turn's)
            # input, to tell cards apart (not the whole input); a conversation's turns.
            .annotate(
                input_head=Coalesce(
                    Left(
                        Coalesce(
                            Cast("trace__input", TextField()),
                            Cast("comparison__input", TextField()),
                        ),
                        INPUT_HEAD,
                    ),
                    Subquery(_first_turn().annotate(head=trace_input_head()).values("head")[:1]),
                ),
                turns=Subquery(_turn_count()),
            )
            .order_by("-priority", "created_at", "id")[:BOARD_CARDS_PER_COLUMN]
        )
        cards = [
            {
                "item": item,
                "label": item_label(item),
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
    """item id -> how the board names it (``item_label``), for every id given; an id
    not in the queue is "item <id>"."""
    items = (
        QueueItem.objects.filter(queue=queue, pk__in=item_ids)
        .select_related("trace", "thread", "comparison")
        .prefetch_related(_comparison_output_labels())
        .only(
            "id",
            "dataset_item_id",
            "trace__external_id",
            "trace__name",
            "thread__external_id",
            "comparison__id",
        )
    )
    labels = {item_id: f"item {item_id}" for item_id in item_ids}
    labels.update({item.pk: f"“{item_label(item)}” (item {item.pk})" for item in items})
    return labels


def _first_turn() -> QuerySet[Trace]:
    """The first turn of the card's conversation (the board's item's thread)."""
    return Trace.objects.filter(thread_id=OuterRef("thread_id")).order_by(
        F("start_time").asc(nulls_last=True), "created_at", "id"
    )


def _turn_count() -> QuerySet[Trace]:
    """How many turns the card's conversation has."""
    return (
        Trace.objects.filter(thread_id=OuterRef("thread_id"))
        .order_by()
        .values("thread_id")
        .annotate(n=Count("id"))
        .values("n")
    )


def _comparison_output_labels() -> Prefetch:
    """A comparison item is named by the systems it compares (their labels, in their
    order): only the labels are read."""
    return Prefetch(
        "comparison__outputs",
        queryset=ComparisonOutput.objects.only("id", "comparison_id", "position", "label"),
    )


# At most this many systems are named; the rest are counted.
NAMED_SYSTEMS = 3


def item_label(item: QueueItem) -> str:
    """How a person tells an item apart where they pick or decide one (board cards, the
    adjudication pages' headings, refusals that name items): a trace by its name (or
    external id), a thread by its id, a comparison by the systems it compares ("v1 vs
    v2"), a dataset item by its id. The one naming rule for items."""
    if item.trace_id and item.trace is not None:
        return item.trace.name or item.trace.external_id
    if item.thread_id and item.thread is not None:
        return f"thread {item.thread.external_id}"
    if item.comparison_id and item.comparison is not None:
        labels = [output.label for output in item.comparison.outputs.all()]
        named = " vs ".join(labels[:NAMED_SYSTEMS])
        more = len(labels) - NAMED_SYSTEMS
        return f"{named} and {more} more" if more > 0 else named or f"comparison {item.pk}"
    if item.dataset_item_id:
        return f"dataset item {item.dataset_item_id}"
    return f"item {item.pk}"
