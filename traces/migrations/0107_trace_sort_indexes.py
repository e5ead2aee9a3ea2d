"""Indexes for the trace list's orders (traces.selectors.trace_list_sorted): each walks
one project's traces by the sort value, highest first with traces without a value last,
ties by id, so the first page and every page after a cursor read a few index entries.
Tokens are never null, so one index serves both directions; the nullable columns are
indexed for their usual direction (newest, slowest, dearest first)."""

from django.db import migrations

INDEXES = {
    "trace_project_start_sort": "(project_id, start_time DESC NULLS LAST, id DESC)",
    "trace_project_latency_sort": "(project_id, latency_ms DESC NULLS LAST, id DESC)",
    "trace_project_tokens_sort": "(project_id, total_tokens DESC, id DESC)",
    "trace_project_cost_sort": "(project_id, cost DESC NULLS LAST, id DESC)",
}


class Migration(migrations.Migration):
    dependencies = [
        ("traces", "0106_trace_signals"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {name} ON traces_trace {columns}",
            reverse_sql=f"DROP INDEX IF EXISTS {name}",
        )
        for name, columns in INDEXES.items()
    ]
