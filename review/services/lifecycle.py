"""An item's life in its queue, the rules every service that moves it shares: an item
is added only to a queue that is open (not archived) and pushed to its pool's
reviewers; it stays open while its reviews come in; when all N are in it closes
(:func:`item_close`): complete, or to adjudication when the answers disagree, a complete
one drawn for audit at the queue's rate; a dataset item's verdict goes to datasets
(:func:`expected_output_announce`)."""

from __future__ import annotations

from collections.abc import Sequence

from hitl import audit
from hitl.audit import Actor
from hitl.exceptions import Conflict
from review import hooks
from review.consensus import consensus_expected_output
from review.models import (
    Adjudication,
    Annotation,
    AuditStatus,
    ItemStatus,
    ItemTarget,
    QueueItem,
    QueueReviewer,
    ReviewQueue,
)
from review.selectors import FormQuestion, item_disagreement
from review.services.common import sampled_in, time_now
from review.services.events import announce_if_queue_completed, announce_item_closed
from review.services.routing_strategies import routing_enqueue_for_disagreement


def expected_output_announce(
    item: QueueItem,
    annotations: Sequence[Annotation],
    actor: Actor,
    adjudication: Adjudication | None = None,
) -> None:
    """A dataset item's verdict, to datasets (``review.hooks``), inside the caller's
    transaction: a receiver's ``DomainError`` refuses the submit or decision."""
    if item.target_type != ItemTarget.DATASET_ITEM or item.dataset_item_id is None:
        return
    value = consensus_expected_output(annotations, adjudication)
    hooks.expected_output_written.send(
        sender=QueueItem,
        item=item,
        dataset_item_id=item.dataset_item_id,
        expected_output=value,
        annotations=list(annotations),
        adjudication=adjudication,
        actor=actor,
    )


def item_close(item: QueueItem, form: Sequence[FormQuestion]) -> None:
    """All N reviews are in: complete, or to adjudication when they disagree. A
    complete dataset item's consensus goes to datasets, written by whoever closes it
    (the last reviewer's submit, or the manager lowering the overlap)."""
    annotations = list(Annotation.objects.filter(item=item).order_by("submitted_at", "id"))
    if item_disagreement(form, annotations):
        item.status = ItemStatus.NEEDS_ADJUDICATION
        routing_enqueue_for_disagreement(item)
    else:
        item.status = ItemStatus.COMPLETE
        if item.audit_status == AuditStatus.NOT_SAMPLED and sampled_in(
            f"audit:{item.queue_id}:{item.pk}", item.queue.audit_sample_rate
        ):
            item.audit_status = AuditStatus.PENDING
    item.completed_at = item.completed_at or time_now()
    item.save()
    actor = audit.current_actor()
    if item.status == ItemStatus.COMPLETE and actor is not None:
        expected_output_announce(item, annotations, actor)
    announce_item_closed(item, [question.config.name for question in form])
    announce_if_queue_completed(item)


def queue_check_open(queue: ReviewQueue) -> None:
    if queue.archived_at:
        raise Conflict("This queue is archived.", code="archived")


def queue_pool_user_ids(queue: ReviewQueue) -> list[int]:
    return list(
        QueueReviewer.objects.filter(queue=queue)
        .order_by("id")
        .values_list("membership__user_id", flat=True)
    )
