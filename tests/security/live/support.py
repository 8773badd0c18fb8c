"""A live control plane for probes: the web server (`controlplane.webserver`, granian) serving
`controlplane.wsgi` with DEBUG off, on the
pytest-django test database (PostgreSQL) and Redis, exactly as production runs it. Probes talk to
it over real HTTP with `requests`; nothing in the server process is patched."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from controlplane.webserver import web_command

REPO_ROOT = Path(__file__).resolve().parents[3]
WEB_BIN = str(Path(sys.executable).with_name("granian"))
# A TLS-terminating proxy in front of the server says the original scheme in this header; the live
# server trusts it (SECURE_PROXY_SSL_HEADER), so probes over plain http can speak "https".
PROTO_HEADER = "X-Forwarded-Proto"
# The client address header a trusted proxy sets; probes use it to speak from several addresses.
CLIENT_IP_HEADER = "X-Forwarded-For"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_url() -> str:
    """The Redis the live server uses for its cache (throttle counters) and broker."""
    for name in ("CACHE_URL", "CELERY_BROKER_URL"):
        value = os.environ.get(name, "")
        if value.startswith("redis://"):
            return value
    return "redis://127.0.0.1:6379/0"


def redis_flush(url: str) -> None:
    """Forget every throttle counter between probes (each probe starts from a clean limiter)."""
    import redis

    redis.Redis.from_url(url).flushdb()


@dataclass
class LiveServer:
    """One web server process tree. `env` is added to the production-like environment."""

    database_url: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 2
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "web.log"

    def environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "SECURE_", "THROTTLE_", "TRUSTED_"))
        }
        cache = redis_url()
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "controlplane.settings",
                "DEBUG": "false",
                "SECRET_KEY": secrets.token_urlsafe(48),
                "ALLOWED_HOSTS": "127.0.0.1",
                "DATABASE_URL": self.database_url,
                "CACHE_URL": cache,
                "CELERY_BROKER_URL": cache,
                "DATA_DIR": str(self.workdir / "data"),
                "STATIC_ROOT": str(self.workdir / "static"),
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(REPO_ROOT),
            }
        )
        env.update(self.env)
        return env

    def start(self, timeout_s: float = 60) -> LiveServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            web_command(
                host="127.0.0.1", port=self.port, workers=self.workers, binary=WEB_BIN, access_log=False
            ),
            cwd=REPO_ROOT,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the web server exited with {self.process.returncode}:\n{self.log()[-4000:]}"
                )
            try:
                # any HTTP answer means a worker is serving (a redirect to https, by design)
                requests.get(f"{self.url}/login/", timeout=10, allow_redirects=False)
                return self
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise AssertionError(f"the web server did not answer within {timeout_s}s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def server_errors(self) -> list[str]:
        """The 5xx answers and worker deaths the server logged: Django logs every 500 it answers
        ("Internal Server Error: <path>"); granian logs a worker that died ("Unexpected exit from
        worker-N") and an exception that escaped the app."""
        pattern = r"^.*(Internal Server Error: |Unexpected exit from worker|Application callable raised).*$"
        return [match.group(0) for match in re.finditer(pattern, self.log(), flags=re.MULTILINE)]


class Client:
    """requests against a live server, as a given client: a bearer credential, and an address the
    trusted proxy reports. By default every request says it came over https (the proxy terminated
    TLS); `https=False` is a client speaking plain http straight to the server."""

    def __init__(
        self, server: LiveServer, *, token: str | None = None, ip: str | None = None, https: bool = True
    ) -> None:
        self.server = server
        self.token = token
        self.ip = ip
        self.https = https
        self.session = requests.Session()

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {PROTO_HEADER: "https"} if self.https else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.ip:
            headers[CLIENT_IP_HEADER] = self.ip
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, self.server.url + path, headers=self.headers(headers), **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def login(self, path: str, username: str, password: str, *, cookies: dict[str, str] | None = None) -> Any:
        """A browser's form login at `path` (/login/ or /admin/login/): fetch the form for the CSRF
        token, post the credentials. `cookies` is the browser's jar: it is sent, and what the server
        sets is added to it. Cookies are passed by hand: they are `Secure` (DEBUG off) and requests
        would not send them over plain http."""
        jar = cookies if cookies is not None else {}
        form = self.get(path, headers=_cookie_header(jar))
        assert form.status_code == 200, f"GET {path}: {form.status_code}"
        jar.update(form.cookies.get_dict())
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert "csrftoken" in jar and match, f"no CSRF token on {path}"
        response = requests.post(
            self.server.url + path,
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": match.group(1),
                "next": path,
            },
            headers=self.headers(
                {**_cookie_header(jar), "Referer": f"https://127.0.0.1:{self.server.port}{path}"}
            ),
            allow_redirects=False,
            timeout=60,
        )
        jar.update(response.cookies.get_dict())
        return response


def _cookie_header(jar: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())} if jar else {}


def signed_in(response: Any) -> bool:
    """The login succeeded: a redirect that sets a session cookie."""
    return response.status_code == 302 and bool(response.cookies.get("sessionid"))
