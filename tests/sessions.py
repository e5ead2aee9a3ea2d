"""Waiting for the test database's other sessions before a flush."""

from __future__ import annotations

import time


def wait_for_other_sessions(timeout: float = 10.0) -> None:
    """Until no other session on the test database is busy. A request a browser page sent
    just before it closed still runs in the live server's thread, and a Celery worker's
    last task may still be writing as the worker stops: their locks would deadlock the
    flush that follows (its TRUNCATE against their row and foreign-key locks)."""
    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state <> 'idle'"
            )
            if not cursor.fetchone()[0]:
                return
        time.sleep(0.02)
