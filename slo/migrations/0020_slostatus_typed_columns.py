"""SloStatus: per-window figures and tier codes as packed typed values instead of JSON documents,
plus the fingerprint that lets the evaluation skip rewriting unchanged figures."""

import django.db.models
from django.db import migrations

WINDOW_FIELDS = 7
DATA_QUALITY = ("ok", "insufficient_traffic", "no_data")
DAY, HOUR = 1440, 60


def _minutes(name: str) -> int:
    unit, value = name[-1], int(name[:-1])
    return value * {"m": 1, "h": HOUR, "d": DAY}[unit]


def forwards(apps, schema_editor):  # noqa: ANN001, ANN201 - migration signature
    import numpy as np

    SloStatus = apps.get_model("slo", "SloStatus")
    for status in SloStatus.objects.exclude(windows={}).iterator():
        names = [n for n in status.windows if n != "period"]
        names.sort(key=_minutes)
        table = []
        for name in [*names, "period"]:
            w = status.windows.get(name) or {}
            burn = status.burn_rates.get(name) if name != "period" else None
            table.append(
                [
                    w.get("minutes") or 0,
                    w.get("good") or 0.0,
                    w.get("valid") or 0.0,
                    w.get("events") or 0.0,
                    w.get("missing_minutes") or 0,
                    DATA_QUALITY.index(w.get("data_quality", "no_data")),
                    np.nan if burn is None else burn,
                ]
            )
        status.window_key = ",".join(str(_minutes(n)) for n in names)
        status.window_data = np.asarray(table, dtype=np.float64).tobytes()
        status.tier_codes = bytes(int(c) & 0xFF for c in status.tiers or [])
        status.save(update_fields=["window_key", "window_data", "tier_codes"])


class Migration(migrations.Migration):
    dependencies = [
        ("slo", "0019_windowstate_evaluationchunk"),
    ]

    operations = [
        migrations.AddField(
            model_name="slostatus",
            name="window_key",
            field=django.db.models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.AddField(
            model_name="slostatus", name="window_data", field=django.db.models.BinaryField(default=b"")
        ),
        migrations.AddField(
            model_name="slostatus",
            name="tier_codes",
            field=django.db.models.BinaryField(default=b"", help_text="int8 status code per alert tier"),
        ),
        migrations.AddField(
            model_name="slostatus",
            name="fingerprint",
            field=django.db.models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.RemoveField(model_name="slostatus", name="burn_rates"),
        migrations.RemoveField(model_name="slostatus", name="windows"),
        migrations.RemoveField(model_name="slostatus", name="tiers"),
    ]
