"""Spans: payload columns as ``json`` (kept verbatim: OTLP content stored once and read
back exactly as sent, no jsonb conversion on ingestion) and only the indexes a query
uses. Dropped: ``span_project_created`` and ``span_project_model`` (no query reads spans
by project and time or by project and model; the model filter probes each trace's spans
through the identity index) and the foreign-key indexes on organization, project and
trace ((trace, external_id) covers reads by trace). The type change rewrites the table.
"""

import django.db.models.deletion
from django.db import migrations, models

import traces.models

_lz4 = (
    "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
    "AND 'lz4' = ANY(enumvals)) THEN ALTER TABLE traces_span ALTER COLUMN input SET COMPRESSION "
    "lz4, ALTER COLUMN output SET COMPRESSION lz4, ALTER COLUMN attributes SET COMPRESSION lz4; "
    "END IF; END $$;"
)


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0002_notifications"),
        ("traces", "0102_saved_view"),
    ]

    operations = [
        # The rewrite keeps each column's compression (LZ4 since 0101); set it again for
        # servers where 0101 found LZ4 and a type change reset it.
        migrations.RemoveIndex(
            model_name="span",
            name="span_project_created",
        ),
        migrations.RemoveIndex(
            model_name="span",
            name="span_project_model",
        ),
        migrations.AlterField(
            model_name="span",
            name="attributes",
            field=traces.models.VerbatimJSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="span",
            name="input",
            field=traces.models.VerbatimJSONField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="span",
            name="organization",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.organization",
            ),
        ),
        migrations.AlterField(
            model_name="span",
            name="output",
            field=traces.models.VerbatimJSONField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="span",
            name="project",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.project",
            ),
        ),
        migrations.AlterField(
            model_name="span",
            name="trace",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="spans",
                to="traces.trace",
            ),
        ),
        migrations.RunSQL(_lz4, reverse_sql=migrations.RunSQL.noop),
    ]
