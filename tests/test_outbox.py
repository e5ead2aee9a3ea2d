"""The outbox: written with its cause, published and relayed, run once, retried when the
failure is transient, given up loudly otherwise."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from celery.signals import task_postrun
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from hitl import outbox, tenancy
from hitl.celery import app as celery_app
from hitl.models import OutboxMessage, OutboxState
from projects.models import Project, Role
from tests.factories import add_member, make_user

CALLS: list[dict] = []
# A handler run with mode="wait" says it is running, then waits to be released.
RUNNING, RELEASE = threading.Event(), threading.Event()


class WorkerDied(BaseException):
    """What a killed worker leaves behind, in one thread: the run's transaction rolled
    back and its lock gone, with nothing recorded but the claim."""


@outbox.handler("tests.record", retry_on=(TimeoutError,), max_attempts=2)
def record(*, mode: str = "ok", project_id: int | None = None, **kwargs: object) -> None:
    CALLS.append({"mode": mode, "organization": tenancy.current_organization_id(), **kwargs})
    if mode == "wait":
        RUNNING.set()
        assert RELEASE.wait(20)
    if mode == "die":
        raise WorkerDied
    if project_id is not None:  # a database write that must commit with "done" or not at all
        Project.objects.filter(pk=project_id).update(name="renamed by the handler")
    if mode == "transient":
        raise TimeoutError("the mail server timed out")
    if mode == "bug":
        raise KeyError("a bug")


@pytest.fixture(autouse=True)
def _calls() -> Iterator[list[dict]]:
    CALLS.clear()
    yield CALLS


@pytest.fixture
def finished_runs() -> Iterator[list[tuple[int, str]]]:
    """(message id, outcome) of every ``hitl.outbox.run`` a worker finishes."""
    runs: list[tuple[int, str]] = []

    def on_postrun(sender=None, kwargs=None, retval=None, **_):
        if getattr(sender, "name", "") == "hitl.outbox.run":
            runs.append((kwargs["message_id"], retval))

    task_postrun.connect(on_postrun, weak=False)
    yield runs
    task_postrun.disconnect(on_postrun)


def _enqueue(tenant, secret_kwargs=None, **kwargs) -> OutboxMessage:
    org = tenant.organization.pk
    with tenancy.tenant_scope(org), transaction.atomic():
        return outbox.enqueue(
            task="tests.record", organization_id=org, kwargs=kwargs, secret_kwargs=secret_kwargs
        )


def _execute(message: OutboxMessage) -> str:
    return outbox.execute(message_id=message.pk, organization_id=message.organization_id)


def _reload(message: OutboxMessage) -> OutboxMessage:
    return OutboxMessage.unscoped_across_tenants.get(pk=message.pk)


def test_a_message_runs_once_in_its_tenant_scope(tenant):
    message = _enqueue(tenant, secret_kwargs={"token": "s3cret"}, invitation_id=7)
    assert (_execute(message), _execute(message)) == ("done", "skipped")
    (call,) = CALLS
    assert call == {
        "mode": "ok",
        "organization": tenant.organization.pk,
        "invitation_id": 7,
        "token": "s3cret",
    }
    done = _reload(message)
    assert (done.state, done.attempts, done.last_error) == (OutboxState.DONE, 1, "")
    assert done.done_at is not None
    assert done.kwargs == {"invitation_id": 7} and done.secret_kwargs == {}


def test_a_message_of_another_organization_is_not_found_in_this_scope(tenant, other_tenant):
    message = _enqueue(tenant)
    assert outbox.execute(message_id=message.pk, organization_id=other_tenant.organization.pk) == (
        "missing"
    )
    assert CALLS == [] and _reload(message).state == OutboxState.PENDING


def test_transient_failures_are_retried_with_backoff_then_given_up_loudly(tenant, caplog):
    message = _enqueue(tenant, mode="transient")
    assert _execute(message) == "retry"
    waiting = _reload(message)
    assert (waiting.state, waiting.attempts) == (OutboxState.PENDING, 1)
    assert "TimeoutError: the mail server timed out" in waiting.last_error
    assert waiting.available_at > timezone.now() + timedelta(seconds=5)
    assert outbox.relay() == 0  # not before its backoff

    OutboxMessage.unscoped_across_tenants.filter(pk=message.pk).update(available_at=timezone.now())
    caplog.clear()
    assert _execute(message) == "failed"
    failed = _reload(message)
    assert (failed.state, failed.attempts) == (OutboxState.FAILED, 2)
    assert [r.levelname for r in caplog.records if "failed after 2 attempts" in r.message] == [
        "ERROR"
    ]
    assert _execute(message) == "skipped"
    assert len(CALLS) == 2


def test_a_bug_fails_at_once_and_rolls_its_writes_back(tenant, caplog):
    message = _enqueue(tenant, mode="bug", project_id=tenant.project.pk)
    assert _execute(message) == "failed"
    failed = _reload(message)
    assert failed.state == OutboxState.FAILED and "KeyError" in failed.last_error
    assert any(r.levelname == "ERROR" and "failed" in r.message for r in caplog.records)
    with tenancy.tenant_scope(tenant.organization.pk):
        assert Project.objects.get(pk=tenant.project.pk).name != "renamed by the handler"


def test_a_handlers_writes_commit_with_done(tenant):
    message = _enqueue(tenant, project_id=tenant.project.pk)
    assert _execute(message) == "done"
    with tenancy.tenant_scope(tenant.organization.pk):
        assert Project.objects.get(pk=tenant.project.pk).name == "renamed by the handler"


def test_unknown_tasks_are_refused_when_enqueued(tenant):
    with tenancy.tenant_scope(tenant.organization.pk), pytest.raises(LookupError):
        outbox.enqueue(task="tests.nobody", organization_id=tenant.organization.pk)


def test_old_finished_messages_are_pruned_and_failures_kept(tenant, settings):
    done, failed, recent = (_enqueue(tenant) for _ in range(3))
    long_ago = timezone.now() - settings.HITL_OUTBOX_KEEP_DONE - timedelta(hours=1)
    OutboxMessage.unscoped_across_tenants.filter(pk=done.pk).update(state="done", done_at=long_ago)
    OutboxMessage.unscoped_across_tenants.filter(pk=failed.pk).update(
        state="failed", done_at=long_ago
    )
    OutboxMessage.unscoped_across_tenants.filter(pk=recent.pk).update(
        state="done", done_at=timezone.now()
    )
    assert outbox.prune() == 1
    assert set(OutboxMessage.unscoped_across_tenants.values_list("pk", flat=True)) == {
        failed.pk,
        recent.pk,
    }


def test_enqueue_belongs_inside_a_transaction(transactional_db, tenant):
    with (
        tenancy.tenant_scope(tenant.organization.pk),
        pytest.raises(transaction.TransactionManagementError),
    ):
        outbox.enqueue(task="tests.record", organization_id=tenant.organization.pk)


def test_a_rolled_back_cause_leaves_no_message(transactional_db, tenant):
    with (
        pytest.raises(RuntimeError),
        tenancy.tenant_scope(tenant.organization.pk),
        transaction.atomic(),
    ):
        outbox.enqueue(task="tests.record", organization_id=tenant.organization.pk)
        raise RuntimeError("the cause failed")
    assert not OutboxMessage.unscoped_across_tenants.exists()
    assert outbox.relay() == 0


def test_relays_side_by_side_never_take_the_same_row(transactional_db, tenant):
    message = _enqueue(tenant)
    # As if the after-commit publish had failed: the message waits for a relay.
    OutboxMessage.unscoped_across_tenants.filter(pk=message.pk).update(
        state="pending", published_at=None
    )
    locked, release = threading.Event(), threading.Event()

    def other_relay() -> None:
        try:
            with transaction.atomic():
                list(
                    OutboxMessage.unscoped_across_tenants.select_for_update().filter(pk=message.pk)
                )
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=other_relay)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        assert outbox.relay() == 0  # skipped, not waited for
        assert time.monotonic() - started < 2
    finally:
        release.set()
        holder.join(10)
    assert outbox.relay() == 1
    assert _reload(message).state == OutboxState.PUBLISHED


def test_a_run_cut_off_is_published_again_at_once_and_a_live_one_never(
    transactional_db, tenant, settings, caplog
):
    settings.HITL_OUTBOX_CLAIM_GRACE = timedelta(seconds=0.5)
    never_started = _enqueue(tenant)  # published after commit, still in the broker
    live = _enqueue(tenant, mode="wait")
    RUNNING.clear()
    RELEASE.clear()

    def worker() -> None:
        try:
            _execute(live)
        finally:
            connection.close()

    running = threading.Thread(target=worker)
    running.start()
    try:
        assert RUNNING.wait(10)
        claimed = _reload(live)
        assert claimed.claimed_at is not None and claimed.claimed_at >= claimed.published_at
        for _ in range(3):  # however long the run takes, its lock keeps the relay off it
            started = time.monotonic()
            assert outbox.relay() == 0
            assert time.monotonic() - started < 2
    finally:
        RELEASE.set()
        running.join(20)
    assert _reload(live).state == OutboxState.DONE

    cut_off = _enqueue(tenant, mode="die")
    with pytest.raises(WorkerDied):
        _execute(cut_off)
    stopped = _reload(cut_off)
    assert (stopped.state, stopped.attempts) == (OutboxState.PUBLISHED, 0)
    assert stopped.claimed_at >= stopped.published_at
    # A claim younger than the grace may be a worker between its claim and its lock.
    assert outbox.relay() == 0
    assert "cut off" not in caplog.text
    time.sleep(0.6)
    assert outbox.relay() == 1  # then at once, not after HITL_OUTBOX_REPUBLISH_AFTER
    assert "1 messages cut off by a stopped worker" in caplog.text
    again = _reload(cut_off)
    assert again.published_at > stopped.claimed_at
    assert outbox.relay() == 0  # published again once; claimed again before the next time
    assert _reload(never_started).published_at > timezone.now() - timedelta(minutes=1)
    # The message never started waits for HITL_OUTBOX_REPUBLISH_AFTER, as before.
    assert _reload(never_started).state == OutboxState.PUBLISHED


def test_a_run_asks_postgresql_to_probe_its_worker_within_the_lease(
    transactional_db, tenant, settings
):
    settings.HITL_OUTBOX_LEASE_SECONDS = 12
    assert _execute(_enqueue(tenant)) == "done"
    with connection.cursor() as cursor:
        cursor.execute("SHOW tcp_keepalives_idle")
        idle = cursor.fetchone()[0]
        cursor.execute("SHOW tcp_keepalives_interval")
        interval = cursor.fetchone()[0]
        cursor.execute("SHOW tcp_keepalives_count")
        count = cursor.fetchone()[0]
    assert (idle, interval, count) == ("4", "2", "4")  # seconds: 4 + 4 x 2 = 12 s


@pytest.mark.worker
def test_a_message_published_three_times_runs_once(celery_worker, tenant, finished_runs):
    message = _enqueue(tenant)  # published after commit
    with celery_app.connection_for_write() as conn:
        for _ in range(2):  # and twice more, as a redelivery or a second relay would
            outbox.run.apply_async(
                kwargs={"message_id": message.pk, "organization_id": tenant.organization.pk},
                connection=conn,
            )
    deadline = time.monotonic() + 20
    while len([o for i, o in finished_runs if i == message.pk]) < 3:
        assert time.monotonic() < deadline, finished_runs
        time.sleep(0.05)
    assert sorted(o for i, o in finished_runs if i == message.pk) == ["done", "skipped", "skipped"]
    assert len(CALLS) == 1
    assert _reload(message).state == OutboxState.DONE


def test_the_admin_shows_messages_to_superusers_only_and_never_the_secret(tenant):
    message = _enqueue(tenant, secret_kwargs={"token": "never-shown-token"}, invitation_id=3)
    root = make_user("root@example.com", is_staff=True)
    root.is_superuser = True
    root.save()
    superuser = Client()
    superuser.force_login(root)
    listing = superuser.get("/admin/hitl/outboxmessage/")
    assert listing.status_code == 200 and b"tests.record" in listing.content
    page = superuser.get(f"/admin/hitl/outboxmessage/{message.pk}/change/")
    assert page.status_code == 200
    assert b"never-shown-token" not in page.content and b"invitation_id" in page.content
    assert b'name="_save"' not in page.content
    auditor = make_user("auditor@example.com", is_staff=True)
    add_member(tenant.organization, auditor, Role.AUDITOR)
    staff = Client()
    staff.force_login(auditor)
    assert staff.get("/admin/hitl/outboxmessage/").status_code in (403, 404)
    assert staff.get(f"/admin/hitl/outboxmessage/{message.pk}/change/").status_code in (403, 404)
