"""Spans partitioned by time: one PostgreSQL range partition per calendar month (UTC)
of the span's ``created_at``, which is its trace's ``created_at`` (when the trace was
first seen), so every span of a trace lives in one partition.

Partitions are created ahead by the ``traces.maintain_span_partitions`` beat task (and
at migrate time for the current period); the store also creates a missing one the first
time a process writes into a month nobody prepared (``span_partition_ensure``), so
ingestion never fails for want of a partition.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

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


def _referenced_spans(partition: str) -> list[str]:
    """Tables whose rows point at spans of ``partition`` (their foreign keys have no
    database constraint on a partitioned table; every one is found from the models)."""
    from django.apps import apps
    from django.db import models

    from traces.models import Span

    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            # History rows (DO_NOTHING) keep ids of deleted spans by design; they never block.
            if (
                field.is_relation
                and field.related_model is Span
                and field.remote_field.on_delete is not models.DO_NOTHING
            ):
                table, column = model._meta.db_table, field.column
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"SELECT EXISTS (SELECT 1 FROM {table} r "  # noqa: S608
                        f"JOIN {partition} s ON s.id = r.{column})"
                    )
                    if cursor.fetchone()[0]:
                        found.append(table)
    return found


def span_partitions_drop_expired(*, now: datetime, keep_days: int) -> list[str]:
    """Drops the span partitions wholly older than ``keep_days`` whose spans nothing
    points at (a review item, annotation, comment, score, feedback or dataset item on
    one of their spans keeps the partition, with a warning: reviews outlive retention
    until someone deletes them), then deletes the traces first seen in those months
    through the ORM, so their scores, feedback and review rows go by the models' rules.
    Returns the dropped partitions."""
    from hitl import tenancy
    from traces.models import Trace

    if keep_days <= 0:
        return []
    cutoff = now - timedelta(days=keep_days)
    dropped = []
    for name, start, end in span_partitions():
        if end > cutoff:
            continue
        with transaction.atomic():
            blockers = _referenced_spans(name)
            if blockers:
                logger.warning("span partition %s kept: referenced from %s", name, blockers)
                continue
            with connection.cursor() as cursor:
                # Deferred foreign-key checks of this transaction run now, not on a
                # dropped table.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
                cursor.execute(f"DROP TABLE {name}")
            _known.discard(name)
            window = Trace.unscoped_across_tenants.filter(created_at__gte=start, created_at__lt=end)
            for organization_id in window.values_list("organization_id", flat=True).distinct():
                with tenancy.tenant_scope(organization_id):
                    Trace.objects.filter(created_at__gte=start, created_at__lt=end).delete()
        logger.info("span partition %s dropped (retention %s days)", name, keep_days)
        dropped.append(name)
    return dropped
