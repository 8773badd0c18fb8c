"""A fleet of simulated gateways against the web server: each polls its config every `--poll-s` seconds
(If-None-Match with its ETag: 304) and pushes its last completed minute of telemetry every
`--push-s` seconds (~100 contract series, `sent_at` stamped, Bearer token), as the reference
gateway does with its defaults (10 s and 60 s).

Open loop: every gateway gets a random phase, and each request is due at its scheduled instant
whatever happened to earlier ones, so a slow server shows up as latency (measured from the due
instant: waiting for a connection counts), never as a quietly lower request rate. The load
generator is one asyncio process speaking HTTP/1.1 over `--connections` keep-alive connections,
as an ingress or load balancer in front of the web pods multiplexes many gateways (keep-alive is
shorter than a poll interval, so gateways do not hold their own connections).

Creates its own database (`cp_bench_fleet`, dropped first): `--gateways` gateways of one service
with 4 SLOs fed by pushes, every gateway with a desired configuration revision. Starts the web
server as deployed (`controlplane.webserver`: granian, `--workers` 2 x `--threads` 4; `--server
gunicorn` for 4 gunicorn sync workers, the server before) with DEBUG off, and measures `--duration` seconds after a
`--warmup`. Reports per kind the offered and achieved rates, p50/p95/p99/max latency, statuses,
the CPU seconds per request of the web workers, their PostgreSQL backends, the Redis server (the
config poll's cache) and the load generator itself (it runs on the same cores), the whole machine's
busy CPU (what other work took), and the load average (the machine is shared).

    .venv/bin/python benchmarks/bench_fleet.py [--gateways 10000] [--duration 120]
    # writes benchmarks/results/fleet.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
SERVER_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_FLEET_DB", "cp_bench_fleet")
RESULT = ROOT / "benchmarks" / "results" / "fleet.json"
CACHE_URL = os.environ.get("BENCH_CACHE_URL") or os.environ.get("CACHE_URL") or "redis://127.0.0.1:6379/1"
SERVICE = "shelf-vision"


def setup(gateways: int) -> tuple[list[tuple[int, str]], str]:
    """Database, service, SLOs and gateways; returns [(gateway id, token)] and the config ETag."""
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

    call_command("migrate", verbosity=0)
    from bench_ingest import seed

    from controlplane.crypto import encrypt_secret
    from controlplane.lib.signing import new_signing_secret
    from routing.fleet.credentials import hash_gateway_token, new_gateway_token
    from routing.fleet.services import gateway_set_desired
    from routing.models.fleet import Gateway
    from routing.policy import default_cache_config, default_policy
    from slo.models import Service

    seed()
    service = Service.objects.get(name=SERVICE)
    tokens = [new_gateway_token() for _ in range(gateways)]
    # Registered in bulk (the API registers one at a time, with an audit record each): the same
    # rows, token hashes and encrypted signing secrets.
    secret = encrypt_secret(new_signing_secret())
    Gateway.objects.bulk_create(
        [
            Gateway(
                name=f"gw-{i}",
                service=service,
                tier="edge",
                token_hash=hash_gateway_token(token),
                token_hint=token[:8],
                signing_secret_encrypted=secret,
            )
            for i, token in enumerate(tokens)
        ],
        batch_size=2000,
    )
    ids = list(Gateway.objects.order_by("name").values_list("pk", "name"))
    by_name = {name: pk for pk, name in ids}
    gateway_set_desired(
        actor="bench",
        gateway_ids=list(by_name.values()),
        reason="bench",
        bundle_for={
            "routing_policy": default_policy(SERVICE, "interactive", None),
            "cache_config": default_cache_config(SERVICE),
        },
    )
    from django.db import connections

    connections.close_all()
    return [(by_name[f"gw-{i}"], token) for i, token in enumerate(tokens)], ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    port: int,
    workers: int,
    worker_class: str = "gthread",
    threads: int = 4,
    app: str = "controlplane.wsgi:application",
    server: str = "granian",
    access_log: bool = False,
) -> subprocess.Popen:
    env = dict(
        os.environ,
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-" + "x" * 40),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        THROTTLE_TOKEN="100000/min",
        THROTTLE_INGEST="100000/min",
        DATABASE_CONN_MAX_AGE="600",  # the threads keep their connections: their backends' CPU is counted
        # as deployed (compose, Kubernetes): throttles and the config poll's cache in Redis
        CACHE_URL=CACHE_URL,
    )
    if server == "granian":
        # as deployed (controlplane.webserver): granian's WSGI interface, workers x blocking threads
        from controlplane.webserver import web_command

        command = web_command(
            host="127.0.0.1",
            port=port,
            workers=workers,
            threads=threads,
            access_log=access_log,
            binary=str(Path(sys.executable).parent / "granian"),
            app=app,
        )
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "benchmarks"), str(ROOT)])
    process = subprocess.Popen(
        command
        if server == "granian"
        else [
            str(Path(sys.executable).parent / "gunicorn"),
            app,
            "--pythonpath",
            str(ROOT / "benchmarks"),
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--worker-class",
            worker_class,
            "--threads",
            str(threads),
            "--keep-alive",
            "5",
            "--backlog",
            "2048",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL if access_log else None,  # the access log is written, not kept
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise RuntimeError(f"{server} did not start")


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of processes (from /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def redis_cpu_s() -> float | None:
    """User + system CPU seconds of the Redis server (INFO cpu): the poll cache's reads. The server
    is shared with other work on the machine (brokers, caches), so this over-counts."""
    try:
        import redis

        info = redis.Redis.from_url(CACHE_URL).info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    except Exception:  # noqa: BLE001 - no Redis: nothing to count
        return None


def machine_busy_s() -> float:
    """CPU seconds all cores spent on anything but idle and iowait (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def worker_pids(master: int) -> list[int]:
    """The server's processes below its master, at any depth (granian's workers are grandchildren
    when it respawns them)."""
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    children = [int(p) for p in out.split()]
    return children + [pid for child in children for pid in worker_pids(child)]


def backend_pids() -> list[int]:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres") as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [DB_NAME]
        ).fetchall()
    return [r[0] for r in rows]


class Http:
    """A pool of HTTP/1.1 keep-alive connections; requests wait for a free one."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = asyncio.Queue()
        for _ in range(size):
            self.free.put_nowait(None)

    async def request(self, head: bytes, body: bytes = b"") -> int:
        conn = await self.free.get()
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = conn
            writer.write(head + body)
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("closed")
            status = int(status_line.split()[1])
            length, close = 0, False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and "close" in value.lower():
                    close = True
            if length:
                await reader.readexactly(length)
            if close:
                writer.close()
                conn = None
            return status
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
            if conn is not None:
                conn[1].close()
            conn = None
            return 0
        finally:
            self.free.put_nowait(conn)


def counters_json(variants: int) -> list[str]:
    from bench_ingest import minute_counters

    return [json.dumps(minute_counters(k), separators=(",", ":")) for k in range(variants)]


async def run_load(
    port: int, fleet: list[tuple[int, str]], args: argparse.Namespace, etag: str
) -> dict[str, Any]:
    http = Http(port, args.connections)
    counters = counters_json(50)
    rng = random.Random(7)
    loop = asyncio.get_running_loop()
    start = loop.time() + 1.0
    end = start + args.warmup + args.duration
    events: list[tuple[float, int, int]] = []  # (due, kind 0 poll / 1 push / 2 heartbeat, gateway index)
    for g in range(len(fleet)):
        t = start + rng.uniform(0, args.poll_s)
        while t < end and args.mix in ("both", "poll"):
            events.append((t, 0, g))
            t += args.poll_s
        t = start + rng.uniform(0, args.push_s)
        while t < end and args.mix in ("both", "push"):
            events.append((t, 1, g))
            t += args.push_s
        if args.mix == "heartbeat" or (args.mix == "both" and args.heartbeat_s > 0):
            t = start + rng.uniform(0, args.heartbeat_s)
            while t < end:
                events.append((t, 2, g))
                t += args.heartbeat_s
    events.sort()
    measured_from = start + args.warmup
    results: dict[int, list[tuple[float, int]]] = {0: [], 1: [], 2: []}
    pending: set[asyncio.Task[None]] = set()
    completed = {0: 0, 1: 0, 2: 0}  # every answered request, warm-up and drain included
    revision = int(etag.strip('"').removeprefix("rev-"))

    async def one(due: float, kind: int, g: int) -> None:
        gateway_id, token = fleet[g]
        if kind == 0:
            head = (
                f"GET /api/v1/gateways/{gateway_id}/config HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nIf-None-Match: {etag}\r\n\r\n"
            ).encode()
            body = b""
        elif kind == 2:  # what the reference gateway sends (gateway.app heartbeat_once)
            body = (
                f'{{"applied_revision":{revision},"config_etag":{json.dumps(etag)},"health":'
                f'{{"temperature_c":61.2,"memory_headroom_pct":38.5,"queue_depth":{1 + g % 3},"active_workers":4,'
                f'"backhaul_rtt_ms":35.0,"backhaul_healthy":true,"request_age_ms":30.0,'
                f'"accelerator_util_pct":52.4,"uptime_ticks":{g},"p95_ms":118.0}}}}'
            ).encode()
            head = (
                f"POST /api/v1/gateways/{gateway_id}/heartbeat/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
        else:
            now = time.time()
            minute = datetime.fromtimestamp((int(now // 60) - 1) * 60, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            sent_at = datetime.fromtimestamp(now, tz=UTC).isoformat()
            body = (
                f'{{"contract_version":1,"gateway":"gw-{g}","sent_at":"{sent_at}",'
                f'"minutes":[{{"minute":"{minute}","counters":{counters[g % len(counters)]}}}]}}'
            ).encode()
            head = (
                f"POST /api/v1/gateways/{gateway_id}/telemetry/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
        status = await http.request(head, body)
        completed[kind] += 1
        if due >= measured_from:
            results[kind].append((loop.time() - due, status))

    lag_max = 0.0
    for due, kind, g in events:
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            lag_max = max(lag_max, -delay)
        task = asyncio.create_task(one(due, kind, g))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=120)
    finished = loop.time()
    out: dict[str, Any] = {"dispatch_lag_max_s": round(lag_max, 3), "drain_s": round(finished - end, 1)}
    out["requests"] = len(events)
    out["answered"] = {"config_poll": completed[0], "telemetry_push": completed[1], "heartbeat": completed[2]}
    kinds = (
        (0, "config_poll", args.poll_s),
        (1, "telemetry_push", args.push_s),
        (2, "heartbeat", args.heartbeat_s),
    )
    for kind, label, interval in kinds:
        if not results[kind]:
            continue
        latencies = sorted(x for x, _ in results[kind])
        statuses: dict[str, int] = {}
        for _, status in results[kind]:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        n = len(latencies)

        def pct(q: float, latencies: list[float] = latencies, n: int = n) -> float | None:
            return round(latencies[min(n - 1, int(q * n))] * 1000, 1) if n else None

        out[label] = {
            "interval_s": interval,
            "offered_per_s": round(len(fleet) / interval, 1),
            "completed_per_s": round(n / args.duration, 1),
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "max_ms": round(latencies[-1] * 1000, 1) if n else None,
            "statuses": statuses,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateways", type=int, default=10_000)
    parser.add_argument("--poll-s", type=float, default=10.0)
    parser.add_argument("--push-s", type=float, default=60.0)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=48)
    # as deployed (controlplane.webserver: docker-compose.yml, deploy/kubernetes/web.yaml): granian,
    # 2 workers x 4 blocking threads, keep-alive. `--server gunicorn` is what ran before: 4 sync
    # workers (`--worker-class gthread --threads N` for gunicorn's threaded worker).
    parser.add_argument("--server", choices=["granian", "gunicorn"], default="granian")
    parser.add_argument("--workers", type=int, default=0, help="default: 2 for granian, 4 for gunicorn")
    parser.add_argument("--threads", type=int, default=0, help="default: 4 for granian, 1 for gunicorn")
    parser.add_argument("--worker-class", default="sync", help="gunicorn only")
    parser.add_argument(
        "--access-log", action="store_true", help="granian writes its access log (to /dev/null)"
    )
    parser.add_argument("--mix", choices=["both", "poll", "push", "heartbeat"], default="both")
    # the reference gateway heartbeats every 15 s; "both" sends heartbeats too only when this is set
    parser.add_argument("--heartbeat-s", type=float, default=0.0)
    # floor_app:application answers every request 304 at once: the web server's own cost per request
    parser.add_argument("--app", default="controlplane.wsgi:application")
    parser.add_argument("--out", default=str(RESULT))
    args = parser.parse_args()
    if args.mix == "heartbeat" and not args.heartbeat_s:
        args.heartbeat_s = 15.0
    granian = args.server == "granian"
    args.workers = args.workers or (2 if granian else 4)
    args.threads = args.threads or (4 if granian else 1)

    fleet, _ = setup(args.gateways)
    port = free_port()
    load_start = [round(x, 2) for x in os.getloadavg()]
    process = start_server(
        port, args.workers, args.worker_class, args.threads, args.app, args.server, args.access_log
    )
    try:
        # the ETag every gateway holds: a first poll without If-None-Match answers it
        import requests

        first_id, first_token = fleet[0]
        answer = requests.get(
            f"http://127.0.0.1:{port}/api/v1/gateways/{first_id}/config",
            headers={"Authorization": f"Bearer {first_token}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.status_code
        etag = answer.headers["ETag"]
        last_id, last_token = fleet[-1]
        check = requests.get(
            f"http://127.0.0.1:{port}/api/v1/gateways/{last_id}/config",
            headers={"Authorization": f"Bearer {last_token}", "If-None-Match": etag},
            timeout=30,
        )
        assert check.status_code == 304, check.status_code
        workers = worker_pids(process.pid)
        web_before = cpu_s(workers)
        backends = backend_pids()
        db_before = cpu_s(backends)
        redis_before, machine_before = redis_cpu_s(), machine_busy_s()
        clock = time.monotonic()
        client_before = resource.getrusage(resource.RUSAGE_SELF)
        measured = asyncio.run(run_load(port, fleet, args, etag))
        client_after = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic() - clock
        redis_after, machine_after = redis_cpu_s(), machine_busy_s()
        backends_after = backend_pids()
        web_cpu = cpu_s(workers) - web_before
        db_cpu = cpu_s(backends_after) - db_before  # backends opened during the run count from 0
    finally:
        process.terminate()
        process.wait(timeout=30)
    requests_total = max(1, sum(measured["answered"].values()))
    client_cpu = (client_after.ru_utime - client_before.ru_utime) + (
        client_after.ru_stime - client_before.ru_stime
    )
    kinds = [measured[k] for k in ("config_poll", "telemetry_push", "heartbeat") if k in measured]
    redis_cpu = (redis_after - redis_before) if redis_before is not None and redis_after is not None else 0.0
    server_cpu = web_cpu + db_cpu + redis_cpu
    machine_cpu = machine_after - machine_before
    offered = sum(r["offered_per_s"] for r in kinds)
    result = {
        "gateways": args.gateways,
        "server": args.server,
        "workers": args.workers,
        "worker_class": args.worker_class if not granian else "granian wsgi",
        "threads_per_worker": args.threads,
        "access_log": args.access_log if granian else False,
        "poll_cache": os.environ.get("FLEET_POLL_CACHE", "true"),
        "gateway_fast_path": os.environ.get("GATEWAY_FAST_PATH", "true"),
        "app": args.app,
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        **measured,
        "samples_per_push": len(json.loads(counters_json(1)[0])),
        "cpu": {
            "wall_s": round(wall, 1),
            "web_workers_s": round(web_cpu, 1),
            "postgres_backends_s": round(db_cpu, 1),
            "redis_server_s": round(redis_cpu, 1),
            "load_generator_s": round(client_cpu, 1),
            "machine_busy_s": round(machine_cpu, 1),
            "per": "answered request (both kinds together unless --mix poll or push)",
            "web_ms_per_request": round(1000 * web_cpu / requests_total, 3),
            "postgres_ms_per_request": round(1000 * db_cpu / requests_total, 3),
            "redis_ms_per_request": round(1000 * redis_cpu / requests_total, 3),
            # what the control plane costs per request: web workers + PostgreSQL + Redis
            "server_ms_per_request": round(1000 * server_cpu / requests_total, 3),
            "load_generator_ms_per_request": round(1000 * client_cpu / requests_total, 3),
            "web_cores_busy": round(web_cpu / wall, 2),
            "postgres_cores_busy": round(db_cpu / wall, 2),
            "server_cores_busy": round(server_cpu / wall, 2),
            "load_generator_cores_busy": round(client_cpu / wall, 2),
            # everything else the machine ran meanwhile (other developers' work): what was left
            "other_work_cores_busy": round(max(0.0, machine_cpu - server_cpu - client_cpu) / wall, 2),
            # the offered rate times the measured cost: cores the control plane needs to keep up
            "server_cores_for_offered_rate": round(offered * server_cpu / requests_total, 2),
            "with_load_generator_cores_for_offered_rate": round(
                offered * (server_cpu + client_cpu) / requests_total, 2
            ),
        },
        "mix": args.mix,
        # sustained: (nearly) every due request answered, as the right status, and 99% of them
        # within the gateway's interval (a later answer delays its next poll or push)
        "sustained": all(
            r["completed_per_s"] >= 0.97 * r["offered_per_s"]
            and r["p99_ms"] is not None
            and r["p99_ms"] < 1000 * r["interval_s"]
            and set(r["statuses"]) <= ({"304"} if r is measured.get("config_poll") else {"200", "202"})
            for r in kinds
        ),
        "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
        "cores": os.cpu_count(),
        "note": "load generator, web server and PostgreSQL share the machine's 2 cores with other work",
    }
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/{DB_NAME}") as conn:
        # what the pushes stored: rows and bytes (heap + indexes) per row of each minute table
        result["stored"] = {}
        for table in ("slo_seriesminute", "slo_sliminute", "slo_pushedminute"):
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            size = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
                "WHERE inhparent = %s::regclass",
                [table],
            ).fetchone()[0]
            result["stored"][table] = {"rows": rows, "bytes_per_row": round(size / rows) if rows else None}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


if __name__ == "__main__":
    main()
