"""The same burn-rate evaluation by a real Prometheus and by us, at 1,000 SLOs; reported as a ratio.

Data: 1,000 SLOs, each two counters (good and valid events) with one sample per minute for 3 days
(8.6 M samples), generated once and loaded twice:

- into Prometheus as TSDB blocks (`promtool tsdb create-blocks-from openmetrics`, via
  tests/support/prometheus.py), then timed: one instant query per burn-rate window (5m, 30m, 1h,
  2h, 6h, 1d, 3d), each `sum by (slo) (rate(bad[w])) / sum by (slo) (rate(valid[w]))` over all
  1,000 SLOs, at the end of the history. That is what Prometheus does for every SLO on every rule
  evaluation without recording rules;
- into our budget buckets (database `cp_bench_prom`: minutes, and hour/day rollups computed from
  them), then timed: `slo_evaluate_all` for the same 1,000 SLOs at the same instant, which computes
  the same windows plus the 28-day period, data quality, alert tiers and writes statuses.

Both sides are timed cold (first query after load) and warm. The answers are compared (1h burn
rate per SLO): Prometheus' `rate()` extrapolates at window edges, so small differences are expected.

    .venv/bin/python benchmarks/bench_vs_prometheus.py  # writes benchmarks/results/vs_prometheus.json

2 cores shared with other engineers' runs while measured: figures may be pessimistic.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.prometheus import (  # noqa: E402
    PrometheusServer,
    create_blocks,
    history_start_s,
    require_prometheus,
)

N_SLOS = 1000
DAYS = 3
MINUTES = DAYS * 1440
DB_NAME = "cp_bench_prom"
SERVER_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
WINDOWS = {"5m": 5, "30m": 30, "1h": 60, "2h": 120, "6h": 360, "1d": 1440, "3d": 4320}
RESULTS = ROOT / "benchmarks" / "results" / "vs_prometheus.json"


def generate(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Per-minute increments (good, valid) shaped (N_SLOS, MINUTES)."""
    rng = np.random.default_rng(seed)
    valid = rng.poisson(20, size=(N_SLOS, MINUTES)).astype(np.int64)
    bad = rng.binomial(valid, 0.002)
    bad[::50, -90:] = valid[::50, -90:] // 4  # a few SLOs burning in the last 90 minutes
    return valid - bad, valid


def write_openmetrics(path: Path, start_s: int, good: np.ndarray, valid: np.ndarray) -> int:
    """One sample per minute at the minute's end (the `last_over_time` convention), streamed."""
    samples = 0
    stamps = [str(start_s + (i + 1) * 60) for i in range(MINUTES)]
    with path.open("w") as out:
        for name, data in (("bench_good_total", good), ("bench_valid_total", valid)):
            out.write(f"# TYPE {name} unknown\n")
            cumulative = np.cumsum(data, axis=1)
            for k in range(N_SLOS):
                prefix = f'{name}{{slo="{k}"}} '
                out.write(
                    "\n".join(
                        prefix + f"{v} {t}" for v, t in zip(cumulative[k].tolist(), stamps, strict=True)
                    )
                )
                out.write("\n")
                samples += MINUTES
        out.write("# EOF\n")
    return samples


def prometheus_side(start_s: int, good: np.ndarray, valid: np.ndarray) -> dict:
    _, promtool = require_prometheus()
    with tempfile.TemporaryDirectory(prefix="bench-prom-") as tmp:
        work = Path(tmp)
        clock = time.perf_counter()
        samples = write_openmetrics(work / "history.om.txt", start_s, good, valid)
        create_blocks(promtool, work / "history.om.txt", work / "data")
        (work / "history.om.txt").unlink()
        load_s = time.perf_counter() - clock
        server = PrometheusServer(work, work / "data").start()
        try:
            at = start_s + MINUTES * 60
            runs = []
            answers = {}
            for _ in range(2):
                clock = time.perf_counter()
                for name in WINDOWS:
                    query = (
                        f"(sum by (slo) (rate(bench_valid_total[{name}])) - sum by (slo) (rate(bench_good_total[{name}])))"
                        f" / sum by (slo) (rate(bench_valid_total[{name}]))"
                    )
                    response = requests.get(
                        f"{server.url}/api/v1/query", params={"query": query, "time": at}, timeout=120
                    )
                    response.raise_for_status()
                    answers[name] = {
                        int(r["metric"]["slo"]): float(r["value"][1])
                        for r in response.json()["data"]["result"]
                    }
                runs.append(time.perf_counter() - clock)
        finally:
            server.stop()
    return {
        "samples": samples,
        "load_s": round(load_s, 1),
        "cold_s": round(runs[0], 3),
        "warm_s": round(runs[1], 3),
        "answers": answers,
    }


def ours_side(start: datetime, good: np.ndarray, valid: np.ndarray) -> dict:
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
    from django.db import connection

    from slo.budget.evaluation import slo_evaluate_all
    from slo.models import Service, Slo
    from slo.models.budget import SloStatus

    call_command("migrate", verbosity=0)
    service = Service.objects.create(name="bench", service_class="interactive", tiers=["edge"])
    slos = Slo.objects.bulk_create(
        [
            Slo(
                service=service,
                name=f"slo-{k}",
                sli_kind="availability",
                objective=99.0,
                spec={
                    "name": f"slo-{k}",
                    "service": "bench",
                    "sli": {"kind": "availability"},
                    "objective": 99.0,
                    "window": {"type": "rolling", "days": 28},
                },
            )
            for k in range(N_SLOS)
        ]
    )
    ids = [s.pk for s in slos]
    clock = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            "COPY slo_budgetminute (slo_id, minute, good, valid, events) FROM STDIN"
        ) as copy:
            stamps = [start + timedelta(minutes=i) for i in range(MINUTES)]
            for k, slo_id in enumerate(ids):
                g, v = good[k].tolist(), valid[k].tolist()
                for i in range(MINUTES):
                    copy.write_row((slo_id, stamps[i], g[i], v[i], v[i]))
        cursor.execute("""
            INSERT INTO slo_budgethour (slo_id, hour, good, valid, events, present_minutes)
            SELECT slo_id, date_trunc('hour', minute), SUM(good), SUM(valid), SUM(events), COUNT(*)
            FROM slo_budgetminute GROUP BY 1, 2""")
        cursor.execute("""
            INSERT INTO slo_budgetday (slo_id, day, good, valid, events, present_minutes)
            SELECT slo_id, date_trunc('day', hour), SUM(good), SUM(valid), SUM(events), SUM(present_minutes)
            FROM slo_budgethour GROUP BY 1, 2""")
        for table in ("slo_budgetminute", "slo_budgethour", "slo_budgetday"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    load_s = time.perf_counter() - clock
    at = start + timedelta(minutes=MINUTES)
    runs = []
    for offset in (0, 1):
        # The second cycle is one minute later (a new instant, as in production); its data ends at
        # the same place, so the 5m window has one minute missing: fine for timing.
        clock = time.perf_counter()
        report = slo_evaluate_all(now=at + timedelta(minutes=offset))
        runs.append(time.perf_counter() - clock)
        if offset == 0:
            first = {s.slo_id: s.burn_rates for s in SloStatus.objects.all()}
    answers = {
        name: {
            k: first[slo_id][name] * 0.01 for k, slo_id in enumerate(ids) if first[slo_id][name] is not None
        }
        for name in WINDOWS
    }
    return {
        "load_s": round(load_s, 1),
        "cold_s": round(runs[0], 3),
        "warm_s": round(runs[1], 3),
        "evaluated": report.evaluated,
        "answers": answers,
    }


def main() -> None:
    start_s = history_start_s(days_ago=DAYS + 1)
    start = datetime.fromtimestamp(start_s, tz=UTC)
    good, valid = generate()
    prom = prometheus_side(start_s, good, valid)
    print(
        f"prometheus: {prom['samples']:,} samples loaded in {prom['load_s']} s; 7 window queries x 1,000 SLOs: "
        f"cold {prom['cold_s']} s, warm {prom['warm_s']} s"
    )
    ours = ours_side(start, good, valid)
    print(
        f"ours: loaded in {ours['load_s']} s; full evaluation of {ours['evaluated']} SLOs: "
        f"cold {ours['cold_s']} s, warm {ours['warm_s']} s"
    )
    # Exact error ratios from the generated data, to see how far each side is from the truth.
    diffs = {}
    for name, minutes in WINDOWS.items():
        bad = (valid[:, -minutes:] - good[:, -minutes:]).sum(axis=1)
        exact = bad / valid[:, -minutes:].sum(axis=1)
        ours_err = max(abs(ours["answers"][name][k] - exact[k]) for k in range(N_SLOS))
        prom_err = max(abs(prom["answers"][name].get(k, float("nan")) - exact[k]) for k in range(N_SLOS))
        diffs[name] = {"ours_max_abs_error": ours_err, "prometheus_max_abs_error": prom_err}
    result = {
        "benchmark": "vs_prometheus",
        "slos": N_SLOS,
        "history_days": DAYS,
        "prometheus": {k: v for k, v in prom.items() if k != "answers"},
        "ours": {k: v for k, v in ours.items() if k != "answers"},
        "ratio_prometheus_over_ours_cold": round(prom["cold_s"] / ours["cold_s"], 2),
        "ratio_prometheus_over_ours_warm": round(prom["warm_s"] / ours["warm_s"], 2),
        "error_ratio_accuracy": diffs,
        "prometheus_version": subprocess.run(
            ["prometheus", "--version"], capture_output=True, text=True
        ).stdout.split("\n")[0],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "note": "2 cores shared with other engineers' runs: figures may be pessimistic. Ours includes the 28-day "
        "period, alert tiers and status writes; Prometheus answers only the 7 burn-rate windows.",
    }
    for name, d in diffs.items():
        print(
            f"  {name}: max |error ratio - exact|: ours {d['ours_max_abs_error']:.2e}, "
            f"prometheus {d['prometheus_max_abs_error']:.2e}"
        )
    print(
        f"ratio prometheus/ours: cold {result['ratio_prometheus_over_ours_cold']}, "
        f"warm {result['ratio_prometheus_over_ours_warm']}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
