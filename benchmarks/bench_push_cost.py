"""CPU cost of one gateway telemetry push: web process and PostgreSQL backend, per request.

What is timed: POST /api/v1/gateways/<id>/telemetry/ through Django's whole stack in this process
(every middleware, URL resolution, DRF, gateway-token authentication, the ingest throttle on the
configured cache, JSON parsing, validation, scope check, SLI derivation, storage, the 202 answer),
one request after another, for two shapes:
- `push_1min`: the reference gateway's push, its last minute of ~100 contract series with `sent_at`,
  feeding 4 SLOs (what 10,000 gateways send 167 times a second, `bench_fleet.py`);
- `batch_10min`: a catch-up batch of 10 minutes x ~100 series (~1,000 samples, `bench_ingest_http.py`).
Every push is of new minutes (no re-sends). The CPU seconds of this process (`time.process_time`)
and of its one PostgreSQL backend (`/proc/<pid>/stat`) are divided by the requests; PostgreSQL
statements sent are counted per request (`round_trips`).

`wsgi_app_1min`: the same 1-minute pushes through the app the web server serves (`controlplane.wsgi`),
where the push's WSGI fast path answers them (routing.api.gateway_fastpath; `GATEWAY_FAST_PATH=false`
turns it off, and then this is the whole stack too).

Reference in the same run: the same 1-minute pushes through the ingest service alone
(`telemetry_batch_ingest` with the gateway's scope), without HTTP, middleware, DRF, authentication
and throttling.

Not timed: HTTP parsing by gunicorn and the socket (Django's test client builds the WSGI request),
building the bodies. The machine's cores are shared; the load average is recorded.

    .venv/bin/python benchmarks/bench_push_cost.py [--requests 500]   # writes benchmarks/results/push_cost.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("BENCH_INGEST_DB", "cp_bench_push_cost")
RESULT = ROOT / "benchmarks" / "results" / "push_cost.json"
GATEWAYS = 40


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500, help="1-minute pushes; a third as many batches")
    args = parser.parse_args()
    import bench_ingest as bi

    loads = {"start": _load()}
    bi.setup_database()
    try:
        result = measure(bi, args.requests, loads)
    finally:
        bi.drop_database()
    loads["end"] = _load()
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def measure(bi: Any, requests: int, loads: dict[str, Any]) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client

    from routing.fleet.services import gateway_register
    from slo.telemetry.ingest import telemetry_batch_ingest
    from slo.telemetry.scope import PushScope

    bi.seed()
    gateways = [
        gateway_register(actor=None, data={"name": f"cost-{g}", "service": bi.SERVICE, "tier": "edge"})
        for g in range(GATEWAYS)
    ]
    counters = [json.dumps(bi.minute_counters(k), separators=(",", ":")) for k in range(50)]
    client = Client()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    pushed = [0] * GATEWAYS  # minutes used per gateway: every push is of new minutes
    statements = [0]

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements[0] += 1
        return execute(sql, params, many, context)

    def body(g: int, minutes: int) -> tuple[str, int]:
        first = pushed[g]
        pushed[g] += minutes
        parts = []
        samples = 0
        for m in range(minutes):
            minute = now - timedelta(minutes=2 + first + m)
            variant = (first + m + g) % len(counters)
            parts.append(f'{{"minute":"{minute:%Y-%m-%dT%H:%M:%SZ}","counters":{counters[variant]}}}')
            samples += len(bi.minute_counters(variant))
        sent_at = datetime.now(UTC).isoformat()
        return (
            f'{{"contract_version":1,"gateway":"cost-{g}","sent_at":"{sent_at}","minutes":[{",".join(parts)}]}}',
            samples,
        )

    def post(g: int, minutes: int) -> int:
        text, samples = body(g, minutes)
        answer = client.post(
            f"/api/v1/gateways/{gateways[g].gateway.pk}/telemetry/",
            text,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {gateways[g].token}",
        )
        assert answer.status_code == 202, answer.content[:300]
        return samples

    from controlplane import wsgi

    answered: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        answered.append(status)

    def post_wsgi(g: int, minutes: int) -> int:
        """The same push through the app the web server serves (controlplane.wsgi): the WSGI fast path."""
        text, samples = body(g, minutes)
        raw = text.encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": f"/api/v1/gateways/{gateways[g].gateway.pk}/telemetry/",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(raw)),
            "HTTP_AUTHORIZATION": f"Bearer {gateways[g].token}",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(raw),
            "wsgi.errors": sys.stderr,
        }
        answered.clear()
        for _ in wsgi.application(environ, start_response):
            pass
        assert answered == ["202 Accepted"], answered
        return samples

    def service(g: int, minutes: int) -> int:
        text, samples = body(g, minutes)
        registration = gateways[g].gateway
        scope = PushScope(gateway=registration.name, service=bi.SERVICE, tier="edge")
        telemetry_batch_ingest(source=f"gateway:{registration.pk}", payload=json.loads(text), scope=scope)
        return samples

    def backend_cpu_s() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def run(label: str, call: Any, minutes: int, n: int) -> dict[str, Any]:
        for k in range(20):  # warm-up: imports, caches, plans
            call(k % GATEWAYS, minutes)
        pid_cpu, web_cpu, wall = backend_cpu_s(), time.process_time(), time.perf_counter()
        statements[0] = 0
        samples = 0
        with connection.execute_wrapper(count):
            for k in range(n):
                samples += call(k % GATEWAYS, minutes)
        wall = time.perf_counter() - wall
        web_cpu = time.process_time() - web_cpu
        pid_cpu = backend_cpu_s() - pid_cpu
        loads[label] = _load()
        return {
            "requests": n,
            "minutes_per_request": minutes,
            "samples_per_request": round(samples / n, 1),
            "web_ms_per_request": round(1000 * web_cpu / n, 3),
            "postgres_ms_per_request": round(1000 * pid_cpu / n, 3),
            "wall_ms_per_request": round(1000 * wall / n, 3),
            "round_trips_per_request": round(statements[0] / n, 2),  # + Django's connection health check
            "web_us_per_sample": round(1e6 * web_cpu / samples, 2),
            "postgres_us_per_sample": round(1e6 * pid_cpu / samples, 2),
        }

    return {
        "benchmark": "CPU per gateway telemetry push, web process and PostgreSQL backend, through Django's "
        "whole stack in-process (test client: no web server or socket)",
        "push_1min": run("push_1min", post, 1, requests),
        "batch_10min": run("batch_10min", post, 10, max(requests // 3, 20)),
        "wsgi_app_1min": run("wsgi_app_1min", post_wsgi, 1, requests),
        "reference_service_alone_1min": run("service_1min", service, 1, requests),
        "slos_fed": 4,
        "cache": "redis" if os.environ.get("CACHE_URL") else "local memory",
        "load_average_1_5_15": loads,
        "machine": {"cpus": os.cpu_count(), "shared": "2 cores shared with other work"},
        "measured_at": datetime.now(UTC).isoformat(),
    }


if __name__ == "__main__":
    main()
