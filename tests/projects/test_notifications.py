"""Notifications: events written with their cause, delivered by a real worker to a real
local HTTP receiver, signed (checked by the Standard Webhooks reference library),
retried, disabled, never sent twice, and never sent to an address the SSRF guard
refuses."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hitl import outbox
from hitl.audit import Actor
from hitl.models import OutboxMessage, OutboxState
from hitl.tenancy import tenant_scope
from projects import services as project_services
from projects.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    Destination,
    Event,
)
from projects.notifications import catalogue, event_emit, ssrf
from projects.notifications.delivery import event_fan_out
from projects.notifications.destinations import (
    DELIVER,
    destination_create,
    destination_rotate_secret,
    destination_send_test,
)
from projects.notifications.events import FAN_OUT, event_build
from projects.notifications.transports import SlackRateLimiter, secret_generate, slack_text
from tests.factories import Tenant
from tests.review.helpers import make_config, make_queue, make_trace

# --- a real receiver on loopback ------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)  # when the request arrived

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers from a list of
    planned responses (then 200)."""

    requests: list[Received] = field(default_factory=list)
    responses: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    delay: float = 0.0

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, headers, answer = (
                    receiver.responses.pop(0) if receiver.responses else (200, {}, b"ok")
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def loopback(settings, receiver):
    """The receiver's port (and only it) is a local receiver destinations may name."""
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = [f"127.0.0.1:{receiver.port}"]


# --- helpers --------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Polls (running the relay, as beat would) until ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        outbox.relay()
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_outbox() -> list[str]:
    """Runs every outbox message that is due, in this thread, until none is left (the
    handlers a worker would run, without the broker)."""
    outcomes = []
    while True:
        due = list(
            OutboxMessage.unscoped_across_tenants.filter(
                state__in=[OutboxState.PENDING, OutboxState.PUBLISHED],
                available_at__lte=timezone.now(),
            )
            .order_by("id")
            .values_list("pk", "organization_id")
        )
        if not due:
            return outcomes
        for pk, organization_id in due:
            outcomes.append(outbox.execute(message_id=pk, organization_id=organization_id))


def bring_retries_forward() -> int:
    """Time passes: scheduled attempts become due now."""
    return OutboxMessage.unscoped_across_tenants.filter(
        state=OutboxState.PENDING, task=DELIVER, available_at__gt=timezone.now()
    ).update(available_at=timezone.now())


def make_destination(
    tenant: Tenant,
    url: str,
    *,
    kind: str = "webhook",
    event_types: tuple[str, ...] = (catalogue.API_KEY_CREATED,),
    **fields: Any,
) -> tuple[Destination, str]:
    with tenant_scope(tenant.organization.pk):
        return destination_create(
            actor=Actor(user=tenant.owner),
            name=f"{kind} to {url}",
            kind=kind,
            url=url,
            event_types=list(event_types),
            **fields,
        )


def create_key(tenant: Tenant, name: str = "ci"):
    with tenant_scope(tenant.organization.pk):
        api_key, _raw = project_services.api_key_create(
            actor=Actor(user=tenant.owner), project=tenant.project, name=name, scopes=["ingest"]
        )
    return api_key


def deliveries(tenant: Tenant) -> list[Delivery]:
    with tenant_scope(tenant.organization.pk):
        return list(Delivery.objects.order_by("id"))


def attempts(tenant: Tenant) -> list[DeliveryAttempt]:
    with tenant_scope(tenant.organization.pk):
        return list(DeliveryAttempt.objects.order_by("delivery_id", "number"))


def reload(tenant: Tenant, obj):
    with tenant_scope(tenant.organization.pk):
        return type(obj).objects.get(pk=obj.pk)


def verify(secret: str, request: Received) -> dict[str, Any]:
    return Webhook(secret).verify(request.body, request.headers)


# --- with a real worker ---------------------------------------------------------------------


@pytest.mark.worker
def test_webhook_signed_verified_by_reference_library(
    celery_worker, loopback, receiver, tenant, client_for
):
    client = client_for(tenant.admin)
    base = f"/api/orgs/{tenant.organization.slug}"
    created = client.post(
        f"{base}/destinations/",
        {
            "name": "CI hook",
            "kind": "webhook",
            "url": receiver.url(),
            "event_types": [catalogue.API_KEY_CREATED],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    detail = client.get(f"{base}/destinations/{created.json()['id']}/").json()
    assert "secret" not in detail and secret not in json.dumps(detail)

    key = client.post(
        f"{base}/projects/{tenant.project.slug}/api-keys/",
        {"name": "release bot", "scopes": ["ingest"]},
        format="json",
    )
    assert key.status_code == 201, key.content
    wait_for(lambda: len(receiver.requests) == 1, "the webhook")
    request = receiver.requests[0]
    message = verify(secret, request)
    assert message["type"] == catalogue.API_KEY_CREATED
    assert message["data"]["api_key"]["prefix"] == key.json()["prefix"]
    assert message["data"]["url"].startswith("http")
    assert request.headers["webhook-id"].startswith("msg_")
    with pytest.raises(WebhookVerificationError):
        verify(secret_generate(), request)

    wait_for(
        lambda: [d.state for d in deliveries(tenant)] == [DeliveryState.SUCCEEDED],
        "the delivery to be recorded",
    )
    log = client.get(f"{base}/deliveries/", {"destination": created.json()["id"]}).json()
    (row,) = log["results"] if isinstance(log, dict) else log
    assert row["event_id"] == request.headers["webhook-id"]
    assert row["attempts_log"][0]["status_code"] == 200 and row["attempts_log"][0]["succeeded"]


@pytest.mark.worker
def test_503_is_retried_on_schedule_then_succeeds(celery_worker, loopback, receiver, tenant):
    receiver.responses = [(503, {}, b"busy, come back later")]
    destination, secret = make_destination(tenant, receiver.url())
    create_key(tenant)
    wait_for(
        lambda: [d.state for d in deliveries(tenant)] == [DeliveryState.RETRYING],
        "the first attempt",
    )
    (first,) = attempts(tenant)
    assert first.status_code == 503 and not first.succeeded
    assert first.response_excerpt == "busy, come back later"
    (delivery,) = deliveries(tenant)
    # The schedule's first wait: 5 s, jittered by at most a fifth.
    wait = (delivery.next_attempt_at - first.started_at).total_seconds()
    assert 3.9 <= wait <= 6.5, wait
    assert reload(tenant, destination).failing_since is not None

    assert bring_retries_forward() == 1
    wait_for(
        lambda: [d.state for d in deliveries(tenant)] == [DeliveryState.SUCCEEDED],
        "the retry",
    )
    assert len(receiver.requests) == 2
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
    for request in receiver.requests:
        verify(secret, request)
    assert [(a.number, a.status_code) for a in attempts(tenant)] == [(1, 503), (2, 200)]
    assert reload(tenant, destination).failing_since is None


@pytest.mark.worker
def test_a_redelivered_message_does_not_send_twice(
    celery_worker, loopback, receiver, tenant, client_for
):
    make_destination(tenant, receiver.url())
    create_key(tenant)
    wait_for(
        lambda: [d.state for d in deliveries(tenant)] == [DeliveryState.SUCCEEDED],
        "the delivery",
    )
    (delivery,) = deliveries(tenant)
    sent = OutboxMessage.unscoped_across_tenants.get(task=DELIVER)
    # The broker hands the same message out again, and a duplicate message for the same
    # delivery appears (as a second fan-out would write).
    outbox.run.delay(message_id=sent.pk, organization_id=sent.organization_id)
    with tenant_scope(tenant.organization.pk), transaction.atomic():
        duplicate = outbox.enqueue(
            task=DELIVER,
            organization_id=tenant.organization.pk,
            kwargs={"delivery_id": delivery.pk, "round": delivery.round},
        )
        refan = outbox.enqueue(
            task=FAN_OUT,
            organization_id=tenant.organization.pk,
            kwargs={"event_id": delivery.event_id},
        )
    wait_for(
        lambda: (
            set(
                OutboxMessage.unscoped_across_tenants.filter(
                    pk__in=[duplicate.pk, refan.pk]
                ).values_list("state", flat=True)
            )
            == {OutboxState.DONE}
        ),
        "the duplicates to run",
    )
    assert outbox.execute(message_id=sent.pk, organization_id=sent.organization_id) == "skipped"
    assert len(receiver.requests) == 1
    assert len(attempts(tenant)) == 1 and len(deliveries(tenant)) == 1

    # "Redeliver" is a person asking for it again: one more send, as round 2.
    response = client_for(tenant.owner).post(
        f"/api/orgs/{tenant.organization.slug}/deliveries/{delivery.pk}/redeliver/"
    )
    assert response.status_code == 202, response.content
    wait_for(lambda: len(attempts(tenant)) == 2, "the redelivery")
    assert len(receiver.requests) == 2
    assert reload(tenant, delivery).round == 2


# --- delivery rules (handlers run in this thread) ---------------------------------------------


def test_event_commits_and_rolls_back_with_its_cause(loopback, receiver, tenant):
    make_destination(tenant, receiver.url())
    with pytest.raises(RuntimeError), transaction.atomic():
        create_key(tenant, "never")
        raise RuntimeError("the cause fails")
    with tenant_scope(tenant.organization.pk):
        assert not Event.objects.exists()
    assert not OutboxMessage.unscoped_across_tenants.filter(task=FAN_OUT).exists()
    create_key(tenant, "kept")
    with tenant_scope(tenant.organization.pk):
        assert Event.objects.get().payload["api_key"]["name"] == "kept"


def test_nothing_is_written_without_a_subscriber(tenant):
    create_key(tenant)
    with tenant_scope(tenant.organization.pk):
        assert not Event.objects.exists()


def test_429_honours_retry_after(loopback, receiver, tenant):
    receiver.responses = [(429, {"Retry-After": "120"}, b"slow down")]
    make_destination(tenant, receiver.url())
    create_key(tenant)
    run_outbox()
    (delivery,) = deliveries(tenant)
    assert delivery.state == DeliveryState.RETRYING and delivery.last_status_code == 429
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 110 <= wait <= 121, wait
    scheduled = OutboxMessage.unscoped_across_tenants.get(task=DELIVER, state=OutboxState.PENDING)
    assert scheduled.available_at == delivery.next_attempt_at


def test_410_disables_the_destination_and_tells_its_owner(loopback, receiver, tenant):
    receiver.responses = [(410, {}, b"gone")]
    destination, _ = make_destination(tenant, receiver.url())
    create_key(tenant)
    run_outbox()
    destination = reload(tenant, destination)
    assert not destination.enabled and "410" in destination.disabled_reason
    (delivery,) = deliveries(tenant)
    assert delivery.state == DeliveryState.FAILED
    assert len(mail.outbox) == 1 and tenant.owner.email in mail.outbox[0].to
    assert destination.name in mail.outbox[0].subject
    create_key(tenant, "after")
    run_outbox()
    assert len(receiver.requests) == 1 and len(deliveries(tenant)) == 1


def test_a_day_of_failures_disables(loopback, receiver, tenant):
    receiver.responses = [(500, {}, b"oops"), (502, {}, b"oops")]
    destination, _ = make_destination(tenant, receiver.url())
    create_key(tenant)
    run_outbox()
    destination = reload(tenant, destination)
    assert destination.enabled and destination.failing_since is not None
    with tenant_scope(tenant.organization.pk):
        Destination.objects.filter(pk=destination.pk).update(
            failing_since=timezone.now() - timedelta(hours=25)
        )
    bring_retries_forward()
    run_outbox()
    destination = reload(tenant, destination)
    assert not destination.enabled and "failing since" in destination.disabled_reason
    (delivery,) = deliveries(tenant)
    assert delivery.state == DeliveryState.FAILED and delivery.attempts == 2
    assert len(mail.outbox) == 1
    # Enabling again clears the record; the history shows who disabled and enabled it.
    with tenant_scope(tenant.organization.pk):
        from projects.notifications.destinations import destination_update

        destination_update(actor=Actor(user=tenant.owner), destination=destination, enabled=True)
        destination = Destination.objects.get(pk=destination.pk)
        assert destination.failing_since is None and destination.disabled_reason == ""
        assert [h.enabled for h in destination.history.order_by("history_id")] == [
            True,
            False,
            True,
        ]


def test_other_4xx_fails_without_retry(loopback, receiver, tenant):
    receiver.responses = [(400, {}, b"bad")]
    destination, _ = make_destination(tenant, receiver.url())
    create_key(tenant)
    run_outbox()
    (delivery,) = deliveries(tenant)
    assert delivery.state == DeliveryState.FAILED and delivery.attempts == 1
    assert reload(tenant, destination).enabled


def test_timeouts_are_retried(loopback, receiver, tenant, settings):
    settings.HITL_WEBHOOKS_TIMEOUT = 0.3
    receiver.delay = 2.0
    make_destination(tenant, receiver.url())
    create_key(tenant)
    run_outbox()
    (attempt,) = attempts(tenant)
    assert attempt.status_code is None and "timed out" in attempt.error
    assert deliveries(tenant)[0].state == DeliveryState.RETRYING


def test_a_redirect_is_not_followed(loopback, receiver, tenant):
    target = Receiver()
    try:
        receiver.responses = [(307, {"Location": target.url("/inner")}, b"")]
        make_destination(tenant, receiver.url())
        create_key(tenant)
        run_outbox()
        (attempt,) = attempts(tenant)
        assert attempt.status_code == 307 and "redirect" in attempt.error
        assert deliveries(tenant)[0].state == DeliveryState.FAILED
        assert target.requests == []
    finally:
        target.close()


def test_the_checked_address_is_called_with_the_host_name(loopback, receiver, tenant, settings):
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = [f"localhost:{receiver.port}"]
    make_destination(tenant, f"http://localhost:{receiver.port}/by-name?x=1")
    create_key(tenant)
    run_outbox()
    (request,) = receiver.requests
    assert request.headers["host"] == f"localhost:{receiver.port}"
    assert request.path == "/by-name?x=1"


def test_rotation_signs_with_both_secrets_during_the_overlap(loopback, receiver, tenant):
    destination, old = make_destination(tenant, receiver.url())
    with tenant_scope(tenant.organization.pk):
        destination, new = destination_rotate_secret(
            actor=Actor(user=tenant.owner), destination=destination
        )
        destination_send_test(actor=Actor(user=tenant.owner), destination=destination)
    run_outbox()
    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verify(old, request)["type"] == catalogue.TEST
    assert verify(new, request)["type"] == catalogue.TEST
    with tenant_scope(tenant.organization.pk):
        Destination.objects.filter(pk=destination.pk).update(
            previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
        )
        destination_send_test(actor=Actor(user=tenant.owner), destination=destination)
    run_outbox()
    later = receiver.requests[1]
    verify(new, later)
    with pytest.raises(WebhookVerificationError):
        verify(old, later)
    # The secrets are never in the history.
    with tenant_scope(tenant.organization.pk):
        rows = list(destination.history.values())
    assert rows and all(old not in json.dumps(r, default=str) for r in rows)


def test_a_test_event_is_never_retried(loopback, receiver, tenant):
    receiver.responses = [(503, {}, b"")]
    destination, _ = make_destination(tenant, receiver.url())
    with tenant_scope(tenant.organization.pk):
        destination_send_test(actor=Actor(user=tenant.owner), destination=destination)
    run_outbox()
    (delivery,) = deliveries(tenant)
    assert delivery.state == DeliveryState.FAILED
    assert reload(tenant, destination).failing_since is None


def test_filters_by_queue_and_score_name(loopback, receiver, tenant):
    queue = make_queue(tenant, name="triage")
    make_destination(
        tenant, receiver.url("/other"), event_types=(catalogue.ITEM_COMPLETED,),
        filter_queue_id=queue.pk + 1000,
    )  # fmt: skip
    make_destination(
        tenant, receiver.url("/by-score"), event_types=(catalogue.ITEM_COMPLETED,),
        filter_score_name="helpfulness",
    )  # fmt: skip
    matching, _ = make_destination(
        tenant, receiver.url("/queue"), event_types=(catalogue.ITEM_COMPLETED,),
        filter_queue_id=queue.pk,
    )  # fmt: skip
    with tenant_scope(tenant.organization.pk), transaction.atomic():
        event = event_emit(
            catalogue.ITEM_COMPLETED,
            organization_id=tenant.organization.pk,
            project_id=tenant.project.pk,
            queue_id=queue.pk,
            score_names=["accuracy"],
            payload={"summary": "done", "url": "http://localhost/"},
        )
    assert event is not None
    run_outbox()
    assert [d.destination_id for d in deliveries(tenant)] == [matching.pk]
    assert [r.path for r in receiver.requests] == ["/queue"]
    with tenant_scope(tenant.organization.pk), transaction.atomic():
        assert event_fan_out(event_id=event.pk) == 0  # rerun: nothing twice


def test_payloads_stay_small(tenant):
    with pytest.raises(ValueError, match="at most"):
        event_build(
            catalogue.ITEM_COMPLETED,
            organization_id=tenant.organization.pk,
            project_id=None,
            payload={"summary": "x" * 21_000},
        )


# --- events from review and projects ------------------------------------------------------------


def test_review_announces_completion_and_mentions(loopback, receiver, tenant):
    from review import services as review_services

    make_destination(
        tenant,
        receiver.url(),
        event_types=(
            catalogue.ITEM_COMPLETED,
            catalogue.ITEM_NEEDS_ADJUDICATION,
            catalogue.COMMENT_MENTIONED,
        ),
    )
    config = make_config(tenant, name="accuracy")
    queue = make_queue(tenant, configs=[config])
    with tenant_scope(tenant.organization.pk):
        trace = make_trace(tenant)
        review_services.queue_item_add(
            actor=Actor(user=tenant.owner), queue=queue, trace_id=trace.pk
        )
        assignment = review_services.queue_claim_next(
            actor=Actor(user=tenant.reviewer), queue=queue
        )
        review_services.assignment_submit(
            actor=Actor(user=tenant.reviewer),
            assignment_id=assignment.pk,
            values={str(config.pk): 0.75},
        )
        review_services.comment_create(
            actor=Actor(user=tenant.owner),
            project=tenant.project,
            body=f"@{tenant.reviewer.email} please look again",
            trace_id=trace.pk,
        )
    run_outbox()
    by_type = {r.json()["type"]: r.json()["data"] for r in receiver.requests}
    completed = by_type[catalogue.ITEM_COMPLETED]
    assert completed["queue"] == {"id": queue.pk, "name": queue.name}
    assert completed["score_names"] == ["accuracy"]
    assert f"/queues/{queue.pk}/items/" in completed["url"]
    mentioned = by_type[catalogue.COMMENT_MENTIONED]
    assert [m["email"] for m in mentioned["mentioned"]] == [tenant.reviewer.email]
    assert "please look again" in mentioned["comment"]["excerpt"]


def test_projects_announce_keys_invitations_and_members(loopback, receiver, tenant):
    make_destination(
        tenant,
        receiver.url(),
        event_types=(
            catalogue.API_KEY_CREATED,
            catalogue.API_KEY_REVOKED,
            catalogue.MEMBER_INVITED,
            catalogue.MEMBER_JOINED,
        ),
    )
    from tests.factories import make_user

    api_key = create_key(tenant)
    invitee = make_user("newcomer@example.com")
    with tenant_scope(tenant.organization.pk):
        project_services.api_key_revoke(actor=Actor(user=tenant.owner), api_key=api_key)
        _invitation, token = project_services.invitation_create(
            actor=Actor(user=tenant.owner),
            acting_membership=None,
            email=invitee.email,
            role="reviewer",
        )
    project_services.invitation_accept(user=invitee, raw_token=token)
    run_outbox()
    types = [r.json()["type"] for r in receiver.requests]
    assert types == [
        catalogue.API_KEY_CREATED,
        catalogue.API_KEY_REVOKED,
        catalogue.MEMBER_INVITED,
        catalogue.MEMBER_JOINED,
    ]
    assert receiver.requests[3].json()["data"]["member"]["email"] == invitee.email


# --- Slack ------------------------------------------------------------------------------------


def test_slack_gets_a_message_for_people_within_its_limits(loopback, receiver, tenant):
    make_destination(tenant, receiver.url("/services/T0/B0/x"), kind="slack")
    create_key(tenant, "release bot")
    run_outbox()
    (request,) = receiver.requests
    text = request.json()["text"]
    assert "release bot" in text and "|Open in hitl>" in text
    assert "webhook-signature" not in request.headers

    huge = Event(type=catalogue.TEST, payload={"summary": "<b>" * 5000, "url": "http://x/y"})
    text = slack_text(huge)
    assert len(text) <= 3000 and "<b>" not in text and text.endswith("<http://x/y|Open in hitl>")


def test_slack_no_service_disables(loopback, receiver, tenant):
    receiver.responses = [(404, {}, b"no_service")]
    destination, _ = make_destination(tenant, receiver.url(), kind="slack")
    create_key(tenant)
    run_outbox()
    assert not reload(tenant, destination).enabled


def test_slack_rate_one_a_second_after_a_burst(settings):
    settings.HITL_SLACK_BURST = 3
    settings.HITL_SLACK_RATE_PER_SECOND = 1.0
    limiter = SlackRateLimiter()
    key = f"test-{time.monotonic_ns()}"
    waits = [limiter.reserve(key) for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.5 < waits[3] <= 1.0 and 1.5 < waits[4] <= 2.0
    assert limiter.fallbacks == 0

    # Redis down: each process limits on its own, at the same rate.
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    offline = SlackRateLimiter()
    waits = [offline.reserve(key) for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0] and 0.5 < waits[3] <= 1.0
    assert offline.fallbacks == 5


def most_in_any_window(times: list[float], window: float) -> int:
    """The most arrivals in any window of ``window`` seconds."""
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t - start < window) for i, start in enumerate(times))


def test_a_late_worker_keeps_slacks_rate_at_the_receiver(loopback, receiver, tenant, settings):
    settings.HITL_SLACK_BURST = 2
    settings.HITL_SLACK_RATE_PER_SECOND = 2.0
    settings.HITL_SLACK_MAX_SLEEP = 0.0  # every later slot becomes a scheduled message
    destination, _ = make_destination(tenant, receiver.url(), kind="slack")
    for n in range(8):
        create_key(tenant, f"key {n}")
    run_outbox()
    throttled = [d for d in deliveries(tenant) if d.next_attempt_at and d.state == "pending"]
    # The burst goes at once; the rest is scheduled, each for its own slot.
    assert len(receiver.requests) == 2 and len(throttled) == 6
    slots = sorted(d.next_attempt_at for d in throttled)
    assert all((b - a).total_seconds() > 0.3 for a, b in itertools.pairwise(slots))

    # The worker comes back late: most scheduled attempts are overdue at once. Each is
    # checked again when it runs, so they still reach Slack one slot apart.
    time.sleep(2.5)
    deadline = time.monotonic() + 60
    while len(receiver.requests) < 8:
        assert time.monotonic() < deadline, f"{len(receiver.requests)} of 8 arrived"
        run_outbox()
        time.sleep(0.02)
    times = [r.at for r in receiver.requests]
    for window in (0.5, 1.0, 2.0, 3.0):
        allowance = settings.HITL_SLACK_BURST + settings.HITL_SLACK_RATE_PER_SECOND * window
        assert most_in_any_window(times, window) <= allowance, (window, sorted(times))
    # Nothing dropped, nothing twice.
    assert len({r.json()["text"] for r in receiver.requests}) == 8
    assert {d.state for d in deliveries(tenant)} == {DeliveryState.SUCCEEDED}
    assert reload(tenant, destination).enabled


# --- the SSRF guard ---------------------------------------------------------------------------

LOOPBACK_SPELLINGS = [
    "http://127.0.0.1/",
    "http://127.0.0.2:8080/",
    "http://localhost/",
    "http://[::1]/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://0x7f000001/",
    "http://127.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[2002:7f00:1::]/",
]
ALWAYS_REFUSED = [
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::a00:1]/",
    "http://0.0.0.0/",
    "http://0/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://0xa9fea9fe/",
    "http://025177524776/",
    "http://user:secret@example.com/",
    "ftp://example.com/",
]


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS + ALWAYS_REFUSED)
def test_refused_at_save(url, tenant):
    with pytest.raises(ssrf.UnsafeDestination):
        make_destination(tenant, url)


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_allowing_loopback_allows_nothing_else(url, tenant, loopback):
    with pytest.raises(ssrf.UnsafeDestination):
        make_destination(tenant, url)


def test_the_api_refuses_with_the_error_shape(tenant, client_for):
    response = client_for(tenant.owner).post(
        f"/api/orgs/{tenant.organization.slug}/destinations/",
        {
            "name": "metadata",
            "kind": "webhook",
            "url": "http://169.254.169.254/",
            "event_types": [catalogue.API_KEY_CREATED],
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsafe_destination"
    assert "metadata" in json.dumps(response.json()["error"]["details"])


def test_refused_again_at_send(loopback, receiver, tenant, settings):
    make_destination(tenant, receiver.url())
    create_key(tenant)
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = []
    run_outbox()
    (attempt,) = attempts(tenant)
    assert attempt.status_code is None and "loopback" in attempt.error
    assert deliveries(tenant)[0].state == DeliveryState.FAILED
    assert receiver.requests == []


# --- the API ------------------------------------------------------------------------------------


def test_destinations_are_for_admins(tenant, client_for, loopback, receiver):
    base = f"/api/orgs/{tenant.organization.slug}/destinations/"
    assert client_for(tenant.reviewer).get(base).status_code == 403
    owner = client_for(tenant.owner)
    created = owner.post(
        base,
        {
            "name": "Slack #reviews",
            "kind": "slack",
            "url": receiver.url("/services/T1/B1/secretpath"),
            "event_types": [catalogue.ITEM_NEEDS_ADJUDICATION],
            "project_id": tenant.project.pk,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"] == "" and "secretpath" not in json.dumps(body)
    assert body["project_id"] == tenant.project.pk
    pk = body["id"]
    assert owner.post(f"{base}{pk}/rotate-secret/").status_code == 400
    changed = owner.patch(f"{base}{pk}/", {"enabled": False}, format="json")
    assert changed.json()["enabled"] is False and changed.json()["disabled_reason"]
    test = owner.post(f"{base}{pk}/test/")
    assert test.status_code == 202 and test.json()["event_type"] == catalogue.TEST
    run_outbox()
    assert len(receiver.requests) == 1
    log = owner.get(
        f"/api/orgs/{tenant.organization.slug}/deliveries/", {"event_type": catalogue.TEST}
    ).json()
    rows = log["results"] if isinstance(log, dict) else log
    assert rows[0]["state"] == "succeeded" and rows[0]["attempts_log"][0]["status_code"] == 200
    assert owner.delete(f"{base}{pk}/").status_code == 204


def test_the_api_rotates_redelivers_and_deletes_answering_what_it_did(tenant, client_for):
    """The success answers of rotate-secret (the new secret, once), redeliver (the delivery
    in a new pending round), and the deletes of a queue alert and a destination."""
    from projects.models import QueueAlert

    with tenant_scope(tenant.organization.pk):
        destination = Destination.objects.create(
            name="receiver", kind="webhook", url="https://hooks.invalid/in",
            event_types=[catalogue.API_KEY_CREATED], secret=secret_generate(),
        )  # fmt: skip
        event = Event.objects.create(
            uid="msg_redeliver", type=catalogue.API_KEY_CREATED, payload={"summary": "x"}
        )
        delivery = Delivery.objects.create(
            event=event, destination=destination, attempts=1, state=DeliveryState.FAILED
        )
        alert = QueueAlert.objects.create(project=tenant.project, queue_id=1, backlog_threshold=5)
        old_secret = destination.secret
    client = client_for(tenant.owner)
    org_url = f"/api/orgs/{tenant.organization.slug}"

    rotated = client.post(f"{org_url}/destinations/{destination.pk}/rotate-secret/")
    assert rotated.status_code == 200, rotated.content
    assert rotated.json()["id"] == destination.pk
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != old_secret

    redelivered = client.post(f"{org_url}/deliveries/{delivery.pk}/redeliver/")
    assert redelivered.status_code == 202, redelivered.content
    body = redelivered.json()
    assert body["id"] == delivery.pk and body["event_id"] == "msg_redeliver"
    assert body["state"] == DeliveryState.PENDING and body["round"] == delivery.round + 1

    for url in (f"{org_url}/queue-alerts/{alert.pk}/", f"{org_url}/destinations/{destination.pk}/"):
        deleted = client.delete(url)
        assert deleted.status_code == 204 and deleted.content == b"", url
    with tenant_scope(tenant.organization.pk):
        assert not QueueAlert.objects.filter(pk=alert.pk).exists()
        assert not Destination.objects.filter(pk=destination.pk).exists()
