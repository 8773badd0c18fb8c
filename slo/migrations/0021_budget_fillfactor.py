"""Room for HOT updates on the rows every sync and evaluation rewrites: the window state (every
SLO every minute), and the current hour's and day's rollups (every SLO with a new minute). Without
free space in their pages each update also inserts into every index; with it PostgreSQL updates in
place (heap-only tuples). Older rollup rows are rarely rewritten, so the hour table keeps more of
each page for data."""

from django.db import migrations

FILLFACTORS = {"slo_windowstate": 50, "slo_budgetday": 50, "slo_budgethour": 70}


def set_fillfactor(apps, schema_editor):  # noqa: ANN001, ANN201 - migration signature
    if schema_editor.connection.vendor == "postgresql":
        for table, fillfactor in FILLFACTORS.items():
            schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {fillfactor})")


def reset_fillfactor(apps, schema_editor):  # noqa: ANN001, ANN201 - migration signature
    if schema_editor.connection.vendor == "postgresql":
        for table in FILLFACTORS:
            schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("slo", "0020_slostatus_typed_columns"),
    ]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
