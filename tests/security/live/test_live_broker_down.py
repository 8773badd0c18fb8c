"""Report generation with the broker down: the request answers 201/202 once, the report and its
delivery are stored exactly once (the email waits in the outbox), and nothing is answered 500 after
committing (which made a client's retry store a duplicate)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.security.live.conftest import BEHIND_PROXY, spare_port
from tests.security.live.support import Client, LiveServer


@pytest.fixture
def broker_down(server_factory: Callable[..., LiveServer], users: dict[str, Any]) -> LiveServer:
    return server_factory(
        "broker-down", **BEHIND_PROXY, CELERY_BROKER_URL=f"redis://127.0.0.1:{spare_port()}/0"
    )


@pytest.mark.slow
def test_report_generation_with_the_broker_down_stores_one_report(
    broker_down: LiveServer,
    catalog: dict[str, Any],
    tokens: dict[str, str],
) -> None:
    from slo.models.reports import Report, ReportDelivery

    before = len(broker_down.server_errors())
    operator = Client(broker_down, token=tokens["operator"])
    response = operator.post(
        "/api/v1/reports/generate/",
        json={"service": "shelf-vision", "period": "week", "recipients": ["sre@example.com"]},
    )
    assert response.status_code in (201, 202), (response.status_code, response.text[:300])
    assert Report.objects.count() == 1
    assert ReportDelivery.objects.count() == 1
    assert broker_down.server_errors()[before:] == []
    # the broker being down is reported where it belongs, and the API keeps answering
    assert Client(broker_down).get("/healthz").status_code == 503
    listed = operator.get("/api/v1/reports/")
    assert listed.status_code == 200 and listed.json()["count"] == 1
