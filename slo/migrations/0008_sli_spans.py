"""Spans of SLI minutes the budget feed must sync. Until now the feed re-read the last day every
hour: mark the last day of every active SLO once, so nothing stored before the upgrade is skipped."""

import time

import django.db.models.deletion
from django.db import migrations, models


def mark_last_day(apps, schema_editor):
    Slo = apps.get_model("slo", "Slo")
    SliSpan = apps.get_model("slo", "SliSpan")
    now = time.time()
    current = int(now // 60)
    SliSpan.objects.bulk_create(
        [
            SliSpan(slo_id=pk, first_minute=current - 1440, last_minute=current, marked_at=now)
            for pk in Slo.objects.filter(archived_at__isnull=True).values_list("pk", flat=True)
        ],
        batch_size=5000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("slo", "0007_notificationchannel_reposted_at"),
    ]

    operations = [
        migrations.CreateModel(
            name="SliSpan",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("first_minute", models.BigIntegerField(help_text="minutes since the epoch, UTC")),
                ("last_minute", models.BigIntegerField(help_text="minutes since the epoch, UTC (inclusive)")),
                ("marked_at", models.FloatField(help_text="epoch seconds of the write")),
                (
                    "slo",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="slo.slo",
                    ),
                ),
            ],
        ),
        migrations.RunPython(mark_last_day, migrations.RunPython.noop),
    ]
