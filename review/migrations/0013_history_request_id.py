# Every history row records the request that wrote it (hitl.audit.HistoricalActorFields).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("review", "0012_review_draft")]

    operations = [
        migrations.AddField(
            model_name="historicaladjudication",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalalignmentmapping",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalannotation",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalcalibrationset",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalcomment",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalgoldanswer",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalqualitysettings",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalqueuecalibration",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalqueueformfield",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalqueueitem",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalqueuereviewer",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalreviewqueue",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalroutingrule",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="historicalscoreconfig",
            name="history_request_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
