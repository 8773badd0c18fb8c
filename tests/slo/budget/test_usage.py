"""Cost rollups from the pushed contract series (the telemetry tables), stored and idempotent."""

from __future__ import annotations

from datetime import timedelta

import pytest

from slo.budget import services
from slo.models.budget import CostRollup
from slo.models.telemetry import SeriesMinute
from tests.slo.budget.conftest import NOW

pytestmark = pytest.mark.django_db

HOUR = NOW.replace(minute=0)


def test_it_rolls_up_an_hour_of_contract_series(users, service):
    services.cost_model_create(
        actor=users["admin"],
        data={
            "prices": {
                "request_fee_usd": {"public_cloud": 0.001},
                "cache_usd_per_lookup": 0.0001,
                "edge_device_usd_per_hour": 0.6,
                "stale_hit_cost_usd": 0.01,
            },
            "effective_from": (HOUR - timedelta(days=1)).isoformat(),
        },
    )
    first = int(HOUR.timestamp() // 60)
    rows = []
    for i in range(60):
        m = first + i
        rows += [
            SeriesMinute(
                minute=m,
                source="push:edge-1",
                name="inference_requests_total",
                service="shelf-vision",
                tier="edge",
                labels="outcome=ok,route=local",
                value=10,
            ),
            SeriesMinute(
                minute=m,
                source="push:edge-1",
                name="inference_requests_total",
                service="shelf-vision",
                tier="edge",
                labels="outcome=ok,route=public_cloud",
                value=2,
            ),
            SeriesMinute(
                minute=m,
                source="push:edge-1",
                name="inference_requests_total",
                service="shelf-vision",
                tier="edge",
                labels="outcome=error,route=failed",
                value=1,
            ),
            SeriesMinute(
                minute=m,
                source="push:edge-1",
                name="inference_cache_lookups_total",
                service="shelf-vision",
                tier="edge",
                labels="layer=result,result=stale_hit",
                value=1,
            ),
            SeriesMinute(
                minute=m,
                source="push:edge-1",
                name="inference_cache_lookups_total",
                service="shelf-vision",
                tier="edge",
                labels="layer=result,result=miss",
                value=3,
            ),
        ]
    SeriesMinute.objects.bulk_create(rows)
    assert services.cost_rollups_compute(bucket_start=HOUR, resolution="hour") > 0
    again = services.cost_rollups_compute(bucket_start=HOUR, resolution="hour")
    total = CostRollup.objects.get(route="all", bucket_start=HOUR)
    assert CostRollup.objects.filter(bucket_start=HOUR).count() == again  # replaced, not duplicated
    # fees 120 x 0.001 + cache 240 x 0.0001 + device 1 h x 0.6 = 0.744; stale 60 x 0.01 = 0.6
    assert total.requests == 780
    assert total.cost_usd == pytest.approx(0.744 + 0.6)
    assert total.figures["sla"][0]["measured_availability_percent"] == pytest.approx(100 * 720 / 780)
