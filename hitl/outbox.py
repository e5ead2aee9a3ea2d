"""Work that must reach a worker, and must not be lost: the outbox.

A service that causes work (route these traces, send this invitation) calls
:func:`enqueue` inside its own transaction: an :class:`~hitl.models.OutboxMessage` row
commits or rolls back with its cause. Then:

1. After commit, one best-effort publish of ``hitl.outbox.run`` to the broker, with a
   short timeout and no retry. A dead broker costs the request a few milliseconds (and,
   for a few seconds after a failure, nothing: publishing is not even tried). The
   messages of one transaction are published together, over the process's one broker
   connection, kept open between transactions (:class:`_Publisher`).
   A message enqueued with ``run_here=True`` by a handler (the fan-out's deliveries) may
   skip the broker: once the handler's transaction commits, the worker runs one such
   message itself, at once, after marking it published.
2. The relay (:func:`relay`, run by Celery beat every few seconds and by
   ``manage.py outbox_relay``) publishes the messages still pending, those a worker
   started and stopped running without finishing (its worker died: see below), and
   those published long ago but never started (``HITL_OUTBOX_REPUBLISH_AFTER``: the
   broker may have lost them), taking rows with ``FOR UPDATE SKIP LOCKED`` so relays
   running side by side never publish the same row.
3. A worker runs :func:`execute`: it claims the message (``claimed_at``, committed at
   once), then locks the row, skips it if it is already done, runs the handler
   registered under the message's name inside the message's tenant scope, and marks it
   done in the same transaction. A message published twice runs once.

The lease of running work is the run's own row lock: PostgreSQL holds it exactly as long
as the worker's database session lives. A killed worker process closes its connection
and the lock goes at once; a worker host that vanishes without closing it is found by
TCP keepalives the worker's session asks PostgreSQL for, within
``HITL_OUTBOX_LEASE_SECONDS``. The relay takes only rows nobody holds, so a message that
was claimed since its last publish and is neither done nor locked was cut off: it is
published again on the relay's next run, with the same ids (a webhook keeps its
``webhook-id``). A slow run that is still alive keeps its lock, however long it takes,
and is never published twice.

Handlers are registered by name by the apps above the kernel, from their
``AppConfig.ready()`` (:func:`handler`), and take ids, never objects. A handler raising
one of its ``retry_on`` errors is retried with exponential backoff by the relay (the row
waits in PostgreSQL, so a retry survives a broker outage and restarts); any other error,
or too many attempts, marks the message failed and logs it at error level.

Exactly once: database writes of a handler commit together with "done". A side effect
outside the database (an email) happens once per message, unless the worker dies
between sending and committing, in which case it is sent again: at least once, never
lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from celery import Task, shared_task
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F as Field
from django.db.models import Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from hitl.celery import app as celery_app
from hitl.models import OutboxMessage, OutboxState
from hitl.tenancy import tenant_scope

logger = logging.getLogger(__name__)

# Publishing never waits longer than this for the broker.
PUBLISH_TIMEOUT = 0.5
# After a failed publish, requests leave publishing to the relay for this long.
BROKER_RETRY_AFTER = 5.0
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=10)
BACKOFF_MAX = timedelta(hours=1)
RELAY_BATCH = 500

F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Handler:
    name: str
    func: Callable[..., object]
    retry_on: tuple[type[BaseException], ...]
    max_attempts: int


_handlers: dict[str, Handler] = {}


def register(
    name: str,
    func: Callable[..., object],
    *,
    retry_on: Sequence[type[BaseException]] = (),
    max_attempts: int = MAX_ATTEMPTS,
) -> None:
    """Runs ``func(**kwargs)`` for every message named ``name``."""
    existing = _handlers.get(name)
    if existing is not None and existing.func is not func:
        raise ValueError(f"outbox handler {name!r} is already registered")
    _handlers[name] = Handler(name, func, tuple(retry_on), max_attempts)


def handler(
    name: str,
    *,
    retry_on: Sequence[type[BaseException]] = (),
    max_attempts: int = MAX_ATTEMPTS,
) -> Callable[[F], F]:
    """Decorator form of :func:`register`."""

    def decorate(func: F) -> F:
        register(name, func, retry_on=retry_on, max_attempts=max_attempts)
        return func

    return decorate


def registered() -> frozenset[str]:
    return frozenset(_handlers)


# --- enqueue, and the publish after commit ------------------------------------------------


def enqueue(
    *,
    task: str,
    organization_id: int,
    kwargs: Mapping[str, Any] | None = None,
    secret_kwargs: Mapping[str, str] | None = None,
    available_at: datetime | None = None,
    run_here: bool = False,
) -> OutboxMessage:
    """Writes a message in the current transaction; it is published once that commits.

    Must be called inside ``transaction.atomic()``: the message belongs to the
    transaction of its cause. ``kwargs`` must be JSON (ids, not objects);
    ``secret_kwargs`` are handed to the handler too but never shown and erased once the
    message is finished. A message ``available_at`` a later time (a scheduled retry) is
    not published after commit: the relay publishes it once that time has come.
    ``run_here``: enqueued by a handler, the message may be run by this worker right
    after the handler's transaction commits instead of crossing the broker (one per
    transaction; the others are published).
    """
    if task not in _handlers:
        raise LookupError(f"no outbox handler registered for {task!r}")
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError(
            "outbox.enqueue() belongs inside the transaction of its cause"
        )
    message = OutboxMessage(
        organization_id=organization_id,
        task=task,
        kwargs=dict(kwargs or {}),
        secret_kwargs=dict(secret_kwargs or {}),
    )
    if available_at is not None:
        message.available_at = available_at
    message.save()
    if available_at is not None and available_at > timezone.now():
        return message
    _commit_batch().messages.append((message.pk, int(organization_id), task, run_here))
    return message


_local = threading.local()


class _CommitBatch:
    """The messages one transaction enqueued, published together once it commits."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, int, str, bool]] = []

    def __call__(self) -> None:
        _publish_after_commit(self.messages)


def _commit_batch() -> _CommitBatch:
    """This transaction's batch: registered with ``on_commit`` by its first message. A
    batch whose callback Django dropped (its savepoint rolled back) is replaced."""
    connection_ = transaction.get_connection()
    batch = getattr(_local, "batch", None)
    if batch is None or not any(entry[1] is batch for entry in connection_.run_on_commit):
        batch = _CommitBatch()
        _local.batch = batch
        transaction.on_commit(batch, robust=True)
    return batch


def _executing() -> bool:
    """Whether this thread is running an outbox message (a worker, or the relay's caller)."""
    return getattr(_local, "executing", 0) > 0


class _Breaker:
    """Remembers, per process, that the broker failed a moment ago."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down_until = 0.0
        self.failures = 0

    def is_open(self) -> bool:
        return self.down_until > time.monotonic()

    def trip(self) -> None:
        with self._lock:
            self.down_until = time.monotonic() + BROKER_RETRY_AFTER
            self.failures += 1

    def close(self) -> None:
        self.down_until = 0.0


_broker = _Breaker()


def publish_failures() -> int:
    """Publishes that failed since the process started (each left for the relay)."""
    return _broker.failures


def _connection() -> Any:
    return celery_app.connection_for_write(
        connect_timeout=PUBLISH_TIMEOUT,
        transport_options={
            "max_retries": 0,
            "socket_connect_timeout": PUBLISH_TIMEOUT,
            "socket_timeout": PUBLISH_TIMEOUT,
        },
    )


def _send(conn: Any, message_id: int, organization_id: int, task: str) -> None:
    # The handler's name picks the workload's queue (``hitl.celery.route_task``).
    run.apply_async(
        kwargs={"message_id": message_id, "organization_id": organization_id, "handler": task},
        connection=conn,
        retry=False,
    )


class _Publisher:
    """The process's broker connection for publishing after commit: opened at the first
    publish, kept open, shared by the process's threads one publish at a time, and
    dropped (to be opened again) after any failure, a fork, or a change of broker URL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: Any = None
        self._key: tuple[int, str] | None = None

    def publish(self, messages: Sequence[tuple[int, int, str]]) -> None:
        key = (os.getpid(), str(celery_app.conf.broker_url))
        with self._lock:
            kept = self._conn is not None and self._key == key
            if not kept:
                self._drop()
            try:
                self._send_all(messages, key)
            except Exception:
                self._drop()
                if not kept:
                    raise
                # A kept connection may be stale (the broker restarted): once more on a
                # new one. A message sent twice runs once.
                try:
                    self._send_all(messages, key)
                except Exception:
                    self._drop()
                    raise

    def _send_all(self, messages: Sequence[tuple[int, int, str]], key: tuple[int, str]) -> None:
        if self._conn is None:
            self._conn, self._key = _connection(), key
        for message_id, organization_id, task in messages:
            _send(self._conn, message_id, organization_id, task)

    def _drop(self) -> None:
        conn, self._conn, self._key = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.release()


_publisher = _Publisher()


def _publish_after_commit(messages: Sequence[tuple[int, int, str, bool]]) -> None:
    """Publishes a committed transaction's messages; in a worker, runs one message
    enqueued ``run_here`` itself instead."""
    here = None
    if _executing():
        here = next((m for m in reversed(messages) if m[3]), None)
    to_publish = [
        (pk, organization_id, task)
        for pk, organization_id, task, _ in messages
        if pk != (here[0] if here else None)
    ]
    if to_publish:
        _publish(to_publish)
    if here is not None:
        _run_here(here[0], here[1])


def _publish(messages: Sequence[tuple[int, int, str]]) -> None:
    if _broker.is_open():
        return
    try:
        _publisher.publish(messages)
    except Exception as exc:  # whatever the broker does, the request goes on
        _broker.trip()
        logger.warning(
            "outbox publish failed, left for the relay: %s messages from %s (%s)",
            len(messages),
            messages[0][0],
            type(exc).__name__,
        )
        return
    try:
        _mark_published([pk for pk, _org, _task in messages])
    except DatabaseError as exc:  # the relay will publish them again; running twice is safe
        logger.warning("outbox messages from %s published but not marked: %s", messages[0][0], exc)


def _run_here(message_id: int, organization_id: int) -> None:
    """Runs a message in this worker now. Marked published first: if the worker dies,
    the relay publishes it again (a claimed message whose run's lock is gone)."""
    try:
        _mark_published([message_id])
    except DatabaseError as exc:  # the relay may publish it too; it runs once all the same
        logger.warning("outbox message %s not marked before running here: %s", message_id, exc)
    execute(message_id=message_id, organization_id=organization_id)


def _mark_published(message_ids: Sequence[int]) -> None:
    """Pending -> published (database time), skipping rows a worker holds (it is
    finishing them); a row a worker claimed is published already."""
    table = OutboxMessage._meta.db_table  # our own table name, not input
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET state = %s, published_at = now() WHERE id IN ("  # noqa: S608
            f" SELECT id FROM {table} WHERE id = ANY(%s) AND state = %s"
            " FOR UPDATE SKIP LOCKED)",
            [OutboxState.PUBLISHED, list(message_ids), OutboxState.PENDING],
        )


# --- the relay ---------------------------------------------------------------------------


def relay(*, limit: int = RELAY_BATCH) -> int:
    """Publishes pending messages, cut-off ones and stale published ones; returns how
    many.

    Stops at the first broker failure: the rest wait for the next run.
    """
    total = 0
    while True:
        published, complete = _relay_batch(limit)
        total += published
        if not complete or published < limit:
            break
    if total:
        logger.info("outbox relay published %s messages", total)
    return total


def _relay_batch(limit: int) -> tuple[int, bool]:
    now = timezone.now()
    stale = now - settings.HITL_OUTBOX_REPUBLISH_AFTER
    with transaction.atomic():
        # The relay serves every organization: one cross-tenant read, by design.
        # A row a live worker is running is locked by its run, so skipped here: whatever
        # is claimed since its last publish and not locked was cut off (its worker died),
        # unless the claim is younger than the grace: a worker commits its claim, then
        # locks the row, and a relay in between would take a live run for a dead one.
        rows = list(
            OutboxMessage.unscoped_across_tenants.select_for_update(skip_locked=True)
            .filter(
                Q(state=OutboxState.PENDING, available_at__lte=now)
                | Q(
                    state=OutboxState.PUBLISHED,
                    claimed_at__gte=Field("published_at"),
                    claimed_at__lt=now - settings.HITL_OUTBOX_CLAIM_GRACE,
                )
                | Q(state=OutboxState.PUBLISHED, published_at__lt=stale)
            )
            .order_by("id")
            .values_list("pk", "organization_id", "task", "state", "claimed_at", "published_at")[
                :limit
            ]
        )
        if not rows:
            return 0, True
        cut_off = [
            pk
            for pk, _org, _task, state, claimed, published in rows
            if state == OutboxState.PUBLISHED
            and claimed
            and published
            and published <= claimed < now - settings.HITL_OUTBOX_CLAIM_GRACE
        ]
        if cut_off:
            logger.warning(
                "outbox relay: %s messages cut off by a stopped worker, published again (%s)",
                len(cut_off),
                ", ".join(map(str, cut_off[:10])),
            )
        rows = [(pk, organization_id, task) for pk, organization_id, task, *_ in rows]
        sent: list[int] = []
        try:
            with _connection() as conn:
                for message_id, organization_id, task in rows:
                    _send(conn, message_id, organization_id, task)
                    sent.append(message_id)
        except Exception as exc:
            logger.warning(
                "outbox relay: broker unavailable after %s of %s messages (%s)",
                len(sent),
                len(rows),
                type(exc).__name__,
            )
        else:
            _broker.close()
        if sent:
            OutboxMessage.unscoped_across_tenants.filter(pk__in=sent).update(
                state=OutboxState.PUBLISHED, published_at=Now()
            )
    return len(sent), len(sent) == len(rows)


# --- running a message -------------------------------------------------------------------


def _backoff(attempts: int) -> timedelta:
    delay = min(BACKOFF_BASE * (2 ** (attempts - 1)), BACKOFF_MAX)
    return delay * random.uniform(0.8, 1.2)


def _finish(message: OutboxMessage, state: str, error: str = "") -> None:
    message.state = state
    message.done_at = timezone.now()
    message.last_error = error
    message.secret_kwargs = {}


def execute(*, message_id: int, organization_id: int) -> str:
    """Runs one message at most once to completion; returns what happened."""
    _local.executing = getattr(_local, "executing", 0) + 1
    try:
        return _execute(message_id=message_id, organization_id=organization_id)
    finally:
        _local.executing -= 1


def _claim(message_id: int) -> None:
    """Marks the message started by a worker, committed before the run's transaction
    (database time, so clocks of other hosts do not matter). Waits while another worker
    runs it, then claims nothing if that run finished it. A row never published (run
    straight from a broker copy) counts as published now, so the publisher's mark
    cannot hide the claim."""
    OutboxMessage.objects.filter(
        pk=message_id, state__in=(OutboxState.PENDING, OutboxState.PUBLISHED)
    ).update(
        claimed_at=Now(),
        state=OutboxState.PUBLISHED,
        published_at=Coalesce("published_at", Now()),
    )


def _lease_keepalives() -> None:
    """Asks PostgreSQL to probe this worker's host while its session is quiet (a run
    waiting for a receiver), so a host that vanished loses its session, and the run's
    row lock, within ``HITL_OUTBOX_LEASE_SECONDS``. Once per database connection."""
    lease = int(settings.HITL_OUTBOX_LEASE_SECONDS)
    if lease <= 0 or connection.in_atomic_block:  # a SET in a transaction may roll back
        return
    connection.ensure_connection()
    applied = getattr(connection, "_outbox_lease", None)
    if applied is not None and applied[0] is connection.connection and applied[1] == lease:
        return
    idle = max(1, lease // 3)
    interval = max(1, lease // 6)
    count = max(1, (lease - idle) // interval)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('tcp_keepalives_idle', %s, false),"
            " set_config('tcp_keepalives_interval', %s, false),"
            " set_config('tcp_keepalives_count', %s, false)",
            [str(idle), str(interval), str(count)],
        )
    connection._outbox_lease = (connection.connection, lease)  # type: ignore[attr-defined]


def _execute(*, message_id: int, organization_id: int) -> str:
    with tenant_scope(organization_id):
        _lease_keepalives()
        _claim(message_id)
        return _run_locked(message_id)


def _run_locked(message_id: int) -> str:
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            return "missing"
        if message.state in (OutboxState.DONE, OutboxState.FAILED):
            return "skipped"
        message.attempts += 1
        spec = _handlers.get(message.task)
        if spec is None:
            error = f"no handler registered for {message.task!r}"
            logger.error("outbox message %s (%s) failed: %s", message.pk, message.task, error)
            _finish(message, OutboxState.FAILED, error)
            message.save()
            return "failed"
        outcome = "done"
        try:
            with transaction.atomic():
                spec.func(**message.kwargs, **message.secret_kwargs)
        except spec.retry_on as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            if message.attempts >= spec.max_attempts:
                logger.error(
                    "outbox message %s (%s) failed after %s attempts: %s",
                    message.pk,
                    message.task,
                    message.attempts,
                    error,
                )
                _finish(message, OutboxState.FAILED, error)
                outcome = "failed"
            else:
                message.state = OutboxState.PENDING
                message.available_at = timezone.now() + _backoff(message.attempts)
                message.last_error = error
                logger.warning(
                    "outbox message %s (%s) will be retried: %s", message.pk, message.task, error
                )
                outcome = "retry"
        except Exception as exc:
            logger.exception("outbox message %s (%s) failed", message.pk, message.task)
            _finish(message, OutboxState.FAILED, f"{type(exc).__name__}: {exc}"[:2000])
            outcome = "failed"
        else:
            _finish(message, OutboxState.DONE)
        message.save()
        return outcome


def prune() -> int:
    """Deletes messages done longer ago than ``HITL_OUTBOX_KEEP_DONE``; failed ones stay."""
    cutoff = timezone.now() - settings.HITL_OUTBOX_KEEP_DONE
    deleted, _ = OutboxMessage.unscoped_across_tenants.filter(
        state=OutboxState.DONE, done_at__lt=cutoff
    ).delete()
    return deleted


# --- Celery tasks ------------------------------------------------------------------------


@shared_task(
    name="hitl.outbox.run",
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_kwargs={"max_retries": 5},
)
def run(self: Task, message_id: int, organization_id: int, **_: object) -> str:
    return execute(message_id=message_id, organization_id=organization_id)


@shared_task(name="hitl.outbox.relay", ignore_result=True)
def relay_task(**_: object) -> int:
    return relay()


@shared_task(name="hitl.outbox.prune", ignore_result=True)
def prune_task(**_: object) -> int:
    return prune()
