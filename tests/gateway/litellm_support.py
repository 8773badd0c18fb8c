"""Real LiteLLM proxies for the tests, each driven by our agent (gateway.litellm_agent) in its own
process. The proxy is the pinned `litellm[proxy]` that scripts/install-litellm.sh puts in
var/litellm-venv (or LITELLM_BIN); missing, it fails the test on CI and skips it elsewhere.

Models are LiteLLM mocks, no network: `mock_response: "ok"` answers, `mock_response:
"litellm.InternalServerError"` fails like a broken upstream."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from gateway.launch import REPO_ROOT
from tests.support.servers import free_port, missing_binary

MASTER_KEY = "sk-test-master-0123456789"
SERVICE = "shelf-vision"


def litellm_binary() -> str:
    path = os.environ.get("LITELLM_BIN") or str(REPO_ROOT / "var" / "litellm-venv" / "bin" / "litellm")
    if not os.path.exists(path):
        missing_binary(f"no LiteLLM proxy at {path}: run scripts/install-litellm.sh")
    return path


def deployments(*, public_cloud_fails: bool = True) -> dict[str, Any]:
    def mock(name: str, answer: str) -> dict[str, Any]:
        return {"model": f"openai/{name}", "api_key": "os.environ/MOCK_UPSTREAM_KEY", "mock_response": answer}

    return {
        "local": mock("edge-small", "ok from local"),
        "private_cloud": mock("cloud-medium", "ok from private cloud"),
        "public_cloud": mock(
            "cloud-large", "litellm.InternalServerError" if public_cloud_fails else "ok from public cloud"
        ),
    }


class AgentProcess:
    """`python -m gateway.litellm_agent` with its proxy, on free loopback ports."""

    def __init__(
        self,
        workdir: Path,
        *,
        signing_secret: str,
        gateway_id: int | None = None,
        control_plane_url: str = "",
        token: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proxy_port = free_port()
        self.signing_secret = signing_secret
        self.gateway_id = gateway_id
        self.control_plane_url = control_plane_url
        self.token = token
        self.env = env or {}
        self.heartbeat_s = 0.0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def start(self, timeout_s: float = 120) -> None:
        args = [
            sys.executable,
            "-m",
            "gateway.litellm_agent",
            "--listen",
            f"127.0.0.1:{self.port}",
            "--proxy-port",
            str(self.proxy_port),
            "--state-dir",
            str(self.workdir / "state"),
            "--litellm",
            litellm_binary(),
            "--heartbeat-interval-s",
            str(self.heartbeat_s),
        ]
        if self.gateway_id is not None:
            args += ["--gateway-id", str(self.gateway_id), "--control-plane-url", self.control_plane_url]
        env = {
            **os.environ,
            **self.env,
            "GATEWAY_SIGNING_SECRET": self.signing_secret,
            "LITELLM_MASTER_KEY": MASTER_KEY,
            "GATEWAY_TOKEN": self.token,
            "MOCK_UPSTREAM_KEY": "sk-mock-upstream",
            "PYTHONPATH": str(REPO_ROOT),
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "agent.log", "ab") as log:
            self.process = subprocess.Popen(
                args, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"agent exited: {self.log()}")
            try:
                if requests.get(self.url + "/status", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"agent not ready after {timeout_s}s: {self.log()}")

    def status(self) -> dict[str, Any]:
        return requests.get(self.url + "/status", timeout=5).json()

    def chat(self, model: str = SERVICE) -> requests.Response:
        return requests.post(
            self.proxy_url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {MASTER_KEY}"},
            json={"model": model, "messages": [{"role": "user", "content": "count the shelves"}]},
            timeout=30,
        )

    def log(self) -> str:
        parts = []
        for name in ("agent.log", "state/litellm.log"):
            path = self.workdir / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # the agent stops its proxy (its own process group) on SIGTERM
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
