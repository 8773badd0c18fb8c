"""The cache alert feed: windows from pushed cache lookup series, transitions once, no data no verdict."""

from __future__ import annotations

from datetime import timedelta

import pytest

from slo.budget.cache_checks import CacheWindow
from slo.budget.cache_feed import CacheThresholds, cache_alerts_evaluate, cache_windows
from slo.contract import CACHE_LOOKUPS_TOTAL
from slo.models.budget import AlertEvent, AlertState
from slo.models.telemetry import SeriesMinute
from slo.telemetry.selectors import epoch_minute_floor
from tests.slo.budget.conftest import NOW

pytestmark = pytest.mark.django_db


def lookups(
    start, minutes, *, per_minute, service="shelf-vision", tier="edge", layer="result", source="gateway:1"
):
    """Store `per_minute` {result: count} for each of `minutes` minutes from `start`."""
    first = epoch_minute_floor(start)
    SeriesMinute.objects.bulk_create(
        [
            SeriesMinute(
                minute=first + i,
                source=source,
                name=CACHE_LOOKUPS_TOTAL,
                service=service,
                tier=tier,
                labels=f"layer={layer},result={result}",
                value=value,
            )
            for i in range(minutes)
            for result, value in per_minute.items()
        ]
    )


HEALTHY = {"hit": 8, "miss": 2}  # hit rate 0.8
DEGRADED = {"hit": 4, "miss": 6}  # hit rate 0.4: a 50% drop


def history(now, *, current):
    # two hours of the trailing day at 0.8, then the current 15 minutes
    lookups(now - timedelta(hours=5), 120, per_minute=HEALTHY)
    lookups(now - timedelta(minutes=15), 15, per_minute=current)


def test_it_builds_current_and_baseline_windows_from_every_tier_layer_and_source(service):
    lookups(NOW - timedelta(hours=3), 10, per_minute={"hit": 5, "semantic_hit": 1, "stale_hit": 1, "miss": 3})
    lookups(
        NOW - timedelta(minutes=15),
        15,
        per_minute={"hit": 2, "miss": 1},
        tier="public_cloud",
        source="gateway:2",
    )
    lookups(NOW - timedelta(minutes=15), 15, per_minute={"semantic_hit": 1}, layer="semantic")
    # outside both windows: older than a day before the current window, and the running minute
    lookups(NOW - timedelta(minutes=15 + 1440 + 1), 1, per_minute={"miss": 1000})
    lookups(NOW, 1, per_minute={"miss": 1000})
    # not a cache lookup series
    SeriesMinute.objects.create(
        minute=epoch_minute_floor(NOW) - 1,
        source="gateway:1",
        name="inference_requests_total",
        service="shelf-vision",
        tier="edge",
        labels="result=miss",
        value=1e6,
    )

    current, baseline = cache_windows(now=NOW)["shelf-vision"]

    assert current == CacheWindow(hits=45, stale_hits=0, misses=15)
    assert baseline == CacheWindow(hits=60, stale_hits=10, misses=30)


def test_it_fires_a_hit_rate_drop_once_however_often_it_runs(service):
    history(NOW, current=DEGRADED)

    assert cache_alerts_evaluate(now=NOW) == 1
    assert cache_alerts_evaluate(now=NOW) == 0
    assert cache_alerts_evaluate(now=NOW + timedelta(minutes=5)) == 0

    event = AlertEvent.objects.get()
    assert (event.kind, event.state, event.at) == ("cache_hit_drop", "firing", NOW)
    assert event.evidence["current_hit_rate"] == pytest.approx(0.4)
    assert event.evidence["baseline_hit_rate"] == pytest.approx(0.8)


def test_it_resolves_when_the_hit_rate_recovers(service):
    history(NOW, current=DEGRADED)
    assert cache_alerts_evaluate(now=NOW) == 1
    later = NOW + timedelta(minutes=30)
    lookups(later - timedelta(minutes=15), 15, per_minute=HEALTHY)

    assert cache_alerts_evaluate(now=later) == 1

    assert list(AlertEvent.objects.order_by("at").values_list("state", flat=True)) == ["firing", "resolved"]


def test_no_data_in_the_current_window_is_no_verdict_and_never_resolves(service):
    history(NOW, current=DEGRADED)
    assert cache_alerts_evaluate(now=NOW) == 1

    # An hour later nothing was pushed for 15 minutes: the alert stays firing.
    assert cache_windows(now=NOW + timedelta(hours=1)) == {}
    assert cache_alerts_evaluate(now=NOW + timedelta(hours=1)) == 0
    assert AlertState.objects.get(kind="cache_hit_drop").firing
    assert AlertEvent.objects.count() == 1


def test_no_data_at_all_records_nothing(service):
    lookups(NOW - timedelta(hours=5), 120, per_minute=HEALTHY)

    assert cache_alerts_evaluate(now=NOW) == 0
    assert not AlertState.objects.exists() and not AlertEvent.objects.exists()


def test_it_takes_per_service_thresholds_from_the_caller(service):
    history(NOW, current={"hit": 6, "miss": 4})  # 0.6 vs 0.8: a 25% drop

    assert cache_alerts_evaluate(now=NOW) == 0  # default: more than 30%
    assert (
        cache_alerts_evaluate(now=NOW, thresholds={"shelf-vision": CacheThresholds(max_relative_drop=0.2)})
        == 1
    )


def test_it_ignores_series_of_unknown_services(service):
    lookups(NOW - timedelta(hours=5), 120, per_minute=HEALTHY, service="gone-service")
    lookups(NOW - timedelta(minutes=15), 15, per_minute=DEGRADED, service="gone-service")

    assert cache_alerts_evaluate(now=NOW) == 0
