"""Run every benchmark script, collect their JSON, write `results/all.json` and `docs/benchmarks.md`.

    .venv/bin/python benchmarks/run_all.py                # everything (several minutes)
    .venv/bin/python benchmarks/run_all.py --only decide validate
    .venv/bin/python benchmarks/run_all.py --collect-only # rebuild the table from existing results

Each `benchmarks/bench_*.py` runs as a subprocess with a timeout; its figures come from the JSON it
writes to `benchmarks/results/<name>.json` (a script that fails or times out is reported as such,
with its stale result ignored). Scripts that need a migrated database get DATABASE_URL (default: a
`cp_bench_all` database on the local PostgreSQL, created and migrated here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
DOC = REPO_ROOT / "docs" / "benchmarks.md"
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432"


def _get(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


@dataclass(frozen=True)
class Figure:
    """How to read one headline figure from a result file."""

    label: str
    path: str
    unit: str
    target_path: str | None = None  # where the script stored its target
    target: float | None = None  # or a fixed target, when the script has none
    higher_is_better: bool = False

    def read(self, data: dict[str, Any]) -> dict[str, Any]:
        # "a|b": the first path present (scripts being reworked move their keys)
        value = next((v for v in (_get(data, p) for p in self.path.split("|")) if v is not None), None)
        target = _get(data, self.target_path) if self.target_path else self.target
        passed: bool | None = None
        if isinstance(value, int | float) and isinstance(target, int | float):
            passed = value >= target if self.higher_is_better else value <= target
        return {
            "label": self.label,
            "value": value,
            "unit": self.unit,
            "target": target,
            "direction": ">=" if self.higher_is_better else "<=",
            "passed": passed,
        }


def _overview_root(data: dict[str, Any]) -> Any:
    return next((r.get("p95_ms") for r in data.get("results", []) if r.get("path") == "/"), None)


@dataclass(frozen=True)
class Bench:
    name: str  # results/<name>.json and bench_<script>.py
    script: str
    timeout_s: int
    figures: tuple[Figure, ...]
    needs_db: bool = False
    args: tuple[str, ...] = ()
    derived: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    what: str = ""  # what is timed, what is not, beside what reference (docs/benchmarks.md)
    result: str = ""  # results/<result>.json when the script writes another name than `name`

    @property
    def result_path(self) -> Path:
        return RESULTS / f"{self.result or self.name}.json"


CYCLE_WHAT = (
    "Timed, every minute as production runs it: `budget_sync_pending` of one new SLI minute per SLO "
    "(plus a late minute 90 minutes old for 1% of them) and then the evaluation of every SLO (window "
    "state reads, engine, status and history writes, alert transitions) by 1 and by 2 worker "
    "processes claiming chunks; wall time, the CPU seconds of the client processes and of their "
    "PostgreSQL backends, and the 1-minute load average before and after each cycle. Not timed: the "
    "ingest storing the SLI minutes (`sli_rows_write`; see ingest), loading, and the cold first cycle "
    "after loading (it rebuilds every window state; reported separately). Data: 80% rolling 28 d, 10% "
    "rolling 30 d, 10% calendar month; minute buckets for the last 7 hours, hourly rollups for the "
    "last 32 days, daily rollups for 33 days (at 100,000 SLOs loading takes about 50 minutes). Reference: the same script run on the code before the "
    "window state (commit 8dd1c2c; `benchmarks/results/cycle_before.json`). The machine's 2 cores are shared with "
    "other developers' work, so read each figure with "
    "the load average recorded beside it. Rerun: `benchmarks/run_all.py --only cycle`."
)

INGEST_HTTP_WHAT = (
    "Times: 60 s of real push batches (JSON, 10 minutes x 100 series, 4 SLOs fed) POSTed by ONE "
    "client process over 4 keep-alive connections to gunicorn started as in production "
    "(`controlplane.wsgi`, 4 sync workers, DEBUG off) with gateway-token authentication; every sample"
    " sent is checked to be stored. Reference, same run: raw COPY of the very rows stored "
    "(`SeriesMinute` + derived `SliMinute`) back into the same (truncated) tables, one transaction "
    "per batch. Not timed: building the bodies, setup. When the target is missed, a pyinstrument "
    "profile of the gunicorn workers is stored in the result (`profile`), with the workers' CPU "
    "seconds. Client, gunicorn and PostgreSQL share the machine's 2 cores with other developers' "
    "work: the 1/5/15-minute load average at start and end is in the result. Rerun: "
    "`.venv/bin/python benchmarks/run_all.py --only ingest_http`."
)
ROLLBACK_WHAT = (
    "Times, on the real clock, the automatic rollback of a bad release: from the first minute in which "
    "the page condition holds to the last wave gateway's ACK of its rollback revision. The control "
    "plane runs as in production: gunicorn, one `celery worker` and one `celery beat` with the "
    "project's beat schedule, Redis, its own PostgreSQL database. Per run a fresh service (latency "
    "and availability SLOs, 99%, 28 d) and 3 real reference gateways (their own telemetry pushes, "
    "config polls and signed config pushes at the production defaults); after 2 minutes of good "
    "traffic a release of a bad routing policy (everything to a slow public cloud route) goes out in "
    "waves (66% with a 10-minute bake, then 100%); canary analysis is set not to decide, so the "
    "page-level burn rollback is what is timed. The page condition is computed independently from "
    "the stored telemetry minutes (every page tier's long and short window over the gateways' "
    "`SliMinute` rows); the headline counts from the first second of that minute (from its end is "
    "in the result too). ACKs are seen by the gateways' /status (polled every 0.2 s) and by the "
    "control plane (`Delivery.finished_at`), whichever is later. Reference: the same script on the "
    "code before the fix (`before` in the result: beat's 60 s evaluation at an arbitrary phase, "
    "gateway pushes every 60 s from their start, the release tick every 30 s). Not timed: setup, "
    "warm-up. Everything shares the machine's 2 cores; load averages are in the result. Rerun: "
    "`.venv/bin/python benchmarks/run_all.py --only rollback` (about 3 minutes a run after setup)."
)
VS_PROMETHEUS_WHAT = (
    "Side by side on the same SLOs and the same per-minute data (bench_cycle's catalog and traffic; 28 d "
    "history, 30 d for the 20% with 30-day/calendar windows). Prometheus 2.42 (the Debian binary) is "
    "loaded with 31 days of the raw counters (`inference_requests_total`, 2 series per SLO, one sample a "
    "minute) AND the recording rules' two 5m helper series, as TSDB blocks (`promtool tsdb "
    "create-blocks-from openmetrics`), and runs the rule file our exporter writes (`slo.rules`: per SLO "
    "the 7 burn-window ratios over raw counters, the helpers, the 28/30 d period ratio over the helpers, "
    "meta recordings and alerting rules) at a 1-minute evaluation interval, with the live minutes "
    "scraped from a small exporter. Timed on Prometheus, after 2 warm-up evaluations, over 5 one-minute "
    "cycles at 1,000 SLOs (3 at 100 and 300): `process_cpu_seconds_total` from its own /metrics (it includes the scrape and one "
    "/api/v1/rules read a minute) and the sum of rule-group `evaluationTime` (/api/v1/rules); missed "
    "iterations and rule failures are recorded. At 100, 300 and 1,000 SLOs; the growth exponent is a "
    "least-squares fit in log-log and Prometheus at 10,000 SLOs is that fit's extrapolation, not a "
    "measurement. Timed on our side (1,000 SLOs): `bench_cycle.py` on its own database at the same "
    "instants: CPU seconds of `budget_sync_pending` + evaluation of every SLO a cycle, clients and their "
    "PostgreSQL backends, median (at 10,000: the cycle row's figure). Not timed: data generation, block "
    "creation, database loading. The answers are compared too: for 8 SLOs, the error ratio of each "
    "window from Prometheus' rule expressions at our last cycle's instant vs ours vs the exact ratio "
    "(`answers` in the result). Both sides share the machine's 2 cores with other developers' work; "
    "load averages are in the result. Rerun: `.venv/bin/python benchmarks/run_all.py --only "
    "vs_prometheus` (needs scripts/install-prometheus.sh; ~45 min, ~20 GB temporary disk under "
    "/tmp/bench_prom)."
)
PUSH_COST_WHAT = (
    "Times: CPU seconds of the web process (`time.process_time`) and of its PostgreSQL backend "
    "(/proc) per gateway telemetry push, through Django's whole stack in-process (middleware, URL "
    "resolution, DRF, gateway-token authentication, the ingest throttle on Redis, JSON, validation, "
    "scope, SLI derivation of 4 SLOs, storage), requests one after another, new minutes each: 500 "
    "pushes of 1 minute x 100 series (the reference gateway's push) and 166 batches of 10 minutes x "
    "100 series; then the 500 1-minute pushes again through the app the web server serves (`controlplane.wsgi`, "
    "where the push's WSGI fast path answers them). Reference, same run: the same 1-minute pushes through the "
    "ingest service alone (no "
    "HTTP, DRF, auth or throttle). Not timed: gunicorn's HTTP parsing and the socket (Django's test "
    "client), building the bodies. Shared cores: the load average is in the result. Rerun: "
    "`.venv/bin/python benchmarks/run_all.py --only push_cost`."
)
GATEWAY_MEMORY_WHAT = (
    "Times nothing: samples /proc/<pid>/status (VmRSS, VmHWM) of one reference gateway while a "
    "separate load-generator process drives its HTTP endpoints for 60 s (signed config pushes with a "
    "new revision each, /status, /metrics, /healthz over 8 keep-alive connections) on top of its "
    "simulated 200 requests/s. The gateway has no inference request endpoint (its traffic is "
    "simulated in-process). Reference: the RSS at start, before the load. Rerun: `.venv/bin/python "
    "benchmarks/run_all.py --only gateway_memory`."
)

FLEET_WHAT = (
    "Times: 10,000 simulated gateways, open loop, against the web server started as in production "
    "(`controlplane.webserver`: granian serving `controlplane.wsgi`, DEBUG off, 2 workers x 4 threads as "
    "in docker-compose.yml and the Kubernetes manifests, throttles and the config-poll cache in Redis): each polls its config every 10 s with its ETag (answered 304) and/or pushes its "
    "last minute (100 series) every 60 s, at a random phase, with its own token; latency counts from "
    "the instant a request was due, so queueing counts. 15 s warm-up, 60 s measured. CPU seconds per "
    "answered request of the web workers, their PostgreSQL backends, the Redis server (shared with "
    "other work, so over-counted) and the load generator (one asyncio process on the same 2 cores), "
    "and the cores the control plane needs at the offered rate (offered rate x CPU per request). "
    "Reference: the gateways' own intervals (p99 must stay within them) and the 2 cores. Not timed: "
    "setup. Other developers' work shares the cores: the load average and the machine's other busy "
    "cores are in the result. Rerun: `benchmarks/run_all.py --only fleet` (`fleet_poll`, `fleet_push`)."
)

BENCHES: tuple[Bench, ...] = (
    Bench(
        "engine_core",
        "bench_engine_core.py",
        600,
        (
            Figure(
                "budget engine core, 10,000 SLOs (windows + evaluate)",
                "seconds.end_to_end_from_served_data",
                "s",
                target=10.0,
            ),
            Figure("engine core peak RSS", "peak_rss_mib", "MiB", target=1024),
        ),
    ),
    Bench(
        "evaluation",
        "bench_evaluation.py",
        1500,
        (
            Figure(
                "evaluation of 10,000 SLOs, worst cycle (DB read + engine + writes)",
                "worst_cycle_s",
                "s",
                target_path="target_s",
            ),
            Figure("evaluation peak RSS", "peak_rss_mib", "MiB", target_path="target_peak_rss_mib"),
        ),
    ),
    Bench(
        "cycle",
        "bench_cycle.py",
        3000,
        (
            Figure(
                "sync + evaluation, 10,000 SLOs x 28 d, median cycle (best of 1/2 workers)",
                "best_median_cycle_s",
                "s",
                target_path="target_s",
            ),
            Figure(
                "CPU seconds per cycle (clients + PostgreSQL backends), median", "median_cpu_s_per_cycle", "s"
            ),
            Figure("evaluation speed-up, 1 -> 2 workers", "evaluation_speedup_1_to_2_workers", "x"),
            Figure("load average (1 min) during the cycles", "load_average_at_end.0", ""),
        ),
        what=CYCLE_WHAT,
    ),
    Bench(
        "cycle_100000",
        "bench_cycle.py",
        7200,
        (
            Figure(
                "sync + evaluation, 100,000 SLOs x 28 d, median cycle (best of 1/2 workers)",
                "best_median_cycle_s",
                "s",
                target_path="target_s",
            ),
            Figure(
                "CPU seconds per cycle (clients + PostgreSQL backends), median", "median_cpu_s_per_cycle", "s"
            ),
            Figure("evaluation speed-up, 1 -> 2 workers", "evaluation_speedup_1_to_2_workers", "x"),
            Figure("load average (1 min) during the cycles", "load_average_at_end.0", ""),
        ),
        args=("--slos", "100000", "--cycles", "2"),
        what=CYCLE_WHAT.replace("--only cycle", "--only cycle_100000"),
    ),
    Bench(
        "celery_workers",
        "bench_celery_workers.py",
        1200,
        (
            Figure("evaluation of 10,000 SLOs, 1 real Celery worker, median", "median_evaluation_s.1", "s"),
            Figure("evaluation of 10,000 SLOs, 2 real Celery workers, median", "median_evaluation_s.2", "s"),
            Figure("evaluation speed-up, 1 -> 2 real Celery workers", "speedup_1_to_2_workers", "x"),
            Figure("load average (1 min) at the end", "load_average_at_end.0", ""),
        ),
        what=(
            "Times, on a real Redis broker: from enqueueing `slo.budget.evaluate_all` (what beat does every "
            "minute) to the `done_at` of the instant's last evaluation chunk, with 1 and then 2 real "
            "`celery worker --concurrency 1` processes claiming chunks (`FOR UPDATE SKIP LOCKED`); each "
            "cycle checks that every SLO was evaluated exactly once and that both workers used CPU. Data: "
            "the 10,000-SLO database bench_cycle loads (run `--only cycle` first). Not timed: the sync of "
            "the new minute, done before the enqueue (timed by cycle; the task's own sync then finds nothing "
            "pending and is timed), worker start-up, one warm-up cycle per worker count. "
            "Reference: the same evaluation by 1 worker. Rerun: `benchmarks/run_all.py --only celery_workers`."
        ),
    ),
    Bench(
        "ingest",
        "bench_ingest.py",
        900,
        (
            Figure(
                "telemetry ingest, 2 processes, median",
                "service.2_processes.median_samples_per_s|service.synchronous_commit.2_processes.median_samples_per_s",
                "samples/s",
                target_path="target_samples_per_s",
                higher_is_better=True,
            ),
            Figure(
                "telemetry ingest, 1 process, median",
                "service.one_process.median_samples_per_s|service.synchronous_commit.one_process.median_samples_per_s",
                "samples/s",
                target_path="target_samples_per_s",
                higher_is_better=True,
            ),
        ),
    ),
    Bench(
        "ingest_http",
        "bench_ingest_http.py",
        900,
        (
            Figure(
                "push ingest over HTTP (gunicorn 4 workers, gateway tokens, JSON), 1 client process, 60 s",
                "http.samples_per_s",
                "samples/s",
                target_path="target_samples_per_s",
                higher_is_better=True,
            ),
            Figure(
                "raw COPY of the same rows into the same tables, same run",
                "copy_reference.samples_per_s",
                "samples/s",
            ),
            Figure(
                "HTTP ingest / raw COPY",
                "http_over_copy",
                "x",
                target_path="target_ratio_of_copy",
                higher_is_better=True,
            ),
        ),
        what=INGEST_HTTP_WHAT,
    ),
    Bench(
        "push_cost",
        "bench_push_cost.py",
        600,
        (
            Figure(
                "telemetry push, 1 min x 100 series: web CPU per request",
                "push_1min.web_ms_per_request",
                "ms",
            ),
            Figure(
                "telemetry push, 1 min x 100 series: PostgreSQL CPU per request",
                "push_1min.postgres_ms_per_request",
                "ms",
            ),
            Figure(
                "telemetry push through the WSGI app (push fast path): web CPU per request",
                "wsgi_app_1min.web_ms_per_request",
                "ms",
            ),
            Figure(
                "telemetry push through the WSGI app (push fast path): PostgreSQL CPU per request",
                "wsgi_app_1min.postgres_ms_per_request",
                "ms",
            ),
            Figure(
                "ingest service alone, same pushes (reference): CPU per request",
                "reference_service_alone_1min.web_ms_per_request",
                "ms",
            ),
            Figure("batch, 10 min x 100 series: web CPU per request", "batch_10min.web_ms_per_request", "ms"),
            Figure(
                "batch, 10 min x 100 series: PostgreSQL CPU per request",
                "batch_10min.postgres_ms_per_request",
                "ms",
            ),
        ),
        what=PUSH_COST_WHAT,
    ),
    Bench(
        "capacity",
        "bench_capacity.py",
        900,
        (
            Figure(
                "capacity evaluation, 1,000 services x 10 pools (600k health samples)",
                "evaluation_s",
                "s",
                target_path="target_evaluation_s",
            ),
        ),
        needs_db=True,
    ),
    Bench(
        "decisions",
        "bench_decisions.py",
        300,
        (
            Figure(
                "decision-record ingest (validate + COPY), batches of 5,000",
                "records_per_s",
                "records/s",
                target_path="target_records_per_s",
                higher_is_better=True,
            ),
            Figure(
                "decision-record ingest over HTTP, gunicorn",
                "http.records_per_s",
                "records/s",
                target_path="target_records_per_s",
                higher_is_better=True,
            ),
        ),
        needs_db=True,
    ),
    Bench(
        "decide",
        "bench_decide.py",
        300,
        (
            Figure(
                "routing `decide` (20 rules)",
                "decisions_per_s",
                "decisions/s",
                target_path="target_decisions_per_s",
                higher_is_better=True,
            ),
        ),
    ),
    Bench(
        "validate",
        "bench_validate.py",
        300,
        (Figure("policy validation, median", "median_ms", "ms", target_path="target_ms"),),
    ),
    Bench(
        "documents",
        "bench_documents.py",
        300,
        (Figure("simulate 5,000 requests", "results.simulate_5000_ms", "ms"),),
    ),
    Bench(
        "delivery",
        "bench_delivery.py",
        600,
        (
            Figure(
                "delivery fan-out to 1,000 gateways (5% fail once)", "total_s", "s", target_path="target_s"
            ),
        ),
        needs_db=True,
    ),
    Bench(
        "config_poll",
        "bench_config_poll.py",
        600,
        (
            Figure(
                "gateway config poll (304), gunicorn",
                "requests_per_s",
                "req/s",
                target_path="target_requests_per_s",
                higher_is_better=True,
            ),
            Figure("config poll p99", "p99_ms", "ms"),
        ),
        needs_db=True,
    ),
    Bench(
        "overview",
        "bench_overview.py",
        900,
        (Figure("overview page, 1,000 SLOs, p95", "overview_root_p95_ms", "ms", target_path="target_ms"),),
        derived=lambda d: {"overview_root_p95_ms": _overview_root(d)},
    ),
    Bench(
        "prom_pull",
        "bench_prom_pull.py",
        600,
        (Figure("Prometheus pull (~1M raw samples), cold", "pull_cold_s", "s", target_path="target_s"),),
    ),
    Bench(
        "vs_prometheus",
        "bench_vs_prometheus.py",
        4800,
        (
            Figure(
                "CPU per minute, ours / real Prometheus 2.42 evaluating our exported rules, 1,000 SLOs x 28 d",
                "ratio_ours_over_prometheus_cpu",
                "x",
                target_path="target_ratio",
            ),
            Figure("Prometheus CPU-seconds a minute, 1,000 SLOs", "prometheus.1000.cpu_s_per_minute", "s"),
            Figure(
                "Prometheus rule-group evaluationTime a cycle (sum), 1,000 SLOs, median",
                "prometheus.1000.median_evaluation_time_s_per_cycle",
                "s",
            ),
            Figure(
                "ours: CPU-seconds a cycle (sync + evaluation), 1,000 SLOs, median",
                "ours.median_cpu_s_per_cycle",
                "s",
            ),
            Figure(
                "Prometheus growth exponent b (CPU ~ N^b, fit over 100/300/1,000)", "prometheus_fit.b", ""
            ),
            Figure(
                "CPU per minute at 10,000 SLOs BY FIT (ours from cycle.json / Prometheus extrapolated)",
                "ratio_at_10000_by_fit",
                "x",
                target_path="target_ratio",
            ),
            Figure("load average (1 min) at the end", "load_average_at_end.0", ""),
        ),
        args=("--slos", "100", "300", "1000"),
        what=VS_PROMETHEUS_WHAT,
    ),
    Bench(
        "gateway_memory",
        "bench_gateway_memory.py",
        300,
        (
            Figure(
                "reference gateway peak RSS (VmHWM) under 60 s of external HTTP load",
                "peak_rss_mb",
                "MB",
                target_path="target_mb",
            ),
            Figure("reference gateway RSS at start (before the load)", "rss_mb_at_start", "MB"),
        ),
        what=GATEWAY_MEMORY_WHAT,
    ),
    Bench(
        "rollback",
        "bench_rollback.py",
        2400,
        (
            Figure(
                "rollback: first page-condition minute to last wave gateway ACK, median (real clock)",
                "median_intervals_from_first_page_minute_start",
                "intervals",
                target_path="target_intervals",
            ),
            Figure(
                "rollback: the same, worst run",
                "worst_intervals_from_first_page_minute_start",
                "intervals",
                target_path="target_intervals",
            ),
            Figure(
                "rollback: the same in seconds, median",
                "median_seconds_from_first_page_minute_start",
                "s",
            ),
            Figure(
                "rollback: reference, the code before the fix (same script; `before` in the result)",
                "before.median_intervals_from_first_page_minute_start",
                "intervals",
            ),
        ),
        what=ROLLBACK_WHAT,
        result="rollback_latency",
    ),
    Bench(
        "partitions",
        "bench_partitions.py",
        7200,
        (
            Figure("SLI minute retention of one day, plain table (DELETE)", "before.retention.s", "s"),
            Figure("  + VACUUM to reuse the space", "before.retention.vacuum_after_s", "s"),
            Figure("SLI minute retention of one day, partitioned (DROP)", "after.retention.s", "s"),
            Figure("budget sync minute read, plain table", "before.budget_sync_read.warm_median_s", "s"),
            Figure("budget sync minute read, partitioned", "after.budget_sync_read.warm_median_s", "s"),
            Figure("new minute for every SLO, plain table", "before.insert.median_s", "s"),
            Figure("new minute for every SLO, partitioned", "after.insert.median_s", "s"),
        ),
        args=("--slos", "10000", "--days", "2"),
    ),
    Bench(
        "partitions_30d",
        "bench_partitions.py",
        7200,
        (
            Figure(
                "30 d x 1,000 SLOs: SLI minute retention of one day, plain (DELETE)",
                "before.retention.s",
                "s",
            ),
            Figure("  + VACUUM to reuse the space", "before.retention.vacuum_after_s", "s"),
            Figure("30 d x 1,000 SLOs: retention of one day, partitioned (DROP)", "after.retention.s", "s"),
            Figure(
                "30 d x 1,000 SLOs: budget sync minute read, plain",
                "before.budget_sync_read.warm_median_s",
                "s",
            ),
            Figure(
                "30 d x 1,000 SLOs: budget sync minute read, partitioned",
                "after.budget_sync_read.warm_median_s",
                "s",
            ),
            Figure("30 d x 1,000 SLOs: new minute for every SLO, plain", "before.insert.median_s", "s"),
            Figure("30 d x 1,000 SLOs: new minute for every SLO, partitioned", "after.insert.median_s", "s"),
        ),
        args=("--slos", "1000", "--days", "30", "--out", "partitions_30d.json"),
    ),
    Bench(
        "partitions_30d_10k",
        "bench_partitions.py",
        10800,
        (
            Figure(
                "30 d x 10,000 SLOs: SLI minute retention of one day, plain (DELETE)",
                "before.retention.s",
                "s",
            ),
            Figure("  + VACUUM to reuse the space", "before.retention.vacuum_after_s", "s"),
            Figure("30 d x 10,000 SLOs: retention of one day, partitioned (DROP)", "after.retention.s", "s"),
            Figure(
                "30 d x 10,000 SLOs: budget sync minute read, plain",
                "before.budget_sync_read.warm_median_s",
                "s",
            ),
            Figure(
                "30 d x 10,000 SLOs: budget sync minute read, partitioned",
                "after.budget_sync_read.warm_median_s",
                "s",
            ),
            Figure("30 d x 10,000 SLOs: new minute for every SLO, plain", "before.insert.median_s", "s"),
            Figure("30 d x 10,000 SLOs: new minute for every SLO, partitioned", "after.insert.median_s", "s"),
        ),
        args=("--slos", "10000", "--days", "30", "--out", "partitions_30d_10000.json"),
        result="partitions_30d_10000",
    ),
    Bench(
        "fleet",
        "bench_fleet.py",
        1200,
        (
            Figure(
                "10,000 gateways: config poll (304) p99, within the 10 s interval",
                "config_poll.p99_ms",
                "ms",
                target=10_000,
            ),
            Figure(
                "10,000 gateways: telemetry push p99, within the 60 s interval",
                "telemetry_push.p99_ms",
                "ms",
                target=60_000,
            ),
            Figure(
                "10,000 gateways: config polls completed",
                "config_poll.completed_per_s",
                "req/s",
                target_path="config_poll.offered_per_s",
                higher_is_better=True,
            ),
            Figure(
                "10,000 gateways: telemetry pushes completed",
                "telemetry_push.completed_per_s",
                "req/s",
                target_path="telemetry_push.offered_per_s",
                higher_is_better=True,
            ),
            Figure(
                "10,000 gateways: control plane cores needed at the offered rate (web + PostgreSQL + Redis)",
                "cpu.server_cores_for_offered_rate",
                "cores",
                target=2,
            ),
            Figure(
                "10,000 gateways: the same plus the load generator (it shares the 2 cores)",
                "cpu.with_load_generator_cores_for_offered_rate",
                "cores",
                target=2,
            ),
        ),
        args=("--access-log", "--duration", "60", "--warmup", "15"),
        what=FLEET_WHAT
        + " Here: with granian's access log on, as deployed (the other fleet runs leave it off).",
    ),
    Bench(
        "fleet_poll",
        "bench_fleet.py",
        900,
        (
            Figure(
                "10,000 gateways, polls only: p99, within the 10 s interval",
                "config_poll.p99_ms",
                "ms",
                target=10_000,
            ),
            Figure("config poll (304): web CPU per request", "cpu.web_ms_per_request", "ms"),
            Figure("config poll (304): PostgreSQL CPU per request", "cpu.postgres_ms_per_request", "ms"),
            Figure(
                "config poll (304): Redis CPU per request (poll cache; shared server)",
                "cpu.redis_ms_per_request",
                "ms",
            ),
            Figure(
                "config poll (304): load generator CPU per request", "cpu.load_generator_ms_per_request", "ms"
            ),
            Figure(
                "10,000 gateways, polls only: control plane cores needed at 1,000 polls/s",
                "cpu.server_cores_for_offered_rate",
                "cores",
                target=2,
            ),
        ),
        args=(
            "--mix",
            "poll",
            "--duration",
            "60",
            "--warmup",
            "15",
            "--out",
            "benchmarks/results/fleet_poll.json",
        ),
        what=FLEET_WHAT,
    ),
    Bench(
        "fleet_push",
        "bench_fleet.py",
        900,
        (
            Figure("10,000 gateways, pushes only: p99", "telemetry_push.p99_ms", "ms"),
            Figure("telemetry push (100 samples): web CPU per request", "cpu.web_ms_per_request", "ms"),
            Figure(
                "telemetry push (100 samples): PostgreSQL CPU per request",
                "cpu.postgres_ms_per_request",
                "ms",
            ),
        ),
        args=(
            "--mix",
            "push",
            "--duration",
            "60",
            "--warmup",
            "15",
            "--out",
            "benchmarks/results/fleet_push.json",
        ),
        what=FLEET_WHAT,
    ),
    Bench(
        "fleet_heartbeat",
        "bench_fleet.py",
        900,
        (
            Figure("10,000 gateways, heartbeats only (every 15 s): p99", "heartbeat.p99_ms", "ms"),
            Figure("heartbeat: web CPU per request", "cpu.web_ms_per_request", "ms"),
            Figure("heartbeat: PostgreSQL CPU per request", "cpu.postgres_ms_per_request", "ms"),
            Figure(
                "10,000 gateways, heartbeats only: control plane cores needed at 667 heartbeats/s",
                "cpu.server_cores_for_offered_rate",
                "cores",
            ),
        ),
        args=(
            "--mix",
            "heartbeat",
            "--duration",
            "60",
            "--warmup",
            "15",
            "--out",
            "benchmarks/results/fleet_heartbeat.json",
        ),
        what=FLEET_WHAT
        + " Here: heartbeats only, each gateway every 15 s (the reference gateway's default) with the "
        "body the reference gateway sends (applied revision, ETag, device health).",
    ),
    Bench(
        "fleet_all_6000",
        "bench_fleet.py",
        900,
        (
            Figure(
                "6,000 gateways, polls + pushes + heartbeats: config poll p99", "config_poll.p99_ms", "ms"
            ),
            Figure("6,000 gateways, all three: telemetry push p99", "telemetry_push.p99_ms", "ms"),
            Figure("6,000 gateways, all three: heartbeat p99", "heartbeat.p99_ms", "ms"),
            Figure(
                "6,000 gateways, all three: control plane + load generator cores at the offered rate",
                "cpu.with_load_generator_cores_for_offered_rate",
                "cores",
                target=2.0,
            ),
        ),
        args=(
            "--gateways",
            "6000",
            "--heartbeat-s",
            "15",
            "--duration",
            "60",
            "--warmup",
            "15",
            "--out",
            "benchmarks/results/fleet_all_6000.json",
        ),
        what=FLEET_WHAT + " Here: 6,000 gateways each sending all three at the reference gateway's defaults "
        "(poll 10 s, push 60 s, heartbeat 15 s).",
    ),
    Bench(
        "fleet_gunicorn",
        "bench_fleet.py",
        1200,
        (
            Figure("gunicorn, 10,000 gateways: config poll p99", "config_poll.p99_ms", "ms", target=10_000),
            Figure(
                "gunicorn, 10,000 gateways: telemetry push p99", "telemetry_push.p99_ms", "ms", target=60_000
            ),
            Figure(
                "gunicorn, 10,000 gateways: control plane cores at the offered rate",
                "cpu.server_cores_for_offered_rate",
                "cores",
                target=2,
            ),
            Figure("gunicorn: web CPU per request", "cpu.web_ms_per_request", "ms"),
        ),
        args=(
            "--server",
            "gunicorn",
            "--duration",
            "60",
            "--warmup",
            "15",
            "--out",
            "benchmarks/results/fleet_gunicorn.json",
        ),
        what=FLEET_WHAT + " Here: the same fleet against the server before granian, gunicorn with 4 sync "
        "workers (each closes the connection after its answer), for comparison.",
    ),
    Bench(
        "fleet_poll_floor",
        "bench_fleet.py",
        900,
        (
            Figure(
                "the web server's floor: a WSGI app answering every request 304, web CPU per request",
                "cpu.web_ms_per_request",
                "ms",
            ),
        ),
        args=(
            "--mix",
            "poll",
            "--app",
            "floor_app:application",
            "--duration",
            "60",
            "--warmup",
            "15",
            "--out",
            "benchmarks/results/fleet_poll_floor.json",
        ),
        what=FLEET_WHAT
        + " Here: the polls against `benchmarks/floor_app.py`, which answers every request 304 at "
        "once: what the web server itself costs per request, beside the real poll (fleet_poll).",
    ),
    Bench(
        "fleet_poll_floor_gunicorn",
        "bench_fleet.py",
        900,
        (
            Figure("gunicorn's floor: the same app, web CPU per request", "cpu.web_ms_per_request", "ms"),
            Figure(
                "gunicorn's floor: load generator CPU per request (no keep-alive)",
                "cpu.load_generator_ms_per_request",
                "ms",
            ),
        ),
        args=(
            "--server",
            "gunicorn",
            "--mix",
            "poll",
            "--app",
            "floor_app:application",
            "--duration",
            "60",
            "--warmup",
            "15",
            "--out",
            "benchmarks/results/fleet_poll_floor_gunicorn.json",
        ),
        what=FLEET_WHAT
        + " Here: `fleet_poll_floor` against gunicorn's 4 sync workers, the server before granian.",
    ),
    Bench(
        "reports",
        "bench_reports.py",
        600,
        (Figure("error-budget report generation", "generate_best_s", "s"),),
    ),
)

# What the older benchmarks time, beside what reference (the newer ones carry theirs above).
_WHAT = {
    "engine_core": "Times the budget engine's pure core (numpy) on 10,000 SLOs x 28 d of synthetic per-minute "
    "arrays already in memory: window sums and evaluation; peak RSS. Not timed: the database (see cycle). "
    "Reference: the 10 s target. Rerun: `benchmarks/run_all.py --only engine_core`.",
    "evaluation": "Times `slo_evaluate_all` of 10,000 SLOs (its own database, buckets loaded with COPY) in a fresh "
    "child process, a cold and a warm cycle: window reads, engine, status writes; peak RSS. Not timed: loading, "
    "the budget sync (see cycle, which times both). Reference: the 10 s target. Rerun: `--only evaluation`.",
    "ingest": "Times the ingest service (no HTTP): batches of 10 minutes x ~100 contract series feeding 4 SLOs, "
    "validated, derived and stored in one transaction each, by 1 and 2 processes. Not timed: HTTP, auth, JSON "
    "(see ingest_http). Reference: the 100,000 samples/s target. Rerun: `--only ingest`.",
    "capacity": "Times one `capacity_evaluate` (the beat task's body) over 1,000 services x 10 device pools with "
    "600,000 heartbeat samples in the 15-minute lookback, recommendations opened and confirmed. Not timed: "
    "loading. Reference: the 60 s interval. Rerun: `--only capacity`.",
    "decisions": "Times decision-record ingest through the service (validation, COPY, INSERT ... ON CONFLICT) in "
    "batches of 5,000, then end to end over HTTP (gunicorn, 2 workers, one gateway's token). Not timed: building "
    "the batches. Reference: the 20,000 records/s target. Rerun: `--only decisions`.",
    "decide": "Times `routing.policy.decide` on a 20-rule policy in one process (explain off). Not timed: "
    "compiling the policy. Reference: the 200,000 decisions/s target. Rerun: `--only decide`.",
    "validate": "Times validating a 200-rule routing policy (parse and every semantic check, shadowing included), "
    "median. Reference: the 50 ms target. Rerun: `--only validate`.",
    "documents": "Times the work behind the routing-document endpoints without HTTP or the database: validation "
    "against a service's SLOs, YAML parsing, one explain, and simulate on 5,000 and 50,000 contexts (medians). "
    "Reference: none (no target). Rerun: `--only documents`.",
    "delivery": "Times one revision delivered to 1,000 gateways: `set_desired` (one transaction) to the last "
    "signed push acknowledged by a loopback responder that verifies each HMAC; 5% fail once, so backoff is "
    "included. Reference: the 10 s target. Rerun: `--only delivery`.",
    "config_poll": "Times the config poll's 304 through gunicorn with wrk (closed loop), one gateway, matching "
    "If-None-Match; requests/s and p50/p99. Not timed: anything but the poll (see fleet_poll for 10,000 gateways "
    "open loop). Reference: the 1,500 requests/s target. Rerun: `--only config_poll`.",
    "overview": "Times `GET /` through Django's test client as a logged-in viewer with 1,000 SLOs evaluated by "
    "the real engine (session, role lookup, every query, the template), p95 of repeated renders. Not timed: "
    "loading, gunicorn. Reference: the 300 ms target. Rerun: `--only overview`.",
    "prom_pull": "Times `PrometheusPuller.pull_sli` of 30 days of one latency SLO (1.04 M raw samples with a "
    "counter reset and a scrape gap, backfilled into a real Prometheus), cold and warm; the result is checked "
    "minute by minute. Reference: the 5 s target. Rerun: `--only prom_pull`.",
    "partitions": "Times, on the SLI minute table plain (before migration 0016) and partitioned by day (after), at "
    "10,000 SLOs x 2 days: a new minute for every SLO through the ingest's storage step, the budget sync's "
    "minute read, and retention of one day (DELETE + VACUUM against DROP). Reference: the plain table, same run. "
    "Not timed: loading. Rerun: `--only partitions`.",
    "partitions_30d_10k": "The same as partitions at 30 days x 10,000 SLOs (432 million rows a variant, about 58 GB "
    "each: the partitioned variant runs first and is dropped before the plain one loads; the plain one refuses "
    "to build its indexes without 1.1x its heap free). Reference: the plain table, same run. Not timed: loading "
    "(about 18 min a variant). Rerun: `--only partitions_30d_10k` (needs about 70 GB free).",
    "partitions_30d": "The same as partitions at 30 days x 1,000 SLOs (43 million rows a variant). Reference: the "
    "plain table, same run. Rerun: `--only partitions_30d`.",
    "reports": "Times `report_generate` of a monthly team report (10 services x 10 SLOs, 2 months of rollups, "
    "cost rollups, alert transitions: read, compute, store) and rendering it as a page and CSV. Not timed: "
    "loading. Reference: none (no target). Rerun: `--only reports`.",
}
BENCHES = tuple(replace(b, what=b.what or _WHAT.get(b.name, "")) for b in BENCHES)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        ram_gib = round(kib / 1024 / 1024, 1)
    except (OSError, AttributeError):
        pass
    postgres = None
    try:
        import psycopg

        with psycopg.connect(
            DEFAULT_PG.replace("postgres://", "postgresql://") + "/postgres", connect_timeout=3
        ) as conn:
            postgres = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    except Exception as exc:  # noqa: BLE001 - the description is best effort
        postgres = f"unknown ({exc.__class__.__name__})"
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "python": platform.python_version(),
        "postgresql": postgres,
        "os": f"{platform.system()} {platform.release()}",
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
    }


def ensure_database(url: str) -> None:
    """Create and migrate the benchmark database if needed (idempotent)."""
    import psycopg

    server, _, name = url.rpartition("/")
    with psycopg.connect(
        server.replace("postgres://", "postgresql://") + "/postgres", autocommit=True
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO_ROOT,
        check=True,
        env={**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": "memory://"},
        timeout=600,
    )


def run_one(bench: Bench, *, database_url: str, log_dir: Path) -> dict[str, Any]:
    script = BENCH_DIR / bench.script
    entry: dict[str, Any] = {"name": bench.name, "script": f"benchmarks/{bench.script}"}
    if not script.exists():
        entry.update(status="missing")
        return entry
    result_path = bench.result_path
    before = result_path.stat().st_mtime if result_path.exists() else None
    env = {**os.environ, "CELERY_BROKER_URL": os.environ.get("BENCH_CELERY_BROKER_URL", "memory://")}
    if bench.needs_db:
        env["DATABASE_URL"] = database_url
    started = time.monotonic()
    log_path = log_dir / f"{bench.name}.log"
    with log_path.open("wb") as log:
        try:
            process = subprocess.run(
                [sys.executable, str(script), *bench.args],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=bench.timeout_s,
            )
            entry["exit_code"] = process.returncode
            entry["status"] = "ok" if process.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            entry["status"] = "timeout"
    entry["wall_s"] = round(time.monotonic() - started, 1)
    entry["log"] = (
        str(log_path.relative_to(REPO_ROOT)) if log_path.is_relative_to(REPO_ROOT) else str(log_path)
    )
    fresh = result_path.exists() and (before is None or result_path.stat().st_mtime > before)
    if entry["status"] == "ok" and not fresh:
        entry["status"] = "no_result"
    if fresh or entry["status"] == "collected":
        entry.update(_figures(bench, result_path))
    if entry["status"] != "ok":
        entry["log_tail"] = log_path.read_text(errors="replace")[-1500:]
    return entry


def _figures(bench: Bench, result_path: Path) -> dict[str, Any]:
    data = json.loads(result_path.read_text())
    if bench.derived:
        data = {**data, **bench.derived(data)}
    return {
        "result_file": f"benchmarks/results/{result_path.name}",
        "figures": [f.read(data) for f in bench.figures],
        "result_mtime": datetime.fromtimestamp(result_path.stat().st_mtime, UTC).isoformat(),
    }


def _previous_entries() -> dict[str, dict[str, Any]]:
    try:
        report = json.loads((RESULTS / "all.json").read_text())
    except (OSError, ValueError):
        return {}
    return {e["name"]: e for e in report.get("benchmarks", []) if isinstance(e, dict) and "name" in e}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_markdown(report: dict[str, Any]) -> None:
    m = report["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `benchmarks/run_all.py` on {report['finished_at'][:19]} UTC "
        f"(total {report['total_wall_s']:.0f} s). Raw figures: `benchmarks/results/all.json` and one "
        "`benchmarks/results/<name>.json` per script.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']} ({m['cores']} cores)",
        f"- RAM: {m['ram_gib']} GiB",
        f"- Python {m['python']}, PostgreSQL {m['postgresql']}, {m['os']}",
        f"- Load average when the run started: {m['load_average_at_start']}",
        "",
        "Every load generator (wrk, the push receivers, Prometheus) runs on the same 2 cores as the "
        "system under test, so figures are pessimistic; anything else running on the machine (see the "
        "load average above) makes them more so. Rerun one benchmark with `--only NAME` (the others keep "
        "their last figures; the last column says when each was measured); rebuild this table from the "
        "stored results with `--collect-only`.",
        "",
        "## Results",
        "",
        "| benchmark | figure | value | target | pass | measured (UTC) |",
        "|---|---|---|---|---|---|",
    ]
    for entry in report["benchmarks"]:
        if entry.get("status") == "missing":
            lines.append(
                f"| {entry['name']} | not measured yet (`run_all.py --only {entry['name']}`) | – | – | – | – |"
            )
            continue
        if entry.get("status") not in ("ok", "collected"):
            lines.append(f"| {entry['name']} | script {entry.get('status')} | – | – | ✗ | – |")
            continue
        for fig in entry.get("figures", []):
            target = (
                "–" if fig["target"] is None else f"{fig['direction']} {_fmt(fig['target'])} {fig['unit']}"
            )
            verdict = {True: "✓", False: "✗", None: "(no target)"}[fig["passed"]]
            measured = (entry.get("result_mtime") or "")[:16].replace("T", " ") or "–"
            lines.append(
                f"| {entry['name']} | {fig['label']} | {_fmt(fig['value'])} {fig['unit']} | {target} | {verdict} "
                f"| {measured} |"
            )
    described = [b for b in BENCHES if b.what]
    if described:
        lines += ["", "## What each benchmark times", ""]
        for bench in described:
            lines += [f"- **{bench.name}** (`benchmarks/{bench.script}`): {bench.what}"]
    lines += ["", "Scripts that failed or timed out keep their log under `benchmarks/results/logs/`."]
    failed = [e for e in report["benchmarks"] if e.get("status") not in ("ok", "collected", "missing")]
    for entry in failed:
        lines += [
            "",
            f"### {entry['name']}: {entry.get('status')}",
            "",
            "```",
            (entry.get("log_tail") or "").strip()[-1200:],
            "```",
        ]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="benchmark names to run (default: all)")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", f"{DEFAULT_PG}/cp_bench_all")
    )
    parser.add_argument("--collect-only", action="store_true", help="do not run; read the existing results")
    args = parser.parse_args(argv)
    selected = [b for b in BENCHES if not args.only or b.name in args.only]
    log_dir = RESULTS / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "benchmarks": [],
    }
    if not args.collect_only and any(b.needs_db for b in selected):
        ensure_database(args.database_url)
    # With --only, the other benchmarks keep the figures of their last run (from all.json, which
    # says when each was measured), so the table always lists every benchmark.
    previous = _previous_entries()
    for bench in BENCHES:
        if bench not in selected or args.collect_only:
            path = bench.result_path
            entry = dict(previous.get(bench.name) or {"name": bench.name})
            if entry.get("status") not in ("ok", "collected") or args.collect_only:
                entry = {"name": bench.name, "status": "collected" if path.exists() else "missing"}
                if path.exists():
                    entry.update(_figures(bench, path))
                    entry["result_mtime"] = (previous.get(bench.name) or {}).get(
                        "result_mtime", entry["result_mtime"]
                    )
            entry["status"] = (
                "collected" if entry.get("status") in ("ok", "collected") else entry.get("status")
            )
            report["benchmarks"].append(entry)
            continue
        else:
            print(f"-> {bench.name} (timeout {bench.timeout_s} s)", flush=True)
            entry = run_one(bench, database_url=args.database_url, log_dir=log_dir)
        report["benchmarks"].append(entry)
        for fig in entry.get("figures", []):
            print(
                f"   {fig['label']}: {_fmt(fig['value'])} {fig['unit']} (target {fig['direction']} "
                f"{_fmt(fig['target'])}) {'' if fig['passed'] is None else ('PASS' if fig['passed'] else 'FAIL')}"
            )
        if entry.get("status") not in ("ok", "collected"):
            print(f"   status: {entry.get('status')}")
    report["finished_at"] = datetime.now(UTC).isoformat()
    report["total_wall_s"] = round(time.monotonic() - started, 1)
    (RESULTS / "all.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    write_markdown(report)
    print(f"wrote {RESULTS / 'all.json'} and {DOC}")
    return 0 if all(e.get("status") in ("ok", "collected") for e in report["benchmarks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
