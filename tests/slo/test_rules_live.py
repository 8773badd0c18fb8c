"""The exported rules in a real Prometheus: a gateway restarted into a total outage pages.

History: three hours of a healthy gateway (backfilled TSDB blocks) that ends 15 minutes ago. Then
the gateway "restarts": a live exporter (real HTTP, scraped every second) serves only the error
counter, from 0, so the `ok` series is in the long window's history but absent from the short one.
The fast page (1h and 5m over 14.4x) must be firing within its `for: 2m` plus a few evaluations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from slo import contract
from slo.rules import SliQueries, rules_yaml
from slo.spec import SloSpec
from tests.support.prometheus import (
    History,
    PrometheusServer,
    SeriesHistory,
    create_blocks,
    require_prometheus,
)

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

SLO = SloSpec.model_validate(
    {
        "name": "requests-ok",
        "service": "shelf-vision",
        "tier": "edge",
        "sli": {"kind": "availability"},
        "objective": 99.9,
        "window": {"type": "rolling", "days": 30},
    }
)
ERRORS_PER_S = 50
# The short window: the page must fire within it (the tier's `for: 2m` plus scrapes and evaluations).
PAGE_DEADLINE_S = 300


class RestartedGateway:
    """Serves the contract's request counter of a gateway that fails every request since it started."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                value = int((time.monotonic() - gateway.started) * ERRORS_PER_S)
                body = (
                    "# TYPE inference_requests_total counter\n"
                    'inference_requests_total{service="shelf-vision",tier="edge",route="failed",outcome="error"} '
                    f"{value}\n"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> RestartedGateway:
        self.started = time.monotonic()
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def healthy_history(minutes: int = 165) -> History:
    """1000 ok and 1 error request a minute, ending 15 minutes before now."""
    end_s = (int(time.time()) // 60 - 15) * 60
    history = History(start_s=end_s - minutes * 60, minutes=minutes)
    observed = np.ones(minutes, dtype=np.bool_)
    base = {"service": "shelf-vision", "tier": "edge", "route": "local", "instance": "gw-1"}
    for outcome, per_minute in (("ok", 1000), ("error", 1)):
        history.add(
            SeriesHistory(
                contract.REQUESTS_TOTAL,
                {**base, "outcome": outcome},
                np.full(minutes, per_minute, dtype=np.int64),
                observed,
            )
        )
    return history


@pytest.fixture
def prometheus_with_rules(tmp_path: Path) -> Iterator[tuple[PrometheusServer, RestartedGateway]]:
    _, promtool = require_prometheus()
    datadir = tmp_path / "data"
    create_blocks(promtool, healthy_history().write_openmetrics(tmp_path / "history.om.txt"), datadir)
    queries = contract.sli_queries(SLO)
    (tmp_path / "rules.yml").write_text(
        rules_yaml([(SLO, SliQueries(total=queries.total, good=queries.good))])
    )
    gateway = RestartedGateway()
    server = PrometheusServer(tmp_path, datadir)
    server.config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files: [rules.yml]\n"
        "scrape_configs:\n"
        f"  - job_name: gateway\n    static_configs:\n      - targets: ['{gateway.target}']\n"
    )
    gateway.start()
    try:
        server.start()
        yield server, gateway
    finally:
        server.stop()
        gateway.stop()


def alerts(server: PrometheusServer) -> list[dict[str, Any]]:
    response = requests.get(f"{server.url}/api/v1/alerts", timeout=5)
    response.raise_for_status()
    return list(response.json()["data"]["alerts"])


def query(server: PrometheusServer, expr: str) -> list[dict[str, Any]]:
    response = requests.get(f"{server.url}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    return list(response.json()["data"]["result"])


def test_a_gateway_restarted_into_a_total_outage_pages_within_the_fast_window(prometheus_with_rules):
    server, gateway = prometheus_with_rules
    firing: dict[str, Any] | None = None
    while time.monotonic() - gateway.started < PAGE_DEADLINE_S + 30:
        page = [
            a
            for a in alerts(server)
            if a["labels"]["alertname"] == "SLOErrorBudgetBurnPage" and a["labels"]["long"] == "1h"
        ]
        if page and page[0]["state"] == "firing":
            firing = page[0]
            break
        time.sleep(2)
    elapsed_s = time.monotonic() - gateway.started
    assert firing is not None, f"no page after {elapsed_s:.0f}s: {alerts(server)}"
    assert elapsed_s <= PAGE_DEADLINE_S
    assert firing["labels"] == {
        "alertname": "SLOErrorBudgetBurnPage",
        "severity": "page",
        "long": "1h",
        "short": "5m",
        "slo_service": "shelf-vision",
        "slo_name": "requests-ok",
        "slo_tier": "edge",
    }

    # The short window has no ok series at all (counted as zero), the long one still has the
    # healthy history: the restart, not missing data, is what pages.
    (short,) = query(server, 'slo:sli_error:ratio_rate5m{slo_name="requests-ok"}')
    (long,) = query(server, 'slo:sli_error:ratio_rate1h{slo_name="requests-ok"}')
    assert float(short["value"][1]) == 1.0
    assert 0.0144 < float(long["value"][1]) < 1.0
    assert not [a for a in alerts(server) if a["labels"]["alertname"] == "SLOTelemetryAbsent"]
    # Every exported rule evaluates without error in the real server.
    groups = requests.get(f"{server.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) > 20 and {rule["health"] for rule in rules} == {"ok"}, [
        r for r in rules if r["health"] != "ok"
    ]
