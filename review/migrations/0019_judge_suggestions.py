from django.db import migrations


class Migration(migrations.Migration):
    """What a reviewer was shown of the automated scores (judge suggestions)."""

    dependencies = [
        ("review", "0018_routing_strategies"),
    ]

    operations = []
