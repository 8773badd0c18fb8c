"""Pulling SLIs from a REAL Prometheus loaded with known history (tests/support/prometheus.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY

from slo.contract import REQUEST_DURATION, REQUESTS_TOTAL
from slo.counters import from_epoch_minute
from slo.models.telemetry import SliMinute, TelemetrySource
from slo.telemetry.pull import PULL_CLAIM_LEASE, telemetry_source_pull
from slo.telemetry.selectors import sli_minutes
from slo.telemetry.sources import telemetry_source_create
from tests.support import prometheus as support
from tests.support.prometheus import LoadedPrometheus, PrometheusServer, expected_sum

prometheus_history = support.prometheus_history
prometheus_server = support.prometheus_server

BASE = {"service": "shelf-vision", "tier": "edge"}
FAST_FAIL = {"max_retries": 0, "timeout_s": 2}


def req(route: str, outcome: str) -> tuple[str, dict[str, str]]:
    return REQUESTS_TOTAL, {**BASE, "route": route, "outcome": outcome}


def expected(
    loaded: LoadedPrometheus, good: list[Any], valid: list[Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    good_values, good_present = expected_sum(loaded.history, good)
    valid_values, valid_present = expected_sum(loaded.history, valid)
    present = good_present & valid_present
    return np.where(present, good_values, 0), np.where(present, valid_values, 0), present


def availability(loaded: LoadedPrometheus) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ok = [req("local", "ok"), req("cache", "ok"), req("private_cloud", "ok")]
    return expected(loaded, ok, [*ok, req("local", "error")])


def latency(loaded: LoadedPrometheus) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = {**BASE, "outcome": "ok"}
    good = [
        (f"{REQUEST_DURATION}_bucket", {**labels, "route": "local", "le": "0.15"}),
        (f"{REQUEST_DURATION}_bucket", {**labels, "route": "cache", "le": "0.150"}),
    ]
    valid = [(f"{REQUEST_DURATION}_count", {**labels, "route": r}) for r in ("local", "cache")]
    return expected(loaded, good, valid)


@pytest.fixture
def setup(
    db: Any,
    shelf_service: Any,
    slo_doc: dict[str, Any],
    prometheus_server: PrometheusServer,
    prometheus_history: LoadedPrometheus,
) -> dict[str, Any]:
    from slo.services import slo_create

    lat = slo_create(actor=None, data=slo_doc)
    avail = slo_create(
        actor=None, data={**slo_doc, "name": "edge-availability", "sli": {"kind": "availability"}}
    )
    source = telemetry_source_create(
        actor=None,
        data={
            "name": "edge-prom",
            "url": prometheus_server.url,
            "tier": "edge",
            "scrape_lag_s": 0,
            "backfill_minutes": prometheus_history.history.minutes,
        },
    )
    start = from_epoch_minute(prometheus_history.history.start_s // 60)
    return {"lat": lat, "avail": avail, "source": source, "start": start}


def minute(setup: dict[str, Any], i: int) -> datetime:
    return setup["start"] + timedelta(minutes=i)


def assert_stored(setup: dict[str, Any], slo: Any, want: tuple[np.ndarray, ...], lo: int, hi: int) -> None:
    data = sli_minutes([slo.pk], minute(setup, lo), minute(setup, hi))
    good, valid, present = (w[lo:hi] for w in want)
    assert np.flatnonzero(~data.present[0]).tolist() == np.flatnonzero(~present).tolist()
    assert data.good[0].tolist() == good.tolist()
    assert data.valid[0].tolist() == valid.tolist()


@pytest.mark.prometheus
def test_it_stores_exactly_the_generated_counts(
    setup: dict[str, Any], prometheus_history: LoadedPrometheus
) -> None:
    n = prometheus_history.history.minutes
    # first pull: the backfill covers the whole history
    result = telemetry_source_pull(source_id=setup["source"].pk, now=minute(setup, n))
    assert result.ok and result.slos == 2 and result.slo_minutes == 2 * n
    assert_stored(setup, setup["avail"], availability(prometheus_history), 0, n)
    assert_stored(setup, setup["lat"], latency(prometheus_history), 0, n)
    source = TelemetrySource.objects.get(pk=setup["source"].pk)
    assert source.watermark == minute(setup, n) and source.last_success_at is not None
    present = int(availability(prometheus_history)[2].sum() + latency(prometheus_history)[2].sum())
    assert source.samples_ingested == present
    # pulling again re-reads the last minutes and replaces them: nothing changes
    before = sorted(SliMinute.objects.values_list("slo_id", "minute", "good", "valid", "present"))
    assert telemetry_source_pull(source_id=setup["source"].pk, now=minute(setup, n)).ok
    assert sorted(SliMinute.objects.values_list("slo_id", "minute", "good", "valid", "present")) == before


@pytest.mark.prometheus
def test_an_outage_leaves_minutes_missing_and_recovery_backfills_without_a_gap(
    setup: dict[str, Any], prometheus_server: PrometheusServer, prometheus_history: LoadedPrometheus
) -> None:
    n = prometheus_history.history.minutes
    source_id = setup["source"].pk
    TelemetrySource.objects.filter(pk=source_id).update(backfill_minutes=200)
    assert telemetry_source_pull(source_id=source_id, now=minute(setup, 200)).ok  # minutes 0..199

    prometheus_server.stop()
    failed = telemetry_source_pull(source_id=source_id, now=minute(setup, 230), puller_options=FAST_FAIL)
    assert failed.claimed and not failed.ok and "connection failed" in failed.error
    source = TelemetrySource.objects.get(pk=source_id)
    assert source.consecutive_failures == 1 and "connection failed" in source.last_error
    assert source.last_error_at == minute(setup, 230) and source.pulling_since is None
    assert source.watermark == minute(setup, 200)
    assert REGISTRY.get_sample_value("controlplane_telemetry_source_up", {"source": "edge-prom"}) == 0
    # minutes past the watermark are missing, never good
    gap = sli_minutes([setup["avail"].pk], minute(setup, 200), minute(setup, 230))
    assert not gap.present.any()

    prometheus_server.start()
    recovered = telemetry_source_pull(source_id=source_id, now=minute(setup, n))
    assert recovered.ok
    source = TelemetrySource.objects.get(pk=source_id)
    assert source.consecutive_failures == 0 and source.watermark == minute(setup, n)
    assert REGISTRY.get_sample_value("controlplane_telemetry_source_up", {"source": "edge-prom"}) == 1
    assert_stored(setup, setup["avail"], availability(prometheus_history), 0, n)
    assert_stored(setup, setup["lat"], latency(prometheus_history), 0, n)


@pytest.mark.prometheus
def test_two_workers_never_pull_one_source_at_once(setup: dict[str, Any]) -> None:
    source_id = setup["source"].pk
    now = minute(setup, 30)
    TelemetrySource.objects.filter(pk=source_id).update(pulling_since=now - timedelta(seconds=5))
    assert not telemetry_source_pull(source_id=source_id, now=now).claimed
    assert not SliMinute.objects.exists()
    # a claim older than the lease belongs to a dead worker
    TelemetrySource.objects.filter(pk=source_id).update(
        pulling_since=now - PULL_CLAIM_LEASE - timedelta(seconds=1)
    )
    assert telemetry_source_pull(source_id=source_id, now=now).claimed
