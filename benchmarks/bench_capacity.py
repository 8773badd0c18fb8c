"""Capacity recommendation evaluation (`capacity_evaluate`, the beat task's body) over 1,000
services x 10 device pools (one gateway per pool: 10,000 gateways), each with 15 minutes of
heartbeats every 15 s (600,000 health samples in the lookback, CAPACITY_LOOKBACK_S = 900).
5% of the pools run hot and 5% queue over twice their workers, so a run opens recommendations
(audited, notified through one channel) and the next confirms them, as in steady state.

Run: DATABASE_URL=postgres://... .venv/bin/python benchmarks/bench_capacity.py
Target: one evaluation within the 60 s interval on 2 cores. Bench rows are deleted afterwards (the audit log is append-only: its rows stay).
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from routing.capacity.services import capacity_evaluate  # noqa: E402
from routing.models.capacity import CapacityRecommendation  # noqa: E402
from routing.models.fleet import Gateway  # noqa: E402
from slo.models import Service  # noqa: E402
from slo.models.budget import AlertEvent, AlertState, NotificationChannel  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "capacity.json"
SERVICES = int(os.environ.get("BENCH_SERVICES", "1000"))
POOLS = int(os.environ.get("BENCH_POOLS", "10"))
MINUTES = 15
BEAT_S = 15
TARGET_S = 60.0
PREFIX = "bench-cap-"
TIERS = (
    "edge",
    "edge",
    "edge",
    "edge",
    "edge",
    "edge",
    "private_cloud",
    "private_cloud",
    "public_cloud",
    "public_cloud",
)


def cleanup() -> None:
    services = Service.objects.filter(name__startswith=PREFIX)
    gateway_ids = list(Gateway.objects.filter(service__in=services).values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM routing_gatewayhealthsample WHERE gateway_id = ANY(%s)", [gateway_ids])
    CapacityRecommendation.objects.filter(service__in=services).delete()
    AlertEvent.objects.filter(service__in=services).delete()
    AlertState.objects.filter(service__in=services).delete()
    Gateway.objects.filter(pk__in=gateway_ids).delete()
    services.delete()
    NotificationChannel.objects.filter(name=f"{PREFIX}ops").delete()


def setup(now) -> int:
    Service.objects.bulk_create(
        [
            Service(name=f"{PREFIX}{i:04d}", service_class="interactive", tiers=list(set(TIERS)))
            for i in range(SERVICES)
        ],
        batch_size=1000,
    )
    services = list(Service.objects.filter(name__startswith=PREFIX).order_by("name"))
    gateways = [
        Gateway(
            name=f"{s.name}-g{p}",
            service=s,
            tier=TIERS[p % len(TIERS)],
            region=f"r{p % 3}",
            labels={"pool": f"p{p}"},
            signing_secret_encrypted="x",
            token_hash=f"{s.pk:08d}{p:04d}".ljust(64, "0"),
            token_hint="bench",
        )
        for s in services
        for p in range(POOLS)
    ]
    Gateway.objects.bulk_create(gateways, batch_size=2000)
    ids = list(Gateway.objects.filter(service__in=services).order_by("pk").values_list("pk", flat=True))
    buffer = io.StringIO()
    beats = MINUTES * 60 // BEAT_S
    for n, gateway_id in enumerate(ids):
        hot, queueing = n % 20 == 0, n % 20 == 1
        for b in range(beats):
            at = now - timedelta(seconds=(beats - b) * BEAT_S - 1)
            temp = 92.0 if hot and b > beats - 8 else 55.0 + (n % 7)
            queue = 9.0 if queueing and b > beats - 8 else 1.0 + b % 3
            buffer.write(f"{gateway_id},{at.isoformat()},{queue},2,{temp},35.0,35.0,t,40.0,20.0,50.0\n")
    buffer.seek(0)
    with connection.cursor() as cursor:
        with cursor.copy(
            "COPY routing_gatewayhealthsample (gateway_id, at, queue_depth, active_workers, temperature_c, "
            "memory_headroom_pct, backhaul_rtt_ms, backhaul_healthy, p95_ms, request_age_ms, "
            "accelerator_util_pct) FROM STDIN WITH (FORMAT csv)"
        ) as copy:
            copy.write(buffer.getvalue())
    NotificationChannel.objects.create(
        name=f"{PREFIX}ops",
        kind="generic_webhook",
        url="http://127.0.0.1:9/hook",
        services=[s.name for s in services[:50]],
    )
    return len(ids) * beats


def main() -> None:
    cleanup()
    now = timezone.now()
    started = time.perf_counter()
    samples = setup(now)
    setup_s = time.perf_counter() - started
    try:
        runs = []
        for label, at in (("first (opens)", now), ("second (confirms)", now + timedelta(seconds=1))):
            started = time.perf_counter()
            report = capacity_evaluate(now=at)
            runs.append(
                {"run": label, "seconds": round(time.perf_counter() - started, 2), **report.as_dict()}
            )
            print(runs[-1], flush=True)
    finally:
        cleanup()
    worst = max(r["seconds"] for r in runs)
    result = {
        "services": SERVICES,
        "pools_per_service": POOLS,
        "gateways": SERVICES * POOLS,
        "health_samples": samples,
        "setup_s": round(setup_s, 1),
        "runs": runs,
        "evaluation_s": worst,
        "target_evaluation_s": TARGET_S,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
