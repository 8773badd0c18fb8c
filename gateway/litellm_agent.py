"""The LiteLLM proxy agent: runs beside one LiteLLM proxy, owns its config file and its process, and
takes the control plane's signed config pushes (Django-free).

    python -m gateway.litellm_agent --listen 127.0.0.1:4010 --proxy-port 4000 --state-dir /var/lib/slo-litellm \
        --litellm /opt/litellm/bin/litellm [--control-plane-url URL --gateway-id N]
    env: LITELLM_MASTER_KEY (the proxy's admin key), GATEWAY_SIGNING_SECRET, GATEWAY_TOKEN (heartbeats and
         the telemetry callback), anything the deployments name with os.environ/...

Why an agent: a LiteLLM proxy without a database cannot change its models or router settings while
it runs (/model/new, /model/update, /config/update all need `store_model_in_db` and Prisma). Its
documented way to take a new config is the config file and a restart, so the agent writes the file
and restarts the proxy (a few seconds without it on that port: run two proxies behind a balancer
and let the release waves take them one at a time).

A push is `{"revision": N, "litellm_config": {...}}` (compiled by the control plane, see
gateway.litellm_config) signed like every config push (docs/delivery.md). The agent answers like
the reference gateway: 200 ack only after the restarted proxy's read-back (GET /model/info,
/router/settings, /cache/ping) matches the pushed config; otherwise it puts back the last-known-good
config, restarts on it, and answers 422 nack. The control plane reads the proxy back again itself
before it records the ACK.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from controlplane.lib.signing import SIGNATURE_HEADER, TOLERANCE_S, SignatureError, verify
from gateway.litellm_config import MASTER_KEY_REF, readback_mismatches, running_view
from gateway.state import load_state, save_state

logger = logging.getLogger("gateway.litellm_agent")

MAX_CONFIG_BYTES = 2 * 1024 * 1024
READY_TIMEOUT_S = 90.0
BOOTSTRAP = {"model_list": [], "general_settings": {"master_key": MASTER_KEY_REF}}
REPO_ROOT = Path(__file__).resolve().parent.parent


def read_back(base_url: str, master_key: str, *, timeout_s: float = 10.0) -> dict[str, Any]:
    """The running proxy's config (in the compiled shape), read from its admin endpoints."""
    headers = {"Authorization": f"Bearer {master_key}"}
    answers: dict[str, Any] = {}
    for path in ("/model/info", "/router/settings", "/cache/ping"):
        response = requests.get(base_url.rstrip("/") + path, headers=headers, timeout=timeout_s)
        if path == "/cache/ping" and response.status_code != 200:
            answers[path] = None  # no cache configured: the proxy answers an error
            continue
        response.raise_for_status()
        answers[path] = response.json()
    return running_view(answers["/model/info"], answers["/router/settings"], answers["/cache/ping"])


class LiteLLMAgent:
    def __init__(
        self,
        *,
        litellm_bin: str,
        state_dir: Path,
        proxy_port: int,
        signing_secret: str,
        master_key: str,
        proxy_host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
        control_plane_url: str = "",
        gateway_id: int | None = None,
        token: str = "",
    ) -> None:
        found = shutil.which(litellm_bin)
        self.litellm_bin = str(Path(found).resolve()) if found else litellm_bin
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.proxy_host, self.proxy_port = proxy_host, proxy_port
        self.signing_secret = signing_secret
        self.master_key = master_key
        self.env = dict(env or {})
        self.control_plane_url = control_plane_url.rstrip("/")
        self.gateway_id = gateway_id
        self.token = token
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one apply at a time
        self._seen: dict[str, int] = {}
        state = load_state(self.state_dir) or {}
        self.revision: int | None = state.get("revision")
        self.config: dict[str, Any] = state.get("config") or BOOTSTRAP
        self.rejected: dict[str, Any] | None = state.get("rejected")

    @property
    def proxy_url(self) -> str:
        return f"http://{self.proxy_host}:{self.proxy_port}"

    # -- the proxy process -------------------------------------------------------------------
    def _config_path(self, revision: int | None) -> Path:
        return self.state_dir / f"litellm-rev-{revision or 0}.yaml"

    def start_proxy(self, config: dict[str, Any], revision: int | None) -> None:
        path = self._config_path(revision)
        path.write_text(json.dumps(config, indent=2, sort_keys=True))  # JSON is YAML
        env = {
            **os.environ,
            **self.env,
            "LITELLM_MASTER_KEY": self.master_key,
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p),
        }
        # the model cost map shipped in the package, not a download at every start
        env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        # no database: a DATABASE_URL meant for something else would make the proxy look for Prisma
        for name in ("DATABASE_URL", "DIRECT_URL"):
            env.pop(name, None)
        if self.control_plane_url and self.gateway_id is not None:
            env.update(
                SLO_CONTROL_PLANE_URL=self.control_plane_url,
                SLO_GATEWAY_ID=str(self.gateway_id),
                SLO_GATEWAY_TOKEN=self.token,
            )
        log = (self.state_dir / "litellm.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.litellm_bin,
                "--config",
                str(path),
                "--host",
                self.proxy_host,
                "--port",
                str(self.proxy_port),
                "--num_workers",
                "1",
                "--telemetry",
                "False",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.state_dir,
            start_new_session=True,
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"the proxy exited: {self.log_tail()}")
            try:
                answer = requests.get(
                    self.proxy_url + "/model/info",
                    headers={"Authorization": f"Bearer {self.master_key}"},
                    timeout=2,
                )
                if answer.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the proxy was not ready after {READY_TIMEOUT_S:.0f} s: {self.log_tail()}")

    def stop_proxy(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log_tail(self) -> str:
        path = self.state_dir / "litellm.log"
        return path.read_text(errors="replace")[-1500:] if path.exists() else ""

    def start(self) -> None:
        """Start the proxy on the last-known-good config (or the empty bootstrap one)."""
        try:
            self.start_proxy(self.config, self.revision)
        except RuntimeError:
            if self.revision is None:
                raise
            logger.exception(
                "last-known-good revision %s does not start; using the bootstrap config", self.revision
            )
            self.stop_proxy()
            self.revision, self.config = None, BOOTSTRAP
            self.start_proxy(self.config, None)

    # -- applying ----------------------------------------------------------------------------
    def apply(self, revision: int, config: dict[str, Any]) -> tuple[bool, str]:
        """Restart the proxy on `config`; keep it only if the read-back matches. All or nothing."""
        with self._lock:
            previous_config, previous_revision = self.config, self.revision
            error = ""
            self.stop_proxy()
            try:
                self.start_proxy(config, revision)
                mismatches = readback_mismatches(config, read_back(self.proxy_url, self.master_key))
                if mismatches:
                    error = "read-back differs: " + "; ".join(mismatches[:5])
            except (RuntimeError, requests.RequestException) as exc:
                error = f"the proxy did not take the config: {str(exc)[:800]}"
            if error:
                logger.warning(
                    "revision %s rejected (%s); restoring revision %s", revision, error, previous_revision
                )
                self.stop_proxy()
                self.start_proxy(previous_config, previous_revision)
                self.rejected = {"revision": revision, "error": error[:2000]}
                self._persist()
                return False, error[:2000]
            self.revision, self.config, self.rejected = revision, config, None
            self._persist()
            logger.info("applied revision %s (read back)", revision)
            return True, ""

    def _persist(self) -> None:
        save_state(
            self.state_dir, {"revision": self.revision, "config": self.config, "rejected": self.rejected}
        )

    def handle_push(
        self, body: bytes, signature: str | None, *, now: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        now = time.time() if now is None else now
        try:
            timestamp, used = verify(self.signing_secret, body, signature or "", now=now)
        except SignatureError as exc:
            return 401, {"status": "rejected", "error": f"bad signature: {exc}"}
        for seen, at in list(self._seen.items()):
            if now - at > TOLERANCE_S:
                del self._seen[seen]
        if used in self._seen:
            return 409, {"status": "replay", "error": "this signed push was already received"}
        self._seen[used] = timestamp
        try:
            push = json.loads(body)
        except ValueError:
            return 422, {"status": "nack", "revision": None, "error": "body is not JSON"}
        revision = push.get("revision") if isinstance(push, dict) else None
        config = push.get("litellm_config") if isinstance(push, dict) else None
        if not isinstance(revision, int) or isinstance(revision, bool) or not isinstance(config, dict):
            return 422, {
                "status": "nack",
                "revision": None,
                "error": "want {revision: int, litellm_config: {}}",
            }
        if self.revision is not None and revision < self.revision:
            return 409, {"status": "stale", "applied_revision": self.revision}
        if revision == self.revision:
            return 200, {"status": "ack", "applied_revision": revision}
        ok, error = self.apply(revision, config)
        if not ok:
            return 422, {"status": "nack", "revision": revision, "error": error}
        return 200, {"status": "ack", "applied_revision": revision}

    def status(self) -> dict[str, Any]:
        return {
            "applied_revision": self.revision,
            "proxy_url": self.proxy_url,
            "proxy_running": self.process is not None and self.process.poll() is None,
            "rejected": self.rejected,
        }

    def heartbeat_once(self) -> int | None:
        if not (self.control_plane_url and self.gateway_id is not None and self.token):
            return None
        body: dict[str, Any] = {
            "applied_revision": self.revision,
            "config_etag": f'"rev-{self.revision}"' if self.revision is not None else "",
            "health": {"proxy_running": self.process is not None and self.process.poll() is None},
        }
        if self.rejected:
            body["nack"] = self.rejected
        try:
            response = requests.post(
                f"{self.control_plane_url}/api/v1/gateways/{self.gateway_id}/heartbeat/",
                json=body,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=5,
            )
        except requests.RequestException:
            return None
        return response.status_code


def make_server(agent: LiteLLMAgent, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            logger.debug(format, *args)

        def _json(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            path = self.path.split("?", 1)[0]
            if path in ("/healthz", "/status"):
                self._json(200, agent.status())
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path.split("?", 1)[0].rstrip("/") != "/config":
                self._json(404, {"error": "not found"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_CONFIG_BYTES:
                self.close_connection = True
                self._json(413, {"status": "rejected", "error": "body missing or too large"})
                return
            status, answer = agent.handle_push(self.rfile.read(length), self.headers.get(SIGNATURE_HEADER))
            self._json(status, answer)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gateway.litellm_agent", description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True, help="host:port for the control plane's pushes")
    p.add_argument("--proxy-port", type=int, required=True)
    p.add_argument("--proxy-host", default="127.0.0.1")
    p.add_argument("--state-dir", required=True)
    p.add_argument(
        "--litellm", default=os.environ.get("LITELLM_BIN", "litellm"), help="the proxy's executable"
    )
    p.add_argument("--control-plane-url", default="")
    p.add_argument("--gateway-id", type=int)
    p.add_argument("--heartbeat-interval-s", type=float, default=10.0, help="0 disables heartbeats")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    secret, master_key = (
        os.environ.get("GATEWAY_SIGNING_SECRET", ""),
        os.environ.get("LITELLM_MASTER_KEY", ""),
    )
    if not secret or not master_key:
        print("GATEWAY_SIGNING_SECRET and LITELLM_MASTER_KEY must be set", file=sys.stderr)
        return 2
    agent = LiteLLMAgent(
        litellm_bin=args.litellm,
        state_dir=Path(args.state_dir),
        proxy_port=args.proxy_port,
        proxy_host=args.proxy_host,
        signing_secret=secret,
        master_key=master_key,
        control_plane_url=args.control_plane_url,
        gateway_id=args.gateway_id,
        token=os.environ.get("GATEWAY_TOKEN", ""),
    )
    host, _, port = args.listen.rpartition(":")
    agent.start()
    server = make_server(agent, host or "127.0.0.1", int(port))
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if args.heartbeat_interval_s > 0:

        def beat() -> None:
            while not stop.wait(args.heartbeat_interval_s):
                agent.heartbeat_once()

        threading.Thread(target=beat, daemon=True, name="heartbeat").start()
    logger.info("agent on %s, proxy on %s (revision %s)", args.listen, agent.proxy_url, agent.revision)
    try:
        server.serve_forever()
    finally:
        agent.stop_proxy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
