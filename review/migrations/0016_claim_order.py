from django.db import migrations, models


class Migration(migrations.Migration):
    """The queue's order of offering items (complete items first or breadth first)."""

    dependencies = [
        ("review", "0015_delete_with_their_parent"),
    ]

    operations = [
        migrations.AddField(
            model_name="reviewqueue",
            name="claim_order",
            field=models.CharField(
                choices=[
                    ("breadth_first", "Oldest first: every item gets its first review early"),
                    (
                        "complete_first",
                        "Complete items first: an item already holding a review before an "
                        "untouched one",
                    ),
                ],
                default="breadth_first",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="historicalreviewqueue",
            name="claim_order",
            field=models.CharField(
                choices=[
                    ("breadth_first", "Oldest first: every item gets its first review early"),
                    (
                        "complete_first",
                        "Complete items first: an item already holding a review before an "
                        "untouched one",
                    ),
                ],
                default="breadth_first",
                max_length=16,
            ),
        ),
        migrations.AddIndex(
            model_name="queueitem",
            index=models.Index(
                models.F("queue"),
                models.OrderBy(models.F("priority"), descending=True),
                models.OrderBy(models.F("submissions"), descending=True),
                models.F("created_at"),
                models.F("id"),
                condition=models.Q(("open_slots__gt", 0), ("status", "open")),
                name="queue_item_claimable_complete",
            ),
        ),
    ]
