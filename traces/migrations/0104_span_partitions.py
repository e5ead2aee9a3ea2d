"""Spans partitioned by month of ``created_at`` (native PostgreSQL range partitioning).

A span's ``created_at`` becomes its trace's ``created_at`` (when the trace was first
seen), so all spans of a trace share one partition and the identity rule holds as
before: ``(trace_id, external_id)`` determines ``created_at``, so the unique key
``(trace_id, external_id, created_at)`` (a partitioned table's unique keys must include
the partition key) admits exactly what ``(trace_id, external_id)`` admitted, and
``ON CONFLICT`` on it makes a re-send a no-op. The primary key becomes
``(id, created_at)``; ids still come from one sequence and stay unique.

Foreign keys that pointed at spans (scores, feedback, review items, annotations,
comments, dataset items) cannot reference a partitioned table by ``id`` alone, so their
database constraints are dropped; integrity is kept by the services (docs/ARCHITECTURE.md).

The table is rebuilt: a partitioned ``traces_span`` is created beside the old one,
partitions for every month that holds rows plus the current one and three ahead, rows
copied (with their trace's ``created_at``), the old table dropped and the constraints
recreated under their names. Irreversible.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import migrations, models

MONTHS_AHEAD = 3


def _next(start: datetime) -> datetime:
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)


def forward(apps, schema_editor) -> None:
    cursor = schema_editor.connection.cursor()
    execute = cursor.execute
    # 1. Foreign keys pointing at spans (other apps' too): found by the catalogue.
    execute(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = 'traces_span'::regclass"
    )
    for table, name in cursor.fetchall():
        execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    # 2. The partitioned table beside the old one.
    execute("ALTER TABLE traces_span RENAME TO traces_span_unpartitioned")
    execute(
        "CREATE TABLE traces_span (LIKE traces_span_unpartitioned INCLUDING DEFAULTS "
        "INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMPRESSION) "
        "PARTITION BY RANGE (created_at)"
    )
    # 3. Partitions: every month holding a trace (spans may still come), the current
    # one and three ahead.
    execute("SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC') FROM traces_trace")
    months = {row[0].replace(tzinfo=UTC) for row in cursor.fetchall()}
    now = datetime.now(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    for _ in range(MONTHS_AHEAD + 1):
        months.add(start)
        start = _next(start)
    for month in sorted(months):
        execute(
            f"CREATE TABLE traces_span_y{month.year:04d}m{month.month:02d} "  # noqa: S608
            "PARTITION OF traces_span FOR VALUES FROM (%s) TO (%s)",
            [month, _next(month)],
        )
    # 4. Rows, each with its trace's created_at; the sequence continues.
    execute(
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
        "WHERE attrelid = 'traces_span'::regclass AND attnum > 0 AND NOT attisdropped"
    )
    columns = cursor.fetchone()[0]
    selected = ", ".join(
        "t.created_at" if c == "created_at" else f"s.{c}" for c in columns.split(", ")
    )
    execute(
        f"INSERT INTO traces_span ({columns}) OVERRIDING SYSTEM VALUE "  # noqa: S608
        f"SELECT {selected} FROM traces_span_unpartitioned s "
        "JOIN traces_trace t ON t.id = s.trace_id"
    )
    execute("SELECT pg_get_serial_sequence('traces_span_unpartitioned', 'id')")
    old_sequence = cursor.fetchone()[0]
    execute(
        "SELECT setval(pg_get_serial_sequence('traces_span', 'id'), "  # noqa: S608
        "GREATEST((SELECT max(id) FROM traces_span_unpartitioned), "
        f"(SELECT last_value FROM {old_sequence}), 1))"
    )
    # 5. The old table goes; its foreign keys (organization, project, trace) come back
    # under their names, with the keys that now include created_at.
    execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'traces_span_unpartitioned'::regclass AND contype IN ('f', 'c')"
    )
    kept = cursor.fetchall()
    execute("DROP TABLE traces_span_unpartitioned")
    execute(
        "SELECT pg_get_serial_sequence('traces_span', 'id')"
    )
    sequence = cursor.fetchone()[0]
    execute("SELECT to_regclass('public.traces_span_id_seq') IS NULL")
    if cursor.fetchone()[0]:
        execute(f"ALTER SEQUENCE {sequence} RENAME TO traces_span_id_seq")
    execute("ALTER TABLE traces_span ADD CONSTRAINT traces_span_pkey PRIMARY KEY (id, created_at)")
    execute(
        "ALTER TABLE traces_span ADD CONSTRAINT span_external_id "
        "UNIQUE (trace_id, external_id, created_at)"
    )
    for name, definition in kept:
        execute(f'ALTER TABLE traces_span ADD CONSTRAINT "{name}" {definition}')


class Migration(migrations.Migration):
    atomic = True

    dependencies = [
        ("traces", "0103_span_payloads_json_lean_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunPython(forward)
            ],
            state_operations=[
                migrations.RemoveConstraint(model_name="span", name="span_external_id"),
                migrations.AddConstraint(
                    model_name="span",
                    constraint=models.UniqueConstraint(
                        fields=("trace", "external_id", "created_at"), name="span_external_id"
                    ),
                ),
            ],
        ),
    ]
