from django.db import migrations


class Migration(migrations.Migration):
    """The queue's order of offering items (complete items first or breadth first)."""

    dependencies = [
        ("review", "0015_delete_with_their_parent"),
    ]

    operations = []
