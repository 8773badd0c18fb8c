"""The per-minute budget sync in the steady state: one new pushed minute per SLO.

Creates its own database `cp_bench_sync` (dropped and re-created), `--slos` SLOs, 16 minutes of
SLI minutes per SLO from one push feed, the first 15 already in the budget buckets; then one new
minute per SLO is stored through the ingest's storage step (`sli_rows_write`, which records the spans
it writes) and the scheduled sync runs: `budget_sync_pending` where it exists,
else the former fixed 15-minute re-read (`budget_sync(minutes=15)`), so one script measures both.

    .venv/bin/python benchmarks/bench_budget_sync.py [--slos 2000] [--root DIR]
    # prints one JSON line; --root runs the code of another checkout (e.g. the previous commit)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

DB_NAME = os.environ.get("BENCH_SYNC_DB", "cp_bench_sync")
SERVER_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
NOW = datetime(2026, 3, 11, 12, 34, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slos", type=int, default=2000)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    args = parser.parse_args()
    sys.path.insert(0, args.root)
    os.chdir(args.root)

    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    os.environ["DATABASE_URL"] = f"{SERVER_URL}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from slo.budget import feed
    from slo.models import Service, Slo
    from slo.telemetry.derive import SliRow
    from slo.telemetry.storage import sli_rows_write

    call_command("migrate", verbosity=0)
    service = Service.objects.create(name="svc", service_class="interactive", tiers=["edge"])
    spec = {
        "service": "svc",
        "sli": {"kind": "availability"},
        "objective": 99.0,
        "window": {"type": "rolling", "days": 28},
    }
    ids = [
        s.pk
        for s in Slo.objects.bulk_create(
            [
                Slo(
                    service=service,
                    name=f"slo-{k}",
                    sli_kind="availability",
                    objective=99.0,
                    spec={**spec, "name": f"slo-{k}"},
                )
                for k in range(args.slos)
            ],
            batch_size=2000,
        )
    ]
    end = int(NOW.timestamp() // 60)  # the new minute is end - 1
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO slo_slifeed (slo_id, source, mode, first_minute, last_minute) "
            "SELECT id, 'push:bench', 'push', %s, %s FROM slo_slo",
            [end - 16, end - 2],
        )
        cursor.execute(
            "INSERT INTO slo_sliminute (slo_id, minute, source, good, valid, present) "
            "SELECT s.id, m, 'push:bench', 95 + (s.id + m) %% 5, 100, true "
            "FROM slo_slo s, generate_series(%s, %s) m",
            [end - 16, end - 2],
        )
    feed.budget_sync(now=NOW - timedelta(minutes=1), minutes=15)  # the buckets hold the older minutes
    with connection.cursor() as cursor:
        if hasattr(feed, "budget_sync_pending"):
            cursor.execute("DELETE FROM slo_slispan")  # the migration marked every SLO's last day
        cursor.execute("VACUUM ANALYZE slo_sliminute")
        cursor.execute("VACUUM ANALYZE slo_budgetminute")

    # The new minute goes through the ingest's storage step (`sli_rows_write`: SLI minutes, feeds, pending
    # hours and, where they exist, spans); the hourly rollup it enqueues is not part of this.
    clock = time.perf_counter()
    with transaction.atomic():
        sli_rows_write("push:bench", "push", [SliRow(i, end - 1, 97, 100, True) for i in ids], NOW)
    ingest_s = time.perf_counter() - clock
    pending = getattr(feed, "budget_sync_pending", None)

    def sync() -> int:
        if pending is not None:
            return pending(now=NOW).minutes_written
        return feed.budget_sync(now=NOW, minutes=15)

    clock = time.perf_counter()
    written = sync()
    sync_s = time.perf_counter() - clock
    clock = time.perf_counter()
    again = sync()
    rerun_s = time.perf_counter() - clock
    print(
        json.dumps(
            {
                "slos": args.slos,
                "sync": "spans" if pending is not None else "fixed 15-minute window",
                "store_new_minute_s": round(ingest_s, 3),
                "sync_s": round(sync_s, 3),
                "minutes_written": written,
                "rerun_s": round(rerun_s, 3),
                "rerun_minutes_written": again,
                "load_average_1m": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
