"""Resident memory of one reference gateway process under simulated traffic.

Starts `python -m gateway` with 200 requests/s of simulated traffic, pushes a signed config,
scrapes /metrics every second for BENCH_DURATION_S seconds, and samples VmRSS from /proc.

Run: .venv/bin/python benchmarks/bench_gateway_memory.py
Target: <= 150 MB RSS.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from controlplane.lib.signing import SIGNATURE_HEADER, sign  # noqa: E402
from gateway.launch import start_gateway, stop_gateways, wait_ready  # noqa: E402
from routing.fleet.bundle import bundle_bytes  # noqa: E402
from routing.policy import default_cache_config, default_policy  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "gateway_memory.json"
DURATION_S = int(os.environ.get("BENCH_DURATION_S", "30"))
RPS = 200
SECRET = "whsec_bench-memory"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix="gw-mem-"))
    config = folder / "gateway.toml"
    config.write_text(
        f'[gateway]\nname = "mem"\nservice = "shelf-vision"\nlisten = "127.0.0.1:{port}"\n'
        f'state_dir = "{folder / "state"}"\nsigning_secret = "{SECRET}"\n[traffic]\nrps = {RPS}\n'
    )
    process = start_gateway(config)
    try:
        assert wait_ready("127.0.0.1", port, process=process), (folder / "gateway.log").read_text()
        started_rss = rss_mb(process.pid)
        bundle = {
            "revision": 1,
            "service": "shelf-vision",
            "routing_policy": default_policy("shelf-vision", "interactive", None),
            "cache_config": default_cache_config("shelf-vision"),
            "model_version": "v1",
        }
        body = bundle_bytes(bundle)
        ack = requests.post(
            f"http://127.0.0.1:{port}/config",
            data=body,
            headers={SIGNATURE_HEADER: sign(SECRET, body, timestamp=int(time.time()))},
            timeout=10,
        )
        assert ack.status_code == 200, ack.text
        samples, scrape_ms = [], []
        for _ in range(DURATION_S):
            t0 = time.perf_counter()
            requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
            scrape_ms.append((time.perf_counter() - t0) * 1000)
            samples.append(rss_mb(process.pid))
            time.sleep(1)
        status = requests.get(f"http://127.0.0.1:{port}/status", timeout=10).json()
    finally:
        stop_gateways([process])
    result = {
        "rss_mb_at_start": round(started_rss, 1),
        "rss_mb_max": round(max(samples), 1),
        "rss_mb_end": round(samples[-1], 1),
        "simulated_rps": RPS,
        "duration_s": DURATION_S,
        "requests_in_status_window": status["traffic"]["requests"],
        "metrics_scrape_ms_median": round(sorted(scrape_ms)[len(scrape_ms) // 2], 2),
        "target_mb": 150,
        "met": max(samples) <= 150,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "note": "shared 2-core machine; RSS does not depend on load",
        },
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
