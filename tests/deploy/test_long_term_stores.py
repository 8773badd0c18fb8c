"""The pull client reads a real VictoriaMetrics (Debian's `victoria-metrics`) exactly as it reads
Prometheus: the same history, the same exact per-minute counts, gaps and resets included; with basic
auth, and through a Mimir/Thanos-style front that requires a tenant header (`X-Scope-OrgID`) and a
bearer token. The front is a small proxy standing in for a Mimir gateway (the outside edge); the
store behind it is the real VictoriaMetrics.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
import requests

from slo.contract import REQUESTS_TOTAL, selector
from slo.counters import MinuteCounts, from_epoch_minute
from slo.prom import TENANT_HEADER, PrometheusPuller, PrometheusQueryError, request_headers
from tests.support.prometheus import History, contract_history, expected_sum, history_start_s
from tests.support.victoriametrics import VictoriaMetricsServer

BASE = {"service": "shelf-vision", "tier": "edge"}
VM_AUTH = ("reader", "vm-password")
TENANT = "team-a"
GATEWAY_TOKEN = "mimir-token"


@dataclass
class LoadedStore:
    server: VictoriaMetricsServer
    history: History


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedStore]:
    server = VictoriaMetricsServer(tmp_path_factory.mktemp("vm"), basic_auth=VM_AUTH).start()
    try:
        history = contract_history(history_start_s())
        server.load(history)
        yield LoadedStore(server, history)
    finally:
        server.stop()


def window(history: History) -> tuple[datetime, datetime]:
    start = from_epoch_minute(history.start_s // 60)
    return start, start + timedelta(minutes=history.minutes)


def assert_exact(got: MinuteCounts, history: History, route: str, outcome: str) -> None:
    values, present = expected_sum(history, [(REQUESTS_TOTAL, {**BASE, "route": route, "outcome": outcome})])
    assert got.start_minute == window(history)[0]
    assert np.flatnonzero(~got.present).tolist() == np.flatnonzero(~present).tolist()
    assert got.values[got.present].tolist() == values[present].tolist()


SERIES = (("local", "ok"), ("local", "error"), ("cache", "ok"), ("private_cloud", "ok"))


def test_victoriametrics_with_basic_auth_gives_the_exact_counts_prometheus_gives(store: LoadedStore) -> None:
    puller = PrometheusPuller(store.server.url, basic_auth=VM_AUTH)
    start, end = window(store.history)
    for route, outcome in SERIES:  # a reset (local/error), a gap (cache/ok), a new series (private_cloud)
        got = puller.pull_minutes(selector(REQUESTS_TOTAL, **BASE, route=route, outcome=outcome), start, end)
        assert_exact(got, store.history, route, outcome)


def test_a_wrong_password_is_a_query_error_not_retried(store: LoadedStore) -> None:
    attempts: list[float] = []
    puller = PrometheusPuller(store.server.url, basic_auth=("reader", "wrong"), sleep=attempts.append)
    start, end = window(store.history)
    with pytest.raises(PrometheusQueryError, match="HTTP 401"):
        puller.pull_minutes(selector(REQUESTS_TOTAL, **BASE, route="local", outcome="ok"), start, end)
    assert attempts == []


class _TenantGateway(http.server.BaseHTTPRequestHandler):
    """A Mimir-style front: /prometheus/api/v1/... with X-Scope-OrgID and a bearer token, else 401."""

    upstream = ""
    seen_tenants: list[str | None] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        tenant = self.headers.get(TENANT_HEADER)
        self.seen_tenants.append(tenant)
        if tenant != TENANT or self.headers.get("Authorization") != f"Bearer {GATEWAY_TOKEN}":
            self._answer(401, b'{"status":"error","errorType":"unauthorized","error":"no org id or token"}')
            return
        if not self.path.startswith("/prometheus/api/v1/"):
            self._answer(404, b"not found")
            return
        upstream = requests.post(
            f"{self.upstream}{self.path.removeprefix('/prometheus')}",
            data=body,
            headers={"Content-Type": self.headers["Content-Type"]},
            auth=VM_AUTH,
            timeout=30,
        )
        self._answer(upstream.status_code, upstream.content)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def tenant_gateway(store: LoadedStore) -> Iterator[str]:
    _TenantGateway.upstream = store.server.url
    _TenantGateway.seen_tenants = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TenantGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/prometheus"
    finally:
        server.shutdown()


def test_a_tenant_header_and_bearer_token_reach_a_mimir_style_front(
    store: LoadedStore, tenant_gateway: str
) -> None:
    puller = PrometheusPuller(tenant_gateway, bearer_token=GATEWAY_TOKEN, headers={TENANT_HEADER: TENANT})
    start, end = window(store.history)
    for route, outcome in SERIES:
        got = puller.pull_minutes(selector(REQUESTS_TOTAL, **BASE, route=route, outcome=outcome), start, end)
        assert_exact(got, store.history, route, outcome)
    assert set(_TenantGateway.seen_tenants) == {TENANT}

    without_tenant = PrometheusPuller(tenant_gateway, bearer_token=GATEWAY_TOKEN, sleep=lambda s: None)
    with pytest.raises(PrometheusQueryError, match="HTTP 401"):
        without_tenant.pull_minutes(selector(REQUESTS_TOTAL, **BASE, route="local", outcome="ok"), start, end)
    assert _TenantGateway.seen_tenants[-1] is None


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({"Authorization": "Bearer x"}, "set by the puller"),
        ({"x-scope-orgid": "a\r\nInjected: 1"}, "one line"),
        ({"bad header": "x"}, "not a valid header name"),
    ],
)
def test_extra_headers_are_checked(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        request_headers(headers)
    with pytest.raises(ValueError, match=reason):
        PrometheusPuller("http://127.0.0.1:9", headers=headers)
    assert request_headers({"THANOS-TENANT": "team-b"}) == {"THANOS-TENANT": "team-b"}
