from __future__ import annotations

import gc
import os
import signal
import time

import pytest
from rest_framework.test import APIClient

from tests import emptying
from tests.factories import Tenant, make_tenant
from tests.sessions import wait_for_other_sessions

# Transactional tests end by emptying the tables, not by Django's flush (tests/emptying.py).
emptying.install()

# Creating a worker's test database (every migration) takes ~20 s on a quiet machine and
# minutes on a busy one; it happens in the setup of the worker's first test, whose
# pytest-timeout (signal method: a process timer) it must not spend. While it runs the
# timer allows this much; the test's own allowance is then restored.
DATABASE_SETUP_TIMEOUT = 1800


def pytest_collection_finish(session) -> None:
    """The garbage collector leaves what collection built alone (Django, the apps, the
    schema, every test module: frozen into its permanent generation), and looks for
    cycles less often: a test process allocates millions of short-lived objects (rows,
    querysets, requests), and each full collection walked every one of those too.
    Measured back to back, quiet: the admin's fuzz of the queue operations and the
    hostile walk of the queue pages ran 0.95 to 0.97 times as long. ``HITL_TEST_GC=python``
    keeps Python's own settings (to compare)."""
    if os.environ.get("HITL_TEST_GC") == "python":
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


@pytest.fixture(scope="session")
def _test_timer_held():
    """The seconds left on the running test's timer (0: none), the timer set to
    DATABASE_SETUP_TIMEOUT until django_db_setup below gives them back."""
    left, _interval = signal.getitimer(signal.ITIMER_REAL)
    if left:
        signal.setitimer(signal.ITIMER_REAL, DATABASE_SETUP_TIMEOUT)
    return left


@pytest.fixture(scope="session")
def django_db_setup(_test_timer_held, django_db_setup, django_db_blocker):
    if _test_timer_held:
        signal.setitimer(signal.ITIMER_REAL, _test_timer_held)
    yield django_db_setup
    # Every test is done: a connection left open (the replica tests' slot drop left one)
    # would hold the test database, and dropping it would wait 5 s and fail with a warning
    # (every run until now ended with two, one per worker).
    with django_db_blocker.unblock():
        _end_other_sessions()


def _end_other_sessions() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name, state, left(query, 120) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        others = cursor.fetchall()
        for pid, *seen in others:
            print(f"\nended a session left on the test database: {pid} {seen}")
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    connection.close()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(_test_timer_held, django_db_modify_db_settings) -> None:
    """With ``HITL_TEST_DB_TEMPLATE``, the test database is created as a copy of that
    database, whose migrations are all applied already, so creating it runs none.
    bin/test migrates it in the background while lint runs and pytest collects, and
    writes ``HITL_TEST_DB_TEMPLATE_STATUS`` when done: wait for it here."""
    from django.conf import settings

    template = os.environ.get("HITL_TEST_DB_TEMPLATE")
    if not template:
        return
    status = os.environ.get("HITL_TEST_DB_TEMPLATE_STATUS")
    if status:
        deadline = time.monotonic() + DATABASE_SETUP_TIMEOUT
        while not os.path.exists(status):
            if time.monotonic() > deadline:
                pytest.exit(f"the template database {template} was not migrated in time")
            time.sleep(0.1)
        with open(status) as file:
            outcome = file.read().strip()
        if not outcome.startswith("ok"):
            pytest.exit(f"migrating the template database {template} {outcome}")
    settings.DATABASES["default"].setdefault("TEST", {})["TEMPLATE"] = template


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle and rate-limit counters live in Redis: start each test clean."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashing costs ~0.3 s per user; the tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def tenant(db) -> Tenant:
    return make_tenant("Acme")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return make_tenant("Globex")


@pytest.fixture
def client_for():
    """client_for(user) -> a DRF client signed in as ``user``; client_for(key=raw) -> a
    client sending that API key."""

    def build(user=None, *, key: str | None = None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_login(user)
        if key is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client

    return build


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (threads, same process) consuming from the test Redis."""
    from celery.contrib.testing.worker import start_worker

    from hitl.celery import app

    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=10,
    ) as worker:
        yield worker
    wait_for_other_sessions()  # its last task's writes, before the flush


# Which API writes a test saw succeed and read the answer of (tests/write_coverage.py);
# tests/test_write_coverage.py, run last, fails for a write no test exercised.
from tests.write_coverage import (  # noqa: E402
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_deselected,
    pytest_runtest_setup,
    pytest_sessionfinish,
    pytest_sessionstart,
)

__all__ = [
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_deselected",
    "pytest_runtest_setup",
    "pytest_sessionfinish",
    "pytest_sessionstart",
]
