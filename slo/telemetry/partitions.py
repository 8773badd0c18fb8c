"""Time partitions of the per-minute telemetry tables (PostgreSQL declarative partitioning).

`SliMinute`, `SeriesMinute` and `PushedMinute` are `PARTITION BY RANGE (minute)` on PostgreSQL (migration
0016), one partition per UTC day named `<table>_pYYYYMMDD` covering minutes [day start, next day start),
plus `<table>_default`, which stores any minute no day partition covers (a far-future or far-past
minute is stored, never refused or lost for want of a partition). Why: an ingest writes into, and the
budget sync reads from, a partition of one day whose indexes stay small and cached however long
the table grows; retention drops whole days (`DROP TABLE` of a partition: no dead rows, no vacuum)
instead of deleting millions of rows.

- `telemetry_partitions_ensure` (beat, hourly) creates the partitions of the coming days ahead of
  time. A day whose rows already sit in the default partition (written before its partition
  existed) gets them moved in the transaction that attaches its partition.
- `partitions_drop_expired` (retention) drops every day partition that ends at or before the cutoff
  and deletes the expired rows of the default partition. A day partition is dropped once all of
  its minutes are past the retention: minutes are kept for the retention, and for at most one day
  more.
- `table_rebuild` converts a table to partitioned (or back): the migration's step, also used by
  the benchmark to measure the unpartitioned table. Columns, defaults, checks, the primary key and
  every index keep their names, so later migrations (new columns, indexes) apply to the
  partitioned table as to the plain one.

SQLite (the embedded mode) has no partitioning: every function here is a no-op there and retention
deletes rows. DDL runs with a short `lock_timeout`: a maintenance step that would queue behind a
long read (and block the writers queued behind it) gives up and is retried on the next run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from slo.models.telemetry import PushedMinute, SeriesMinute, SliMinute

logger = logging.getLogger(__name__)

# table -> partition key column (whole minutes since the epoch)
PARTITIONED_TABLES: dict[str, str] = {
    SliMinute._meta.db_table: "minute",
    SeriesMinute._meta.db_table: "minute",
    PushedMinute._meta.db_table: "minute",
}
DAY_MINUTES = 1440
LOCK_TIMEOUT = "5s"
_EPOCH = date(1970, 1, 1)
_BOUND = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")


@dataclass(frozen=True)
class Partition:
    """One partition: `first`/`stop` bound its minutes [first, stop); both None for the default."""

    name: str
    first: int | None
    stop: int | None

    @property
    def is_default(self) -> bool:
        return self.first is None


def day_of_minute(minute: int) -> date:
    return _EPOCH + timedelta(days=minute // DAY_MINUTES)


def day_first_minute(day: date) -> int:
    return (day - _EPOCH).days * DAY_MINUTES


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def default_name(table: str) -> str:
    return f"{table}_default"


def is_partitioned(table: str) -> bool:
    """Whether `table` is a partitioned table (False on SQLite)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def partitions(table: str) -> list[Partition]:
    """The partitions of `table`, day partitions by time, then the default one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
            [table],
        )
        rows = cursor.fetchall()
    out = []
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match:
            out.append(Partition(name, int(match.group(1)), int(match.group(2))))
        else:
            out.append(Partition(name, None, None))
    return sorted(out, key=lambda p: (p.first is None, p.first or 0))


def partition_create(table: str, day: date) -> bool:
    """Create and attach the partition of `day` unless one exists; move that day's rows out of the
    default partition first. One transaction, serialised per table. Returns whether it created."""
    name = partition_name(table, day)
    key = PARTITIONED_TABLES[table]
    first = day_first_minute(day)
    stop = first + DAY_MINUTES
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute("SELECT pg_advisory_xact_lock(7302, hashtext(%s))", [table])
        if any(p.name == name or (p.first == first) for p in partitions(table)):
            return False
        cursor.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        default = default_name(table)
        if any(p.name == default for p in partitions(table)):
            cursor.execute(
                f"WITH moved AS (DELETE FROM {default} WHERE {key} >= %s AND {key} < %s RETURNING *) "
                f"INSERT INTO {name} SELECT * FROM moved",
                [first, stop],
            )
            if cursor.rowcount:
                logger.info("moved %s rows of %s from %s into %s", cursor.rowcount, day, default, name)
        # ATTACH (not CREATE ... PARTITION OF): a lighter lock on the parent, and the indexes are
        # built once, after the moved rows are in.
        cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({first}) TO ({stop})")
    return True


def telemetry_partitions_ensure(
    *, now: datetime | None = None, ahead_days: int | None = None
) -> dict[str, int]:
    """Create the day partitions from yesterday to `ahead_days` days ahead on every partitioned
    table that lacks them (beat, hourly). Returns the partitions created per table."""
    now = now or timezone.now()
    ahead = settings.TELEMETRY_PARTITIONS_AHEAD_DAYS if ahead_days is None else ahead_days
    today = now.astimezone(UTC).date()
    created: dict[str, int] = {}
    for table in PARTITIONED_TABLES:
        if not is_partitioned(table):
            continue
        have = {p.first for p in partitions(table)}
        created[table] = 0
        for offset in range(-1, ahead + 1):
            day = today + timedelta(days=offset)
            if day_first_minute(day) not in have:
                created[table] += int(partition_create(table, day))
    return created


def partitions_drop_expired(table: str, cutoff_minute: int) -> tuple[int, int]:
    """Retention on a partitioned table: drop the day partitions wholly before `cutoff_minute` and
    delete the default partition's rows before it. Returns (partitions dropped, rows removed); the
    rows of dropped partitions are counted from the planner's statistics (no scan of a day we drop)."""
    key = PARTITIONED_TABLES[table]
    dropped = rows = 0
    for part in partitions(table):
        if part.is_default:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {part.name} WHERE {key} < %s", [cutoff_minute])
                rows += max(cursor.rowcount, 0)
        elif part.stop is not None and part.stop <= cutoff_minute:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                cursor.execute(
                    "SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE relname = %s", [part.name]
                )
                estimate = cursor.fetchone()
                cursor.execute(f"DROP TABLE {part.name}")
            dropped += 1
            rows += int(estimate[0]) if estimate else 0
    return dropped, rows


def table_rebuild(table: str, *, partitioned: bool, now: datetime | None = None, days_back: int = 0) -> None:
    """Rebuild `table` as partitioned by day (with a default partition and the day partitions from
    `days_back` days ago to the partitions-ahead setting) or as a plain table, carrying its rows
    over. Run inside a transaction (a migration is one)."""
    key = PARTITIONED_TABLES[table]
    old = f"{table}_old"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY conname",
            [table],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY c.relname",
            [table],
        )
        indexes = cursor.fetchall()
        cursor.execute(f"ALTER TABLE {table} RENAME TO {old}")
        for name, _ in constraints:
            cursor.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {name} TO {_renamed(name)}")
        for name, _ in indexes:
            cursor.execute(f"ALTER INDEX {name} RENAME TO {_renamed(name)}")
        partition_by = f" PARTITION BY RANGE ({key})" if partitioned else ""
        cursor.execute(
            f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS){partition_by}"
        )
        for name, definition in constraints:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        for _, definition in indexes:
            # names the table by its original name: the new one (a partitioned index says ON ONLY)
            cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))
        if partitioned:
            cursor.execute(f"CREATE TABLE {default_name(table)} PARTITION OF {table} DEFAULT")
            today = (now or timezone.now()).astimezone(UTC).date()
            for offset in range(-days_back, settings.TELEMETRY_PARTITIONS_AHEAD_DAYS + 1):
                day = today + timedelta(days=offset)
                first = day_first_minute(day)
                cursor.execute(
                    f"CREATE TABLE {partition_name(table, day)} PARTITION OF {table} "
                    f"FOR VALUES FROM ({first}) TO ({first + DAY_MINUTES})"
                )
        cursor.execute(f"INSERT INTO {table} SELECT * FROM {old}")
        cursor.execute(f"DROP TABLE {old}")


def _renamed(name: str) -> str:
    return f"{name[:59]}_old"
