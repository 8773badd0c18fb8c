"""Start reference gateways as subprocesses (the demo run script and the tests use this).

    python -m gateway.launch var/gateways      # every */gateway.toml below the folder

Each gateway runs `python -m gateway --config <file>` from the repository root; logs go to
`<config folder>/gateway.log`. Ctrl-C or SIGTERM stops them all.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def gateway_command(config_path: Path | str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gateway", "--config", str(config_path), *extra]


def listen_address(config_path: Path | str) -> tuple[str, int]:
    listen = tomllib.loads(Path(config_path).read_text())["gateway"]["listen"]
    host, _, port = str(listen).rpartition(":")
    return host or "127.0.0.1", int(port)


def start_gateway(config_path: Path | str, *extra: str, log_path: Path | None = None) -> subprocess.Popen:
    log_path = log_path or Path(config_path).with_name("gateway.log")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            gateway_command(config_path, *extra),
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_ready(
    host: str, port: int, *, timeout_s: float = 20.0, process: subprocess.Popen | None = None
) -> bool:
    """True once the port accepts connections; False on timeout or if the process exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def start_gateways(config_paths: Iterable[Path | str], *, timeout_s: float = 30.0) -> list[subprocess.Popen]:
    """Start one process per config and wait until each listens."""
    processes = []
    for path in config_paths:
        process = start_gateway(path)
        processes.append(process)
        host, port = listen_address(path)
        if not wait_ready(host, port, timeout_s=timeout_s, process=process):
            stop_gateways(processes)
            raise RuntimeError(f"gateway {path} did not start (see {Path(path).with_name('gateway.log')})")
    return processes


def stop_gateways(processes: Iterable[subprocess.Popen], *, timeout_s: float = 10.0) -> None:
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gateway.launch <state dir holding */gateway.toml>", file=sys.stderr)
        return 2
    configs = sorted(Path(args[0]).glob("*/gateway.toml"))
    if not configs:
        print(f"no */gateway.toml under {args[0]}", file=sys.stderr)
        return 2
    processes = start_gateways(configs)
    print(
        f"started {len(processes)} gateways: "
        + ", ".join(f"{c.parent.name} (pid {p.pid})" for c, p in zip(configs, processes, strict=True))
    )
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping and all(p.poll() is None for p in processes):
        time.sleep(0.5)
    stop_gateways(processes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
