"""A Redis outage costs speed, never data.

The test runs its own redis-server process as the cache and the broker, stops it for
real, uses the site through the API (REST and OTLP ingestion, sign-in, a review, an
invitation), starts it again (empty, as after a crash without persistence), and then
sees a real Celery worker and the outbox relay deliver what waited: the routed items and
one invitation email.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.core import mail
from django.test import Client

from hitl import cache as fail_open_cache
from hitl import outbox, tenancy
from hitl.api.throttling import CallerRateThrottle
from hitl.audit import Actor
from hitl.celery import app as celery_app
from hitl.models import OutboxMessage, OutboxState
from projects import services as project_services
from projects.models import Invitation
from review import services as review_services
from review.models import QueueItem
from tests.factories import PASSWORD
from tests.review.helpers import make_config, make_queue, make_trace
from tests.traces.ingest_helpers import post, span, trace
from tests.traces.test_otlp import PROTOBUF, _captured_request
from traces.models import Trace

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisProcess:
    """A redis-server of this test's own, which it can stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(settings, tmp_path) -> Iterator[RedisProcess]:
    """Cache and broker on a Redis this test controls; everything restored afterwards."""
    server = RedisProcess(tmp_path)
    server.start()
    # The configured cache, only moved to this Redis (and quicker to try it again).
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": server.url, "RETRY_AFTER": 0.2}
    }
    saved_broker = celery_app.conf.broker_url
    celery_app.conf.broker_url = server.url
    try:
        yield server
    finally:
        server.stop()
        celery_app.conf.broker_url = saved_broker
        outbox._broker.close()


@pytest.fixture
def finished_runs() -> Iterator[list[tuple[int, str]]]:
    """(message id, outcome) of every ``hitl.outbox.run`` the worker finishes."""
    runs: list[tuple[int, str]] = []

    def record(sender=None, kwargs=None, retval=None, **_):
        if getattr(sender, "name", "") == "hitl.outbox.run":
            runs.append((kwargs["message_id"], retval))

    task_postrun.connect(record, weak=False)
    yield runs
    task_postrun.disconnect(record)


def _wait_for(predicate, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _messages() -> list[OutboxMessage]:
    return list(OutboxMessage.unscoped_across_tenants.order_by("pk"))


def _base(tenant) -> str:
    return f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}"


def test_a_redis_outage_costs_speed_not_data(
    own_redis, transactional_db, tenant, client_for, finished_runs
):
    org = tenant.organization
    # --- before: a routing rule, a queue with an item to review, people signed in ----
    routed_queue = make_queue(tenant, name="failures")
    config = make_config(tenant)
    review_queue = make_queue(tenant, name="daily", configs=[config])
    with tenancy.tenant_scope(org.pk):
        review_services.routing_rule_create(
            actor=Actor(user=tenant.owner), project=tenant.project, queue_id=routed_queue.pk,
            name="errors", signal="error", filter_params={"has_error": "true"},
            sampling_rate=1.0,
        )  # fmt: skip
        review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=review_queue, trace_id=make_trace(tenant).pk
        )
    owner = client_for(tenant.owner)
    reviewer = Client()
    signed_in = reviewer.post("/accounts/login/", {"login": tenant.reviewer.email,
                                                   "password": PASSWORD})  # fmt: skip
    assert signed_in.status_code == 302
    ingest = client_for(key=tenant.key("ingest"))

    # With Redis up, the throttle counts: the third call in a minute is refused.
    saved_rates = CallerRateThrottle.THROTTLE_RATES
    CallerRateThrottle.THROTTLE_RATES = {**saved_rates, "user": "2/min"}
    try:
        traces_url = f"{_base(tenant)}/traces/"
        assert [owner.get(traces_url).status_code for _ in range(3)] == [200, 200, 429]

        # --- Redis stops ----------------------------------------------------------------
        own_redis.stop()
        unavailable_before = fail_open_cache.unavailable_count()
        publish_failures_before = outbox.publish_failures()

        # Throttles fail open: the same client, over its limit, is served.
        assert [owner.get(traces_url).status_code for _ in range(3)] == [200, 200, 200]
        assert fail_open_cache.unavailable_count() > unavailable_before

        # Ingestion over REST and OTLP is stored and answered 200.
        failing = span("rest-run", "s1", status="error", error="timeout")
        rest = post(ingest, tenant, [trace("rest-run", name="answer"), failing])
        assert rest.status_code == 200, rest.content
        request, _spans = _captured_request(fail_tool=True)
        otlp = ingest.generic("POST", "/v1/traces", request.SerializeToString(), PROTOBUF)
        assert otlp.status_code == 200, otlp.content
        with tenancy.tenant_scope(org.pk):
            stored = set(
                Trace.objects.filter(project=tenant.project).values_list("external_id", flat=True)
            )
        otlp_trace_id = format(_spans[0].context.trace_id, "032x")
        assert {"rest-run", otlp_trace_id} <= stored

        # Signing in (allauth's rate limits are in the cache) and reviewing work.
        late = Client()
        login = late.post("/accounts/login/", {"login": tenant.admin.email, "password": PASSWORD})
        assert login.status_code == 302 and "_auth_user_id" in late.session
        claim = reviewer.post(f"{_base(tenant)}/queues/{review_queue.pk}/claim/")
        assert claim.status_code == 200, claim.content
        assignment_id = claim.json()["assignment"]["id"]
        submit = reviewer.post(
            f"{_base(tenant)}/assignments/{assignment_id}/submit/",
            {"values": {str(config.pk): 1.0}, "explanation": "fine", "failure_modes": []},
            content_type="application/json",
        )
        assert submit.status_code == 201, submit.content

        # An invitation is created; its email waits in the outbox.
        invited = owner.post(
            f"/api/orgs/{org.slug}/invitations/",
            {"email": "dr.ng@clinic.example.com", "role": "reviewer"},
            format="json",
        )
        assert invited.status_code == 201, invited.content
    finally:
        CallerRateThrottle.THROTTLE_RATES = saved_rates

    waiting = _messages()
    assert {m.task for m in waiting} == {"review.route_traces", "projects.email_invitation"}
    assert all(m.state == OutboxState.PENDING for m in waiting)
    assert outbox.publish_failures() > publish_failures_before
    assert mail.outbox == []
    with tenancy.tenant_scope(org.pk):
        assert not QueueItem.objects.filter(queue=routed_queue).exists()

    # --- Redis is back, empty; a worker and the relay deliver what waited ------------
    own_redis.start()
    assert reviewer.get(f"{_base(tenant)}/queues/").status_code == 200  # still signed in
    with start_worker(
        celery_app, pool="threads", concurrency=1, perform_ping_check=False,
        loglevel="WARNING", shutdown_timeout=10,
    ):  # fmt: skip
        assert outbox.relay() == len(waiting)
        _wait_for(
            lambda: all(m.state == OutboxState.DONE for m in _messages()), "the outbox to drain"
        )
        with tenancy.tenant_scope(org.pk):
            routed = set(
                QueueItem.objects.filter(queue=routed_queue).values_list(
                    "trace__external_id", flat=True
                )
            )
        assert routed == {"rest-run", otlp_trace_id}
        assert [m.to for m in mail.outbox] == [["dr.ng@clinic.example.com"]]
        invitation_message = next(m for m in _messages() if m.task == "projects.email_invitation")
        assert invitation_message.secret_kwargs == {}  # the token is not kept

        # The same message delivered twice more (a redelivery, a second relay): no
        # second email. A single-threaded worker runs them in order, before the marker.
        with celery_app.connection_for_write() as conn:
            for _ in range(2):
                outbox.run.apply_async(
                    kwargs={"message_id": invitation_message.pk, "organization_id": org.pk},
                    connection=conn,
                )
        assert outbox.relay() == 0
        _wait_for(
            lambda: (
                [o for i, o in finished_runs if i == invitation_message.pk]
                == ["done", "skipped", "skipped"]
            ),
            "the duplicate deliveries",
        )
    assert len(mail.outbox) == 1
    with tenancy.tenant_scope(org.pk):
        assert Invitation.objects.get(email="dr.ng@clinic.example.com").status == "pending"
        assert QueueItem.objects.filter(queue=routed_queue).count() == 2


def test_sessions_survive_a_redis_restart(own_redis, transactional_db, tenant):
    browser = Client()
    response = browser.post("/accounts/login/", {"login": tenant.viewer.email,
                                                 "password": PASSWORD})  # fmt: skip
    assert response.status_code == 302
    orgs = f"/api/orgs/{tenant.organization.slug}/projects/"
    assert browser.get(orgs).status_code == 200
    own_redis.stop()
    assert browser.get(orgs).status_code == 200
    own_redis.start()
    assert browser.get(orgs).status_code == 200
    # Signing out while Redis is down works too, and really signs out.
    own_redis.stop()
    assert browser.post("/accounts/logout/").status_code == 302
    assert browser.get(orgs).status_code in (401, 403)


def test_publishing_to_a_dead_broker_leaves_the_message_for_the_relay(
    own_redis, transactional_db, tenant, settings
):
    own_redis.stop()
    started = time.monotonic()
    with tenancy.tenant_scope(tenant.organization.pk):
        project_services.invitation_create(
            actor=Actor(user=tenant.owner), acting_membership=None,
            email="late@example.com", role="viewer",
        )  # fmt: skip
    assert time.monotonic() - started < 2
    assert outbox.relay() == 0  # the relay, too, gives up at once
    (message,) = _messages()
    assert message.state == OutboxState.PENDING and message.published_at is None
    own_redis.start()
    assert outbox.relay() == 1
    message.refresh_from_db()
    assert message.state == OutboxState.PUBLISHED and message.published_at is not None
    # Published, then lost by a broker that restarted empty: republished once stale.
    own_redis.stop()
    own_redis.start()
    assert outbox.relay() == 0
    OutboxMessage.unscoped_across_tenants.filter(pk=message.pk).update(
        published_at=message.published_at - settings.HITL_OUTBOX_REPUBLISH_AFTER
    )
    assert outbox.relay() == 1
