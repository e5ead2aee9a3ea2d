"""LZ4 for the large JSON columns (span and trace payloads).

PostgreSQL compresses values over ~2 KB (TOAST). LZ4 compresses and decompresses
several times faster than the default pglz at a similar ratio, which shortens both
ingestion (measured in bench/ingest.py) and trace detail reads. Only new values use it;
nothing is rewritten. Skipped on a server built without LZ4.
"""

from django.db import migrations

COLUMNS = {
    "traces_span": ("input", "output", "attributes"),
    "traces_trace": ("input", "output", "metadata"),
}


def _alter(method: str) -> str:
    statements = " ".join(
        f"ALTER TABLE {table} "
        + ", ".join(f"ALTER COLUMN {column} SET COMPRESSION {method}" for column in columns)
        + ";"
        for table, columns in COLUMNS.items()
    )
    return (
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_settings WHERE name = "  # noqa: S608
        "'default_toast_compression' AND 'lz4' = ANY(enumvals)) THEN "
        f"{statements} END IF; END $$;"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("traces", "0100_read_indexes"),
    ]

    operations = [
        migrations.RunSQL(_alter("lz4"), reverse_sql=_alter("default")),
    ]
