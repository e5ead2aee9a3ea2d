from django.db import migrations


class Migration(migrations.Migration):
    """Comparison items: one input, two or more outputs, reviewed side by side."""

    dependencies = [
        ("review", "0016_claim_order"),
    ]

    operations = []
