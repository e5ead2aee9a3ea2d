"""Spans partitioned by time: one PostgreSQL range partition per calendar month (UTC)
of the span's ``created_at``, which is its trace's ``created_at`` (when the trace was
first seen), so every span of a trace lives in one partition.

Partitions are created ahead by the ``traces.maintain_span_partitions`` beat task (and
at migrate time for the current period); the store also creates a missing one the first
time a process writes into a month nobody prepared (``span_partition_ensure``), so
ingestion never fails for want of a partition. Retention (``traces.retention``) drops
the months nothing keeps any more.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.db import connection, transaction

logger = logging.getLogger(__name__)

PARENT = "traces_span"
MONTHS_AHEAD = 3
_known: set[str] = set()  # partitions this process has seen (they are never renamed)


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"{PARENT}_y{start.year:04d}m{start.month:02d}"


def span_partition_ensure(moment: datetime) -> str:
    """The partition holding ``moment``, created if missing (idempotent, safe under
    concurrency: creation is serialised by an advisory lock)."""
    start = month_start(moment)
    name = partition_name(start)
    if name in _known:
        return name
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if not cursor.fetchone()[0]:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('traces_span partitions'))")
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {PARENT} "
                "FOR VALUES FROM (%s) TO (%s)",
                [start, next_month(start)],
            )
            logger.info("created span partition %s", name)
    # Remembered once it is certainly there: a rolled-back creation is forgotten.
    transaction.on_commit(lambda: _known.add(name))
    return name


def span_partitions_ensure_ahead(*, now: datetime, months: int = MONTHS_AHEAD) -> list[str]:
    """The current month's partition and the next ``months``."""
    start = month_start(now)
    names = []
    for _ in range(months + 1):
        names.append(span_partition_ensure(start))
        start = next_month(start)
    return names


def span_partitions() -> list[tuple[str, datetime, datetime]]:
    """Every partition of the span table: (name, from, to), oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        # FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00')
        parts = bound.split("'")
        found.append((name, datetime.fromisoformat(parts[1]), datetime.fromisoformat(parts[3])))
    return sorted(found, key=lambda row: row[1])


def span_partition_drop(name: str) -> None:
    """Detaches and drops one span partition, inside the caller's transaction (which
    has checked that nothing still needs its rows). Waits at most a few seconds for the
    span table's lock, so ingestion and reads never queue long behind it: a busy table
    raises ``OperationalError`` and the partition waits for the next run."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '5s'")
        # Deferred foreign-key checks of this transaction run now, not on a dropped table.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
        # Back to Django's deferred checks for whatever the transaction does next (its
        # deletions rely on them for their order).
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    _known.discard(name)
    logger.info("span partition %s dropped", name)
