"""The gateway page: each config revision linked to the document versions and the release that
produced it, the health history as charts with the thresholds that act on it, and deliveries."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway(
    users: dict[str, Any], service: Any, documents: dict[str, Any], pending_release: Any, now: Any
) -> Any:
    from routing.fleet.services import gateway_register, gateway_set_desired, heartbeat_record

    gateway = gateway_register(
        actor=users["operator"],
        data={"name": "edge-page", "service": service.name, "tier": "edge", "region": "eu-west"},
    ).gateway
    for version, release_id, at in (
        ("policy_v1", None, now - timedelta(hours=2)),
        ("policy_v2", pending_release.pk, now - timedelta(hours=1)),
    ):
        gateway_set_desired(
            actor=users["operator"],
            gateway_ids=[gateway.pk],
            bundle_for={
                "routing_policy": documents[version].document,
                "cache_config": documents["cache_v1"].document,
                "model_version": "v7",
            },
            reason=f"ship {version}",
            release_id=release_id,
            now=at,
        )
    health = [(30, 92.5, 6.0, 9), (20, 70.0, 30.0, 2), (5, 64.0, 33.5, 1)]
    for minutes_ago, temperature, headroom, queue in health:
        heartbeat_record(
            gateway_id=gateway.pk,
            data={
                "applied_revision": 2,
                "health": {
                    "temperature_c": temperature,
                    "memory_headroom_pct": headroom,
                    "queue_depth": queue,
                    "active_workers": 2,
                    "backhaul_rtt_ms": 35.0,
                    "backhaul_healthy": True,
                },
            },
            now=now - timedelta(minutes=minutes_ago),
        )
    return gateway


def test_the_gateway_page_links_revisions_to_documents_and_releases_and_charts_its_health(
    page_for: Any, gateway: Any, documents: dict[str, Any], pending_release: Any
) -> None:
    response = page_for("viewer").get(f"/fleet/gateways/{gateway.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    line = documents["policy_v1"].line_id
    cache_line = documents["cache_v1"].line_id
    assert f'href="/policies/routing-policies/{line}/?v=2"' in body
    assert f'href="/policies/routing-policies/{line}/?v=1"' in body
    assert f'href="/policies/cache-configs/{cache_line}/?v=1"' in body
    assert f'href="/releases/{pending_release.pk}/"' in body
    rows = response.context["revision_rows"]
    assert [(r["revision"].revision, r["applied"], [d["version"] for d in r["documents"]]) for r in rows] == [
        (2, True, [2, 1]),
        (1, False, [1, 1]),
    ]
    charts = {c.id: c.figure for c in response.context["charts"]}
    temperature = charts["chart-temperature"]
    assert temperature["data"][0]["y"] == [92.5, 70.0, 64.0]
    assert temperature["layout"]["shapes"][0]["y0"] == 85  # the policy's max_temperature_c
    assert charts["chart-memory"]["data"][0]["y"] == [6.0, 30.0, 33.5]
    assert charts["chart-memory"]["layout"]["shapes"][0]["y0"] == 10
    assert [s["name"] for s in charts["chart-queue"]["data"]] == ["queued requests", "active workers"]
    assert json.dumps(charts["chart-backhaul"]["data"][0]["y"]) == "[35.0, 35.0, 35.0]"
    assert "64.0 °C" in body and "33.5%" in body  # the newest report


def test_the_fleet_links_to_the_gateway_page_and_access_is_checked(page_for: Any, gateway: Any) -> None:
    assert f'href="/fleet/gateways/{gateway.pk}/"' in page_for("viewer").get("/fleet/").content.decode()
    assert page_for("viewer").get("/fleet/gateways/999999/").status_code == 404
    assert page_for("outsider").get(f"/fleet/gateways/{gateway.pk}/").status_code == 403
    anonymous = page_for(None).get(f"/fleet/gateways/{gateway.pk}/")
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]
