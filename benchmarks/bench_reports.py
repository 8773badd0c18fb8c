"""Generating a monthly team report: 10 services x 10 SLOs with 2 months of hourly and daily
budget rollups, a day of per-minute contract series per service, hourly cost rollups and alert
transitions. Measures `report_generate` (read + compute + store) and rendering (page, CSV).

Uses its own database `cp_bench_reports` (dropped and re-created, then migrated).

    .venv/bin/python benchmarks/bench_reports.py [--services 10] [--slos 10]
    # writes benchmarks/results/reports.json

The machine has 2 cores shared with other engineers' test runs: figures may be pessimistic.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DB_NAME = "cp_bench_reports"
SERVER_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
MONTH_START = datetime(2026, 10, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 3, 8, tzinfo=UTC)
RESULTS = ROOT / "benchmarks" / "results" / "reports.json"


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--slos", type=int, default=10, help="per service")
    args = parser.parse_args()
    recreate_database()
    env = {**os.environ, "DATABASE_URL": f"{SERVER_URL}/{DB_NAME}", "CELERY_BROKER_URL": "memory://"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    import django

    django.setup()
    import numpy as np
    from django.db import connection

    from slo.models import SloVersion
    from slo.models.budget import AlertEvent, CostRollup
    from slo.models.telemetry import SeriesMinute
    from slo.reports.render import report_csv, report_page_context
    from slo.reports.services import report_generate
    from slo.services import service_create, slo_create

    rng = np.random.default_rng(1)
    clock = time.perf_counter()
    slo_ids = []
    for s in range(args.services):
        service = service_create(
            actor="bench",
            data={
                "name": f"svc-{s}",
                "service_class": "interactive",
                "owner": "bench-team",
                "tiers": ["edge", "public_cloud"],
            },
        )
        for k in range(args.slos):
            kind = {"kind": "availability"} if k % 2 else {"kind": "latency", "threshold_ms": 150}
            slo = slo_create(
                actor="bench",
                data={
                    "name": f"slo-{k}",
                    "service": service.name,
                    "sli": kind,
                    "objective": 99.5,
                    "tier": "edge",
                    "window": {"type": "rolling", "days": 28},
                },
            )
            slo_ids.append(slo.pk)
        AlertEvent.objects.bulk_create(
            [
                AlertEvent(
                    state_key=f"slo:{slo_ids[-1]}:page",
                    service=service,
                    slo_id=slo_ids[-1],
                    kind="burn_rate",
                    severity="page",
                    state=state,
                    at=MONTH_START + timedelta(days=d, hours=h),
                )
                for d in range(0, 30, 3)
                for state, h in (("firing", 1), ("resolved", 3))
            ]
        )
        CostRollup.objects.bulk_create(
            [
                CostRollup(
                    service=service,
                    route=route,
                    resolution="hour",
                    bucket_start=MONTH_START + timedelta(hours=h),
                    cost_model_version=1,
                    requests=1000.0,
                    cost_usd=1.0,
                    figures={
                        "cost_per_cache_hit_usd": 0.0001,
                        "saved_per_hit_usd": 0.001,
                        "net_saving_usd": 0.1,
                    },
                )
                for h in range(31 * 24)
                for route in ("all", "local", "cache", "public_cloud")
            ]
        )
        first = int((MONTH_END - timedelta(days=1)).timestamp() // 60)
        SeriesMinute.objects.bulk_create(
            [
                SeriesMinute(
                    minute=first + m,
                    source=f"gateway:{g}",
                    name="inference_requests_total",
                    service=service.name,
                    tier="edge",
                    labels=f"outcome={outcome},route=local",
                    value=float(rng.poisson(50)),
                )
                for m in range(1440)
                for g in range(3)
                for outcome in ("ok", "error")
            ],
            batch_size=5000,
        )
    SloVersion.objects.update(created_at=MONTH_START - timedelta(days=90))
    # Hourly and daily budget rollups for two months, loaded in SQL.
    hours_start = MONTH_START - timedelta(days=31)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO slo_budgethour (slo_id, hour, good, valid, events, present_minutes)
            SELECT s, h, 7190 - (random() * 40)::int, 7200, 7200, 60
            FROM unnest(%s::bigint[]) AS s, generate_series(%s::timestamptz, %s::timestamptz - interval '1 hour',
                                                              interval '1 hour') AS h
            """,
            [slo_ids, hours_start, MONTH_END],
        )
        cursor.execute(
            """
            INSERT INTO slo_budgetday (slo_id, day, good, valid, events, present_minutes)
            SELECT slo_id, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', SUM(good), SUM(valid),
                   SUM(events), SUM(present_minutes)
            FROM slo_budgethour GROUP BY 1, 2
            """
        )
    load_s = time.perf_counter() - clock

    timings = []
    for _ in range(3):
        clock = time.perf_counter()
        report = report_generate(
            actor="bench",
            now=NOW,
            trigger="command",
            data={"team": "bench-team", "period": "month", "time_zone": "UTC"},
        )
        timings.append(time.perf_counter() - clock)
    clock = time.perf_counter()
    report_page_context(report)
    render_s = time.perf_counter() - clock
    clock = time.perf_counter()
    csv_text = report_csv(report)
    csv_s = time.perf_counter() - clock
    result = {
        "benchmark": "reports",
        "services": args.services,
        "slos": args.services * args.slos,
        "load_s": round(load_s, 2),
        "generate_s": [round(t, 3) for t in timings],
        "generate_best_s": round(min(timings), 3),
        "page_context_s": round(render_s, 3),
        "csv_s": round(csv_s, 3),
        "csv_rows": csv_text.count("\n"),
        "numbers_json_bytes": len(json.dumps(report.numbers)),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "note": "2 cores shared with other engineers' test runs: figures may be pessimistic",
        },
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
