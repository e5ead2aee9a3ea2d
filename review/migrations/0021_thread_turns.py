# A conversation reviewed turn by turn: each turn's rating and note on the annotation
# (review.services.turns, docs/threads.md).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('review', '0020_thread_routing'),
    ]

    operations = [
        migrations.AddField(
            model_name='annotation',
            name='turns',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='historicalannotation',
            name='turns',
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
