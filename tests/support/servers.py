"""What the real-server test helpers share: finding a binary (a missing one fails the test on CI,
`CI=true`, and skips it on a developer machine), a free 127.0.0.1 port, and a process in a tmp dir
that is started with its output in a log file, polled until a readiness URL answers 200, and stopped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import NoReturn

import pytest
import requests


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_binary(*names: str, path: str | None = None) -> str | None:
    """The first of `names` on PATH, else `path` when it exists, else None."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return path if path and os.path.exists(path) else None


def missing_binary(message: str) -> NoReturn:
    """Fail on CI (the image or install script must provide it) / skip on a developer machine."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class ServerProcess:
    """One server process over `workdir`, on 127.0.0.1:`port`, its output in `<name>.log`.

    `launch(args, ready_path, timeout_s)` starts it and waits until GET `ready_path` answers 200
    (a process that exits first, or a timeout, raises with the log's tail); `stop()` terminates it.
    """

    name = "server"
    stop_timeout_s: float = 30

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.log_path = workdir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self, args: list[str], ready_path: str, timeout_s: float) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        self.wait_ready(ready_path, timeout_s)

    def wait_ready(self, ready_path: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log()}")
            try:
                if requests.get(f"{self.url}{ready_path}", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout_s}s: {self.log()}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        """The tail of the server's log ("" before it has written one)."""
        return self.log_path.read_text()[-4000:] if self.log_path.exists() else ""
