"""Push ingest of per-minute samples into PostgreSQL, in batches of about 1,000; target >= 100,000/s.

A *sample* is one series' value in one minute (a counter increase, one histogram bucket, a `_count`
or `_sum`, a gauge): one row of `SeriesMinute`. Each batch is one gateway's 10 minutes x ~100 series
of the contract for one service (requests by route/outcome, cache lookups by layer/result,
fallbacks, compute seconds, egress bytes, latency histograms with 15 buckets, a data-age histogram)
and feeds 4 SLOs (latency, availability, correctness, freshness): every batch also derives and
upserts 40 SLO minutes, extends the feeds and marks the hours it touched as pending, all in its one
transaction. The hourly rollups are recomputed by a task enqueued on commit (debounced to one per
second per process); the bench runs that work once after the service run and reports its time.

Paths:
- service: `telemetry_batch_ingest(source=..., payload=dict)` (validation, derivation, storage), in
  one process, then in `--workers` processes at once (API workers; different gateways);
- HTTP: POST /api/v1/gateways/<id>/telemetry/ through Django's full stack in-process (gateway token
  authentication, throttling, JSON parsing, the view), if the routing endpoint exists.

Each service measurement runs `--repeat` times (median and best reported). Every run
also reports the CPU time per batch of the ingesting process and of its PostgreSQL backend (read
from /proc), and the rate two idle cores would sustain if CPU were the only limit: on a machine
shared with other work the wall-clock rates are pessimistic, the CPU figures much less so. The
load average is recorded along the way. The HTTP run is a separate (spawned) web process so its
peak RSS is that of a Django process serving ingest.

Creates and drops its own database (cp_bench_ingest, or $BENCH_INGEST_DB) on the local PostgreSQL;
the figures include every SQL statement of the ingest.

    .venv/bin/python benchmarks/bench_ingest.py [--batches 300] [--repeat 3]  # writes benchmarks/results/ingest.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DB_NAME = os.environ.get("BENCH_INGEST_DB", "cp_bench_ingest")
SERVER_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
TARGET_PER_S = 100_000
MINUTES_PER_BATCH = 10
GATEWAYS = 10
SERVICE = "shelf-vision"


def setup_database() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    os.environ["DATABASE_URL"] = f"{SERVER_URL}/{DB_NAME}"
    os.environ.setdefault("DEBUG", "false")  # DEBUG would record every query in memory
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")  # the test client speaks plain HTTP
    os.environ.setdefault("SECRET_KEY", "bench-ingest-" + "x" * 40)
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
    os.environ.setdefault("THROTTLE_INGEST", "1000000/min")
    # the rollup task enqueued on commit (at most once a second) goes to an in-memory broker
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def drop_database() -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def seed() -> None:
    from slo.services import service_create, slo_create

    service_create(
        actor=None, data={"name": SERVICE, "service_class": "interactive", "tiers": ["edge", "public_cloud"]}
    )
    base = {"service": SERVICE, "tier": "edge", "objective": 99.5, "window": {"type": "rolling", "days": 28}}
    for name, sli in (
        ("latency", {"kind": "latency", "threshold_ms": 150}),
        ("availability", {"kind": "availability"}),
        ("correctness", {"kind": "correctness"}),
        ("freshness", {"kind": "freshness", "max_age_s": 300}),
    ):
        slo_create(actor=None, data={**base, "name": name, "sli": sli})


LATENCY_LE = (
    "0.025",
    "0.05",
    "0.1",
    "0.15",
    "0.2",
    "0.25",
    "0.3",
    "0.5",
    "0.75",
    "1",
    "1.5",
    "2",
    "3",
    "5",
    "10",
)
AGE_LE = (
    "1",
    "5",
    "10",
    "30",
    "60",
    "120",
    "300",
    "600",
    "900",
    "1800",
    "3600",
    "7200",
    "21600",
    "43200",
    "86400",
)


def minute_counters(k: int) -> list[dict[str, Any]]:
    """~100 contract series of one gateway for one minute."""
    lab = {"service": SERVICE, "tier": "edge"}
    out: list[dict[str, Any]] = []

    def add(name: str, value: float, **labels: str) -> None:
        out.append({"name": name, "labels": {**lab, **labels}, "increase": value})

    for route in ("local", "cache", "public_cloud", "private_cloud", "failed"):
        for outcome in ("ok", "error", "timeout"):
            add(
                "inference_requests_total",
                (k * 7 + len(route) * 3 + len(outcome)) % 50,
                route=route,
                outcome=outcome,
            )
    for layer in ("result", "embedding", "semantic"):
        for result in ("hit", "miss", "stale_hit", "semantic_hit"):
            add(
                "inference_cache_lookups_total",
                (k + len(layer) + len(result)) % 20,
                layer=layer,
                result=result,
            )
    for route, outcome in (("local", "ok"), ("cache", "ok"), ("local", "timeout")):
        running = 0
        for i, le in enumerate(LATENCY_LE):
            running += (k + i) % 5
            add("inference_request_duration_seconds_bucket", running, route=route, outcome=outcome, le=le)
        add("inference_request_duration_seconds_bucket", running + 1, route=route, outcome=outcome, le="+Inf")
        add("inference_request_duration_seconds_count", running + 1, route=route, outcome=outcome)
    running = 0
    for i, le in enumerate(AGE_LE):
        running += (k + i) % 3
        add("inference_answer_data_age_seconds_bucket", running, route="cache", le=le)
    add("inference_answer_data_age_seconds_count", running, route="cache")
    for accelerator in ("cpu", "npu"):
        add("inference_compute_seconds_total", 12.5 + k % 7, accelerator=accelerator)
    for route in ("local", "cache", "public_cloud"):
        add("inference_egress_bytes_total", 1000 * (k % 9), route=route)
    add("inference_fallbacks_total", k % 3, from_route="local", to_route="public_cloud", outcome="ok")
    return out


def make_batch(b: int, first_minute: datetime) -> tuple[str, dict[str, Any], int]:
    """Batch number `b`: (source, payload, samples); gateways round-robin, each one's minutes move forward."""
    gateway = b % GATEWAYS
    offset = (b // GATEWAYS) * MINUTES_PER_BATCH
    minutes = []
    samples = 0
    for m in range(MINUTES_PER_BATCH):
        counters = minute_counters(offset + m + gateway)
        samples += len(counters)
        minute = first_minute + timedelta(minutes=offset + m)
        minutes.append({"minute": minute.isoformat().replace("+00:00", "Z"), "counters": counters})
    return (
        f"gateway:{gateway + 1}",
        {"contract_version": 1, "gateway": f"gw-{gateway}", "minutes": minutes},
        samples,
    )


def make_batches(n_batches: int, first_minute: datetime) -> list[tuple[str, dict[str, Any], int]]:
    return [make_batch(b, first_minute) for b in range(n_batches)]


def backend_cpu_s() -> float | None:
    """CPU seconds the PostgreSQL backend of our connection has used (same machine: /proc), or None."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def run_service(batches: list[tuple[str, dict[str, Any], int]]) -> dict[str, Any]:
    from slo.telemetry.ingest import telemetry_batch_ingest

    latencies = []
    samples = 0
    server_cpu = backend_cpu_s()
    client_cpu = time.process_time()
    started = time.perf_counter()
    for source, payload, n in batches:
        t0 = time.perf_counter()
        telemetry_batch_ingest(source=source, payload=payload)
        latencies.append(time.perf_counter() - t0)
        samples += n
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    server_after = backend_cpu_s()
    figures = _figures(samples, elapsed, latencies, len(batches))
    figures["client_cpu_ms_per_batch"] = round(client_cpu / len(batches) * 1000, 2)
    if server_cpu is not None and server_after is not None:
        server_ms = (server_after - server_cpu) / len(batches) * 1000
        figures["server_cpu_ms_per_batch"] = round(server_ms, 2)
        # What 2 otherwise idle cores would sustain if CPU were the only limit (2 processes, each with
        # its backend): excludes WAL flush waits and scheduling; ticks are 10 ms, so +-10% over 300 batches.
        per_batch_ms = client_cpu / len(batches) * 1000 + server_ms
        figures["cpu_bound_samples_per_s_2_cores"] = round(2 * samples / len(batches) / per_batch_ms * 1000)
    return figures


def _worker(batches: list[tuple[str, dict[str, Any], int]], out: Any, start: Any) -> None:
    from django.db import connections

    connections.close_all()  # a forked child must not share the parent's connection
    from slo.telemetry.ingest import telemetry_batch_ingest

    telemetry_batch_ingest(source=batches[0][0], payload=batches[0][1])  # connect, warm up
    start.wait()
    latencies = []
    for source, payload, _ in batches[1:]:
        t0 = time.perf_counter()
        telemetry_batch_ingest(source=source, payload=payload)
        latencies.append(time.perf_counter() - t0)
    out.put((sum(n for *_, n in batches[1:]), latencies))


def run_parallel(batches: list[tuple[str, dict[str, Any], int]], workers: int) -> dict[str, Any]:
    """Several API processes ingesting at once (different gateways: no shared source lock)."""
    import multiprocessing as mp

    from django.db import connections

    connections.close_all()
    ctx = mp.get_context("fork")
    out, start = ctx.Queue(), ctx.Barrier(workers + 1)
    shares = [[b for b in batches if int(b[0].split(":")[1]) % workers == w] for w in range(workers)]
    procs = [ctx.Process(target=_worker, args=(share, out, start)) for share in shares]
    for proc in procs:
        proc.start()
    start.wait()
    started = time.perf_counter()
    results = [out.get() for _ in procs]
    elapsed = time.perf_counter() - started
    for proc in procs:
        proc.join()
    figures = _figures(
        sum(r[0] for r in results),
        elapsed,
        [x for r in results for x in r[1]],
        sum(len(r[1]) for r in results),
    )
    return {"workers": workers, **figures}


def _http_child(n_batches: int, first_minute: datetime, tokens: dict[str, tuple[int, str]], out: Any) -> None:
    """The web process: a fresh interpreter (spawn) that builds each request body just before
    sending it, so its peak RSS is that of a Django process serving ingest, not of the bench's data."""
    import django

    django.setup()
    from django.test import Client

    client = Client()
    latencies = []
    samples = 0
    rss_start = rss_first = _peak_rss_mb()
    elapsed = 0.0
    for b in range(n_batches):
        source, payload, n = make_batch(b, first_minute)
        gateway_id, token = tokens[source]
        body = json.dumps(payload)
        t0 = time.perf_counter()
        response = client.post(
            f"/api/v1/gateways/{gateway_id}/telemetry/",
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
        latency = time.perf_counter() - t0
        elapsed += latency
        latencies.append(latency)
        if response.status_code != 202:
            out.put({"error": f"HTTP ingest failed: {response.status_code} {response.content[:500]!r}"})
            return
        if b == 0:  # lazy imports (numpy, pandas, DRF views) happen on the first request
            rss_first = _peak_rss_mb()
        samples += n
    figures = _figures(samples, elapsed, latencies, n_batches)
    figures["web_process_rss_mb_before_first_request"] = round(rss_start, 1)
    figures["web_process_peak_rss_mb_after_first_request"] = round(rss_first, 1)
    figures["web_process_peak_rss_mb"] = round(_peak_rss_mb(), 1)
    out.put(figures)


def _peak_rss_mb() -> float:
    """Peak RSS of this process (VmHWM: unlike ru_maxrss it starts afresh at exec, so a spawned
    child does not report its parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_http(n_batches: int, first_minute: datetime) -> dict[str, Any]:
    """POST /api/v1/gateways/<id>/telemetry/ through Django's full stack in a separate web process
    (time counts only the requests, not building the bodies)."""
    import multiprocessing as mp

    from django.db import connections

    try:
        from routing.fleet.services import gateway_register
    except ImportError as exc:
        return {"skipped": f"routing push endpoint not available: {exc}"}
    tokens = {}
    for g in range(GATEWAYS):
        creds = gateway_register(
            actor=None, data={"name": f"bench-gw-{g}", "service": SERVICE, "tier": "edge"}
        )
        tokens[f"gateway:{g + 1}"] = (creds.gateway.pk, creds.token)
    connections.close_all()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_http_child, args=(n_batches, first_minute, tokens, out))
    proc.start()
    result = out.get()
    proc.join()
    if "error" in result:
        raise SystemExit(result["error"])
    return result


def _figures(samples: int, elapsed: float, latencies: list[float], batches: int) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "batches": batches,
        "samples": samples,
        "seconds": round(elapsed, 3),
        "samples_per_s": round(samples / elapsed),
        "batch_ms_p50": round(statistics.median(ordered) * 1000, 2),
        "batch_ms_p95": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 2),
        "meets_target": samples / elapsed >= TARGET_PER_S,
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["samples_per_s"] for r in runs]
    return {
        "median_samples_per_s": round(statistics.median(rates)),
        "best_samples_per_s": max(rates),
        "meets_target_median": statistics.median(rates) >= TARGET_PER_S,
        "runs": runs,
    }


def _progress(label: str, figures: dict[str, Any]) -> dict[str, Any]:
    print(label, json.dumps(figures), "load", _load(), file=sys.stderr, flush=True)
    return figures


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel service run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each service measurement")
    args = parser.parse_args()
    setup_database()
    from django.conf import settings

    loads = {"start": _load()}
    try:
        seed()
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        # every run writes its own minutes, so each is a first ingest (the resend run re-sends one)
        span = (args.batches // GATEWAYS + 1) * MINUTES_PER_BATCH
        runs_needed = 2 * args.repeat + 3  # warm-up, the service runs, resend, HTTP
        assert runs_needed * span + 60 < settings.TELEMETRY_MINUTE_RETENTION_DAYS * 1440, "too many batches"
        slot = iter(range(runs_needed))

        def fresh() -> datetime:
            return now - timedelta(minutes=(next(slot) + 1) * span + 60)

        run_service(make_batches(GATEWAYS, fresh()))  # warm-up: imports, plans, connection
        from slo.models.telemetry import SeriesMinute, SliFeed, SliHour, SliMinute

        for model in (SeriesMinute, SliMinute, SliHour, SliFeed):
            model.objects.all().delete()
        one = [
            _progress("one process", run_service(make_batches(args.batches, fresh())))
            for _ in range(args.repeat)
        ]
        loads["after_one_process"] = _load()
        two = [
            _progress(
                f"{args.workers} processes", run_parallel(make_batches(args.batches, fresh()), args.workers)
            )
            for _ in range(args.repeat)
        ]
        loads[f"after_{args.workers}_processes"] = _load()
        results = {"one_process": _summary(one), f"{args.workers}_processes": _summary(two)}
        from slo.telemetry.storage import telemetry_rollup_pending

        t0 = time.perf_counter()
        hours = telemetry_rollup_pending()
        rollup = {"hours": hours, "seconds": round(time.perf_counter() - t0, 3)}
        rows = {
            "series_minutes": SeriesMinute.objects.count(),
            "sli_minutes": SliMinute.objects.count(),
            "sli_hours": SliHour.objects.count(),
        }
        first = fresh()
        run_service(make_batches(args.batches // 5, first))
        before = SeriesMinute.objects.count()
        resend = run_service(make_batches(args.batches // 5, first))  # replaces, never adds
        assert SeriesMinute.objects.count() == before, "re-sending added rows"
        http = run_http(args.batches, fresh())
        loads["end"] = _load()
        result = {
            "benchmark": "push ingest of per-minute samples (PostgreSQL)",
            "target_samples_per_s": TARGET_PER_S,
            "samples_per_batch": make_batch(0, now)[2],
            "minutes_per_batch": MINUTES_PER_BATCH,
            "slos_fed_per_batch": 4,
            "service": results,
            "service_resend": resend,
            "rollup_after_service_runs": rollup,
            "http": http,
            "rows_after_service_runs": rows,
            "bench_process_peak_rss_mb": round(_peak_rss_mb(), 1),
            "load_average_1_5_15": loads,
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "shared": True},
            "measured_at": datetime.now(UTC).isoformat(),
        }
    finally:
        drop_database()
    out = ROOT / "benchmarks" / "results" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
