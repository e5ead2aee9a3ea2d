"""What review asks of, and announces to, the apps above it.

datasets sits above review in the layers, so review never imports it: a dataset item
that is a queue item's target is a plain id (``QueueItem.dataset_item_id``), which
review resolves through the provider datasets registers here, and the reviewers'
verdict on it goes back up through the ``expected_output_written`` signal, which
datasets connects in ``DatasetsConfig.ready()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.dispatch import Signal


@dataclass(frozen=True)
class DatasetItemView:
    """One dataset item as review shows and checks it."""

    id: int
    project_id: int
    dataset_id: int
    dataset_name: str
    key: str
    input: Any
    expected_output: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    # The item's page (empty when the provider has no page to link).
    url: str = ""


# A dataset items provider takes ``project_id`` and ``ids`` and returns {id: view} for
# the ids that are items of that project; ids of another project (or organization) or
# of deleted items are simply absent, so every caller fails closed. One query per call.
DatasetItemsProvider = Callable[..., dict[int, DatasetItemView]]
_dataset_item_providers: list[DatasetItemsProvider] = []


def register_dataset_items(provider: DatasetItemsProvider) -> None:
    if provider not in _dataset_item_providers:
        _dataset_item_providers.append(provider)


def dataset_items(*, project_id: int, ids: Iterable[int]) -> dict[int, DatasetItemView]:
    """The dataset items among ``ids`` that belong to project ``project_id``."""
    wanted = sorted({int(i) for i in ids})
    found: dict[int, DatasetItemView] = {}
    if not wanted:
        return found
    for provider in _dataset_item_providers:
        for pk, view in provider(project_id=project_id, ids=wanted).items():
            if view.project_id == project_id and pk in wanted:
                found[pk] = view
    return found


def dataset_item(*, project_id: int, pk: int | None) -> DatasetItemView | None:
    if pk is None:
        return None
    return dataset_items(project_id=project_id, ids=[pk]).get(pk)


# Sent INSIDE the transaction in which a dataset-item queue item gets its verdict: all
# overlap submissions are in and agree (``adjudication`` None), or a senior adjudicated
# it. Arguments: ``item`` (the QueueItem), ``dataset_item_id``, ``expected_output`` (the
# consensus or adjudicated value, None when nobody stated one), ``annotations`` (in
# submit order), ``adjudication`` (or None) and ``actor``. A receiver that refuses the
# verdict raises a ``hitl.exceptions.DomainError``: the submission or adjudication is
# refused with it and nothing of it is kept.
expected_output_written = Signal()


def _queue_choices() -> list[Any]:
    """The queues of the organization in scope, for the notification settings
    (``projects.hooks``)."""
    from projects.hooks import QueueChoice
    from review.models import ReviewQueue

    rows = ReviewQueue.objects.values_list(
        "pk", "name", "project_id", "project__name", "archived_at"
    )
    return [
        QueueChoice(pk, name, pid, project, archived is not None)
        for pk, name, pid, project, archived in rows
    ]


def _register_queue_choices() -> None:
    from projects.hooks import register_queue_choices

    register_queue_choices(_queue_choices)


_register_queue_choices()


def _queue_pool_join(*, actor: Any, membership: Any, queue_ids: list[int]) -> list[str]:
    """An accepted invitation's queues: the invitee joins their pools
    (``projects.hooks.queue_pool_join``)."""
    from review.services.queues import queue_pool_join

    return queue_pool_join(actor=actor, membership=membership, queue_ids=queue_ids)


def _work_page(*, membership: Any) -> Any:
    """My work, and whether the member has review work (a pool of a live queue, or a
    lease they hold), for the landing after sign-in (``projects.hooks.work_page``)."""
    from django.urls import reverse

    from projects.hooks import WorkPage
    from review.models import Assignment, AssignmentState, QueueReviewer

    has_work = (
        QueueReviewer.objects.filter(
            membership=membership, queue__archived_at__isnull=True
        ).exists()
        or Assignment.objects.filter(
            reviewer_id=membership.user_id, state=AssignmentState.LEASED
        ).exists()
    )
    url = reverse("review-my-work", kwargs={"org_slug": membership.organization.slug})
    return WorkPage(url=url, has_work=has_work)


def _register_invitation_hooks() -> None:
    from projects.hooks import register_queue_pool_join, register_work_page

    register_queue_pool_join(_queue_pool_join)
    register_work_page(_work_page)


_register_invitation_hooks()
