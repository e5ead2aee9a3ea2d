"""Indexes for the trace list's orders (traces.selectors.trace_list_page): each walks one
project's traces by the sort value, ties by id, so the first page and every page after a
cursor read a few index entries. One index serves both directions: the page reads the
traces with a value (highest first forwards, lowest first backwards) and then, when the
page is not full, those without one, so they come last either way."""

from django.db import migrations

INDEXES = {
    "trace_project_start_sort": "(project_id, start_time DESC NULLS LAST, id DESC)",
    "trace_project_latency_sort": "(project_id, latency_ms DESC NULLS LAST, id DESC)",
    "trace_project_tokens_sort": "(project_id, total_tokens DESC NULLS LAST, id DESC)",
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
