"""Partition the per-minute telemetry tables by day (PostgreSQL; nothing to do on SQLite).

Each table is rebuilt as `PARTITION BY RANGE (minute)` with a default partition and the day
partitions from the minute retention ago to the partitions-ahead setting, and its rows are copied
over in this migration's transaction (see slo/telemetry/partitions.py). The SLI minutes lose their
separate index on slo_id, which the primary key (slo_id, minute, source) already serves.
Reversible: the way back rebuilds plain tables with the same rows.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _rebuild(partitioned: bool):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        from slo.telemetry.partitions import PARTITIONED_TABLES, is_partitioned, table_rebuild

        for table in PARTITIONED_TABLES:
            if is_partitioned(table) != partitioned:
                table_rebuild(
                    table, partitioned=partitioned, days_back=settings.TELEMETRY_MINUTE_RETENTION_DAYS + 1
                )

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("slo", "0015_capacity_alert_kinds"),
    ]

    operations = [
        # the primary key (slo, minute, source) serves reads by SLO: one index less to write
        migrations.AlterField(
            model_name="sliminute",
            name="slo",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="slo.slo",
            ),
        ),
        migrations.RunPython(_rebuild(True), _rebuild(False), elidable=False),
    ]
