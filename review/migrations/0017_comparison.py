import django.contrib.postgres.fields
import django.db.models.deletion
import django.utils.timezone
import simple_history.models
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """Comparison items: one input, two or more outputs, reviewed side by side."""

    dependencies = [
        ("projects", "0008_apikey_verbose_name"),
        ("review", "0016_claim_order"),
        ("traces", "0110_alter_feedback_options"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ComparisonOutput",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.PositiveSmallIntegerField()),
                ("label", models.CharField(max_length=200)),
                ("content", models.JSONField(blank=True, null=True)),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("experiment_result", "An experiment's result"),
                            ("trace", "A trace"),
                            ("api", "Posted through the API"),
                        ],
                        max_length=20,
                    ),
                ),
                ("experiment_result_id", models.BigIntegerField(blank=True, null=True)),
            ],
            options={
                "ordering": ["comparison_id", "position"],
            },
        ),
        migrations.CreateModel(
            name="ComparisonQueue",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("criteria", models.JSONField(default=list)),
                ("allow_strength", models.BooleanField(default=False)),
                (
                    "n_way",
                    models.CharField(
                        choices=[("best", "Pick the best"), ("ranking", "Rank them all")],
                        default="best",
                        max_length=8,
                    ),
                ),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="HistoricalComparisonItem",
            fields=[
                (
                    "id",
                    models.BigIntegerField(
                        auto_created=True, blank=True, db_index=True, verbose_name="ID"
                    ),
                ),
                ("history_api_key_id", models.BigIntegerField(blank=True, null=True)),
                ("history_api_key_prefix", models.CharField(blank=True, default="", max_length=32)),
                ("history_source", models.CharField(blank=True, default="", max_length=16)),
                ("history_request_id", models.CharField(blank=True, default="", max_length=64)),
                ("input", models.JSONField(blank=True, null=True)),
                ("group_key", models.CharField(blank=True, default="", max_length=300)),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("experiments", "Results of experiments on the same dataset item"),
                            ("traces", "Traces sharing a grouping key"),
                            ("api", "Outputs posted through the API"),
                        ],
                        max_length=16,
                    ),
                ),
                ("dataset_item_id", models.BigIntegerField(blank=True, null=True)),
                ("metadata", models.JSONField(blank=True, default=dict)),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                ("history_id", models.AutoField(primary_key=True, serialize=False)),
                ("history_date", models.DateTimeField(db_index=True)),
                ("history_change_reason", models.TextField(null=True)),
                (
                    "history_type",
                    models.CharField(
                        choices=[("+", "Created"), ("~", "Changed"), ("-", "Deleted")], max_length=1
                    ),
                ),
            ],
            options={
                "verbose_name": "historical comparison item",
                "verbose_name_plural": "historical comparison items",
                "ordering": ("-history_date", "-history_id"),
                "get_latest_by": ("history_date", "history_id"),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name="HistoricalComparisonOutput",
            fields=[
                (
                    "id",
                    models.BigIntegerField(
                        auto_created=True, blank=True, db_index=True, verbose_name="ID"
                    ),
                ),
                ("history_api_key_id", models.BigIntegerField(blank=True, null=True)),
                ("history_api_key_prefix", models.CharField(blank=True, default="", max_length=32)),
                ("history_source", models.CharField(blank=True, default="", max_length=16)),
                ("history_request_id", models.CharField(blank=True, default="", max_length=64)),
                ("position", models.PositiveSmallIntegerField()),
                ("label", models.CharField(max_length=200)),
                ("content", models.JSONField(blank=True, null=True)),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("experiment_result", "An experiment's result"),
                            ("trace", "A trace"),
                            ("api", "Posted through the API"),
                        ],
                        max_length=20,
                    ),
                ),
                ("experiment_result_id", models.BigIntegerField(blank=True, null=True)),
                ("history_id", models.AutoField(primary_key=True, serialize=False)),
                ("history_date", models.DateTimeField(db_index=True)),
                ("history_change_reason", models.TextField(null=True)),
                (
                    "history_type",
                    models.CharField(
                        choices=[("+", "Created"), ("~", "Changed"), ("-", "Deleted")], max_length=1
                    ),
                ),
            ],
            options={
                "verbose_name": "historical comparison output",
                "verbose_name_plural": "historical comparison outputs",
                "ordering": ("-history_date", "-history_id"),
                "get_latest_by": ("history_date", "history_id"),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name="HistoricalComparisonQueue",
            fields=[
                (
                    "id",
                    models.BigIntegerField(
                        auto_created=True, blank=True, db_index=True, verbose_name="ID"
                    ),
                ),
                ("history_api_key_id", models.BigIntegerField(blank=True, null=True)),
                ("history_api_key_prefix", models.CharField(blank=True, default="", max_length=32)),
                ("history_source", models.CharField(blank=True, default="", max_length=16)),
                ("history_request_id", models.CharField(blank=True, default="", max_length=64)),
                ("criteria", models.JSONField(default=list)),
                ("allow_strength", models.BooleanField(default=False)),
                (
                    "n_way",
                    models.CharField(
                        choices=[("best", "Pick the best"), ("ranking", "Rank them all")],
                        default="best",
                        max_length=8,
                    ),
                ),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("history_id", models.AutoField(primary_key=True, serialize=False)),
                ("history_date", models.DateTimeField(db_index=True)),
                ("history_change_reason", models.TextField(null=True)),
                (
                    "history_type",
                    models.CharField(
                        choices=[("+", "Created"), ("~", "Changed"), ("-", "Deleted")], max_length=1
                    ),
                ),
            ],
            options={
                "verbose_name": "historical comparison queue",
                "verbose_name_plural": "historical comparison queues",
                "ordering": ("-history_date", "-history_id"),
                "get_latest_by": ("history_date", "history_id"),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name="HistoricalPreference",
            fields=[
                (
                    "id",
                    models.BigIntegerField(
                        auto_created=True, blank=True, db_index=True, verbose_name="ID"
                    ),
                ),
                ("history_api_key_id", models.BigIntegerField(blank=True, null=True)),
                ("history_api_key_prefix", models.CharField(blank=True, default="", max_length=32)),
                ("history_source", models.CharField(blank=True, default="", max_length=16)),
                ("history_request_id", models.CharField(blank=True, default="", max_length=64)),
                ("criterion", models.CharField(max_length=100)),
                (
                    "shown_order",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(), size=None
                    ),
                ),
                ("answer_shown", models.JSONField()),
                (
                    "ranking",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(), size=None
                    ),
                ),
                ("strength", models.PositiveSmallIntegerField(default=1)),
                ("submitted_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("history_id", models.AutoField(primary_key=True, serialize=False)),
                ("history_date", models.DateTimeField(db_index=True)),
                ("history_change_reason", models.TextField(null=True)),
                (
                    "history_type",
                    models.CharField(
                        choices=[("+", "Created"), ("~", "Changed"), ("-", "Deleted")], max_length=1
                    ),
                ),
            ],
            options={
                "verbose_name": "historical preference",
                "verbose_name_plural": "historical preferences",
                "ordering": ("-history_date", "-history_id"),
                "get_latest_by": ("history_date", "history_id"),
            },
            bases=(simple_history.models.HistoricalChanges, models.Model),
        ),
        migrations.CreateModel(
            name="Preference",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("criterion", models.CharField(max_length=100)),
                (
                    "shown_order",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(), size=None
                    ),
                ),
                ("answer_shown", models.JSONField()),
                (
                    "ranking",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(), size=None
                    ),
                ),
                ("strength", models.PositiveSmallIntegerField(default=1)),
                ("submitted_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                "ordering": ["item_id", "reviewer_id", "criterion"],
            },
        ),
        migrations.AlterField(
            model_name="annotation",
            name="target_type",
            field=models.CharField(
                choices=[
                    ("trace", "Trace"),
                    ("span", "Span"),
                    ("thread", "Thread"),
                    ("dataset_item", "Dataset item to label"),
                    ("comparison", "Outputs to compare"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="historicalannotation",
            name="target_type",
            field=models.CharField(
                choices=[
                    ("trace", "Trace"),
                    ("span", "Span"),
                    ("thread", "Thread"),
                    ("dataset_item", "Dataset item to label"),
                    ("comparison", "Outputs to compare"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="historicalqueueitem",
            name="target_type",
            field=models.CharField(
                choices=[
                    ("trace", "Trace"),
                    ("span", "Span"),
                    ("thread", "Thread"),
                    ("dataset_item", "Dataset item to label"),
                    ("comparison", "Outputs to compare"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="queueitem",
            name="target_type",
            field=models.CharField(
                choices=[
                    ("trace", "Trace"),
                    ("span", "Span"),
                    ("thread", "Thread"),
                    ("dataset_item", "Dataset item to label"),
                    ("comparison", "Outputs to compare"),
                ],
                max_length=16,
            ),
        ),
        migrations.CreateModel(
            name="ComparisonItem",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("input", models.JSONField(blank=True, null=True)),
                ("group_key", models.CharField(blank=True, default="", max_length=300)),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("experiments", "Results of experiments on the same dataset item"),
                            ("traces", "Traces sharing a grouping key"),
                            ("api", "Outputs posted through the API"),
                        ],
                        max_length=16,
                    ),
                ),
                ("dataset_item_id", models.BigIntegerField(blank=True, null=True)),
                ("metadata", models.JSONField(blank=True, default=dict)),
                (
                    "created_at",
                    models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="projects.organization",
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="projects.project",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.AddField(
            model_name="historicalqueueitem",
            name="comparison",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="review.comparisonitem",
            ),
        ),
        migrations.AddField(
            model_name="queueitem",
            name="comparison",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="review.comparisonitem",
            ),
        ),
        migrations.AddConstraint(
            model_name="queueitem",
            constraint=models.UniqueConstraint(
                condition=models.Q(("target_type", "comparison")),
                fields=("queue", "comparison"),
                name="queue_item_comparison_unique",
            ),
        ),
        migrations.AddField(
            model_name="comparisonoutput",
            name="comparison",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="outputs",
                to="review.comparisonitem",
            ),
        ),
        migrations.AddField(
            model_name="comparisonoutput",
            name="organization",
            field=models.ForeignKey(
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.organization",
            ),
        ),
        migrations.AddField(
            model_name="comparisonoutput",
            name="trace",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="traces.trace",
            ),
        ),
        migrations.AddField(
            model_name="comparisonqueue",
            name="organization",
            field=models.ForeignKey(
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.organization",
            ),
        ),
        migrations.AddField(
            model_name="comparisonqueue",
            name="queue",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="comparison_setup",
                to="review.reviewqueue",
            ),
        ),
        migrations.AddField(
            model_name="historicalcomparisonitem",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="historicalcomparisonitem",
            name="history_user",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="historicalcomparisonitem",
            name="organization",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="projects.organization",
            ),
        ),
        migrations.AddField(
            model_name="historicalcomparisonitem",
            name="project",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="projects.project",
            ),
        ),
        migrations.AddField(
            model_name="historicalcomparisonoutput",
            name="comparison",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="review.comparisonitem",
            ),
        ),
        migrations.AddField(
            model_name="historicalcomparisonoutput",
            name="history_user",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="historicalcomparisonoutput",
            name="organization",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="projects.organization",
            ),
        ),
        migrations.AddField(
            model_name="historicalcomparisonoutput",
            name="trace",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="traces.trace",
            ),
        ),
        migrations.AddField(
            model_name="historicalcomparisonqueue",
            name="history_user",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="historicalcomparisonqueue",
            name="organization",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="projects.organization",
            ),
        ),
        migrations.AddField(
            model_name="historicalcomparisonqueue",
            name="queue",
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
            model_name="historicalpreference",
            name="annotation",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="review.annotation",
            ),
        ),
        migrations.AddField(
            model_name="historicalpreference",
            name="assignment",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="review.assignment",
            ),
        ),
        migrations.AddField(
            model_name="historicalpreference",
            name="comparison",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="review.comparisonitem",
            ),
        ),
        migrations.AddField(
            model_name="historicalpreference",
            name="history_user",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="historicalpreference",
            name="item",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="review.queueitem",
            ),
        ),
        migrations.AddField(
            model_name="historicalpreference",
            name="organization",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="projects.organization",
            ),
        ),
        migrations.AddField(
            model_name="historicalpreference",
            name="project",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="projects.project",
            ),
        ),
        migrations.AddField(
            model_name="historicalpreference",
            name="queue",
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
            model_name="historicalpreference",
            name="reviewer",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="historicalpreference",
            name="winner",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="review.comparisonoutput",
            ),
        ),
        migrations.AddField(
            model_name="preference",
            name="annotation",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="preferences",
                to="review.annotation",
            ),
        ),
        migrations.AddField(
            model_name="preference",
            name="assignment",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="review.assignment",
            ),
        ),
        migrations.AddField(
            model_name="preference",
            name="comparison",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="review.comparisonitem",
            ),
        ),
        migrations.AddField(
            model_name="preference",
            name="item",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="preferences",
                to="review.queueitem",
            ),
        ),
        migrations.AddField(
            model_name="preference",
            name="organization",
            field=models.ForeignKey(
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="projects.organization",
            ),
        ),
        migrations.AddField(
            model_name="preference",
            name="project",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="projects.project"
            ),
        ),
        migrations.AddField(
            model_name="preference",
            name="queue",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="review.reviewqueue",
            ),
        ),
        migrations.AddField(
            model_name="preference",
            name="reviewer",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="preference",
            name="winner",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="review.comparisonoutput",
            ),
        ),
        migrations.AddIndex(
            model_name="comparisonitem",
            index=models.Index(fields=["project", "group_key"], name="comparison_item_key"),
        ),
        migrations.AddConstraint(
            model_name="comparisonoutput",
            constraint=models.UniqueConstraint(
                fields=("comparison", "position"), name="comparison_output_position"
            ),
        ),
        migrations.AddConstraint(
            model_name="comparisonoutput",
            constraint=models.UniqueConstraint(
                fields=("comparison", "label"), name="comparison_output_label"
            ),
        ),
        migrations.AddIndex(
            model_name="preference",
            index=models.Index(fields=["queue", "criterion"], name="preference_queue"),
        ),
        migrations.AddConstraint(
            model_name="preference",
            constraint=models.UniqueConstraint(
                fields=("item", "reviewer", "criterion"), name="preference_once_per_criterion"
            ),
        ),
    ]
