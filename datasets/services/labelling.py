"""Reviewers label dataset items: an item sent to a review queue is a queue item
(``review.models.ItemTarget.DATASET_ITEM``), and the reviewers' verdict becomes its
expected output.

Review sits below datasets and never imports it: it resolves items through the
provider registered here (``dataset_items_for_review``) and announces each verdict with
``review.hooks.expected_output_written`` inside the transaction of the submit or
decision that settled it. ``dataset_item_label`` writes the verdict through the
:class:`~datasets.services.versioning.VersionWriter` (a new version, history under the
reviewer who settled it) with the reviews as provenance. A verdict the dataset's
schema refuses raises ``DomainError`` there, which refuses the submit or decision: the
reviewer sees why and nothing of it is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.urls import reverse

from datasets.content import SchemaCheck
from datasets.models import Dataset, DatasetItem, DatasetVersion
from datasets.services.datasets import state_of
from datasets.services.promotion import with_reviews
from datasets.services.versioning import VersionWriter
from hitl import audit
from hitl.audit import Actor
from hitl.exceptions import DomainError
from review import hooks
from review.models import QueueItem, ReviewQueue
from review.services import queue_items_add_dataset_items

MAX_SEND = 50_000


def dataset_items_for_review(*, project_id: int, ids: Sequence[int]) -> dict[int, Any]:
    """The provider review asks (``review.hooks.register_dataset_items``): the items
    among ``ids`` of project ``project_id`` (the tenant manager scopes the organization),
    each with its input, expected output and metadata. One query."""
    rows = DatasetItem.objects.filter(project_id=project_id, pk__in=list(ids)).select_related(
        "dataset", "project__organization"
    )
    found = {}
    for item in rows:
        url = reverse(
            "datasets-item",
            kwargs={
                "org_slug": item.project.organization.slug,
                "project_slug": item.project.slug,
                "dataset_pk": item.dataset_id,
                "dataset_item_pk": item.pk,
            },
        )
        found[item.pk] = hooks.DatasetItemView(
            id=item.pk,
            project_id=item.project_id,
            dataset_id=item.dataset_id,
            dataset_name=item.dataset.name,
            key=item.key,
            input=item.input,
            expected_output=item.expected_output,
            metadata=item.metadata or {},
            url=url,
        )
    return found


def dataset_item_label(
    *,
    actor: Actor,
    queue_item: QueueItem,
    dataset_item_id: int,
    expected_output: Any,
) -> tuple[DatasetItem, DatasetVersion | None] | None:
    """Writes the reviewers' verdict on a dataset item: its expected output (when they
    stated one), the reviews, annotation ids, decision and queue item as provenance, in
    a new version. None when the item is gone (deleted since it was queued)."""
    with audit.acting_as(actor), transaction.atomic():
        item = (
            DatasetItem.objects.select_related("dataset")
            .filter(project_id=queue_item.project_id, pk=dataset_item_id)
            .first()
        )
        if item is None:
            return None
        writer = VersionWriter(
            dataset=item.dataset, message=f"label {item.key} (review queue {queue_item.queue_id})"
        )
        item = DatasetItem.objects.select_for_update().get(pk=item.pk)
        before = state_of(item)
        state = with_reviews(state_of(item), queue_item)
        # What the reviewers did not say keeps what the item said.
        state.explanation = state.explanation or before.explanation
        state.failure_modes = sorted({*before.failure_modes, *state.failure_modes})
        if expected_output is not None:
            state.expected_output = expected_output
        errors = SchemaCheck(writer.dataset.schema).errors(state)
        if errors:
            raise DomainError(
                f"The expected output does not fit the schema of the dataset "
                f"“{writer.dataset.name}”: {'; '.join(str(e) for e in errors)}",
                code="schema",
                details={"expected_output": [str(e) for e in errors]},
            )
        writer.upsert([state])
        version = writer.finish()
        return DatasetItem.objects.get(pk=item.pk), version


def on_expected_output_written(
    sender: Any,
    *,
    item: QueueItem,
    dataset_item_id: int,
    expected_output: Any,
    actor: Actor,
    **kwargs: Any,
) -> None:
    """The receiver of ``review.hooks.expected_output_written`` (connected in
    ``DatasetsConfig.ready()``)."""
    dataset_item_label(
        actor=actor,
        queue_item=item,
        dataset_item_id=dataset_item_id,
        expected_output=expected_output,
    )


def dataset_items_send_to_queue(
    *,
    actor: Actor,
    dataset: Dataset,
    queue: ReviewQueue,
    item_ids: Sequence[int] | None = None,
    priority: int = 0,
) -> dict[str, int]:
    """Sends items of ``dataset`` (the ids given, or every item it holds now) to a
    review queue of its project for reviewers to label. Items already in the queue are
    reported, not added twice."""
    if queue.project_id != dataset.project_id:
        raise DomainError("Choose a queue of this project.", details={"queue_id": ["not found"]})
    items = DatasetItem.objects.filter(dataset=dataset)
    if item_ids is not None:
        wanted = list(dict.fromkeys(int(i) for i in item_ids))
        ids = list(items.filter(pk__in=wanted).values_list("pk", flat=True))
        if len(ids) != len(wanted):
            raise DomainError(
                "Some of the chosen items are not in this dataset.",
                details={"item_ids": ["not found"]},
            )
    else:
        ids = list(items.order_by("key").values_list("pk", flat=True)[: MAX_SEND + 1])
        if len(ids) > MAX_SEND:
            raise DomainError(
                f"The dataset holds more than {MAX_SEND} items; send a selection.",
                code="too_many",
            )
    if not ids:
        raise DomainError("The dataset has no items to send.", details={"item_ids": ["empty"]})
    return queue_items_add_dataset_items(
        actor=actor, queue=queue, dataset_item_ids=ids, priority=priority
    )
