"""Decision-record ingest into PostgreSQL through the service (`decision_records_ingest`: batch
validation, then COPY into a temporary table and one INSERT ... ON CONFLICT DO NOTHING), as the
gateway push endpoint calls it, in batches of 5,000 records (the batch limit); then end to end over
HTTP (gunicorn, 2 workers, 2 client threads posting pre-built batches as one registered gateway).

Run: DATABASE_URL=postgres://... .venv/bin/python benchmarks/bench_decisions.py
Target: >= 20,000 records/s. Rows written under a bench-only gateway id are deleted afterwards.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from routing.fleet.decisions import Registration, decision_records_ingest  # noqa: E402
from routing.fleet.services import gateway_register  # noqa: E402
from routing.models.decisions import DecisionRecord  # noqa: E402
from routing.models.fleet import Gateway  # noqa: E402
from slo.models import Service  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "decisions.json"
DURATION_S = float(os.environ.get("BENCH_DURATION_S", "15"))
HTTP_BATCHES = int(os.environ.get("BENCH_HTTP_BATCHES", "24"))
BATCH = 5000
TARGET = 20_000
BENCH_GATEWAY_ID = 2_000_000_000  # no such gateway: records are filed by id (no FK constraint)


def batch(prefix: str) -> dict:
    now = timezone.now()
    records = [
        {
            "request_id": f"{prefix}-{i}",
            "at": (now - timedelta(milliseconds=i)).isoformat(),
            "rule": "low-confidence-to-cloud" if i % 3 else "default",
            "admission": "admitted",
            "chain": ["local", "private_cloud", "public_cloud"],
            "route": "public_cloud" if i % 3 else "local",
            "cache": [{"layer": "result", "result": "miss", "key": ["input_hash", "model_version"]}],
            "model_version": "v12",
            "revision": 7,
            "outcome": "ok",
            "latency_ms": 120.5 + i % 50,
        }
        for i in range(BATCH)
    ]
    return {"contract_version": 1, "gateway": "bench", "records": records}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure_http() -> dict:
    """Records/s end to end: HTTP, authentication, JSON parsing, validation, storage."""
    service, _ = Service.objects.get_or_create(
        name="bench-decisions", defaults={"service_class": "interactive", "tiers": ["edge"]}
    )
    Gateway.objects.filter(name="bench-decisions-gw").delete()
    credentials = gateway_register(
        actor="bench", data={"name": "bench-decisions-gw", "service": service.name, "tier": "edge"}
    )
    gateway_id = credentials.gateway.pk
    bodies = []
    for _ in range(HTTP_BATCHES):
        payload = batch(uuid.uuid4().hex[:10])
        bodies.append(json.dumps(payload).encode())
    port = _free_port()
    env = dict(
        os.environ,
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        THROTTLE_INGEST="100000/min",
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-" + "x" * 40),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
    )
    process = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "controlplane.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "2",
            "--log-level",
            "warning",
            "--timeout",
            "60",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/api/v1/gateways/{gateway_id}/decisions/"
    headers = {"Authorization": f"Bearer {credentials.token}", "Content-Type": "application/json"}
    stored = errors = 0
    lock = threading.Lock()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)

        def worker(mine: list[bytes]) -> None:
            nonlocal stored, errors
            session = requests.Session()
            for body in mine:
                response = session.post(url, data=body, headers=headers, timeout=60)
                with lock:
                    if response.status_code == 202:
                        stored += response.json()["result"]["stored"]
                    else:
                        errors += 1

        threads = [threading.Thread(target=worker, args=(bodies[i::2],)) for i in range(2)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=10)
        DecisionRecord.objects.filter(gateway_id=gateway_id).delete()
        Gateway.objects.filter(pk=gateway_id).delete()
    return {
        "records_per_s": round(stored / seconds),
        "records": stored,
        "batches": len(bodies),
        "errors": errors,
        "seconds": round(seconds, 2),
        "gunicorn_workers": 2,
        "client_threads": 2,
    }


def main() -> int:
    if connection.vendor != "postgresql":
        print("needs DATABASE_URL=postgres://...", file=sys.stderr)
        return 2
    registration = Registration(
        gateway_id=BENCH_GATEWAY_ID, service="bench-decisions", tier="edge", region=""
    )
    payloads = [batch(uuid.uuid4().hex[:10]) for _ in range(4)]  # built before timing: not the server's cost
    stored = batches = 0
    busy_s = 0.0
    deadline = time.monotonic() + DURATION_S
    try:
        while time.monotonic() < deadline:
            payload = payloads[batches % len(payloads)]
            # a fresh id prefix per batch, so every record is new (a repeated one costs less)
            prefix = uuid.uuid4().hex[:10]
            for i, record in enumerate(payload["records"]):
                record["request_id"] = f"{prefix}-{i}"
            started = time.perf_counter()
            stored += decision_records_ingest(registration=registration, payload=payload).stored
            busy_s += time.perf_counter() - started
            batches += 1
    finally:
        DecisionRecord.objects.filter(gateway_id=BENCH_GATEWAY_ID).delete()
    rate = stored / busy_s
    http = measure_http()
    result = {
        "path": "decision_records_ingest (validate, COPY to temp table, INSERT ON CONFLICT DO NOTHING)",
        "records_per_s": round(rate),
        "records": stored,
        "batch_records": BATCH,
        "batches": batches,
        "seconds": round(busy_s, 2),
        "target_records_per_s": TARGET,
        "met": rate >= TARGET,
        "http": http,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "note": "PostgreSQL on the same 2 cores, shared with other engineers' test runs",
        },
    }
    print(json.dumps(result, indent=2))
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
