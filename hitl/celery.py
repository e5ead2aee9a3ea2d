"""The Celery app, and its queues: one per workload, so each scales apart.

Every task of ours is routed to the queue of its workload (``route_task``), so a slow
export never delays a webhook and agreement reports never hold up routing:

- ``ingest``: what follows ingestion (routing new traces into review queues);
- ``notifications``: webhooks, Slack messages, emails;
- ``quality``: agreement, gold accuracy and alignment reports;
- ``files``: dataset exports (and any file a worker writes);
- ``maintenance``: beat's housekeeping (the outbox relay, span partitions and
  retention, lease expiry) and ``celery``, the default queue, where messages published
  before the queues existed wait.

Outbox messages all run through one task (``hitl.outbox.run``); the handler's name
travels with the message (``handler``) and picks the queue. A worker started without
``-Q`` consumes every queue of ``ALL_QUEUES`` (``task_queues``), as ``bin/up``'s and the
tests' do; ``docker-compose.yml`` starts one worker per workload (docs/SCALING.md,
"Workloads"). ``tests/test_task_routes.py`` fails on a task of ours without a route.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitl.settings")

INGEST = "ingest"
NOTIFICATIONS = "notifications"
QUALITY = "quality"
FILES = "files"
MAINTENANCE = "maintenance"
DEFAULT_QUEUE = "celery"  # Celery's default: unrouted messages, and an older release's
ALL_QUEUES = (INGEST, NOTIFICATIONS, QUALITY, FILES, MAINTENANCE, DEFAULT_QUEUE)

OUTBOX_RUN = "hitl.outbox.run"

# Celery tasks by name (besides the outbox's run, routed by its handler below).
TASK_QUEUES: dict[str, str] = {
    "review.route_new_traces": INGEST,
    # Thread rules' periodic run (a conversation that ended fires without new traces).
    "review.route_threads": INGEST,
    "projects.send_invitation_email": NOTIFICATIONS,
    "review.agreement_sweep": QUALITY,
    "review.gold_accuracy_sweep": QUALITY,
    "review.alignment_sweep": QUALITY,
    "hitl.outbox.relay": MAINTENANCE,
    "hitl.outbox.prune": MAINTENANCE,
    "traces.maintain_span_partitions": MAINTENANCE,
    "review.expire_leases": MAINTENANCE,
}

# Outbox handlers by name (``hitl.outbox.handler``).
OUTBOX_QUEUES: dict[str, str] = {
    "review.route_traces": INGEST,
    "projects.email_invitation": NOTIFICATIONS,
    "projects.notify_event": NOTIFICATIONS,
    "projects.deliver": NOTIFICATIONS,
    "projects.email_destination_disabled": NOTIFICATIONS,
    "projects.notify_person": NOTIFICATIONS,
    "review.agreement_refresh": QUALITY,
    "review.alignment_refresh": QUALITY,
    "datasets.export": FILES,
}


def queue_for(name: str, kwargs: dict[str, Any] | None = None) -> str | None:
    """The queue of a task (of an outbox message: of its handler), None if unrouted."""
    if name == OUTBOX_RUN:
        return OUTBOX_QUEUES.get(str((kwargs or {}).get("handler") or ""))
    return TASK_QUEUES.get(name)


def route_task(
    name: str, args: Any, kwargs: dict[str, Any] | None, options: Any, task: Any = None, **_: Any
) -> dict[str, str] | None:
    """Celery's router (``task_routes``): the workload's queue. An unrouted task goes
    to the default queue, which some worker always consumes."""
    queue = queue_for(name, kwargs)
    return {"queue": queue} if queue else None


app = Celery("hitl")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = {name: {"routing_key": name} for name in ALL_QUEUES}
app.conf.task_routes = (route_task,)
app.autodiscover_tasks()
