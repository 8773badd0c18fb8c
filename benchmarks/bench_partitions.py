"""The SLI minute table, plain (before) and partitioned by day (after), at `--slos` SLOs x `--days`
days of minutes: the insert rate of new minutes, the budget sync's minute read and retention.

For each variant the script creates its own database (`cp_bench_part_before`/`_after`, dropped
first), migrates it, and for `before` rebuilds the SLI minute table as the plain table it was before
migration 0016 (with its separate `slo_id` index). It loads `--days` whole UTC days of minutes for
every SLO (one push feed, one row per SLO and minute: `--slos` x 1,440 rows a day) and then measures:

- insert: `--new-minutes` new minutes, each one minute for every SLO written by the ingest's storage
  step (`sli_rows_write`: SLI minutes, feeds, pending hours, spans) in its own transaction;
- read: the budget sync's read of the last 15 minutes of every SLO (`minute_arrays`), cold (the
  first read after the inserts) and warm (median of 3 more);
- retention of the SLI minutes with the cutoff just past the first loaded day: `before` deletes its
  rows (as retention did before 0016; the `VACUUM` that makes their space reusable is timed
  separately), `after` drops its partition (`partitions_drop_expired`).

Loading: `before` inserts the rows and then builds its indexes, `after` fills each day's table and
attaches it (indexes built by sorting in both; a table grown minute by minute has fuller, more
fragmented indexes, so `before` is if anything favoured).

The load average (the machine is shared) is recorded at each step.

    .venv/bin/python benchmarks/bench_partitions.py [--slos 10000] [--days 30] [--variant both]
    # writes benchmarks/results/partitions.json (or --out NAME)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SERVER_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
RESULT = ROOT / "benchmarks" / "results" / "partitions.json"
SOURCE = "push:bench"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_variant(variant: str, slos: int, days: int, new_minutes: int) -> dict[str, Any]:
    import psycopg

    db = f"cp_bench_part_{variant}"
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db}")
    os.environ["DATABASE_URL"] = f"{SERVER_URL}/{db}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections, transaction

    connections.close_all()
    settings.DATABASES["default"]["NAME"] = db
    call_command("migrate", verbosity=0)

    from slo.models import Service, Slo
    from slo.telemetry.derive import SliRow
    from slo.telemetry.partitions import partition_create, partitions, partitions_drop_expired, table_rebuild
    from slo.telemetry.selectors import minute_arrays
    from slo.telemetry.sql import delete_older
    from slo.telemetry.storage import sli_rows_write

    table = "slo_sliminute"
    # whole days ending at midnight (UTC) a little before now; the new minutes start at that midnight
    last_day = datetime.now(UTC).date() - timedelta(days=1)
    first_day = last_day - timedelta(days=days - 1)
    start = int(datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC).timestamp() // 60)
    end = start + days * 1440
    out: dict[str, Any] = {"variant": variant, "rows_loaded": slos * days * 1440, "load_average": {}}
    out["load_average"]["start"] = load()

    if variant == "before":
        with transaction.atomic():
            table_rebuild(table, partitioned=False)
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE INDEX slo_sliminute_slo_id_before ON {table} (slo_id)")

    service = Service.objects.create(name="svc", service_class="interactive", tiers=["edge"])
    spec = {"service": "svc", "sli": {"kind": "availability"}, "objective": 99.0}
    spec["window"] = {"type": "rolling", "days": 28}
    Slo.objects.bulk_create(
        [
            Slo(
                service=service,
                name=f"slo-{k}",
                sli_kind="availability",
                objective=99.0,
                spec={**spec, "name": f"slo-{k}"},
            )
            for k in range(slos)
        ],
        batch_size=2000,
    )
    ids = list(Slo.objects.order_by("pk").values_list("pk", flat=True))

    clock = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute(
            "INSERT INTO slo_slifeed (slo_id, source, mode, first_minute, last_minute) "
            "SELECT id, %s, 'push', %s, %s FROM slo_slo",
            [SOURCE, start, end - 1],
        )
        fill = (
            "SELECT s.id, m, %s, 95 + (s.id + m) %% 5, 100, true "
            "FROM slo_slo s, generate_series(%s::bigint, %s::bigint) m ORDER BY m, s.id"
        )
        columns = "(slo_id, minute, source, good, valid, present)"
        if variant == "before":
            # rows first, then the indexes (built by sorting: minutes instead of hours)
            indexes = _index_definitions(cursor, table)
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT slo_sliminute_pkey")
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {name}")
        for d in range(days):
            day = first_day + timedelta(days=d)
            bounds = [SOURCE, start + d * 1440, start + (d + 1) * 1440 - 1]
            if variant == "before":
                cursor.execute(f"INSERT INTO {table} {columns} {fill}", bounds)
            else:
                # a day's rows into a plain table, then attached (its indexes built by sorting)
                name = f"{table}_p{day:%Y%m%d}"
                cursor.execute(f"DROP TABLE IF EXISTS {name}")  # the migration's empty partition
                cursor.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
                cursor.execute(f"INSERT INTO {name} {columns} {fill}", bounds)
                cursor.execute(
                    f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({bounds[1]}) TO ({bounds[2] + 1})"
                )
            print(f"{variant}: day {d + 1}/{days} loaded, {time.perf_counter() - clock:.0f} s", flush=True)
        if variant == "before":
            _disk_check(cursor, table)
            cursor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT slo_sliminute_pkey PRIMARY KEY (slo_id, minute, source)"
            )
            for _, definition in indexes:
                cursor.execute(definition)
        cursor.execute(f"VACUUM ANALYZE {table}")
    out["bulk_load_s"] = round(time.perf_counter() - clock, 1)
    out["bulk_load_rows_per_s"] = round(out["rows_loaded"] / out["bulk_load_s"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [table])
        size = cursor.fetchone()[0]
        if variant == "after":
            cursor.execute(
                "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = %s::regclass",
                [table],
            )
            size = cursor.fetchone()[0]
    out["table_size_mib"] = round(size / 2**20)
    out["load_average"]["after_load"] = load()

    if variant == "after":
        partition_create(table, last_day + timedelta(days=1))  # as the hourly task made it ahead

    # insert: one new minute for every SLO, per transaction, as a push of every SLO would write it
    now = datetime.fromtimestamp((end + new_minutes + 1) * 60, tz=UTC)
    per_minute = []
    for k in range(new_minutes):
        rows = [SliRow(i, end + k, 97, 100, True) for i in ids]
        clock = time.perf_counter()
        with transaction.atomic():
            sli_rows_write(SOURCE, "push", rows, now)
        per_minute.append(time.perf_counter() - clock)
    out["insert"] = {
        "rows_per_minute_written": len(ids),
        "median_s": round(statistics.median(per_minute), 3),
        "rows_per_s": round(len(ids) / statistics.median(per_minute)),
        "each_s": [round(x, 3) for x in per_minute],
    }
    out["load_average"]["after_insert"] = load()

    # the budget sync's read: 15 minutes of every SLO; the new minutes are not in the planner's
    # statistics yet (as at the start of a day), then again after ANALYZE (as autovacuum does)
    first, stop = end + new_minutes - 15, end + new_minutes

    def read() -> float:
        clock = time.perf_counter()
        good, _valid, present = minute_arrays(ids, first, stop)
        elapsed = time.perf_counter() - clock
        assert good.shape == (len(ids), 15) and bool(present[:, -new_minutes:].all())
        return elapsed

    reads = [read() for _ in range(4)]
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")
    analyzed = [read() for _ in range(3)]
    out["budget_sync_read"] = {
        "slos": len(ids),
        "minutes": 15,
        "cold_s": round(reads[0], 3),
        "warm_median_s": round(statistics.median(reads[1:]), 3),
        "after_analyze_median_s": round(statistics.median(analyzed), 3),
    }
    plans = [_plan(cursor_sql(ids, first, stop)) for _ in range(3)]
    out["budget_sync_read"]["sql_execution_median_ms"] = statistics.median(ms for _, ms in plans)
    out["budget_sync_read"]["plan"] = plans[-1][0]
    out["load_average"]["after_read"] = load()

    # retention of the SLI minutes: the first loaded day is past the cutoff
    cutoff = end + new_minutes - (days - 1) * 1440
    clock = time.perf_counter()
    if variant == "before":
        removed, dropped = delete_older(table, "minute", cutoff), 0
    else:
        dropped, removed = partitions_drop_expired(table, cutoff)
    out["retention"] = {
        "s": round(time.perf_counter() - clock, 3),
        "sli_minutes_removed": removed,
        "partitions_dropped": dropped,
    }
    if variant == "before":
        # the deleted rows' space is reusable only after a vacuum (autovacuum would run it)
        clock = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM {table}")
        out["retention"]["vacuum_after_s"] = round(time.perf_counter() - clock, 3)
    else:
        out["retention"]["partitions_left"] = len(partitions(table))
    out["load_average"]["end"] = load()
    connections.close_all()
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return out


def _disk_check(cursor: Any, table: str) -> None:
    """Refuse to build the plain table's indexes when the server's disk cannot hold them.

    Sorting for the primary key needs about half the heap in temporary files plus the index (about
    as much again); a full disk would stop the server for everyone, so the run stops first instead.
    """
    import shutil

    cursor.execute("SELECT pg_relation_size(%s::regclass), current_setting('data_directory')", [table])
    heap, data_directory = cursor.fetchone()
    free = shutil.disk_usage(data_directory).free
    if free < 1.1 * heap:
        raise SystemExit(
            f"bench_partitions: {free / 2**30:.0f} GiB free beside a {heap / 2**30:.0f} GiB heap; "
            "building the plain table's indexes needs about 1.1x the heap free"
        )


def _index_definitions(cursor: Any, table: str) -> list[tuple[str, str]]:
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary",
        [table],
    )
    return cursor.fetchall()


def cursor_sql(ids: list[int], first: int, stop: int) -> str:
    """The read of `minute_arrays`, for EXPLAIN."""
    return (
        "SELECT slo_id, minute, SUM(CASE WHEN present THEN good ELSE 0 END), "
        "SUM(CASE WHEN present THEN valid ELSE 0 END), SUM(CASE WHEN present THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN present THEN 0 ELSE 1 END) FROM slo_sliminute "
        f"WHERE slo_id IN ({','.join(map(str, ids))}) AND minute >= {first} AND minute < {stop} "
        "GROUP BY slo_id, minute"
    )


def _plan(sql: str) -> tuple[list[str], float]:
    """The plan's node lines (without the long conditions) and its execution time in ms."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql)
        lines = [row[0] for row in cursor.fetchall()]
    executed = next(
        float(line.split(":")[1].split()[0]) for line in lines if line.startswith("Execution Time")
    )
    return [line for line in lines if "Cond:" not in line and "Filter:" not in line], executed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slos", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--new-minutes", type=int, default=5)
    parser.add_argument("--variant", choices=["before", "after", "both"], default="both")
    parser.add_argument("--out", help="result file name in benchmarks/results/ (default partitions.json)")
    args = parser.parse_args()
    out = RESULT.with_name(args.out) if args.out else RESULT
    # partitioned first: the plain table's index build needs the most disk, so it runs last
    variants = ["after", "before"] if args.variant == "both" else [args.variant]
    result: dict[str, Any] = {
        "slos": args.slos,
        "days": args.days,
        "rows_per_variant": args.slos * args.days * 1440,
        "cores": os.cpu_count(),
        "note": "2 cores shared with other work: see load_average per step",
    }
    for variant in variants:
        result[variant] = run_variant(variant, args.slos, args.days, args.new_minutes)
        print(json.dumps(result[variant]), flush=True)
    if "before" in result and "after" in result:
        b, a = result["before"], result["after"]
        result["speedup"] = {
            "insert": round(b["insert"]["median_s"] / a["insert"]["median_s"], 2),
            "budget_sync_read_warm": round(
                b["budget_sync_read"]["warm_median_s"] / a["budget_sync_read"]["warm_median_s"], 2
            ),
            "retention": round(b["retention"]["s"] / max(a["retention"]["s"], 1e-3), 1),
        }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result.get("speedup", {})))


if __name__ == "__main__":
    main()
