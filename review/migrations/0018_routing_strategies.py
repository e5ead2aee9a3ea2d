from django.db import migrations


class Migration(migrations.Migration):
    """Routing strategies beside match-and-sample."""

    dependencies = [
        ("review", "0017_comparison"),
    ]

    operations = []
