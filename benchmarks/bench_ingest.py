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

Creates and drops its own database (cp_bench_ingest) on the local PostgreSQL; the figures include
every SQL statement of the ingest. The machine is shared (2 cores), so figures are pessimistic.

    .venv/bin/python benchmarks/bench_ingest.py [--batches 300]  # writes benchmarks/results/ingest.json
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

DB_NAME = "cp_bench_ingest"
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

    service_create(actor=None, data={"name": SERVICE, "service_class": "interactive", "tiers": ["edge", "public_cloud"]})
    base = {"service": SERVICE, "tier": "edge", "objective": 99.5, "window": {"type": "rolling", "days": 28}}
    for name, sli in (
        ("latency", {"kind": "latency", "threshold_ms": 150}),
        ("availability", {"kind": "availability"}),
        ("correctness", {"kind": "correctness"}),
        ("freshness", {"kind": "freshness", "max_age_s": 300}),
    ):
        slo_create(actor=None, data={**base, "name": name, "sli": sli})


LATENCY_LE = ("0.025", "0.05", "0.1", "0.15", "0.2", "0.25", "0.3", "0.5", "0.75", "1", "1.5", "2", "3", "5", "10")
AGE_LE = ("1", "5", "10", "30", "60", "120", "300", "600", "900", "1800", "3600", "7200", "21600", "43200", "86400")


def minute_counters(k: int) -> list[dict[str, Any]]:
    """~100 contract series of one gateway for one minute."""
    lab = {"service": SERVICE, "tier": "edge"}
    out: list[dict[str, Any]] = []

    def add(name: str, value: float, **labels: str) -> None:
        out.append({"name": name, "labels": {**lab, **labels}, "increase": value})

    for route in ("local", "cache", "public_cloud", "private_cloud", "failed"):
        for outcome in ("ok", "error", "timeout"):
            add("inference_requests_total", (k * 7 + len(route) * 3 + len(outcome)) % 50, route=route, outcome=outcome)
    for layer in ("result", "embedding", "semantic"):
        for result in ("hit", "miss", "stale_hit", "semantic_hit"):
            add("inference_cache_lookups_total", (k + len(layer) + len(result)) % 20, layer=layer, result=result)
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


def make_batches(n_batches: int, first_minute: datetime) -> list[tuple[str, dict[str, Any], int]]:
    """(source, payload, samples) round-robin over gateways; each gateway's minutes move forward."""
    batches = []
    for b in range(n_batches):
        gateway = b % GATEWAYS
        offset = (b // GATEWAYS) * MINUTES_PER_BATCH
        minutes = []
        samples = 0
        for m in range(MINUTES_PER_BATCH):
            counters = minute_counters(offset + m + gateway)
            samples += len(counters)
            minute = first_minute + timedelta(minutes=offset + m)
            minutes.append({"minute": minute.isoformat().replace("+00:00", "Z"), "counters": counters})
        batches.append((f"gateway:{gateway + 1}", {"contract_version": 1, "gateway": f"gw-{gateway}", "minutes": minutes},
                        samples))
    return batches


def run_service(batches: list[tuple[str, dict[str, Any], int]]) -> dict[str, Any]:
    from slo.telemetry.services import telemetry_batch_ingest

    latencies = []
    samples = 0
    started = time.perf_counter()
    for source, payload, n in batches:
        t0 = time.perf_counter()
        telemetry_batch_ingest(source=source, payload=payload)
        latencies.append(time.perf_counter() - t0)
        samples += n
    elapsed = time.perf_counter() - started
    return _figures(samples, elapsed, latencies, len(batches))


def _worker(batches: list[tuple[str, dict[str, Any], int]], out: Any, start: Any) -> None:
    from django.db import connections

    connections.close_all()  # a forked child must not share the parent's connection
    from slo.telemetry.services import telemetry_batch_ingest

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
    figures = _figures(sum(r[0] for r in results), elapsed, [x for r in results for x in r[1]],
                       sum(len(r[1]) for r in results))
    return {"workers": workers, **figures}


def run_http(batches: list[tuple[str, dict[str, Any], int]]) -> dict[str, Any]:
    from django.test import Client

    try:
        from routing.fleet.services import gateway_register
    except ImportError as exc:
        return {"skipped": f"routing push endpoint not available: {exc}"}
    tokens = {}
    for g in range(GATEWAYS):
        creds = gateway_register(actor=None, data={"name": f"bench-gw-{g}", "service": SERVICE, "tier": "edge"})
        tokens[f"gateway:{g + 1}"] = (creds.gateway.pk, creds.token)
    client = Client()
    bodies = [(tokens[source], json.dumps(payload), n) for source, payload, n in batches]
    latencies = []
    samples = 0
    started = time.perf_counter()
    for (gateway_id, token), body, n in bodies:
        t0 = time.perf_counter()
        response = client.post(f"/api/v1/gateways/{gateway_id}/telemetry/", body, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {token}")
        latencies.append(time.perf_counter() - t0)
        if response.status_code != 202:
            raise SystemExit(f"HTTP ingest failed: {response.status_code} {response.content[:500]!r}")
        samples += n
    elapsed = time.perf_counter() - started
    return _figures(samples, elapsed, latencies, len(bodies))


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel service run")
    args = parser.parse_args()
    setup_database()
    try:
        seed()
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        # service and HTTP runs write different minutes so the HTTP run is a first ingest too
        span = (args.batches // GATEWAYS + 1) * MINUTES_PER_BATCH
        first = now - timedelta(minutes=2 * span + 60)
        assert 3 * span + 60 < 7 * 1440, "too many batches for the minute retention window"
        service_batches = make_batches(args.batches, first)
        http_batches = make_batches(args.batches, first + timedelta(minutes=span))
        run_service(service_batches[: GATEWAYS])  # warm-up: imports, plans, connection
        from slo.models.telemetry import SeriesMinute, SliFeed, SliHour, SliMinute

        for model in (SeriesMinute, SliMinute, SliHour, SliFeed):
            model.objects.all().delete()
        service = run_service(service_batches)
        from slo.telemetry.services import telemetry_rollup_pending

        t0 = time.perf_counter()
        hours = telemetry_rollup_pending()
        rollup = {"hours": hours, "seconds": round(time.perf_counter() - t0, 3)}
        rows = {"series_minutes": SeriesMinute.objects.count(), "sli_minutes": SliMinute.objects.count(),
                "sli_hours": SliHour.objects.count()}
        resend = run_service(service_batches[: max(GATEWAYS, args.batches // 5)])  # replaces, never adds
        assert SeriesMinute.objects.count() == rows["series_minutes"], "re-sending added rows"
        parallel_batches = make_batches(args.batches, first - timedelta(minutes=span))
        parallel = run_parallel(parallel_batches, args.workers)
        http = run_http(http_batches)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result = {
            "benchmark": "push ingest of per-minute samples (PostgreSQL)",
            "target_samples_per_s": TARGET_PER_S,
            "samples_per_batch": service_batches[0][2],
            "minutes_per_batch": MINUTES_PER_BATCH,
            "slos_fed_per_batch": 4,
            "service": service,
            "service_parallel": parallel,
            "service_resend": resend,
            "rollup_after_service_run": rollup,
            "http": http,
            "rows_after_service_run": rows,
            "peak_rss_mb": round(peak_rss_mb, 1),
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
