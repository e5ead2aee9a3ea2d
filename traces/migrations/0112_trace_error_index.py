"""The explorer's count of matches among errors (``has_error=true``): a partial index of
the error traces, with the organization the tenant scope filters on, so counting up to the
cap (``traces.selectors.trace_list_count``) reads a few thousand index entries instead of
walking the project's traces past its time budget (60 ms at 10M spans, every time)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("traces", "0111_trace_score_averages"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS trace_project_errors "
            "ON traces_trace (project_id, organization_id) WHERE status = 'error'",
            reverse_sql="DROP INDEX IF EXISTS trace_project_errors",
        ),
    ]
