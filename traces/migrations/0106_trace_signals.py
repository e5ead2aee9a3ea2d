# Trace signals (traces/score_summary.py): a column kept by triggers on scores and feedback,
# filled from the rows already stored; the list's walk index also carries start_time;
# trace pages keep room for updates in place.

from django.db import migrations, models

from traces import score_summary as signals


class Migration(migrations.Migration):
    dependencies = [
        ("projects", "0004_notification_preferences"),
        ("traces", "0105_trace_retention"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="trace",
            name="trace_project_created",
        ),
        migrations.AddField(
            model_name="trace",
            name="signals",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="trace",
            index=models.Index(
                fields=["project", "-created_at", "-id", "start_time"],
                name="trace_project_created",
            ),
        ),
        migrations.RunSQL(
            sql=[*signals.install_sql(), *signals.rebuild_sql()],
            reverse_sql=signals.uninstall_sql(),
        ),
        # Room on each new page for a trace's later versions: a score, feedback or the
        # roll-up that changes no indexed column then updates in place (HOT), without a
        # new entry in every index of the table (the trigram index among them).
        migrations.RunSQL(
            sql="ALTER TABLE traces_trace SET (fillfactor = 90)",
            reverse_sql="ALTER TABLE traces_trace RESET (fillfactor)",
        ),
    ]
