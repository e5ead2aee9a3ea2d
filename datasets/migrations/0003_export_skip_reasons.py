from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("datasets", "0002_revision_index_once")]

    operations = [
        migrations.AddField(
            model_name="datasetexport",
            name="skip_reasons",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
