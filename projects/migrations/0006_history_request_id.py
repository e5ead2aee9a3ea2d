# Every history row records the request that wrote it (hitl.audit.HistoricalActorFields).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("projects", "0005_invitation_queue_ids")]

    operations = [
        migrations.AddField(
            model_name="historicalapikey",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicaldestination",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalinvitation",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalmembership",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalnotificationpreference",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalorganization",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalproject",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalqueuealert",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
