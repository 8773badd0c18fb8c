"""Start real reference gateway processes on free loopback ports (shared by gateway and fleet tests)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from controlplane.lib.signing import SIGNATURE_HEADER, sign
from gateway.launch import start_gateway, stop_gateways, wait_ready
from routing.fleet.bundle import bundle_bytes
from routing.policy import default_cache_config, default_policy

SERVICE = "shelf-vision"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def good_bundle(revision: int, *, description: str = "") -> dict[str, Any]:
    policy = default_policy(SERVICE, "interactive", None)
    if description:
        policy["description"] = description
    return {
        "revision": revision,
        "service": SERVICE,
        "routing_policy": policy,
        "cache_config": default_cache_config(SERVICE),
        "model_version": "v1",
    }


def invalid_bundle(revision: int) -> dict[str, Any]:
    """Parses as JSON, fails validation: a fallback loop (local twice in one chain)."""
    bundle = good_bundle(revision)
    bundle["routing_policy"]["rules"][-1]["chain"] = [
        {"route": "local", "timeout_ms": 40},
        {"route": "local", "timeout_ms": 40},
    ]
    return bundle


@dataclass
class GatewayProcess:
    folder: Path
    port: int
    secret: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.folder / "gateway.toml"

    def write_config(self) -> None:
        gw = {
            "name": self.settings.get("name", "gw-test"),
            "service": SERVICE,
            "tier": "edge",
            "listen": f"127.0.0.1:{self.port}",
            "state_dir": str(self.folder / "state"),
            "seed": 7,
        }
        cp: dict[str, Any] = {}
        for key in ("id", "region", "tier", "name"):
            if key in self.settings:
                gw[key] = self.settings[key]
        if self.secret:
            gw["signing_secret"] = self.secret
        if self.settings.get("control_plane_url"):
            cp = {
                "url": self.settings["control_plane_url"],
                "token": self.settings["token"],
                "poll_interval_s": self.settings.get("poll_interval_s", 0),
                "heartbeat_interval_s": self.settings.get("heartbeat_interval_s", 0),
            }
        text = "[gateway]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in gw.items())
        if cp:
            text += "[control_plane]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in cp.items())
        traffic = {"rps": 20, "tick_s": 0.2, **self.settings.get("traffic", {})}
        text += "[traffic]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in traffic.items())
        if self.settings.get("stage_budget_ms"):
            budgets = self.settings["stage_budget_ms"].items()
            text += "[stage_budget_ms]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in budgets)
        self.config_path.write_text(text)

    def start(self) -> GatewayProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.process = start_gateway(self.config_path)
        if not wait_ready("127.0.0.1", self.port, timeout_s=30, process=self.process):
            raise RuntimeError("gateway did not start:\n" + (self.folder / "gateway.log").read_text()[-3000:])
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_gateways([self.process])
            self.process = None

    def status(self) -> dict[str, Any]:
        return requests.get(self.url + "/status", timeout=5).json()

    def push(
        self,
        bundle: dict[str, Any],
        *,
        secret: str | None = None,
        timestamp: float | None = None,
        body: bytes | None = None,
        header: str | None = None,
    ) -> requests.Response:
        body = bundle_bytes(bundle) if body is None else body
        if header is None:
            header = sign(secret or self.secret or "", body, timestamp=int(timestamp or time.time()))
        return requests.post(
            self.url + "/config",
            data=body,
            headers={SIGNATURE_HEADER: header, "Content-Type": "application/json"},
            timeout=10,
        )

    def wait_for(self, predicate: Any, *, timeout_s: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status()
            if predicate(status):
                return status
            time.sleep(0.1)
        raise AssertionError(f"condition not reached; last status {status}")


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """gateway_factory(name=..., secret=..., **settings) -> a started GatewayProcess; all stopped after.

    Import it into a conftest to use it (tests/gateway, tests/routing/fleet, tests/faults do)."""
    started: list[GatewayProcess] = []

    def make(
        name: str = "gw-test",
        *,
        secret: str | None = "whsec_test-secret",
        start: bool = True,
        **settings: Any,
    ) -> GatewayProcess:
        gateway = GatewayProcess(tmp_path / name, free_port(), secret, {"name": name, **settings})
        started.append(gateway)
        return gateway.start() if start else gateway

    yield make
    for gateway in started:
        gateway.stop()


@pytest.fixture
def register(users: Any, service: Any) -> Callable[..., Any]:
    """register(name, push_url=...) -> GatewayCredentials (gateway, token, signing_secret)."""
    from routing.fleet.services import gateway_register

    def make(name: str = "edge-1", **data: Any) -> Any:
        return gateway_register(
            actor=users["operator"],
            data={"name": name, "service": "shelf-vision", "tier": "edge", "region": "eu-west", **data},
        )

    return make
