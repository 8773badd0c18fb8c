"""Decision-record ingest into PostgreSQL through the service (`decision_records_ingest`: batch
validation, then COPY into a temporary table and one INSERT ... ON CONFLICT DO NOTHING), as the
gateway push endpoint calls it, in batches of 5,000 records (the batch limit).

Run: DATABASE_URL=postgres://... .venv/bin/python benchmarks/bench_decisions.py
Target: >= 20,000 records/s. Rows written under a bench-only gateway id are deleted afterwards.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from routing.fleet.decisions import Registration, decision_records_ingest  # noqa: E402
from routing.models.decisions import DecisionRecord  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "decisions.json"
DURATION_S = float(os.environ.get("BENCH_DURATION_S", "15"))
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
    result = {
        "path": "decision_records_ingest (validate, COPY to temp table, INSERT ON CONFLICT DO NOTHING)",
        "records_per_s": round(rate),
        "records": stored,
        "batch_records": BATCH,
        "batches": batches,
        "seconds": round(busy_s, 2),
        "target_records_per_s": TARGET,
        "met": rate >= TARGET,
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
