"""Replace the statement-level PostgreSQL version trigger with a commit-time (deferred) one.

The statement-level trigger held the stamp row's lock from a transaction's first change to its
commit, so a multi-statement transaction on the LLM table could deadlock against a concurrent
save. SQLite's triggers are unchanged (the operation leaves them as they are).
"""

from django.db import migrations

from creative_services.contrib.django.triggers import UpgradeVersionTriggers


class Migration(migrations.Migration):
    dependencies = [
        ("creative_services", "0002_budgets"),
    ]

    operations = [
        UpgradeVersionTriggers("creative_services.LLMModel"),
    ]
