"""Real processes for fault tests: a Celery worker, a private redis-server, and a loopback TCP proxy
that can hold answers or cut every connection (between the app and PostgreSQL, or a worker and a
gateway). Nothing here mocks our own code: faults are injected on the wire or with signals.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CELERY_BIN = str(Path(sys.executable).with_name("celery"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], Any], *, timeout_s: float, interval_s: float = 0.1, what: str = ""
) -> Any:
    """Poll `predicate` until it returns something truthy; fail the test with `what` on timeout."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what or predicate}; last value {last!r}")


# -- TCP proxy ----------------------------------------------------------------------------------------


class TcpProxy:
    """A loopback TCP proxy to `target`, with three faults:

    * `hold_responses`: bytes from the target are kept (the client waits, the target has acted);
    * `cut()`: every open connection is closed and new ones are refused until `restore()`;
    * `cut_on`: a byte string; the first client packet containing it is dropped and the connection
      cut (e.g. b"COMMIT": the server never sees the commit of a transaction).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self.hold_responses = threading.Event()
        self.request_seen = threading.Event()
        self.cut_on: bytes | None = None
        self.cut_happened = threading.Event()
        self._refusing = False
        self._held: list[tuple[socket.socket, bytes]] = []
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_client:
                    self.request_seen.set()
                    if self.cut_on is not None and self.cut_on in data:
                        self.cut_on = None
                        self.cut_happened.set()
                        self._close_pair(source, sink)
                        return
                elif self.hold_responses.is_set():
                    with self._lock:
                        self._held.append((sink, data))
                    continue
                sink.sendall(data)
        except OSError:
            pass
        self._close_pair(source, sink)

    def _close_pair(self, one: socket.socket, other: socket.socket) -> None:
        for sock in (one, other):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def release(self) -> None:
        """Stop holding and deliver what was held (to clients still connected)."""
        self.hold_responses.clear()
        with self._lock:
            held, self._held = self._held, []
        for sink, data in held:
            try:
                sink.sendall(data)
            except OSError:
                pass

    def cut(self) -> None:
        """Close every open connection and refuse new ones."""
        self._refusing = True
        with self._lock:
            pairs, self._pairs = self._pairs, []
            self._held = []
        for client, upstream in pairs:
            self._close_pair(client, upstream)

    def restore(self) -> None:
        self._refusing = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()


# -- redis-server -----------------------------------------------------------------------------------


class RedisServer:
    """A private, non-persistent redis-server on a free loopback port (never the shared 6379)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

        def answers() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(answers, timeout_s=timeout_s, what="redis-server to answer PING")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # a crash, not a clean shutdown; it keeps nothing anyway (--save "")
            self.process.wait(timeout=10)
        self.process = None


# -- Celery worker ----------------------------------------------------------------------------------


class CeleryWorker:
    """`celery -A controlplane worker` as a real subprocess (its own process group, so SIGKILL reaches
    the main process and its pool children at once, like the OOM killer or a lost node)."""

    def __init__(self, *, database_url: str, broker_url: str, log_path: Path, concurrency: int = 1) -> None:
        self.database_url = database_url
        self.broker_url = broker_url
        self.log_path = log_path
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout_s: float = 60, *, wait_ready: bool = True) -> CeleryWorker:
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "CELERY_BROKER_URL": self.broker_url,
                "PYTHONPATH": str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
                "LOG_LEVEL": "INFO",
            }
        )
        self.starts += 1
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                CELERY_BIN,
                "-A",
                "controlplane",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.concurrency}",
                "--pool=prefork",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--hostname=faults-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if not wait_ready:
            return self

        def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError("worker exited:\n" + self.log()[-3000:])
            return " ready." in self.log(offset)

        wait_until(ready, timeout_s=timeout_s, interval_s=0.2, what="the Celery worker to be ready")
        return self

    def log(self, offset: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")

    def children(self) -> list[int]:
        """Pids of the pool processes (the ones that run tasks)."""
        assert self.process is not None
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def kill(self) -> None:
        """SIGKILL the whole worker: main process and pool children, no chance to clean up."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)
        self.process = None

    def kill_child(self) -> int:
        """SIGKILL the pool child running the task (the main process survives and sees a lost worker)."""
        children = wait_until(self.children, timeout_s=10, what="a pool child")
        os.kill(children[0], signal.SIGKILL)
        return children[0]

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None


def send_task(broker_url: str, name: str, *args: Any, **kwargs: Any) -> None:
    """Publish a task by name to `broker_url`, as beat (or a web process) would."""
    from kombu import Connection

    from controlplane.celery import app

    with Connection(broker_url, connect_timeout=3) as conn:
        app.send_task(name, args=list(args), kwargs=kwargs, connection=conn)
