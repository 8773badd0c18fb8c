"""Every SLO status row is rewritten each minute: leave room in each page so PostgreSQL can update
in place (HOT updates: no index maintenance, less bloat). No-op on SQLite."""

from django.db import migrations


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE slo_slostatus SET (fillfactor = 50)")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE slo_slostatus RESET (fillfactor)")


class Migration(migrations.Migration):

    dependencies = [
        ("slo", "0005_reports"),
    ]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
