"""A real Alertmanager for tests (Debian's `prometheus-alertmanager`), in a tmp dir on a free port.

The config is checked with `amtool check-config` before start. Clustering is off (no gossip port).
Optionally every notification goes to a webhook URL (with `send_resolved`), so a test can see what
on-call would be told.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.prometheus import free_port

ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"
AMTOOL_BIN = "/usr/bin/amtool"


def require_alertmanager() -> tuple[str, str]:
    """(alertmanager, amtool), or fail on CI / skip on a developer machine without them."""
    binary = shutil.which("prometheus-alertmanager") or (
        ALERTMANAGER_BIN if os.path.exists(ALERTMANAGER_BIN) else None
    )
    amtool = shutil.which("amtool") or (AMTOOL_BIN if os.path.exists(AMTOOL_BIN) else None)
    if binary is None or amtool is None:
        msg = "prometheus-alertmanager/amtool not installed: apt-get install prometheus-alertmanager"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return binary, amtool


def alertmanager_config(*, resolve_timeout_s: int, webhook_url: str | None) -> str:
    """One route, grouping by alertname, flushing every second so tests see changes quickly."""
    receiver = (
        f"  - name: hook\n    webhook_configs:\n      - url: '{webhook_url}'\n        send_resolved: true\n"
        if webhook_url
        else "  - name: hook\n"
    )
    return (
        f"global:\n  resolve_timeout: {resolve_timeout_s}s\n"
        "route:\n  receiver: hook\n  group_by: [alertname]\n"
        "  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        f"receivers:\n{receiver}"
    )


class AlertmanagerServer:
    def __init__(
        self, workdir: Path, *, resolve_timeout_s: int = 300, webhook_url: str | None = None
    ) -> None:
        self.binary, self.amtool = require_alertmanager()
        self.workdir = workdir
        self.port = free_port()
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(
            alertmanager_config(resolve_timeout_s=resolve_timeout_s, webhook_url=webhook_url)
        )
        self.log_path = workdir / "alertmanager.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> AlertmanagerServer:
        subprocess.run([self.amtool, "check-config", str(self.config)], check=True, capture_output=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"alertmanager exited: {self.log_path.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"alertmanager not ready after {timeout_s}s: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def alerts(self) -> list[dict[str, Any]]:
        """GET /api/v2/alerts: the alerts Alertmanager holds as not yet ended (resolved ones are left out)."""
        response = requests.get(f"{self.url}/api/v2/alerts", timeout=5)
        response.raise_for_status()
        return list(response.json())

    def post(self, alerts: list[dict[str, Any]]) -> None:
        requests.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5).raise_for_status()
