# Each trace's average per score name (traces/score_averages.py): a table kept by
# triggers on scores, filled from the scores already stored.

import django.db.models.deletion
from django.db import migrations, models

from traces import score_averages


class Migration(migrations.Migration):

    dependencies = [
        ('projects', '0008_apikey_verbose_name'),
        ('traces', '0110_alter_feedback_options'),
    ]

    operations = [
        migrations.CreateModel(
            name='TraceScoreAverage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=256)),
                ('average', models.FloatField(null=True)),
                ('scores', models.IntegerField(default=0)),
                ('organization', models.ForeignKey(editable=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='projects.organization')),
                ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='projects.project')),
                ('trace', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='traces.trace')),
            ],
            options={
                'indexes': [models.Index(fields=['project', 'name', '-average', '-trace'], name='score_average_sort')],
                'constraints': [models.UniqueConstraint(fields=('trace', 'name'), name='score_average_trace_name')],
            },
        ),
        migrations.RunSQL(
            sql=[*score_averages.install_sql(), *score_averages.rebuild_sql()],
            reverse_sql=score_averages.uninstall_sql(),
        ),
    ]
