"""The service page lists the service's recent decision records."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone


def test_it_lists_recent_decision_records_of_the_service(page_for: Any, service: Any) -> None:
    from routing.models.decisions import DecisionRecord

    now = timezone.now()
    for request_id, service_name, age in (
        ("seen-1", "shelf-vision", 5),
        ("other-svc", "elsewhere", 5),
        ("too-old", "shelf-vision", 60 * 30),
    ):
        at = now - timedelta(minutes=age)
        DecisionRecord.objects.create(
            gateway_id=1,
            service=service_name,
            tier="edge",
            request_id=request_id,
            at=at,
            minute=int(at.timestamp() // 60),
            rule="low-confidence",
            chain=["local", "public_cloud"],
            route="public_cloud",
            outcome="ok",
            latency_ms=181.5,
        )
    body = page_for("viewer").get("/services/shelf-vision/?range=24h").content.decode()
    assert "seen-1" in body and "local → public_cloud" in body and "low-confidence" in body
    assert "other-svc" not in body and "too-old" not in body
    week = page_for("viewer").get("/services/shelf-vision/?range=7d").content.decode()
    assert "too-old" in week  # the list follows the page's range
