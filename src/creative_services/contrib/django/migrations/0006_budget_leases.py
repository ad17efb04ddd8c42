# Budget reservations become leases that expire (issue 14 item 5).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("creative_services", "0004_usage_cache_hit"),
    ]

    operations = [
        migrations.CreateModel(
            name="BudgetLease",
            fields=[
                ("id", models.CharField(max_length=32, primary_key=True, serialize=False)),
                ("request_id", models.CharField(max_length=255)),
                (
                    "counters",
                    models.TextField(help_text="The counter keys it holds, as a JSON list."),
                ),
                ("amount", models.DecimalField(decimal_places=10, max_digits=20)),
                ("expires_at", models.DateTimeField(db_index=True)),
                ("reclaimed", models.BooleanField(default=False)),
                ("created_at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "budget reservation",
                "verbose_name_plural": "budget reservations",
                "ordering": ("expires_at",),
            },
        ),
    ]
