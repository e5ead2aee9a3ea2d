"""Writes for datasets: datasets and items, promotion, import, export, experiments and
the gate's settings, one module per concern; this package re-exports them.

Every write is keyword-only, takes the acting person or key as ``actor``, runs
atomically and records history through :mod:`hitl.audit` (bulk paths included). Every
change to items goes through :class:`~datasets.services.versioning.VersionWriter`,
which makes the new version.
"""

from __future__ import annotations

from datasets.services.datasets import (
    ITEM_EDITABLE,
    dataset_create,
    dataset_item_create,
    dataset_item_delete,
    dataset_item_update,
    dataset_update,
    quality_gate_set,
)
from datasets.services.experiments import (
    experiment_create,
    experiment_finish,
    experiment_results_post,
)
from datasets.services.exports import (
    EXPORT_TASK,
    dataset_export_run,
    dataset_export_start,
    export_version,
)
from datasets.services.imports import ImportReport, dataset_import
from datasets.services.labelling import dataset_item_label, dataset_items_send_to_queue
from datasets.services.promotion import (
    Promotion,
    dataset_promote,
    dataset_promote_from_reviews,
    dataset_promote_from_trace_filter,
)
from datasets.services.versioning import VersionWriter

__all__ = [
    "EXPORT_TASK",
    "ITEM_EDITABLE",
    "ImportReport",
    "Promotion",
    "VersionWriter",
    "dataset_create",
    "dataset_export_run",
    "dataset_export_start",
    "dataset_import",
    "dataset_item_create",
    "dataset_item_delete",
    "dataset_item_label",
    "dataset_item_update",
    "dataset_items_send_to_queue",
    "dataset_promote",
    "dataset_promote_from_reviews",
    "dataset_promote_from_trace_filter",
    "dataset_update",
    "experiment_create",
    "experiment_finish",
    "experiment_results_post",
    "export_version",
    "quality_gate_set",
]
