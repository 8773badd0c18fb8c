"""A real Alertmanager for tests (Debian's `prometheus-alertmanager`), in a tmp dir on a free port.

    server = AlertmanagerServer(tmp_path)
    url = server.start(webhook_config(receiver_url, bearer="amw_..."))  # any config YAML
    server.post_alerts([{"labels": {...}, "startsAt": "..."}])            # POST /api/v2/alerts
    server.stop()

or the `alertmanager` fixture (stopped after the test). The config is checked with
`amtool check-config` first, so a bad config fails with amtool's reason rather than a dead process.
Clustering is off (no gossip port to collide on). A missing binary fails the test on CI (`CI=true`)
and skips it on a developer machine (tests/support/servers.py).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.servers import ServerProcess, find_binary, missing_binary

ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"
AMTOOL_BIN = "/usr/bin/amtool"


def alertmanager_binaries() -> tuple[str, str | None] | None:
    """(alertmanager, amtool or None), or None when Alertmanager is not installed."""
    binary = find_binary("prometheus-alertmanager", "alertmanager", path=ALERTMANAGER_BIN)
    return (binary, find_binary("amtool", path=AMTOOL_BIN)) if binary else None


def require_alertmanager() -> tuple[str, str | None]:
    """The binaries, or fail on CI (the image must have them) / skip on a developer machine."""
    found = alertmanager_binaries()
    if found is None:
        missing_binary("prometheus-alertmanager not installed: apt-get install prometheus-alertmanager")
    return found


def webhook_config(
    url: str,
    *,
    bearer: str | None = None,
    group_by: tuple[str, ...] = ("alertname",),
    group_wait_s: int = 1,
    group_interval_s: int = 1,
    repeat_interval_s: int = 2,
    resolve_timeout_s: int = 300,
    send_resolved: bool = True,
) -> str:
    """One route to one webhook receiver, with short timers so a test sees notifications (and
    re-sends, every `repeat_interval_s`) within seconds. `bearer` is sent as `Authorization: Bearer`."""
    auth = (
        (
            f"        http_config:\n          authorization:\n            type: Bearer\n"
            f"            credentials: '{bearer}'\n"
        )
        if bearer
        else ""
    )
    return (
        f"global:\n  resolve_timeout: {resolve_timeout_s}s\n"
        f"route:\n  receiver: hook\n  group_by: [{', '.join(group_by)}]\n"
        f"  group_wait: {group_wait_s}s\n  group_interval: {group_interval_s}s\n"
        f"  repeat_interval: {repeat_interval_s}s\n"
        "receivers:\n  - name: hook\n    webhook_configs:\n"
        f"      - url: '{url}'\n        send_resolved: {'true' if send_resolved else 'false'}\n"
        "        max_alerts: 0\n"
        f"{auth}"
    )


class AlertmanagerServer(ServerProcess):
    """An Alertmanager process over a tmp dir; `start(config_yaml)` returns its URL."""

    name = "alertmanager"
    stop_timeout_s = 15

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary, self.amtool = require_alertmanager()
        super().__init__(workdir, port)
        self.config = workdir / "alertmanager.yml"

    def start(self, config_yaml: str, timeout_s: float = 30) -> str:
        self.stop()
        self.config.write_text(config_yaml)
        if self.amtool:
            checked = subprocess.run(
                [self.amtool, "check-config", str(self.config)], capture_output=True, text=True
            )
            if checked.returncode != 0:
                raise RuntimeError(
                    f"amtool refused the config:\n{checked.stdout}{checked.stderr}\n{config_yaml}"
                )
        self.launch(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # no gossip: nothing to collide with
                "--log.level=warn",
            ],
            "/-/ready",
            timeout_s,
        )
        return self.url

    def wait_for(self, condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
        """Poll `condition` until it is truthy (returned); on timeout fail with this server's log."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(
            f"timed out after {timeout_s}s waiting for {what}; alertmanager log:\n{self.log()}"
        )

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """POST /api/v2/alerts (postableAlerts: labels, annotations, startsAt, endsAt, generatorURL)."""
        requests.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5).raise_for_status()

    def alerts(self) -> list[dict[str, Any]]:
        """GET /api/v2/alerts: the alerts Alertmanager holds (resolved ones are left out)."""
        response = requests.get(f"{self.url}/api/v2/alerts", timeout=5)
        response.raise_for_status()
        return list(response.json())


@pytest.fixture
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertmanagerServer]:
    """An Alertmanager not started yet (call `start(config_yaml)`); stopped after the test."""
    server = AlertmanagerServer(tmp_path_factory.mktemp("alertmanager"))
    try:
        yield server
    finally:
        server.stop()
