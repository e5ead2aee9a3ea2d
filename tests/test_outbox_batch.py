"""The outbox's short path: a transaction's messages published together over the
process's one kept broker connection, and a handler's ``run_here`` message run by the
same worker right after its commit, still a row in the outbox (published, so the relay
would send it again if the worker died)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import transaction

from hitl import outbox, tenancy
from hitl.celery import app as celery_app
from hitl.models import OutboxMessage, OutboxState
from tests.test_outbox import CALLS  # and its handler "tests.record", which appends to it

CHILDREN = 3


@outbox.handler("tests.fan_out_children")
def fan_out_children(*, count: int = CHILDREN, **_: object) -> None:
    """Enqueues ``count`` messages that may run here, as the notification fan-out does."""
    for n in range(count):
        outbox.enqueue(
            task="tests.record",
            organization_id=tenancy.current_organization_id(),
            kwargs={"child": n},
            run_here=True,
        )


def _states(*pks: int) -> list[str]:
    by_pk = dict(
        OutboxMessage.unscoped_across_tenants.filter(pk__in=pks).values_list("pk", "state")
    )
    return [by_pk.get(pk, "gone") for pk in pks]


def _enqueue(tenant, **kwargs) -> OutboxMessage:
    return outbox.enqueue(
        task="tests.record", organization_id=tenant.organization.pk, kwargs=kwargs
    )


@pytest.fixture
def calls() -> Iterator[list[dict]]:
    CALLS.clear()
    yield CALLS
    CALLS.clear()


@pytest.fixture
def scope(tenant):
    with tenancy.tenant_scope(tenant.organization.pk):
        yield


def test_a_transactions_messages_go_together_over_one_kept_connection(
    transactional_db, tenant, scope
):
    with transaction.atomic():
        first, second = _enqueue(tenant, n=1), _enqueue(tenant, n=2)
        assert _states(first.pk, second.pk) == [OutboxState.PENDING] * 2
    assert _states(first.pk, second.pk) == [OutboxState.PUBLISHED] * 2
    kept = outbox._publisher._conn
    assert kept is not None
    with transaction.atomic():
        third = _enqueue(tenant, n=3)
    assert _states(third.pk) == [OutboxState.PUBLISHED]
    assert outbox._publisher._conn is kept  # no new connection per transaction


def test_a_rolled_back_savepoint_loses_no_later_message(transactional_db, tenant, scope):
    with transaction.atomic():
        # The transaction's first message is in a savepoint that rolls back: the batch
        # it started is dropped with it, and the next message starts another.
        with pytest.raises(RuntimeError), transaction.atomic():
            _enqueue(tenant, n="rolled back")
            raise RuntimeError
        kept = _enqueue(tenant, n="kept")
        with pytest.raises(RuntimeError), transaction.atomic():
            _enqueue(tenant, n="rolled back too")
            raise RuntimeError
        last = _enqueue(tenant, n="last")
    assert _states(kept.pk, last.pk) == [OutboxState.PUBLISHED] * 2
    assert OutboxMessage.unscoped_across_tenants.count() == 2


def test_a_dead_broker_drops_the_connection_and_the_next_publish_opens_one(
    transactional_db, tenant, scope
):
    with transaction.atomic():
        _enqueue(tenant, n="warm")
    saved = celery_app.conf.broker_url
    failures = outbox.publish_failures()
    celery_app.conf.broker_url = "redis://127.0.0.1:9/0"
    try:
        with transaction.atomic():
            waiting = _enqueue(tenant, n="while down")
    finally:
        celery_app.conf.broker_url = saved
        outbox._broker.close()
    assert outbox.publish_failures() == failures + 1
    assert outbox._publisher._conn is None
    assert _states(waiting.pk) == [OutboxState.PENDING]  # left for the relay
    with transaction.atomic():
        again = _enqueue(tenant, n="back")
    assert _states(again.pk) == [OutboxState.PUBLISHED]


def test_a_worker_runs_one_run_here_message_itself_and_publishes_the_rest(
    transactional_db, tenant, scope, calls
):
    with transaction.atomic():
        parent = outbox.enqueue(
            task="tests.fan_out_children", organization_id=tenant.organization.pk
        )
    # As a worker does: run the parent; its children are written with its commit.
    assert outbox.execute(message_id=parent.pk, organization_id=tenant.organization.pk) == "done"
    children = list(
        OutboxMessage.unscoped_across_tenants.filter(task="tests.record").order_by("id")
    )
    assert len(children) == CHILDREN
    # The last one ran here, at once, without the broker; the others were published.
    assert [c.state for c in children] == [OutboxState.PUBLISHED] * (CHILDREN - 1) + [
        OutboxState.DONE
    ]
    assert children[-1].published_at is not None
    assert [c["child"] for c in calls] == [CHILDREN - 1]
    # Delivered again by the broker or the relay, it does nothing.
    assert outbox.execute(message_id=children[-1].pk, organization_id=tenant.organization.pk) == (
        "skipped"
    )


def test_outside_a_worker_run_here_is_published_like_any_message(
    transactional_db, tenant, scope, calls
):
    with transaction.atomic():
        message = outbox.enqueue(
            task="tests.record",
            organization_id=tenant.organization.pk,
            kwargs={"from": "a request"},
            run_here=True,
        )
    assert _states(message.pk) == [OutboxState.PUBLISHED]
    assert calls == []
