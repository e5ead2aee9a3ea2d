from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("hitl", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxmessage",
            name="claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
