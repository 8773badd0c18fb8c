"""Push ingest through HTTP, sustained, beside raw COPY of the same rows in the same run.

What is timed:
- HTTP: gunicorn started as production starts it (`controlplane.wsgi`, sync workers, 4 by default as
  in docker-compose.yml and deploy/kubernetes/web.yaml, DEBUG off) on this run's own database; ONE
  client process (this one) keeps `--connections` keep-alive connections busy for `--seconds`
  (default 60) POSTing real push batches (contract_version 1, 10 minutes x ~100 series of one
  gateway, JSON) to /api/v1/gateways/<id>/telemetry/ with each gateway's bearer token. Each
  request goes through gateway-token authentication, throttling, JSON parsing, validation,
  derivation of the SLI minutes of 4 SLOs and storage in one transaction, exactly as in production.
  A *sample* is one series' value in one minute (one `SeriesMinute` row); every sample sent is
  checked to be stored.
- COPY reference: the rows the HTTP run stored (`SeriesMinute` and the derived `SliMinute`) are
  dumped, both tables truncated, and the same rows COPYed back into the same tables from one
  process, one transaction per batch (the HTTP path commits once per batch too). The client-side
  rendering of COPY text is not timed (the rows are already in COPY format): it is the raw storage
  speed of the same tables with the same indexes.

Not timed: building the request bodies (cached JSON fragments, a few microseconds each), database
setup, gateway registration. The hourly rollups the ingest enqueues go to an in-memory broker and
are not run. Everything (client, gunicorn, PostgreSQL) shares the machine's 2 cores with whatever
else runs there; the load average at start and end is recorded.

When the HTTP rate misses its targets, `--profile-seconds` (default 20) reruns the HTTP load with
pyinstrument inside every gunicorn worker and stores the heaviest frames.

    .venv/bin/python benchmarks/bench_ingest_http.py [--seconds 60] [--connections 4] [--workers 4]
    # writes benchmarks/results/ingest_http.json
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_ingest import MINUTES_PER_BATCH, SERVICE, minute_counters, seed  # noqa: E402

DB_NAME = os.environ.get("BENCH_INGEST_HTTP_DB", "cp_bench_ingest_http")
SERVER_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
RESULTS = ROOT / "benchmarks" / "results" / "ingest_http.json"
TARGET_PER_S = 100_000
TARGET_RATIO_OF_COPY = 0.5
GATEWAYS = 150  # each gateway's minutes stay within the last 14 h for 60 s, even at 200,000 samples/s
VARIANTS = 630  # distinct counter sets (values only differ; the series are the same)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def setup_database() -> str:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    url = f"{SERVER_URL}/{DB_NAME}"
    os.environ["DATABASE_URL"] = url
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-ingest-http-" + "x" * 40)
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url


def drop_database() -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def register_gateways() -> list[tuple[int, str]]:
    from routing.fleet.services import gateway_register

    out = []
    for g in range(GATEWAYS):
        creds = gateway_register(
            actor=None, data={"name": f"bench-gw-{g}", "service": SERVICE, "tier": "edge"}
        )
        out.append((creds.gateway.pk, creds.token))
    return out


class Bodies:
    """Real push batches built from cached JSON fragments: gateway g's n-th batch carries minutes
    first + (n*10 .. n*10+9) of that gateway. Thread-safe batch numbering per gateway."""

    def __init__(self, first_minute: datetime) -> None:
        self.first = first_minute
        self.fragments = [json.dumps(minute_counters(k)) for k in range(VARIANTS)]
        self.samples = [len(minute_counters(k)) for k in range(VARIANTS)]
        self.next_batch = [0] * GATEWAYS
        self.lock = threading.Lock()

    def take(self, gateway: int) -> tuple[bytes, int]:
        with self.lock:
            n = self.next_batch[gateway]
            self.next_batch[gateway] = n + 1
        parts, samples = [], 0
        for m in range(MINUTES_PER_BATCH):
            k = n * MINUTES_PER_BATCH + m
            minute = (self.first + timedelta(minutes=k)).strftime("%Y-%m-%dT%H:%M:00Z")
            variant = (k + gateway) % VARIANTS
            parts.append(f'{{"minute":"{minute}","counters":{self.fragments[variant]}}}')
            samples += self.samples[variant]
        body = f'{{"contract_version":1,"gateway":"bench-gw-{gateway}","minutes":[{",".join(parts)}]}}'
        return body.encode(), samples


def start_gunicorn(port: int, workers: int, workdir: Path, config: Path | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THROTTLE_", "SECURE_"))}
    env.update(
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",  # plain HTTP on loopback (TLS terminates at the proxy in production)
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        CELERY_BROKER_URL="memory://",
    )
    binary = str(Path(sys.executable).with_name("gunicorn"))
    args = [binary, "controlplane.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    # a profiled worker writes its profile on exit: give it time to
    args += ["--timeout", "120", "--graceful-timeout", "60" if config else "10", "--log-level", "warning"]
    if config:
        args += ["--config", str(config)]
    log = (workdir / "gunicorn.log").open("ab")
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status < 500:
                return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise RuntimeError("gunicorn did not start: " + (workdir / "gunicorn.log").read_text()[-2000:])


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def workers_cpu_s(master: subprocess.Popen) -> float:
    """CPU seconds (user + system) used so far by the gunicorn workers (children of the master)."""
    total = 0.0
    for child in Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split():
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def drive(port: int, tokens: list[tuple[int, str]], bodies: Bodies, seconds: float, connections: int) -> dict:
    """`connections` threads of this one process, each with one keep-alive connection, POST batches
    back to back for `seconds`; gateways are shared round-robin between them."""
    stop_at = time.perf_counter() + seconds
    results: list[tuple[int, int, list[float], list[str]]] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = [g for g in range(GATEWAYS) if g % connections == index]
        sent = samples = 0
        latencies: list[float] = []
        errors: list[str] = []
        i = 0
        while time.perf_counter() < stop_at:
            g = mine[i % len(mine)]
            i += 1
            body, n = bodies.take(g)
            gateway_id, token = tokens[g]
            t0 = time.perf_counter()
            conn.request(
                "POST",
                f"/api/v1/gateways/{gateway_id}/telemetry/",
                body,
                {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )
            response = conn.getresponse()
            payload = response.read()
            latencies.append(time.perf_counter() - t0)
            if response.status != 202:
                errors.append(f"{response.status} {payload[:300]!r}")
                if len(errors) > 5:
                    break
                continue
            sent += 1
            samples += n
        conn.close()
        with lock:
            results.append((sent, samples, latencies, errors))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    cpu0 = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r[2])
    errors = [e for r in results for e in r[3]]
    samples = sum(r[1] for r in results)
    return {
        "seconds": round(elapsed, 2),
        "batches": sum(r[0] for r in results),
        "samples": samples,
        "samples_per_s": round(samples / elapsed),
        "batches_per_s": round(sum(r[0] for r in results) / elapsed, 1),
        "request_ms_p50": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "request_ms_p95": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1) if latencies else None,
        "client_cpu_s": round(time.process_time() - cpu0, 1),
        "errors": errors[:5],
    }


def copy_reference(batches: int) -> dict:
    """Dump what the HTTP run stored, truncate, COPY the same rows back, one transaction per batch."""
    import psycopg

    from slo.models.telemetry import SeriesMinute, SliMinute

    series_table, sli_table = SeriesMinute._meta.db_table, SliMinute._meta.db_table
    series_cols = "minute, value, source, name, service, tier, labels"
    sli_cols = "slo_id, minute, source, good, valid, present"
    dsn = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        dumps = {}
        for table, cols in ((series_table, series_cols), (sli_table, sli_cols)):
            buffer = io.BytesIO()
            with conn.cursor().copy(
                f"COPY (SELECT {cols} FROM {table} ORDER BY source, minute) TO STDOUT"
            ) as cp:
                for data in cp:
                    buffer.write(data)
            dumps[table] = buffer.getvalue().splitlines(keepends=True)
        conn.execute(f"TRUNCATE {series_table}, {sli_table}")
        conn.execute(f"VACUUM ANALYZE {series_table}, {sli_table}")
    series_lines, sli_lines = dumps[series_table], dumps[sli_table]
    per_series = -(-len(series_lines) // batches)
    per_sli = -(-len(sli_lines) // batches)
    chunks = [
        (
            b"".join(series_lines[i * per_series : (i + 1) * per_series]),
            b"".join(sli_lines[i * per_sli : (i + 1) * per_sli]),
        )
        for i in range(batches)
    ]
    del dumps, series_lines, sli_lines
    with psycopg.connect(dsn) as conn:
        started = time.perf_counter()
        for series, sli in chunks:
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(f"COPY {series_table} ({series_cols}) FROM STDIN") as cp:
                    cp.write(series)
                if sli:
                    with cur.copy(f"COPY {sli_table} ({sli_cols}) FROM STDIN") as cp:
                        cp.write(sli)
        elapsed = time.perf_counter() - started
        stored = conn.execute(f"SELECT count(*) FROM {series_table}").fetchone()[0]
    return {
        "seconds": round(elapsed, 2),
        "transactions": batches,
        "series_rows": stored,
        "samples_per_s": round(stored / elapsed),
    }


PROFILE_CONFIG = """
import os
from pyinstrument import Profiler

_profiler = None
_requests = 0

def pre_request(worker, req):
    # start after a few requests: the lazy imports of the first request are not the steady state
    global _profiler, _requests
    _requests += 1
    if _requests == 5:
        _profiler = Profiler(interval=0.002)
        _profiler.start()

def worker_exit(server, worker):
    if _profiler is not None:
        _profiler.stop()
        folder = os.environ["BENCH_PROFILE_DIR"]
        from pyinstrument.renderers import JSONRenderer
        for suffix, text in (
            ("txt", _profiler.output_text(unicode=False, color=False, show_all=False)),
            ("json", _profiler.output(JSONRenderer())),
        ):
            path = os.path.join(folder, f"worker-{os.getpid()}.{suffix}")
            with open(path + ".part", "w") as out:  # renamed when whole: a killed worker leaves no half file
                out.write(text)
            os.replace(path + ".part", path)
"""


def _self_time(frame: dict, totals: dict[str, float]) -> None:
    children = frame.get("children", [])
    own = frame["time"] - sum(c["time"] for c in children)
    key = f"{frame['function']} ({Path(frame.get('file_path_short') or frame.get('file_path') or '?').name})"
    totals[key] = totals.get(key, 0.0) + own
    for child in children:
        _self_time(child, totals)


def _group_time(
    frame: dict, groups: dict[str, float], marks: dict[str, tuple[str, ...]], inside: str | None = None
) -> None:
    """Total time under the first frame matching each group (not double-counted when nested)."""
    name = f"{frame.get('file_path') or ''}:{frame['function']}"
    hit = inside
    if inside is None:
        for group, needles in marks.items():
            if any(n in name for n in needles):
                groups[group] = groups.get(group, 0.0) + frame["time"]
                hit = group
                break
    for child in frame.get("children", []):
        _group_time(child, groups, marks, hit)


def profile_run(
    port_workers: int, tokens: list, bodies: Bodies, seconds: float, connections: int, workdir: Path
) -> dict:
    folder = workdir / "profile"
    folder.mkdir(exist_ok=True)
    config = workdir / "gunicorn_profile.py"
    config.write_text(PROFILE_CONFIG)
    os.environ["BENCH_PROFILE_DIR"] = str(folder)
    port = free_port()
    server = start_gunicorn(port, port_workers, workdir, config)
    try:
        drive(port, tokens, bodies, 3, connections)  # warm-up (imports happen on first request)
        run = drive(port, tokens, bodies, seconds, connections)
    finally:
        stop(server)
    totals: dict[str, float] = {}
    groups: dict[str, float] = {}
    marks = {
        "PostgreSQL (time inside psycopg: round trips, COPY, commit)": ("/psycopg/",),
        "JSON parsing of the body": ("json/decoder.py", "parsers.py:parse", "json/__init__.py:loads"),
        "batch validation (parse_push_batch)": ("slo/telemetry/batch.py",),
        "SLI derivation (derive_sli_rows)": ("slo/telemetry/derive.py",),
        "statement building (push_write)": ("slo/telemetry/push_write.py",),
        "authentication + throttling": ("authentication.py", "throttling.py"),
    }
    total = 0.0
    texts = []
    workers_read = 0
    for path in sorted(folder.glob("worker-*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        workers_read += 1
        root = data.get("root_frame") or data
        handling: dict[str, float] = {}
        _group_time(root, handling, {"busy": ("workers/sync.py:handle_request",)})
        total += handling.get("busy", 0.0)
        _self_time(root, totals)
        _group_time(root, groups, marks)
    for path in sorted(folder.glob("worker-*.txt"))[:1]:
        texts.append(path.read_text()[:12000])
    busy = total or 1.0
    return {
        "seconds": seconds,
        "http_during_profile": run,
        "profiled_worker_seconds": round(total, 1),
        "workers_profiled": workers_read,
        "share_by_area": {k: round(v / busy, 3) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
        "top_self_time": [
            {"frame": k, "share": round(v / busy, 3)}
            for k, v in sorted(totals.items(), key=lambda kv: -kv[1])[:15]
        ],
        "one_worker_tree": texts[0] if texts else None,
        "note": "shares of the time the gunicorn workers spent handling requests (sync.py "
        "handle_request), sampled by pyinstrument every 2 ms from the 5th request of each worker on; "
        "top_self_time also holds idle frames of the accept loop",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--connections", type=int, default=4, help="keep-alive connections of the one client process"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (production default 4)")
    parser.add_argument("--profile-seconds", type=float, default=20, help="0: never profile")
    args = parser.parse_args()
    loads = {"start": _load()}
    started_at = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-http-"))
    setup_database()
    try:
        seed()
        tokens = register_gateways()
        from django.db import connections

        connections.close_all()
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        bodies = Bodies(now - timedelta(hours=14))
        port = free_port()
        server = start_gunicorn(port, args.workers, workdir)
        try:
            warm = drive(port, tokens, bodies, 3, args.connections)  # imports, plans, connections
            loads["http_start"] = _load()
            cpu0 = workers_cpu_s(server)
            http_run = drive(port, tokens, bodies, args.seconds, args.connections)
            worker_cpu = workers_cpu_s(server) - cpu0
            loads["http_end"] = _load()
            http_run["gunicorn_workers_cpu_s"] = round(worker_cpu, 1)
            # The web tier's own CPU cost (PostgreSQL's is not included: its backends come and go):
            # what the workers would sustain on one otherwise idle core if CPU were the only limit.
            http_run["samples_per_worker_cpu_s"] = (
                round(http_run["samples"] / worker_cpu) if worker_cpu else None
            )
        finally:
            stop(server)
        if http_run["errors"]:
            raise SystemExit(f"HTTP ingest failed: {http_run['errors']}")
        from slo.models.telemetry import SeriesMinute

        stored = SeriesMinute.objects.count()
        expected = warm["samples"] + http_run["samples"]
        assert stored == expected, f"stored {stored} series minutes, sent {expected}"
        connections.close_all()
        copy = copy_reference(warm["batches"] + http_run["batches"])
        assert copy["series_rows"] == stored, "COPY stored a different number of rows"
        loads["copy_end"] = _load()
        ratio = http_run["samples_per_s"] / copy["samples_per_s"]
        met = http_run["samples_per_s"] >= TARGET_PER_S and ratio >= TARGET_RATIO_OF_COPY
        profile = None
        if not met and args.profile_seconds > 0:
            connections.close_all()
            profile = profile_run(
                args.workers, tokens, bodies, args.profile_seconds, args.connections, workdir
            )
        loads["end"] = _load()
    finally:
        drop_database()
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "benchmark": "push ingest through HTTP (gunicorn, gateway tokens, JSON) from one client process, beside raw COPY",
        "http": http_run,
        "copy_reference": copy,
        "http_over_copy": round(ratio, 3),
        "target_samples_per_s": TARGET_PER_S,
        "target_ratio_of_copy": TARGET_RATIO_OF_COPY,
        "met": met,
        "samples_per_batch": round(http_run["samples"] / max(http_run["batches"], 1)),
        "minutes_per_batch": MINUTES_PER_BATCH,
        "slos_fed_per_batch": 4,
        "gunicorn_workers": args.workers,
        "client_connections": args.connections,
        "rows_checked": {"series_minutes_stored": stored, "samples_sent_incl_warmup": expected},
        "profile": profile,
        "load_average_1_5_15": loads,
        "machine": {
            "cpus": os.cpu_count(),
            "shared": "2 cores shared with other work (other helpers' tests and benchmarks); "
            "client, gunicorn and PostgreSQL all run on them",
        },
        "started_at": started_at.isoformat(),
        "measured_at": datetime.now(UTC).isoformat(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "profile"}, indent=2))
    if profile:
        print(json.dumps({k: v for k, v in profile.items() if k != "one_worker_tree"}, indent=2))


if __name__ == "__main__":
    main()
