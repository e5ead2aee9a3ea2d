import django.db.models.deletion
from django.db import migrations, models

STRATEGIES = [
    ("match_and_sample", "Match and sample"),
    ("uncertainty_band", "A judge's score in an uncertainty band"),
    ("judges_disagree", "Two judges disagree"),
    ("reviewers_disagree", "The first reviewers disagreed"),
]


class Migration(migrations.Migration):
    """Routing strategies beside match-and-sample."""

    dependencies = [
        ("review", "0017_comparison"),
    ]

    operations = [
        migrations.AddField(
            model_name="historicalroutingrule",
            name="source_queue",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="review.reviewqueue",
            ),
        ),
        migrations.AddField(
            model_name="historicalroutingrule",
            name="strategy",
            field=models.CharField(choices=STRATEGIES, default="match_and_sample", max_length=24),
        ),
        migrations.AddField(
            model_name="historicalroutingrule",
            name="strategy_params",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="routingrule",
            name="source_queue",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="review.reviewqueue",
            ),
        ),
        migrations.AddField(
            model_name="routingrule",
            name="strategy",
            field=models.CharField(choices=STRATEGIES, default="match_and_sample", max_length=24),
        ),
        migrations.AddField(
            model_name="routingrule",
            name="strategy_params",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
