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


@pytest.mark.django_db
def test_a_source_with_a_tenant_header_set_through_the_api_pulls_exactly_and_never_echoes_it(
    store: LoadedStore, tenant_gateway: str, api_for: Any, service: Any
) -> None:
    from slo.models.telemetry import TelemetrySource
    from slo.services import slo_create
    from slo.telemetry.pull import telemetry_source_pull
    from slo.telemetry.selectors import sli_minutes

    slo = slo_create(
        actor=None,
        data={
            "name": "edge-availability",
            "service": "shelf-vision",
            "tier": "edge",
            "sli": {"kind": "availability"},
            "objective": 99.0,
            "window": {"days": 28},
        },
    )
    operator = api_for("operator")
    doc = {
        "name": "mimir",
        "url": tenant_gateway,
        "tier": "edge",
        "auth_kind": "bearer",
        "secret": GATEWAY_TOKEN,
    }
    bad = operator.post(
        "/api/v1/telemetry-sources/", {**doc, "headers": {"Authorization": "Bearer x"}}, format="json"
    )
    assert bad.status_code == 400 and [e["path"] for e in bad.json()["errors"]] == ["headers.Authorization"]
    assert not TelemetrySource.objects.exists()
    start, end = window(store.history)
    created = operator.post(
        "/api/v1/telemetry-sources/",
        {
            **doc,
            "headers": {TENANT_HEADER: TENANT},
            "scrape_lag_s": 0,
            "backfill_minutes": store.history.minutes,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["headers"] == {TENANT_HEADER: "te***"}
    listed = api_for("viewer").get("/api/v1/telemetry-sources/").content.decode()
    assert TENANT not in listed and GATEWAY_TOKEN not in listed
    source = TelemetrySource.objects.get()
    assert TENANT not in source.headers_encrypted  # stored encrypted, like the secret
    # an update without headers keeps them
    assert (
        operator.patch(
            f"/api/v1/telemetry-sources/{source.pk}/", {"timeout_s": 10}, format="json"
        ).status_code
        == 200
    )

    result = telemetry_source_pull(source_id=source.pk, now=end)
    assert result.ok, result
    assert set(_TenantGateway.seen_tenants) == {TENANT}
    ok = [
        (REQUESTS_TOTAL, {**BASE, "route": r, "outcome": "ok"}) for r in ("local", "cache", "private_cloud")
    ]
    good, good_present = expected_sum(store.history, ok)
    valid, valid_present = expected_sum(
        store.history, [*ok, (REQUESTS_TOTAL, {**BASE, "route": "local", "outcome": "error"})]
    )
    present = good_present & valid_present
    data = sli_minutes([slo.pk], start, end)
    assert np.flatnonzero(~data.present[0]).tolist() == np.flatnonzero(~present).tolist()
    assert data.good[0].tolist() == np.where(present, good, 0).tolist()
    assert data.valid[0].tolist() == np.where(present, valid, 0).tolist()

    # {} clears them: the front then refuses the pull, and the source says why
    assert (
        operator.patch(f"/api/v1/telemetry-sources/{source.pk}/", {"headers": {}}, format="json").json()[
            "headers"
        ]
        == {}
    )
    again = telemetry_source_pull(source_id=source.pk, now=end + timedelta(minutes=1))
    assert "HTTP 401" in again.error and _TenantGateway.seen_tenants[-1] is None
