"""Peak resident memory of one reference gateway under sustained external HTTP load.

Starts `python -m gateway` (its simulated traffic loop playing `--rps` requests/s through the
routing policy, as in production use of the reference gateway), then a SEPARATE load-generator
process (this script with `--load-generator`) drives the gateway's HTTP endpoints for `--seconds`
(default 60) over keep-alive connections: signed config pushes with a new revision each time
(POST /config: signature check, JSON parse, policy compile, state file write), /status, /metrics
and /healthz. Meanwhile this process samples /proc/<gateway pid>/status every 0.25 s: VmRSS
(current) and VmHWM (the kernel's high-water mark, so a peak between samples is not missed).

The reference gateway has no inference request endpoint: its inference traffic is simulated
in-process by its traffic loop (`[traffic] rps`). So "load it does not generate itself" is every
HTTP endpoint it serves, driven by the external process, on top of that simulated traffic.

Reported: RSS at start (ready, before any push), VmHWM at the end (the peak), the RSS series, the
requests the load generator completed by endpoint, and the load average at start and end (the
machine's 2 cores are shared with other work; RSS hardly depends on load, request rates do).

Run: .venv/bin/python benchmarks/bench_gateway_memory.py [--seconds 60] [--rps 200] [--connections 8]
Target: peak <= 150 MB.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "gateway_memory.json"
SECRET = "whsec_bench-memory"
TARGET_MB = 150


def proc_status_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(line.split()[1]) / 1024
    return out


def _bundle(revision: int) -> bytes:
    from routing.fleet.bundle import bundle_bytes
    from routing.policy import default_cache_config, default_policy

    return bundle_bytes(
        {
            "revision": revision,
            "service": "shelf-vision",
            "routing_policy": default_policy("shelf-vision", "interactive", None),
            "cache_config": default_cache_config("shelf-vision"),
            "model_version": f"v{revision}",
        }
    )


def load_generator(port: int, seconds: float, connections: int) -> None:
    """The external load: `connections` threads, each with a keep-alive connection; thread 0 pushes
    signed configs back to back, the others cycle /status, /metrics, /healthz. Prints a JSON summary."""
    from controlplane.lib.signing import SIGNATURE_HEADER, sign

    stop_at = time.perf_counter() + seconds
    counts: dict[str, int] = {}
    errors: dict[str, int] = {}
    lock = threading.Lock()
    revision = [1]

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: dict[str, int] = {}
        bad: dict[str, int] = {}
        paths = ("/status", "/metrics", "/healthz")
        i = 0
        while time.perf_counter() < stop_at:
            if index == 0:
                with lock:
                    revision[0] += 1
                    rev = revision[0]
                body = _bundle(rev)
                headers = {SIGNATURE_HEADER: sign(SECRET, body, timestamp=int(time.time()))}
                conn.request("POST", "/config", body, headers)
                key = "POST /config"
            else:
                key = "GET " + paths[i % len(paths)]
                conn.request("GET", paths[i % len(paths)])
            i += 1
            response = conn.getresponse()
            response.read()
            mine[key] = mine.get(key, 0) + 1
            if response.status != 200:
                bad[key] = bad.get(key, 0) + 1
        conn.close()
        with lock:
            for k, v in mine.items():
                counts[k] = counts.get(k, 0) + v
            for k, v in bad.items():
                errors[k] = errors.get(k, 0) + v

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": round(elapsed, 1),
                "requests": counts,
                "non_200": errors,
                "requests_per_s": round(sum(counts.values()) / elapsed, 1),
                "last_revision_pushed": revision[0],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_DURATION_S", "60")))
    parser.add_argument("--rps", type=int, default=200, help="the gateway's simulated inference traffic")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--load-generator", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_generator:
        load_generator(args.load_generator, args.seconds, args.connections)
        return

    from gateway.launch import start_gateway, stop_gateways, wait_ready

    loads = {"start": [round(x, 2) for x in os.getloadavg()]}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix="gw-mem-"))
    config = folder / "gateway.toml"
    config.write_text(
        f'[gateway]\nname = "mem"\nservice = "shelf-vision"\nlisten = "127.0.0.1:{port}"\n'
        f'state_dir = "{folder / "state"}"\nsigning_secret = "{SECRET}"\n[traffic]\nrps = {args.rps}\n'
    )
    process = start_gateway(config)
    series: list[dict[str, float]] = []
    try:
        assert wait_ready("127.0.0.1", port, process=process), (folder / "gateway.log").read_text()
        at_start = proc_status_mb(process.pid)
        generator = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--load-generator",
                str(port),
                "--seconds",
                str(args.seconds),
                "--connections",
                str(args.connections),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        t0 = time.perf_counter()
        while generator.poll() is None:
            sample = proc_status_mb(process.pid)
            series.append(
                {"t_s": round(time.perf_counter() - t0, 2), **{k: round(v, 1) for k, v in sample.items()}}
            )
            time.sleep(0.25)
        output = generator.stdout.read().decode() if generator.stdout else ""
        assert generator.returncode == 0, f"load generator failed: {output}"
        load = json.loads(output.strip().splitlines()[-1])
        at_end = proc_status_mb(process.pid)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/status")
        status = json.loads(conn.getresponse().read())
        loads["end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        stop_gateways([process])
    peak = max(at_end["VmHWM"], max(s["VmRSS"] for s in series))
    result = {
        "benchmark": "reference gateway memory under sustained external HTTP load",
        "rss_mb_at_start": round(at_start["VmRSS"], 1),
        "peak_rss_mb": round(peak, 1),
        "rss_mb_end": round(at_end["VmRSS"], 1),
        "vmhwm_mb_end": round(at_end["VmHWM"], 1),
        "external_load": load,
        "simulated_inference_rps": args.rps,
        "simulated_requests_in_status_window": status["traffic"]["requests"],
        "applied_revision_at_end": status.get("applied_revision") or status.get("revision"),
        "rss_series_mb": series[:: max(1, len(series) // 60)],
        "target_mb": TARGET_MB,
        "met": peak <= TARGET_MB,
        "load_average_1_5_15": loads,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "note": "2 cores shared with other work and with the load generator; RSS hardly depends on load",
        },
        "measured_at": datetime.now(UTC).isoformat(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rss_series_mb"}, indent=2))


if __name__ == "__main__":
    main()
