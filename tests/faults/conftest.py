"""Fixtures for fault tests: a time bound per test, the test database's URL for subprocesses, a
private redis-server, Celery workers and reference gateways (real processes, stopped after)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tests.faults.support import CeleryWorker, RedisServer, TcpProxy
from tests.gateway.support import GatewayProcess, free_port, gateway_factory, register  # noqa: F401 - fixtures

# Every fault test must end on its own; a hang is a failure, not a stuck CI job.
TEST_TIME_LIMIT_S = 150


@pytest.fixture(autouse=True)
def time_limit() -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"fault test exceeded {TEST_TIME_LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIME_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def users(transactional_db: Any) -> dict[str, Any]:
    """As tests/conftest.py `users`, after re-creating the role groups: a transactional test's flush
    deletes the rows the data migration made."""
    from django.contrib.auth.models import Group

    from tests.conftest import ROLES, make_user

    for role in ROLES:
        Group.objects.get_or_create(name=role)
    return {
        "viewer": make_user("vera", "viewer"),
        "operator": make_user("otto", "operator"),
        "approver": make_user("anna", "approver"),
        "approver2": make_user("abel", "approver"),
        "admin": make_user("ada", "admin"),
        "outsider": make_user("olaf"),
    }


@pytest.fixture
def database_url(transactional_db: Any) -> str:
    """The URL of the test database (committed data is visible to subprocess workers)."""
    from django.db import connection

    s = connection.settings_dict
    user = s.get("USER") or "postgres"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Callable[..., CeleryWorker]]:
    """worker_factory(database_url=..., broker_url=...) -> a started worker; all stopped after."""
    workers: list[CeleryWorker] = []

    def make(*, database_url: str, broker_url: str, start: bool = True) -> CeleryWorker:
        worker = CeleryWorker(
            database_url=database_url, broker_url=broker_url, log_path=tmp_path / f"worker-{len(workers)}.log"
        )
        workers.append(worker)
        return worker.start() if start else worker

    yield make
    for worker in workers:
        worker.stop()


@pytest.fixture
def proxy_factory() -> Iterator[Callable[[str, int], TcpProxy]]:
    proxies: list[TcpProxy] = []

    def make(host: str, port: int) -> TcpProxy:
        proxy = TcpProxy(host, port)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


def applies_in_log(gateway: GatewayProcess, revision: int) -> int:
    """How many times the gateway process applied `revision` (its own log, across restarts)."""
    log = (gateway.folder / "gateway.log").read_text(errors="replace")
    return log.count(f"applied revision {revision} from ")
