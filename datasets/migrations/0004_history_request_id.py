# Every history row records the request that wrote it (hitl.audit.HistoricalActorFields).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("datasets", "0003_export_skip_reasons")]

    operations = [
        migrations.AddField(
            model_name="historicaldataset",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicaldatasetitem",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalexperiment",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalqualitygate",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
