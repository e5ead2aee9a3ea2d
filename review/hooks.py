"""What review asks of, and announces to, the apps above it and its own quality wing.

datasets sits above review in the layers, so review never imports it: a dataset item
that is a queue item's target is a plain id (``QueueItem.dataset_item_id``), which
review resolves through the provider datasets registers here, and the reviewers'
verdict on it goes back up through the ``expected_output_written`` signal, which
datasets connects in ``DatasetsConfig.ready()``.

The core of review (queues, items, claims, annotations) never imports
:mod:`review.quality` either: a claim asks the registered claim gates (quality's
calibration gate is one), and changed answers are announced by ``answers_changed``
(quality recomputes agreement and gold accuracy). Quality connects both in
``ReviewConfig.ready()``.
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


# A claim gate takes ``queue`` and ``user_id`` and raises a ``hitl.exceptions.DomainError``
# (``PermissionDenied``) to refuse that reviewer a claim on that queue; it returns None
# to let it through. A gate registered with ``refusal_sql`` (an SQL boolean expression
# over ``%(queue_id)s``, ``%(organization_id)s`` and ``%(user_id)s``, true when the gate
# refuses) is asked inside the claim statement itself, costing a claim no round trip:
# the gate is called only when that expression refused, to say why. A gate without it
# is called before each claim, in the claimer's transaction.
ClaimGate = Callable[..., None]
_claim_gates: list[tuple[ClaimGate, str | None]] = []


def register_claim_gate(gate: ClaimGate, *, refusal_sql: str | None = None) -> None:
    if all(gate is not known for known, _ in _claim_gates):
        _claim_gates.append((gate, refusal_sql))


def claim_gates_refusal_sql() -> str:
    """One SQL boolean, true when any gate registered with ``refusal_sql`` refuses."""
    parts = [f"({sql})" for _, sql in _claim_gates if sql]
    return " OR ".join(parts) or "false"


def claim_gates_check(*, queue: Any, user_id: int, with_sql: bool = True) -> None:
    """Raises the first gate's refusal of ``user_id`` claiming in ``queue``;
    ``with_sql=False``: only the gates the claim statement does not ask."""
    for gate, sql in _claim_gates:
        if with_sql or not sql:
            gate(queue=queue, user_id=user_id)


# Sent INSIDE the transaction in which answers of a queue were written (a submission,
# or an edit of a submitted annotation's answers). Argument: ``queue`` (the
# ReviewQueue). Receivers run in that transaction; an exception they raise refuses the
# write.
answers_changed = Signal()
