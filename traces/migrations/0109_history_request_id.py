# Every history row records the request that wrote it (hitl.audit.HistoricalActorFields).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("traces", "0108_saved_view_sort")]

    operations = [
        migrations.AddField(
            model_name="historicalsavedview",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalscore",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicaltraceretention",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
