"""Indexes for the trace filter (traces/filters.py).

- trigram GIN over the trace's input and output text, for ``q`` (ILIKE '%...%');
  the expression must match ``traces.filters.TRACE_TEXT_SQL`` exactly;
- GIN (jsonb_path_ops) over trace metadata, for ``metadata=key:value`` (@>);
- automated scores by project, name and value, end-user feedback by project, kind and
  value, and human scores by project, each carrying the trace id: a list request reads
  the traces of a rare condition from these first, index-only
  (traces.filters.TraceFilter._where_related).
"""

from django.db import migrations

TRACE_TEXT_SQL = "(coalesce((input)::text, '') || ' ' || coalesce((output)::text, ''))"


class Migration(migrations.Migration):
    dependencies = [
        ("traces", "0002_score_history_plain_unique"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS trace_text_trgm ON traces_trace "
            f"USING gin ({TRACE_TEXT_SQL} gin_trgm_ops)",
            reverse_sql="DROP INDEX IF EXISTS trace_text_trgm",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS trace_metadata_gin ON traces_trace "
            "USING gin (metadata jsonb_path_ops)",
            reverse_sql="DROP INDEX IF EXISTS trace_metadata_gin",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS feedback_project_kind_value ON traces_feedback "
            "(project_id, kind, value) INCLUDE (trace_id)",
            reverse_sql="DROP INDEX IF EXISTS feedback_project_kind_value",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS score_project_name_value_trace ON traces_score "
            "(project_id, name, value) INCLUDE (source, trace_id, organization_id)",
            reverse_sql="DROP INDEX IF EXISTS score_project_name_value_trace",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS score_human_project ON traces_score "
            "(project_id) INCLUDE (trace_id) WHERE source = 'human'",
            reverse_sql="DROP INDEX IF EXISTS score_human_project",
        ),
    ]
