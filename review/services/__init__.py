"""Writes for review: score configs, queues, items, claiming, annotations, adjudication,
comments and routing rules, one module per concern; this package re-exports them.

Every write is keyword-only, takes the acting person or key as ``actor``, runs
atomically and records history through :mod:`hitl.audit` (bulk paths included).

Lock order, so concurrent claims, submissions and lease expiry never deadlock: a queue
item's row first, then its assignments.
"""

from __future__ import annotations

from review.services.annotations import (
    MAX_TEXT_ANSWER,
    annotation_update,
    expected_output_of,
    item_adjudicate,
    validate_answers,
)
from review.services.claims import (
    assignment_release,
    assignment_skip,
    assignment_submit,
    leases_expire,
    queue_claim_next,
)
from review.services.comments import MENTION, comment_create, comment_delete, comment_update
from review.services.configs import (
    CONFIG_DEFINITION_FIELDS,
    score_config_archive,
    score_config_create,
    score_config_update,
)
from review.services.items import (
    BULK_CHUNK,
    MAX_BULK_ADD,
    ItemTargetRef,
    queue_item_add,
    queue_item_remove,
    queue_items_add_dataset_items,
    queue_items_add_from_filter,
    queue_items_update,
)
from review.services.queues import (
    LEASE_TTL_RANGE,
    QUEUE_SETTINGS,
    queue_archive,
    queue_create,
    queue_update,
)
from review.services.routing import (
    routing_apply,
    routing_apply_threads,
    routing_enqueue_for_new_traces,
    routing_rule_create,
    routing_rule_delete,
    routing_rule_update,
)

__all__ = [
    "BULK_CHUNK",
    "CONFIG_DEFINITION_FIELDS",
    "LEASE_TTL_RANGE",
    "MAX_BULK_ADD",
    "MAX_TEXT_ANSWER",
    "MENTION",
    "QUEUE_SETTINGS",
    "ItemTargetRef",
    "annotation_update",
    "assignment_release",
    "assignment_skip",
    "assignment_submit",
    "comment_create",
    "comment_delete",
    "comment_update",
    "expected_output_of",
    "item_adjudicate",
    "leases_expire",
    "queue_archive",
    "queue_claim_next",
    "queue_create",
    "queue_item_add",
    "queue_item_remove",
    "queue_items_add_dataset_items",
    "queue_items_add_from_filter",
    "queue_items_update",
    "queue_update",
    "routing_apply",
    "routing_apply_threads",
    "routing_enqueue_for_new_traces",
    "routing_rule_create",
    "routing_rule_delete",
    "routing_rule_update",
    "score_config_archive",
    "score_config_create",
    "score_config_update",
    "validate_answers",
]
