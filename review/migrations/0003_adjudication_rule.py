"""The adjudication rule a lead expects (review.adjudication).

``adjudication_threshold`` (null: never adjudicate; otherwise adjudicate when the spread
or dissent share was strictly above it) becomes three fields: ``adjudicates``,
``max_dissent_share`` (categorical, boolean) and ``numeric_tolerance`` (numeric).

Existing thresholds keep their meaning: a numeric threshold becomes the tolerance, a
categorical or boolean one the tolerated dissent share (capped at 1); ties now always
adjudicate. A missing threshold meant "never", almost always by omission: it becomes the
new default, any disagreement adjudicates. Edit history rows are converted the same way.
"""

from django.db import migrations, models

CONVERT = """
UPDATE {table} AS f
SET numeric_tolerance = CASE WHEN c.data_type = 'numeric'
                             THEN GREATEST(COALESCE(f.adjudication_threshold, 0), 0) ELSE 0 END,
    max_dissent_share = CASE WHEN c.data_type IN ('categorical', 'boolean')
                             THEN LEAST(GREATEST(COALESCE(f.adjudication_threshold, 0), 0), 1)
                             ELSE 0 END
FROM review_scoreconfig AS c
WHERE c.id = f.config_id
"""

BACK = """
UPDATE {table} AS f
SET adjudication_threshold = CASE
        WHEN NOT f.adjudicates OR c.data_type = 'text' THEN NULL
        WHEN c.data_type = 'numeric' THEN f.numeric_tolerance
        ELSE f.max_dissent_share END
FROM review_scoreconfig AS c
WHERE c.id = f.config_id
"""

TABLES = ("review_queueformfield", "review_historicalqueueformfield")


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0002_form_and_pool_history"),
    ]

    operations = [
        *(
            migrations.AddField(
                model_name=model,
                name=name,
                field=field,
            )
            for model in ("queueformfield", "historicalqueueformfield")
            for name, field in (
                ("adjudicates", models.BooleanField(default=True)),
                ("max_dissent_share", models.FloatField(default=0.0)),
                ("numeric_tolerance", models.FloatField(default=0.0)),
            )
        ),
        migrations.RunSQL(
            sql=[CONVERT.format(table=table) for table in TABLES],
            reverse_sql=[BACK.format(table=table) for table in TABLES],
        ),
        migrations.RemoveField(model_name="queueformfield", name="adjudication_threshold"),
        migrations.RemoveField(
            model_name="historicalqueueformfield", name="adjudication_threshold"
        ),
    ]
