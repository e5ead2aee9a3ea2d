"""Notifications lose nothing when real processes fail.

Both tests run Celery workers as separate processes (``celery -A hitl worker``) on the
test database, a broker they control and a real HTTP receiver on loopback:

- Redis is stopped in the middle of 500 events and started again, empty: every event
  reaches the receiver exactly once (one ``webhook-id`` each, none twice);
- a worker is killed (``SIGKILL``) while the receiver holds its request open: the
  delivery is not lost; another worker sends it again with the same ``webhook-id``
  (at least once, dedupable by the receiver) within seconds, not after
  ``HITL_OUTBOX_REPUBLISH_AFTER``;
- a receiver slower than the outbox lease, with its worker alive: one request, never two.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, transaction

from hitl import outbox, tenancy
from hitl.models import OutboxMessage
from projects.models import Delivery, DeliveryState
from projects.notifications import catalogue, event_emit
from projects.notifications.destinations import DELIVER
from tests.projects.test_notifications import Receiver, make_destination
from tests.test_outage import RedisProcess, own_redis  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.worker]

ROOT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class WorkerProcess:
    """``celery -A hitl worker`` in a process of its own, on the test database."""

    def __init__(self, broker_url: str, log: Path, extra_env: dict[str, str]) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "REDIS_URL": broker_url,
            "CELERY_BROKER_URL": broker_url,
            **extra_env,
        }
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "hitl", "worker"),
                *("--pool=threads", "--concurrency=4", "--loglevel=WARNING", "--without-gossip"),
                *("--without-mingle", "--without-heartbeat"),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acknowledgement, no rollback by the worker itself."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    """The local receiver, the one loopback port destinations may name (here and in the
    workers)."""
    server = Receiver()
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = [f"127.0.0.1:{server.port}"]
    yield server
    server.close()


@pytest.fixture
def workers(tmp_path, receiver) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(broker_url: str, **extra_env: str) -> WorkerProcess:
        env = {"HITL_WEBHOOKS_ALLOW_HOSTS": f"127.0.0.1:{receiver.port}", **extra_env}
        worker = WorkerProcess(broker_url, tmp_path / "worker.log", env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _relay_until(predicate: Callable[[], bool], what: str, timeout: float = 180.0) -> None:
    """Runs the relay (as beat would) until ``predicate`` holds; the deadline only keeps
    a broken run from hanging."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        outbox.relay()
        time.sleep(0.2)


def _emit(tenant, n: int, start: int) -> list[str]:
    uids = []
    with tenancy.tenant_scope(tenant.organization.pk):
        for i in range(start, start + n):
            with transaction.atomic():
                event = event_emit(
                    catalogue.API_KEY_CREATED,
                    organization_id=tenant.organization.pk,
                    project_id=tenant.project.pk,
                    payload={"summary": f"event {i}", "url": "http://localhost/", "n": i},
                )
            uids.append(event.uid)
    return uids


def _succeeded(tenant) -> int:
    with tenancy.tenant_scope(tenant.organization.pk):
        return Delivery.objects.filter(state=DeliveryState.SUCCEEDED).count()


def test_redis_stopped_during_500_events_delivers_each_once(
    own_redis,  # noqa: F811
    transactional_db,
    tenant,
    settings,
    receiver,
    workers,
):
    # Messages the broker lost when it restarted empty are published again this soon.
    settings.HITL_OUTBOX_REPUBLISH_AFTER = timedelta(seconds=2)
    make_destination(tenant, receiver.url())
    workers(own_redis.url)

    sent = _emit(tenant, 200, 0)
    own_redis.stop()
    sent += _emit(tenant, 300, 200)  # each waits in the outbox: the broker is down
    own_redis.start()  # empty, as after a crash without persistence

    _relay_until(lambda: _succeeded(tenant) == 500, "500 deliveries")
    ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert set(ids) == set(sent)
    assert max(ids.values()) == 1, ids.most_common(3)
    assert len(receiver.requests) == 500


def _relay_for(seconds: float) -> int:
    """Runs the relay (as beat would) for ``seconds``; returns how many runs."""
    runs = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        outbox.relay()
        runs += 1
        time.sleep(0.2)
    return runs


def test_a_worker_killed_mid_delivery_is_resent_within_seconds(
    own_redis,  # noqa: F811
    transactional_db,
    tenant,
    settings,
    receiver,
    workers,
):
    # The long fallback stays as configured (300 s): only the cut-off run is republished.
    assert settings.HITL_OUTBOX_REPUBLISH_AFTER.total_seconds() >= 300
    make_destination(tenant, receiver.url())
    receiver.delay = 8.0  # the receiver holds the request open
    doomed = workers(own_redis.url)
    (uid,) = _emit(tenant, 1, 0)
    _relay_until(lambda: len(receiver.requests) == 1, "the first request to arrive")
    doomed.kill()  # between the request and its commit
    killed_at = time.monotonic()
    receiver.delay = 0.0

    with tenancy.tenant_scope(tenant.organization.pk):
        (delivery,) = Delivery.objects.all()
    assert delivery.state == DeliveryState.PENDING and delivery.attempts == 0

    workers(own_redis.url)
    _relay_until(lambda: len(receiver.requests) == 2, "the request again", timeout=30.0)
    resent_after = time.monotonic() - killed_at
    assert resent_after < 30, resent_after
    assert [r.headers["webhook-id"] for r in receiver.requests] == [uid, uid]
    _relay_until(lambda: _succeeded(tenant) == 1, "the delivery after the kill", timeout=30.0)
    with tenancy.tenant_scope(tenant.organization.pk):
        delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.state == DeliveryState.SUCCEEDED
    _relay_for(1.0)
    assert len(receiver.requests) == 2


def test_a_slow_receiver_with_a_live_worker_gets_one_request(
    own_redis,  # noqa: F811
    transactional_db,
    tenant,
    settings,
    receiver,
    workers,
):
    # A lease of 1 s; the receiver answers after 5 s (the request's own limit is 10 s).
    make_destination(tenant, receiver.url())
    receiver.delay = 5.0
    workers(own_redis.url, HITL_OUTBOX_LEASE_SECONDS="1")
    (uid,) = _emit(tenant, 1, 0)
    _relay_until(lambda: len(receiver.requests) == 1, "the request to arrive")
    (running,) = OutboxMessage.unscoped_across_tenants.filter(task=DELIVER)
    assert running.claimed_at is not None and running.done_at is None
    published = running.published_at
    # The relay keeps running (every 0.2 s) while the request is held open, and leaves
    # the running message alone: not published again.
    assert _relay_for(3.0) >= 10
    running.refresh_from_db()
    assert running.done_at is None and running.published_at == published
    _relay_until(lambda: _succeeded(tenant) == 1, "the slow delivery", timeout=30.0)
    _relay_for(1.0)
    assert [r.headers["webhook-id"] for r in receiver.requests] == [uid]
    with tenancy.tenant_scope(tenant.organization.pk):
        (delivery,) = Delivery.objects.all()
    assert delivery.attempts == 1 and delivery.state == DeliveryState.SUCCEEDED
