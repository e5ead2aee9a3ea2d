"""A queue's notification setting: the backlog threshold of ``review.queue.backlog``."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from hitl import audit
from hitl.audit import Actor
from hitl.exceptions import DomainError
from projects.models import Project, QueueAlert


def queue_alert_set(
    *, actor: Actor, project: Project, queue_id: int, backlog_threshold: int
) -> QueueAlert:
    """Sets (or changes) the backlog threshold of a queue of ``project``; the event is
    sent when the queue's waiting items rise to it. The queue is named by its id (review
    sits above projects); an id that is no queue of this organization never fires."""
    if backlog_threshold < 1:
        raise DomainError(
            "The threshold is a number of items, at least 1.",
            details={"backlog_threshold": ["at least 1"]},
        )
    with audit.acting_as(actor), transaction.atomic():
        alert = QueueAlert.objects.select_for_update().filter(queue_id=queue_id).first()
        if alert is None:
            return QueueAlert.objects.create(
                project=project, queue_id=queue_id, backlog_threshold=backlog_threshold
            )
        alert.project = project
        alert.backlog_threshold = backlog_threshold
        alert.updated_at = timezone.now()
        alert.save()
    return alert


def queue_alert_delete(*, actor: Actor, alert: QueueAlert) -> None:
    with audit.acting_as(actor), transaction.atomic():
        alert.delete()
