"""Indexes for the trace filter (traces/filters.py).

- trigram GIN over the trace's input and output text, for ``q`` (ILIKE '%...%');
  the expression must match ``traces.filters.TRACE_TEXT_SQL`` exactly;
- GIN (jsonb_path_ops) over trace metadata, for ``metadata=key:value`` (@>).
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
    ]
