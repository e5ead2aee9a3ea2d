"""Every task of ours goes to its workload's queue (hitl/celery.py), and every queue has
a worker: bin/up's and the tests' (no ``-Q``) consume them all, docker-compose.yml
starts one worker per workload.

Tasks are read from the Celery app's registry and outbox handlers from the outbox's, so
a new task or handler without a route fails here without editing this file.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from hitl import outbox
from hitl.celery import (
    ALL_QUEUES,
    DEFAULT_QUEUE,
    FILES,
    INGEST,
    NOTIFICATIONS,
    OUTBOX_QUEUES,
    OUTBOX_RUN,
    QUALITY,
    TASK_QUEUES,
    app,
)

ROOT = Path(__file__).resolve().parent.parent


def _routed(name: str, **kwargs: object) -> str:
    """The queue Celery's own router picks for a publish of ``name``."""
    return app.amqp.router.route({}, name, (), kwargs)["queue"].name


def _our_tasks() -> list[str]:
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if not name.startswith(("celery.", "tests.")))


def test_every_task_and_outbox_handler_has_its_workloads_queue():
    tasks = _our_tasks()
    assert OUTBOX_RUN in tasks and len(tasks) > 5
    unrouted = [n for n in tasks if n != OUTBOX_RUN and _routed(n) == DEFAULT_QUEUE]
    assert not unrouted, f"tasks without a queue in hitl.celery.TASK_QUEUES: {unrouted}"
    # The product's handlers (test modules register their own, named tests.*).
    handlers = sorted(h for h in outbox.registered() if not h.startswith("tests."))
    assert "datasets.export" in handlers and len(handlers) > 5
    unrouted = [h for h in handlers if _routed(OUTBOX_RUN, handler=h) == DEFAULT_QUEUE]
    assert not unrouted, f"outbox handlers without a queue in hitl.celery.OUTBOX_QUEUES: {unrouted}"
    # Routes name only tasks and handlers that exist (a renamed one is not left behind).
    assert set(TASK_QUEUES) <= set(tasks) and set(OUTBOX_QUEUES) <= set(handlers)
    # The workloads the queues stand for.
    assert _routed(OUTBOX_RUN, handler="review.route_traces") == INGEST
    assert _routed(OUTBOX_RUN, handler="projects.deliver") == NOTIFICATIONS
    assert _routed(OUTBOX_RUN, handler="review.agreement_refresh") == QUALITY
    assert _routed(OUTBOX_RUN, handler="datasets.export") == FILES
    # An outbox message published by an older release (no handler) still has a worker.
    assert _routed(OUTBOX_RUN) == DEFAULT_QUEUE


def test_the_outbox_publishes_each_message_to_its_handlers_queue():
    """A real publish to the test Redis: the message lands in the workload's queue."""
    import redis

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with outbox._connection() as conn:
        conn.default_channel.queue_purge(FILES)
        outbox._send(conn, 0, 0, "datasets.export")
        assert broker.llen(FILES) == 1
        assert broker.llen(NOTIFICATIONS) == 0
        conn.default_channel.queue_purge(FILES)


def test_a_worker_without_queues_named_consumes_them_all_and_compose_starts_each():
    assert list(app.amqp.queues) == list(ALL_QUEUES)
    assert set(app.amqp.queues.consume_from) == set(ALL_QUEUES)
    routed = set(TASK_QUEUES.values()) | set(OUTBOX_QUEUES.values())
    assert routed | {DEFAULT_QUEUE} == set(ALL_QUEUES)
    compose = (ROOT / "docker-compose.yml").read_text()
    consumed = [
        set(match.split(","))
        for match in re.findall(r"celery -A hitl worker -Q ([\w,]+) ", compose)
    ]
    assert set().union(*consumed) == set(ALL_QUEUES)
    assert sum(len(queues) for queues in consumed) == len(ALL_QUEUES)  # each queue once
    up = (ROOT / "bin" / "up").read_text()
    assert "celery -A hitl worker --loglevel" in up  # no -Q: every queue
