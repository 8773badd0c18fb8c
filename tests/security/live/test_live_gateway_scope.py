"""A gateway speaks only for itself: a gateway registered for service S on tier T in region R may push
only series of S, T and R. Anything else is refused with 403 naming the label, and nothing is stored.
Also: a counter increase beyond what a bigint holds (1e308) is a 400 with its path, not a 500."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.security.live.conftest import assert_still_working
from tests.security.live.support import Client, LiveServer


def batch(
    *,
    service: str = "shelf-vision",
    tier: str = "edge",
    region: str | None = None,
    increase: Any = 5,
    outcome: str = "error",
) -> dict[str, Any]:
    from slo import contract as c

    minute = (timezone.now() - timedelta(minutes=3)).replace(second=0, microsecond=0)
    labels = {"service": service, "tier": tier, "route": "local", "outcome": outcome}
    if region is not None:
        labels["region"] = region
    return {
        "contract_version": c.CONTRACT_VERSION,
        "gateway": "edge-1",
        "minutes": [
            {
                "minute": minute.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "counters": [{"name": c.REQUESTS_TOTAL, "labels": labels, "increase": increase}],
                "gauges": [],
            }
        ],
    }


def stored() -> tuple[int, int]:
    from slo.models.telemetry import SeriesMinute, SliMinute

    return SeriesMinute.objects.count(), SliMinute.objects.count()


@pytest.mark.parametrize(
    ("labels", "named"),
    [
        ({"service": "fraud-score"}, "service"),
        ({"service": "doc-summarizer"}, "service"),
        ({"tier": "public_cloud"}, "tier"),
    ],
)
def test_a_gateway_cannot_push_series_of_another_service_tier_or_region(
    live: LiveServer,
    catalog: dict[str, Any],
    as_role: Any,
    labels: dict[str, str],
    named: str,
) -> None:
    gateway = Client(live, token=catalog["gateway_token"])
    path = f"/api/v1/gateways/{catalog['gateway'].pk}/telemetry/"
    response = gateway.post(path, json=batch(increase=5000, **labels))
    assert response.status_code == 403, (response.status_code, response.text[:500])
    assert named in response.text, f"the refusal does not name the label {named!r}: {response.text[:500]}"
    assert stored() == (0, 0)
    # its own series are still accepted, from the same gateway
    own = gateway.post(path, json=batch(outcome="ok"))
    assert own.status_code == 202, (own.status_code, own.text[:500])
    assert stored()[0] > 0
    assert_still_working(live, as_role("viewer"))


def test_a_region_label_is_refused_whole(live: LiveServer, catalog: dict[str, Any], as_role: Any) -> None:
    """The contract has no region label (a gateway's region is its registration's): a series that
    claims one, of another region, is refused with the label named, and nothing is stored."""
    gateway = Client(live, token=catalog["gateway_token"])
    path = f"/api/v1/gateways/{catalog['gateway'].pk}/telemetry/"
    response = gateway.post(path, json=batch(increase=5000, region="us-east"))
    assert response.status_code in (400, 403), (response.status_code, response.text[:500])
    assert "region" in response.text
    assert stored() == (0, 0)
    assert_still_working(live, as_role("viewer"))


def test_a_count_of_1e308_is_a_400_with_its_path(
    live: LiveServer, catalog: dict[str, Any], as_role: Any
) -> None:
    gateway = Client(live, token=catalog["gateway_token"])
    path = f"/api/v1/gateways/{catalog['gateway'].pk}/telemetry/"
    response = gateway.post(
        path, data=json.dumps(batch(increase=1e308)), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, (response.status_code, response.text[:500])
    paths = [e.get("path", "") for e in response.json().get("errors", [])]
    assert any("increase" in p for p in paths), paths
    assert stored() == (0, 0)
    assert gateway.post(path, json=batch(outcome="ok")).status_code == 202
    assert_still_working(live, as_role("viewer"))


def test_an_oversized_push_is_refused_before_its_body_is_sent(
    live: LiveServer, catalog: dict[str, Any], as_role: Any
) -> None:
    """The web server hands the request over without reading the body, and the view refuses it
    from its Content-Length: a client announcing 200 MB gets its 413 while it has sent none of it,
    and holds no thread waiting for the body."""
    import socket

    from slo.telemetry.batch_format import MAX_BATCH_BYTES

    declared = 200_000_000
    assert declared > MAX_BATCH_BYTES
    head = (
        f"POST /api/v1/gateways/{catalog['gateway'].pk}/telemetry/ HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {catalog['gateway_token']}\r\n"
        f"X-Forwarded-Proto: https\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        sock.sendall(head.encode())
        status_line = sock.makefile("rb").readline().decode()
    assert status_line.split()[1] == "413", status_line
    assert stored() == (0, 0)
    gateway = Client(live, token=catalog["gateway_token"])
    path = f"/api/v1/gateways/{catalog['gateway'].pk}/telemetry/"
    assert gateway.post(path, json=batch(outcome="ok")).status_code == 202
    assert_still_working(live, as_role("viewer"))
