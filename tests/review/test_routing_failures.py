"""Rules fail alone: a routing rule that fails (a filter PostgreSQL refuses, a filter no
longer valid, a database error met by its work) is marked failing with its error and
announced once, and every other rule of the project still routes."""

from __future__ import annotations

import threading
from typing import Any

import psycopg.errors
import pytest
from django.db import DataError, InternalError, OperationalError, connection, transaction

from hitl import outbox, tenancy
from hitl.audit import Actor
from hitl.models import OutboxMessage, OutboxState
from projects.notifications import catalogue
from review import services
from review.models import QueueItem, ReviewQueue, RoutingRule
from review.services.routing import (
    ROUTE_TRACES,
    routing_failure_is_transient,
    routing_failure_message,
)
from tests.factories import Tenant
from tests.page_clients import project_url, signed_in
from tests.projects.test_notifications import Receiver, make_destination, run_outbox, wait_for
from tests.review.helpers import make_queue, make_trace
from tests.traces.ingest_helpers import post, trace

# A time-zone offset PostgreSQL refuses (it takes at most +-15:59).
BEYOND_OFFSET = {"start_time_from": "2026-01-01T00:00:00+16:00"}
# A parameter the trace filter does not know.
UNKNOWN_PARAMETER = {"no_such_parameter": "1"}


@pytest.fixture
def announced(settings) -> Any:
    """A webhook receiver on loopback subscribed to failing rules; yields the events it
    received."""
    server = Receiver()
    settings.HITL_WEBHOOKS_ALLOW_HOSTS = [f"127.0.0.1:{server.port}"]
    yield server
    server.close()


def _subscribe(tenant: Tenant, receiver: Receiver) -> None:
    make_destination(tenant, receiver.url(), event_types=(catalogue.ROUTING_RULE_FAILING,))


def _failing_events(receiver: Receiver) -> list[dict]:
    return [
        r.json()["data"]
        for r in receiver.requests
        if r.json()["type"] == catalogue.ROUTING_RULE_FAILING
    ]


def _rule(tenant: Tenant, queue: ReviewQueue, name: str, **filters: Any) -> RoutingRule:
    with tenancy.tenant_scope(tenant.organization.pk):
        return services.routing_rule_create(
            actor=Actor(user=tenant.owner), project=tenant.project, queue_id=queue.pk,
            name=name, signal="error", filter_params=filters or {"status": "error"},
        )  # fmt: skip


def _break(tenant: Tenant, rule: RoutingRule, filter_params: dict) -> None:
    """Changes the stored filter behind the services' back, as data written by an older
    release (or a value the database refuses only later) would be."""
    with tenancy.tenant_scope(tenant.organization.pk):
        assert RoutingRule.objects.filter(pk=rule.pk).update(filter_params=filter_params) == 1


def _reload(tenant: Tenant, rule: RoutingRule) -> RoutingRule:
    with tenancy.tenant_scope(tenant.organization.pk):
        return RoutingRule.objects.get(pk=rule.pk)


def _routed(tenant: Tenant, queue: ReviewQueue) -> set[int]:
    with tenancy.tenant_scope(tenant.organization.pk):
        return set(QueueItem.objects.filter(queue=queue).values_list("trace_id", flat=True))


def _route(tenant: Tenant, trace_ids: list[int]) -> dict[int, int]:
    with tenancy.tenant_scope(tenant.organization.pk), transaction.atomic():
        return services.routing_apply(project_id=tenant.project.pk, trace_ids=trace_ids)


def _history(tenant: Tenant, rule: RoutingRule) -> list:
    with tenancy.tenant_scope(tenant.organization.pk):
        return list(rule.history.order_by("history_date", "history_id"))


def _outbox_idle() -> bool:
    return not OutboxMessage.unscoped_across_tenants.filter(
        state__in=[OutboxState.PENDING, OutboxState.PUBLISHED]
    ).exists()


# --- through the worker, as ingestion routes ---------------------------------------------------


@pytest.mark.worker
def test_a_broken_rule_fails_alone_through_the_worker(celery_worker, announced, tenant, client_for):
    _subscribe(tenant, announced)
    good_queue = make_queue(tenant, name="errors")
    offset_queue = make_queue(tenant, name="beyond offset")
    unknown_queue = make_queue(tenant, name="unknown parameter")
    good = _rule(tenant, good_queue, "errors")
    offset = _rule(tenant, offset_queue, "offset")
    unknown = _rule(tenant, unknown_queue, "unknown")
    _break(tenant, offset, BEYOND_OFFSET)
    _break(tenant, unknown, UNKNOWN_PARAMETER)
    key = client_for(key=tenant.key("ingest"))

    def ingest(prefix: str) -> None:
        events = [trace(f"{prefix}-{n}", name="answer", status="error") for n in range(3)]
        answer = post(key, tenant, events)
        assert answer.status_code == 200, answer.content

    # First routing run: the valid rule routes all three, the other two are marked.
    ingest("first")
    wait_for(
        lambda: (
            len(_routed(tenant, good_queue)) == 3
            and _reload(tenant, offset).failing_since is not None
            and _reload(tenant, unknown).failing_since is not None
            and _outbox_idle()
        ),
        "the first routing run and its announcements",
    )
    offset_rule, unknown_rule = _reload(tenant, offset), _reload(tenant, unknown)
    assert "start_time_from" in offset_rule.last_error or "time zone" in offset_rule.last_error
    assert "no_such_parameter" in unknown_rule.last_error
    assert "Traceback" not in offset_rule.last_error and "\n" not in offset_rule.last_error
    assert _routed(tenant, offset_queue) == _routed(tenant, unknown_queue) == set()

    # Second run: the valid rule routes again, the broken ones are tried and still fail,
    # and nobody is told a second time.
    ingest("second")
    wait_for(
        lambda: len(_routed(tenant, good_queue)) == 6 and _outbox_idle(),
        "the second routing run",
    )
    with tenancy.tenant_scope(tenant.organization.pk):
        runs = OutboxMessage.objects.filter(task=ROUTE_TRACES)
        assert runs.filter(state=OutboxState.DONE).count() >= 2
        assert not runs.exclude(state=OutboxState.DONE).exists()
    assert _reload(tenant, offset).failing_since == offset_rule.failing_since
    events = _failing_events(announced)
    assert sorted(e["rule"]["id"] for e in events) == sorted([offset.pk, unknown.pk])
    by_rule = {e["rule"]["id"]: e for e in events}
    assert by_rule[offset.pk]["rule"]["error"] == offset_rule.last_error
    assert by_rule[offset.pk]["queue"] == {"id": offset_queue.pk, "name": "beyond offset"}
    assert f"/queues/{offset_queue.pk}/rules/{offset.pk}/edit/" in by_rule[offset.pk]["url"]
    assert _reload(tenant, good).failing_since is None

    # The rule list, the rule's page and the API show it.
    lead = signed_in(tenant.owner)
    page = lead.get(project_url(tenant, "lead-queue-rules", queue_pk=offset_queue.pk))
    html = page.content.decode()
    assert page.status_code == 200
    assert f'id="failing-{offset.pk}"' in html and f'id="rule-error-{offset.pk}"' in html
    edit_url = project_url(tenant, "lead-rule-edit", queue_pk=offset_queue.pk, rule_pk=offset.pk)
    html = lead.get(edit_url).content.decode()
    assert f'id="rule-error-{offset.pk}"' in html
    good_page = lead.get(project_url(tenant, "lead-queue-rules", queue_pk=good_queue.pk))
    assert "failing" not in good_page.content.decode().split("New rule")[0].lower()
    api = client_for(tenant.owner).get(
        f"/api/orgs/{tenant.organization.slug}/projects/{tenant.project.slug}/routing-rules/"
        f"{offset.pk}/"
    )
    assert api.status_code == 200
    assert api.json()["last_error"] == offset_rule.last_error
    assert api.json()["failing_since"] is not None

    # Fixing the filter on the rule's page clears the state; the next run routes with it.
    fixed = lead.post(
        edit_url,
        {"name": "offset", "signal": "error", "filter": "status=error", "enabled": "on",
         "sampling_percent": "100", "item_priority": "0", "daily_cap": ""},
    )  # fmt: skip
    assert fixed.status_code == 302, fixed.content.decode()[:2000]
    cleared = _reload(tenant, offset)
    assert (cleared.failing_since, cleared.last_error) == (None, "")
    ingest("third")
    wait_for(
        lambda: len(_routed(tenant, offset_queue)) == 3 and _outbox_idle(),
        "the fixed rule routing",
    )
    assert len(_routed(tenant, good_queue)) == 9
    assert len(_failing_events(announced)) == 2
    history = _history(tenant, offset)
    marked = [h for h in history if h.failing_since is not None]
    assert len(marked) == 1 and marked[0].history_user_id is None
    assert marked[0].history_source == "task"
    assert history[-1].failing_since is None and history[-1].history_user_id == tenant.owner.pk


# --- in this process: each path of a failure ----------------------------------------------------


@pytest.fixture
def refusing_queue(db):
    """A trigger that makes PostgreSQL refuse new items of one queue with a data
    exception: a database error met by one rule's work, which no validation at save
    could have caught."""
    refused: dict[str, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION test_refuse_items() RETURNS trigger AS $$
            BEGIN
              IF NEW.queue_id = current_setting('test.refused_queue', true)::bigint THEN
                RAISE EXCEPTION 'queue % takes no new items', NEW.queue_id
                  USING ERRCODE = 'data_exception';
              END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_refuse_items BEFORE INSERT ON review_queueitem
              FOR EACH ROW EXECUTE FUNCTION test_refuse_items();
            """
        )

    def refuse(queue_id: int) -> None:
        refused["queue"] = queue_id
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('test.refused_queue', %s, false)", [str(queue_id)])

    yield refuse
    # The test's transaction rolls the trigger back.


def test_a_database_error_in_one_rule_leaves_the_others_routing(announced, tenant, refusing_queue):
    _subscribe(tenant, announced)
    first_queue, refused_queue, last_queue = (
        make_queue(tenant, name=name) for name in ("a first", "b refused", "c last")
    )
    first = _rule(tenant, first_queue, "a first")
    refused = _rule(tenant, refused_queue, "b refused")
    last = _rule(tenant, last_queue, "c last")
    refusing_queue(refused_queue.pk)
    traces = [make_trace(tenant, status="error").pk for _ in range(2)]

    routed = _route(tenant, traces)

    assert routed == {first.pk: 2, last.pk: 2}
    assert _routed(tenant, first_queue) == _routed(tenant, last_queue) == set(traces)
    assert _routed(tenant, refused_queue) == set()
    failing = _reload(tenant, refused)
    assert failing.failing_since is not None
    assert failing.last_error == (
        f"The database refused its query: queue {refused_queue.pk} takes no new items"
    )
    run_outbox()
    assert [e["rule"]["name"] for e in _failing_events(announced)] == ["b refused"]

    # Tried again on the next run, still failing: no second announcement, no new row.
    rows = len(_history(tenant, refused))
    _route(tenant, [make_trace(tenant, status="error").pk])
    run_outbox()
    assert len(_failing_events(announced)) == 1
    assert len(_history(tenant, refused)) == rows
    assert _reload(tenant, refused).failing_since == failing.failing_since

    # The database takes its items again: the rule routes and is cleared (a history row).
    refusing_queue(0)
    again = make_trace(tenant, status="error").pk
    _route(tenant, [again])
    assert again in _routed(tenant, refused_queue)
    cleared = _reload(tenant, refused)
    assert (cleared.failing_since, cleared.last_error) == (None, "")
    history = _history(tenant, refused)
    assert history[-1].failing_since is None and history[-1].history_source == "task"
    assert "again" in history[-1].history_change_reason

    # Failing later is news again: a second announcement.
    refusing_queue(refused_queue.pk)
    _route(tenant, [make_trace(tenant, status="error").pk])
    run_outbox()
    assert [e["rule"]["name"] for e in _failing_events(announced)] == ["b refused"] * 2


def test_an_invalid_filter_is_marked_not_skipped_in_silence(tenant):
    queue, other_queue = make_queue(tenant, name="q"), make_queue(tenant, name="other")
    broken = _rule(tenant, queue, "broken")
    fine = _rule(tenant, other_queue, "fine")
    _break(tenant, broken, {"metadata": ["no colon here"], "status": "bogus"})
    trace_id = make_trace(tenant, status="error").pk

    assert _route(tenant, [trace_id]) == {fine.pk: 1}
    rule = _reload(tenant, broken)
    assert rule.last_error.startswith("Its trace filter is refused: ")
    assert "status" in rule.last_error


def test_editing_the_filter_clears_the_failing_state_and_other_edits_keep_it(tenant):
    queue = make_queue(tenant, name="q")
    rule = _rule(tenant, queue, "r")
    _break(tenant, rule, UNKNOWN_PARAMETER)
    _route(tenant, [make_trace(tenant).pk])
    owner = Actor(user=tenant.owner)
    with tenancy.tenant_scope(tenant.organization.pk):
        renamed = services.routing_rule_update(actor=owner, rule=_reload(tenant, rule), name="r2")
        assert renamed.failing_since is not None and renamed.last_error
        refiltered = services.routing_rule_update(
            actor=owner, rule=renamed, filter_params={"status": "ok"}
        )
    assert (refiltered.failing_since, refiltered.last_error) == (None, "")
    assert _reload(tenant, rule).failing_since is None


@pytest.mark.django_db(transaction=True)
def test_a_lock_timeout_retries_the_task_and_blames_no_rule(tenant):
    """The system's error (here a lock held elsewhere past ``lock_timeout``) is not the
    rule's: the outbox message goes back to pending for a retry, nothing is marked, and
    the retry routes."""
    queue = make_queue(tenant, name="q")
    rule = _rule(tenant, queue, "r")
    trace_id = make_trace(tenant, status="error").pk
    with tenancy.tenant_scope(tenant.organization.pk), transaction.atomic():
        services.routing_enqueue_for_new_traces(project=tenant.project, trace_ids=[trace_id])
    message = OutboxMessage.unscoped_across_tenants.get(task=ROUTE_TRACES)

    locked, release = threading.Event(), threading.Event()

    def hold_the_rule() -> None:
        try:
            with tenancy.tenant_scope(tenant.organization.pk), transaction.atomic():
                RoutingRule.objects.select_for_update().get(pk=rule.pk)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_rule)
    holder.start()
    try:
        assert locked.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        outbox.execute(message_id=message.pk, organization_id=tenant.organization.pk)
        message.refresh_from_db()
        assert message.state == OutboxState.PENDING and message.attempts == 1
        assert "lock" in message.last_error
        assert _reload(tenant, rule).failing_since is None
    finally:
        release.set()
        holder.join(30)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    outbox.execute(message_id=message.pk, organization_id=tenant.organization.pk)
    message.refresh_from_db()
    assert message.state == OutboxState.DONE
    assert _routed(tenant, queue) == {trace_id}
    assert _reload(tenant, rule).failing_since is None


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (psycopg.errors.LockNotAvailable, True),
        (psycopg.errors.DeadlockDetected, True),
        (psycopg.errors.SerializationFailure, True),
        (psycopg.errors.AdminShutdown, True),
        (psycopg.errors.ConnectionFailure, True),
        (psycopg.errors.OutOfMemory, True),
        (psycopg.errors.InvalidTimeZoneDisplacementValue, False),
        (psycopg.errors.InvalidTextRepresentation, False),
        (psycopg.errors.QueryCanceled, False),
        (psycopg.errors.StatementTooComplex, False),
        (psycopg.errors.RaiseException, False),
    ],
)
def test_which_errors_are_the_systems(error: type[psycopg.Error], transient: bool):
    wrapper = {
        psycopg.errors.OperationalError: OperationalError,
        psycopg.errors.DataError: DataError,
    }
    django_class = next((dj for pg, dj in wrapper.items() if issubclass(error, pg)), InternalError)
    try:
        try:
            raise error("as PostgreSQL says it")
        except psycopg.Error as exc:
            raise django_class("as PostgreSQL says it") from exc
    except Exception as wrapped:
        assert routing_failure_is_transient(wrapped) is transient
        if not transient:
            assert routing_failure_message(wrapped) == (
                "The database refused its query: as PostgreSQL says it"
            )


def test_a_dropped_connection_is_the_systems_and_a_bug_is_the_rules():
    assert routing_failure_is_transient(OperationalError("server closed the connection"))
    assert not routing_failure_is_transient(ValueError("bad"))
    message = routing_failure_message(ValueError("bad\nmore"))
    assert message == "Applying it failed (ValueError: bad)"
    assert len(routing_failure_message(ValueError("x" * 5000))) == 300
