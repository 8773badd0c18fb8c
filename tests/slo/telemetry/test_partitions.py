"""The minute tables are partitioned by day on the real PostgreSQL: pushed minutes land in their
day's partition, a minute no partition covers is stored in the default one, partitions are created
ahead (moving rows the default partition caught), and retention drops whole expired days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from slo.models.telemetry import PushedMinute, SeriesMinute, SliHour, SliMinute
from slo.telemetry.derive import SliRow
from slo.telemetry.ingest import telemetry_batch_ingest
from slo.telemetry.partitions import (
    DAY_MINUTES,
    PARTITIONED_TABLES,
    day_first_minute,
    default_name,
    is_partitioned,
    partition_name,
    partitions,
    table_rebuild,
    telemetry_partitions_ensure,
)
from slo.telemetry.retention import telemetry_retention_enforce
from slo.telemetry.selectors import epoch_minute_floor, sli_minutes
from slo.telemetry.storage import telemetry_rollup_pending, telemetry_sli_rows_store
from tests.slo.telemetry.conftest import NOW, at, batch, standard_minute

pytestmark = pytest.mark.django_db
GW = "gateway:7"
TABLES = [SliMinute._meta.db_table, SeriesMinute._meta.db_table, PushedMinute._meta.db_table]
NOW_DAY = date(2025, 3, 1)


def where(table: str) -> dict[str, int]:
    """Rows per partition of `table`, read through the rows' tableoid."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1")
        return dict(cursor.fetchall())


def test_the_migration_partitions_every_minute_table_by_day_with_a_default() -> None:
    assert sorted(PARTITIONED_TABLES) == sorted(TABLES)
    today = datetime.now(UTC).date()
    for table in TABLES:
        assert is_partitioned(table)
        parts = partitions(table)
        assert parts[-1].name == default_name(table) and parts[-1].is_default
        days = {p.name: (p.first, p.stop) for p in parts if not p.is_default}
        first = day_first_minute(today + timedelta(days=7))
        assert days[partition_name(table, today + timedelta(days=7))] == (first, first + DAY_MINUTES)
        assert all(stop - first == DAY_MINUTES and first % DAY_MINUTES == 0 for first, stop in days.values())
    # the primary key and the indexes kept their names (later migrations find them)
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [TABLES[0]])
        assert sorted(r[0] for r in cursor.fetchall()) == ["sli_minute_by_time", "slo_sliminute_pkey"]


def test_a_minute_without_a_day_partition_is_stored_in_the_default_and_read_back(
    slos: dict[str, Any],
) -> None:
    slo = slos["edge-availability"]
    far_future = epoch_minute_floor(datetime(2100, 1, 1, tzinfo=UTC))
    telemetry_sli_rows_store(source="import:x", rows=[SliRow(slo.pk, far_future, 7, 9, True)])
    assert where(TABLES[0]) == {default_name(TABLES[0]): 1}
    data = sli_minutes([slo.pk], datetime(2100, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, 0, 1, tzinfo=UTC))
    assert data.good.tolist() == [[7]] and data.valid.tolist() == [[9]]


def test_ensure_creates_days_ahead_once_and_moves_the_rows_the_default_caught(slos: dict[str, Any]) -> None:
    telemetry_batch_ingest(source=GW, payload=batch({0: standard_minute(0), 1: standard_minute(1)}), now=NOW)
    before = {t: sorted(map(tuple, _rows(t))) for t in TABLES}
    assert all(list(where(t)) == [default_name(t)] for t in TABLES)  # no partition for 2025 yet

    created = telemetry_partitions_ensure(now=NOW, ahead_days=3)
    assert created == {t: 5 for t in TABLES}  # yesterday, today and 3 days ahead
    for table in TABLES:
        names = {p.name for p in partitions(table)}
        assert {partition_name(table, NOW_DAY + timedelta(days=d)) for d in range(-1, 4)} <= names
        # the rows of 1 March moved out of the default partition, unchanged
        assert where(table) == {partition_name(table, NOW_DAY): len(before[table])}
        assert sorted(map(tuple, _rows(table))) == before[table]
    assert telemetry_partitions_ensure(now=NOW, ahead_days=3) == {t: 0 for t in TABLES}

    # a new minute of that day now goes straight into its partition
    telemetry_batch_ingest(source=GW, payload=batch({2: standard_minute(2)}), now=NOW)
    assert where(TABLES[0]) == {partition_name(TABLES[0], NOW_DAY): 9}


def test_retention_drops_a_day_partition_once_all_its_minutes_are_past(
    slos: dict[str, Any], settings: Any
) -> None:
    telemetry_partitions_ensure(now=NOW, ahead_days=1)
    telemetry_batch_ingest(source=GW, payload=batch({0: standard_minute(0)}), now=NOW)
    telemetry_rollup_pending()
    # cutoff inside 1 March (13:00): the minute at 11:00 is past it, but its day is not over;
    # 28 February (empty) is wholly past
    kept = telemetry_retention_enforce(
        now=NOW + timedelta(days=settings.TELEMETRY_MINUTE_RETENTION_DAYS, hours=1)
    )
    assert kept["sli_minutes"] == 0 and kept["minute_partitions_dropped"] == len(TABLES)
    assert SliMinute.objects.count() == 3 and SeriesMinute.objects.count() == len(standard_minute(0))
    # cutoff after 1 March: its partition of each table is dropped, with every row in it
    later = datetime(2025, 3, 2, 0, 1, tzinfo=UTC) + timedelta(days=settings.TELEMETRY_MINUTE_RETENTION_DAYS)
    dropped = telemetry_retention_enforce(now=later)
    assert dropped["minute_partitions_dropped"] == len(TABLES)
    assert not SliMinute.objects.exists() and not SeriesMinute.objects.exists()
    assert not PushedMinute.objects.exists() and SliHour.objects.exists()
    for table in TABLES:
        names = {p.name for p in partitions(table)}
        assert partition_name(table, NOW_DAY) not in names
        assert partition_name(table, NOW_DAY + timedelta(days=1)) in names


def test_retention_deletes_the_expired_rows_of_the_default_partition_exactly(
    slos: dict[str, Any], settings: Any
) -> None:
    slo = slos["edge-availability"]
    first = epoch_minute_floor(at(0))
    telemetry_sli_rows_store(
        source="import:x", rows=[SliRow(slo.pk, first + k, 1, 1, True) for k in range(0, 120, 10)]
    )
    cutoff_now = at(60) + timedelta(days=settings.TELEMETRY_MINUTE_RETENTION_DAYS)
    result = telemetry_retention_enforce(now=cutoff_now)
    assert result["sli_minutes"] == 6  # minutes 0, 10, .., 50 of the 12
    assert sorted(SliMinute.objects.values_list("minute", flat=True)) == [
        first + k for k in range(60, 120, 10)
    ]


def test_the_rebuild_round_trip_keeps_rows_names_and_upserts(slos: dict[str, Any]) -> None:
    table = TABLES[0]
    telemetry_batch_ingest(source=GW, payload=batch({0: standard_minute(0)}), now=NOW)
    rows = sorted(map(tuple, _rows(table)))
    table_rebuild(table, partitioned=False)
    assert not is_partitioned(table) and sorted(map(tuple, _rows(table))) == rows
    table_rebuild(table, partitioned=True, now=NOW, days_back=1)
    assert is_partitioned(table) and sorted(map(tuple, _rows(table))) == rows
    assert where(table) == {partition_name(table, NOW_DAY): 3}
    # the upsert's ON CONFLICT still finds the primary key: a re-send replaces, never adds
    telemetry_batch_ingest(source=GW, payload=batch({0: standard_minute(0)}), now=NOW)
    assert sorted(map(tuple, _rows(table))) == rows


def _rows(table: str) -> list[Any]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        return cursor.fetchall()
