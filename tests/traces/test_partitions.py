"""Spans partitioned by month of their trace's first sighting: the migration that
rebuilds a populated table, ingestion into partitions (identity and re-sends as
before), partitions created on demand and ahead, retention."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from hitl.tenancy import tenant_scope
from tests.traces.ingest_helpers import post, span, trace
from tests.traces.read_builders import make_score, make_trace
from traces import partitions, tasks
from traces.models import Span, Trace

migration = importlib.import_module("traces.migrations.0104_span_partitions")
LISTED = "SELECT id, trace_id, external_id, input::text FROM traces_span ORDER BY id"


def _fetch(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@pytest.fixture
def ingest(tenant, client_for):
    client = client_for(key=tenant.key("ingest"))

    def send(events):
        response = post(client, tenant, events)
        assert response.status_code == 200, response.content
        return response.json()

    return send


def test_migration_moves_every_existing_span_into_its_traces_month(tenant):
    """Rebuild the pre-partitioning table (unpartitioned, unique on (trace, id), a
    foreign key from scores), fill it, and run the migration's function on it."""
    old = make_trace(tenant.project, "old", created_at=datetime(2024, 3, 9, tzinfo=UTC))
    new = make_trace(tenant.project, "new")
    with connection.cursor() as cursor:
        # Today's partitioned table steps aside (names included) for the old shape.
        for name, _, _ in partitions.span_partitions():
            cursor.execute(f"ALTER TABLE {name} RENAME TO {name}_now")
        cursor.execute("ALTER TABLE traces_span RENAME TO traces_span_now")
        for constraint in ("traces_span_pkey", "span_external_id"):
            cursor.execute(
                f"ALTER TABLE traces_span_now RENAME CONSTRAINT {constraint} TO {constraint}_now"
            )
        partitions._known.clear()
        cursor.execute(
            "CREATE TABLE traces_span (LIKE traces_span_now INCLUDING DEFAULTS "
            "INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMPRESSION)"
        )
        cursor.execute("ALTER TABLE traces_span ADD PRIMARY KEY (id)")
        cursor.execute("ALTER TABLE traces_span ADD UNIQUE (trace_id, external_id)")
        cursor.execute(
            "ALTER TABLE traces_span ADD FOREIGN KEY (trace_id) REFERENCES traces_trace (id)"
        )
        cursor.execute(
            "ALTER TABLE traces_score ADD CONSTRAINT score_span_fk FOREIGN KEY (span_id) "
            "REFERENCES traces_span (id) DEFERRABLE INITIALLY DEFERRED"
        )
        arrived = datetime(2025, 1, 1, tzinfo=UTC)  # spans' own arrival: replaced
        for trace_row, names in ((old, ("a", "b", "c")), (new, ("a", "d"))):
            for name in names:
                cursor.execute(
                    "INSERT INTO traces_span (id, organization_id, project_id, trace_id, "
                    "external_id, parent_external_id, kind, name, model, provider, input, "
                    "attributes, input_tokens, output_tokens, cached_tokens, reasoning_tokens, "
                    "total_tokens, status, error_message, created_at) OVERRIDING SYSTEM VALUE "
                    "VALUES (%s, %s, %s, %s, %s, '', 'llm', %s, '', '', "
                    "'{\"b\": 1,  \"a\": 2}', '{}', 1, 2, 0, 0, 3, 'ok', '', %s)",
                    [1000 + trace_row.pk * 10 + ord(name) - 96, tenant.organization.pk,
                     tenant.project.pk, trace_row.pk, name, name, arrived],
                )  # fmt: skip
        before = _fetch(LISTED)
        migration.forward(None, connection.schema_editor())

    after = _fetch(LISTED)
    assert after == before  # nothing lost, ids and payloads (verbatim json) unchanged
    months = dict(
        _fetch("SELECT trace_id, min(tableoid::regclass::text) FROM traces_span GROUP BY 1")
    )
    assert months == {old.pk: "traces_span_y2024m03", new.pk: partitions.partition_name(
        partitions.month_start(new.created_at))}  # fmt: skip
    created = _fetch("SELECT DISTINCT s.created_at = t.created_at FROM traces_span s "
                     "JOIN traces_trace t ON t.id = s.trace_id")  # fmt: skip
    assert created == [(True,)]
    assert _fetch(
        "SELECT count(*) FROM pg_constraint WHERE confrelid = 'traces_span'::regclass"
    ) == [(0,)]
    assert _fetch("SELECT relkind FROM pg_class WHERE relname = 'traces_span'") == [("p",)]
    # The sequence goes on after the copied ids.
    with tenant_scope(tenant.organization.pk):
        made = Span.objects.create(project=tenant.project, trace=new, external_id="e")
    assert made.pk > max(row[0] for row in before)
    assert made.created_at == new.created_at


def test_spans_go_to_their_traces_partition_and_resending_is_a_no_op(tenant, ingest):
    events = [trace("t1", name="run"), span("t1", "s1", name="plan"), span("t1", "s2")]
    ingest(events)
    ingest([span("t1", "s1", name="plan"), span("t1", "s3", parent_id="s1")])
    ingest(events)
    with tenant_scope(tenant.organization.pk):
        stored = Trace.objects.get(external_id="t1")
        spans = list(Span.objects.filter(trace=stored).order_by("external_id"))
    assert [s.external_id for s in spans] == ["s1", "s2", "s3"]
    assert {s.created_at for s in spans} == {stored.created_at}
    tables = _fetch("SELECT DISTINCT tableoid::regclass::text FROM traces_span")
    assert tables == [(partitions.partition_name(partitions.month_start(stored.created_at)),)]
    # An identical re-send writes nothing: the rows keep their transaction ids.
    xmins = _fetch("SELECT external_id, xmin::text FROM traces_span ORDER BY 1")
    ingest(events)
    assert _fetch("SELECT external_id, xmin::text FROM traces_span ORDER BY 1") == xmins


def test_a_missing_partition_is_created_when_a_span_needs_it(tenant, ingest):
    old = make_trace(tenant.project, "t-old", created_at=datetime(2021, 6, 3, tzinfo=UTC))
    assert _fetch("SELECT to_regclass('traces_span_y2021m06')") == [(None,)]
    ingest([span("t-old", "late-span", name="arrived late")])
    assert _fetch(
        "SELECT tableoid::regclass::text, created_at = %s FROM traces_span", [old.created_at]
    ) == [("traces_span_y2021m06", True)]


def test_maintenance_creates_partitions_ahead_and_drops_expired_ones(tenant, settings):
    now = timezone.now()
    result = tasks.maintain_span_partitions()
    start = partitions.month_start(now)
    names = [name for name, _, _ in partitions.span_partitions()]
    for _ in range(partitions.MONTHS_AHEAD + 1):
        assert partitions.partition_name(start) in names
        start = partitions.next_month(start)
    assert result["dropped"] == []  # retention off by default

    long_ago = datetime(2020, 2, 10, tzinfo=UTC)
    kept_month = datetime(2020, 4, 10, tzinfo=UTC)
    gone = make_trace(tenant.project, "gone", created_at=long_ago)
    kept = make_trace(tenant.project, "kept", created_at=kept_month)
    with tenant_scope(tenant.organization.pk):
        partitions.span_partition_ensure(long_ago)
        partitions.span_partition_ensure(kept_month)
        Span.objects.create(project=tenant.project, trace=gone, external_id="x")
        reviewed = Span.objects.create(project=tenant.project, trace=kept, external_id="y")
    make_score(kept, "check", 1.0, span=reviewed, source="human")
    recent = make_trace(tenant.project, "recent")

    settings.HITL_TRACE_RETENTION_DAYS = (now - datetime(2020, 6, 1, tzinfo=UTC)).days
    result = tasks.maintain_span_partitions()
    assert "traces_span_y2020m02" in result["dropped"]
    assert "traces_span_y2020m04" not in result["dropped"]  # a human score on a span
    assert _fetch("SELECT to_regclass('traces_span_y2020m02')") == [(None,)]
    with tenant_scope(tenant.organization.pk):
        left = set(Trace.objects.values_list("external_id", flat=True))
        assert Span.objects.filter(pk=reviewed.pk).exists()
    assert left == {"kept", "recent"}
    assert recent.created_at > now - timedelta(minutes=5)
