"""Fixtures for live probes: web servers (granian, DEBUG off, PostgreSQL test database, Redis) started
once per session, and per-test data committed through the ORM and services so the server sees it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.routing.releases.conftest import documents, evaluate, fleet, policy_doc, push, slos  # noqa: F401
from tests.security.live.support import Client, LiveServer, free_port, redis_flush, redis_url

# The server behind a TLS-terminating proxy that reports the scheme and the client address.
BEHIND_PROXY = {
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto=https",
    "TRUSTED_PROXY_COUNT": "1",
    "TRUSTED_PROXY_HEADER": "X-Forwarded-For",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every live probe needs a web server: `slow` (deselect with -m "not slow"; CI runs them)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.slow)


def _database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    user = s.get("USER") or "postgres"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def _require_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(redis_url(), socket_connect_timeout=2).ping()
    except redis.RedisError as exc:  # a probe without Redis would not be production-shaped
        raise AssertionError(f"Redis at {redis_url()} is needed by the live probes: {exc}") from None


@pytest.fixture(scope="session")
def server_factory(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., LiveServer]]:
    """server_factory(name, **env) -> a started web server, one per name for the whole session."""
    _require_redis()
    with django_db_blocker.unblock():
        database_url = _database_url()
    servers: dict[str, LiveServer] = {}

    def get(name: str, **env: str) -> LiveServer:
        if name not in servers:
            folder = Path(tmp_path_factory.mktemp(f"live-{name}"))
            servers[name] = LiveServer(database_url=database_url, workdir=folder, env=env).start()
        return servers[name]

    yield get
    for server in servers.values():
        server.stop()


@pytest.fixture
def users(transactional_db: Any) -> dict[str, Any]:
    """As tests/conftest.py `users`, committed (the server is another process); a transactional
    test's flush deletes the role groups the data migration made, so they are made again."""
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
def live(server_factory: Callable[..., LiveServer], users: dict[str, Any]) -> Iterator[LiveServer]:
    """The production-shaped server behind a trusted proxy, with no throttle counters left over,
    and the promise checked after the probe: the server logged no traceback (no 5xx)."""
    redis_flush(redis_url())
    server = server_factory("proxied", **BEHIND_PROXY)
    before = len(server.server_errors())
    yield server
    errors = server.server_errors()[before:]
    assert not errors, (
        f"the server answered 5xx or lost a worker during the probe: {errors}\n{server.log()[-6000:]}"
    )


@pytest.fixture
def tokens(users: dict[str, Any]) -> dict[str, str]:
    from controlplane.services import api_token_create

    return {
        role: api_token_create(actor=None, user=user, name=f"probe-{role}")[1] for role, user in users.items()
    }


@pytest.fixture
def as_role(live: LiveServer, tokens: dict[str, str]) -> Callable[..., Client]:
    """as_role("operator", ip="10.0.0.1") -> a client with that user's bearer token; None: anonymous."""

    def build(role: str | None, *, ip: str | None = None) -> Client:
        return Client(live, token=tokens[role] if role else None, ip=ip)

    return build


@pytest.fixture
def catalog(users: dict[str, Any]) -> dict[str, Any]:
    """Three services; shelf-vision has an SLO, and one gateway on edge in eu-west."""
    from routing.fleet.services import gateway_register
    from slo.services import service_create, slo_create

    services = {}
    for name in ("shelf-vision", "fraud-score", "doc-summarizer"):
        services[name] = service_create(
            actor=users["operator"],
            data={
                "name": name,
                "display_name": name,
                "service_class": "interactive",
                "owner": "team",
                "tiers": ["edge", "private_cloud", "public_cloud"],
                "labels": {"team": "t"},
            },
        )
    slo = slo_create(
        actor=users["operator"],
        data={
            "name": "availability",
            "service": "shelf-vision",
            "sli": {"kind": "availability"},
            "objective": 99.0,
            "window": {"type": "rolling", "days": 28},
        },
    )
    edge = gateway_register(
        actor=users["operator"],
        data={
            "name": "edge-1",
            "service": "shelf-vision",
            "tier": "edge",
            "region": "eu-west",
            "labels": {"site": "s1"},
        },
    )
    return {"services": services, "slo": slo, "gateway": edge.gateway, "gateway_token": edge.token}


def assert_still_working(live: LiveServer, client: Client) -> None:
    """The rest of the system keeps working after an attack: liveness, and a valid authenticated read."""
    health = Client(live).get("/healthz")
    assert health.status_code == 200, (health.status_code, health.text[:300])
    me = client.get("/api/v1/me/")
    assert me.status_code == 200, (me.status_code, me.text[:300])


def spare_port() -> int:
    """A loopback port nothing listens on (a broker that is down)."""
    return free_port()
