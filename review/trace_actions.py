"""Adding one trace to a review queue from the trace page (``traces.hooks``): managers
choose one of the project's queues; the item is added through ``queue_item_add``."""

from __future__ import annotations

from typing import Any

from hitl.audit import Actor
from hitl.exceptions import Conflict
from projects.models import MANAGE_ROLES
from review import services
from review.models import ReviewQueue
from traces.hooks import TraceAction


def trace_queue_actions(*, membership: Any, project: Any, trace: Any) -> list[TraceAction]:
    """ "Add to a queue" for managers, among the project's queues not archived."""
    if membership.role not in MANAGE_ROLES:
        return []
    queues = ReviewQueue.objects.filter(project=project, archived_at__isnull=True).order_by(
        "name", "pk"
    )
    choices = [(str(queue.pk), queue.name) for queue in queues]

    def perform(*, actor: Actor, trace: Any, choice: str, accept_output: bool) -> str:
        queue = ReviewQueue.objects.get(project=project, pk=int(choice))
        try:
            services.queue_item_add(actor=actor, queue=queue, trace_id=trace.pk)
        except Conflict:
            return f"This trace is already in “{queue.name}”."
        return f"Added this trace to “{queue.name}”."

    return [
        TraceAction(
            key="queue",
            label="Add to a review queue",
            choice_label="Queue",
            choices=choices,
            perform=perform,
            empty_text="The project has no review queue yet.",
        )
    ]
