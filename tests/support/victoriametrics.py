"""A real VictoriaMetrics for tests (Debian's `victoria-metrics`, single node), in a tmp dir on a free
port, loaded with a `History` through its Prometheus text import (timestamps in milliseconds).

    server = VictoriaMetricsServer(tmp_path, basic_auth=("reader", "pw")).start()
    server.load(history)          # import, flush, and wait until every series is queryable
    server.stop()

Like tests/support/prometheus.py, a missing binary fails the test on CI (`CI=true`) and skips it on
a developer machine (scripts/install-deploy-tools.sh installs it).
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.support.prometheus import History
from tests.support.servers import ServerProcess, find_binary, missing_binary

VICTORIA_METRICS_BIN = "/usr/bin/victoria-metrics"


def require_victoria_metrics() -> str:
    binary = find_binary("victoria-metrics", path=VICTORIA_METRICS_BIN)
    if binary is None:
        missing_binary("victoria-metrics not installed: run scripts/install-deploy-tools.sh")
    return binary


class VictoriaMetricsServer(ServerProcess):
    name = "victoria-metrics"

    def __init__(self, workdir: Path, *, basic_auth: tuple[str, str] | None = None) -> None:
        self.binary = require_victoria_metrics()
        super().__init__(workdir)
        self.basic_auth = basic_auth

    def start(self, timeout_s: float = 30) -> VictoriaMetricsServer:
        args = [
            self.binary,
            f"-storageDataPath={self.workdir / 'data'}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=1y",
            "-loggerLevel=WARN",
        ]
        if self.basic_auth:
            args += [f"-httpAuth.username={self.basic_auth[0]}", f"-httpAuth.password={self.basic_auth[1]}"]
        self.launch(args, "/health", timeout_s)
        return self

    def load(self, history: History, timeout_s: float = 60) -> None:
        """Import every sample of `history`, flush, and wait until all its series answer a query."""
        lines = []
        for series in history.series:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(series.labels.items()))
            for ts, value in series.samples(history.start_s):
                lines.append(f"{series.name}{{{labels}}} {value} {int(ts * 1000)}")
        response = requests.post(
            f"{self.url}/api/v1/import/prometheus",
            data="\n".join(lines) + "\n",
            auth=self.basic_auth,
            timeout=60,
        )
        response.raise_for_status()
        requests.get(f"{self.url}/internal/force_flush", auth=self.basic_auth, timeout=30).raise_for_status()
        wanted = len(history.series)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = requests.get(
                f"{self.url}/api/v1/series",
                params={
                    "match[]": '{__name__=~".+"}',
                    "start": str(history.start_s),
                    "end": str(history.start_s + history.minutes * 60),
                },
                auth=self.basic_auth,
                timeout=10,
            )
            if found.status_code == 200 and len(found.json().get("data", [])) >= wanted:
                return
            time.sleep(0.5)
        raise RuntimeError(f"victoria-metrics did not show {wanted} series after {timeout_s}s: {self.log()}")
