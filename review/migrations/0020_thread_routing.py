from django.db import migrations, models

TARGETS = [("trace", "Traces"), ("thread", "Threads")]


class Migration(migrations.Migration):
    """Thread rules: a routing rule's target (traces or threads) and its thread
    conditions (docs/routing.md)."""

    dependencies = [
        ("review", "0019_judge_suggestions"),
    ]

    operations = [
        migrations.AddField(
            model_name="historicalroutingrule",
            name="target",
            field=models.CharField(choices=TARGETS, default="trace", max_length=8),
        ),
        migrations.AddField(
            model_name="historicalroutingrule",
            name="thread_conditions",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="routingrule",
            name="target",
            field=models.CharField(choices=TARGETS, default="trace", max_length=8),
        ),
        migrations.AddField(
            model_name="routingrule",
            name="thread_conditions",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
