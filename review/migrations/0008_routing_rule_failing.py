# Routing rules that fail are marked on their row (review/services/routing.py).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0007_dataset_item_target"),
    ]

    operations = [
        migrations.AddField(
            model_name="historicalroutingrule",
            name="failing_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="historicalroutingrule",
            name="last_error",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="routingrule",
            name="failing_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="routingrule",
            name="last_error",
            field=models.TextField(blank=True, default=""),
        ),
    ]
