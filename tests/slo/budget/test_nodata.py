"""Every SLO without data says why, in its status API: no source, source down, threshold not a
bucket boundary (also warned at creation), no series, not pulled yet, no traffic. The source
cases pull a REAL Prometheus (tests/support/prometheus.py); discovery reads it too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from slo.budget.buckets import floor_minute
from slo.budget.evaluation import slo_evaluate
from slo.telemetry.pull import telemetry_source_pull
from slo.telemetry.sources import telemetry_source_create
from tests.slo.budget.conftest import load_minutes
from tests.support import prometheus as support
from tests.support.prometheus import LoadedPrometheus, PrometheusServer

prometheus_history = support.prometheus_history
prometheus_server = support.prometheus_server

FAST_FAIL = {"max_retries": 0, "timeout_s": 2}


def create(api: Any, doc: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/api/v1/slos/", doc, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def reason_after_evaluation(api: Any, slo_id: int) -> dict[str, Any]:
    slo_evaluate(slo_ids=[slo_id], now=timezone.now())
    response = api.get(f"/api/v1/slos/{slo_id}/status/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["sli"] is None or body["no_data_reason"]["code"] == "no_traffic"
    return body["no_data_reason"]


def source(url: str, **extra: Any) -> Any:
    return telemetry_source_create(
        actor=None,
        data={
            "name": "edge-prom",
            "url": url,
            "tier": "edge",
            "scrape_lag_s": 0,
            "backfill_minutes": 30,
            **extra,
        },
    )


@pytest.mark.django_db
def test_no_source_covers_the_slo(api_for: Any, service: Any, slo_doc: dict[str, Any]) -> None:
    api = api_for("operator")
    created = create(api, {**slo_doc, "sli": {"kind": "availability"}})
    assert [w["path"] for w in created["warnings"]] == ["tier"]
    assert "no telemetry source serves service shelf-vision on tier edge" in created["warnings"][0]["message"]
    reason = reason_after_evaluation(api, created["id"])
    assert reason["code"] == "no_source"
    assert "no gateway pushes" in reason["message"]


@pytest.mark.django_db
def test_a_source_not_pulled_yet(api_for: Any, service: Any, slo_doc: dict[str, Any]) -> None:
    api = api_for("operator")
    source("http://127.0.0.1:9/")
    created = create(api, {**slo_doc, "sli": {"kind": "availability"}})
    assert created["warnings"] == []
    reason = reason_after_evaluation(api, created["id"])
    assert reason["code"] == "not_pulled_yet"
    assert "edge-prom" in reason["message"]


@pytest.mark.django_db
def test_no_traffic_is_told_apart_from_no_data(api_for: Any, service: Any, slo_doc: dict[str, Any]) -> None:
    from slo.models import Slo

    api = api_for("operator")
    quiet = create(api, {**slo_doc, "sli": {"kind": "availability"}})
    busy = create(api, {**slo_doc, "name": "busy", "sli": {"kind": "availability"}})
    now = floor_minute(timezone.now())
    start = now - timedelta(minutes=30)
    n = 30
    present = np.ones(n, dtype=bool)
    load_minutes(Slo.objects.get(pk=quiet["id"]), start, np.zeros(n), np.zeros(n), present)
    load_minutes(Slo.objects.get(pk=busy["id"]), start, np.full(n, 10.0), np.full(n, 10.0), present)
    slo_evaluate(slo_ids=[quiet["id"], busy["id"]], now=now)
    quiet_status = api.get(f"/api/v1/slos/{quiet['id']}/status/").json()
    busy_status = api.get(f"/api/v1/slos/{busy['id']}/status/").json()
    assert quiet_status["sli"] is None
    assert quiet_status["no_data_reason"]["code"] == "no_traffic"
    assert busy_status["sli"] == 1.0
    assert busy_status["no_data_reason"] is None


@pytest.mark.django_db
def test_threshold_not_a_contract_boundary_on_the_push_path(
    api_for: Any, users: Any, service: Any, slo_doc: dict[str, Any]
) -> None:
    from routing.fleet.services import gateway_register

    api = api_for("operator")
    gateway_register(
        actor=users["operator"], data={"name": "edge-berlin-01", "service": "shelf-vision", "tier": "edge"}
    )
    created = create(api, {**slo_doc, "sli": {"kind": "latency", "threshold_ms": 120}})
    assert [w["path"] for w in created["warnings"]] == ["sli.threshold_ms"]
    assert "nearest boundaries 100 ms and 150 ms" in created["warnings"][0]["message"]
    assert "gateway contract" in created["warnings"][0]["message"]
    reason = reason_after_evaluation(api, created["id"])
    assert reason["code"] == "threshold_not_boundary"
    assert "nearest boundaries 100 ms and 150 ms" in reason["message"]


@pytest.mark.prometheus
@pytest.mark.django_db
def test_threshold_not_a_boundary_of_the_sources_histogram(
    api_for: Any, service: Any, slo_doc: dict[str, Any], prometheus_server: PrometheusServer
) -> None:
    # The loaded histogram has boundaries 0.1, 0.15 (also spelled 0.150), 2 (also 2.0) and +Inf.
    api = api_for("operator")
    prom = source(prometheus_server.url)
    created = create(api, {**slo_doc, "sli": {"kind": "latency", "threshold_ms": 1000}})
    assert len(created["warnings"]) == 1, created["warnings"]
    message = created["warnings"][0]["message"]
    assert created["warnings"][0]["path"] == "sli.threshold_ms"
    assert "source edge-prom" in message and "nearest boundaries 150 ms and 2000 ms" in message
    fine = create(
        api, {**slo_doc, "name": "edge-latency-150", "sli": {"kind": "latency", "threshold_ms": 150}}
    )
    assert fine["warnings"] == []
    assert telemetry_source_pull(source_id=prom.pk).ok
    reason = reason_after_evaluation(api, created["id"])
    assert reason["code"] == "threshold_not_boundary"
    assert "nearest boundaries 150 ms and 2000 ms" in reason["message"]


@pytest.mark.prometheus
@pytest.mark.django_db
def test_the_query_matched_no_series(
    api_for: Any, service: Any, slo_doc: dict[str, Any], prometheus_server: PrometheusServer
) -> None:
    # The history lies days back: a pull of the last 30 minutes finds no series.
    api = api_for("operator")
    prom = source(prometheus_server.url)
    created = create(api, {**slo_doc, "sli": {"kind": "availability"}})
    result = telemetry_source_pull(source_id=prom.pk)
    assert result.ok and result.slo_minutes > 0 and result.present_minutes == 0
    reason = reason_after_evaluation(api, created["id"])
    assert reason["code"] == "no_series"
    assert "edge-prom answered, but the SLI query matched no series" in reason["message"]


@pytest.mark.prometheus
@pytest.mark.django_db
def test_the_source_is_down_since_its_last_success(
    api_for: Any, service: Any, slo_doc: dict[str, Any], prometheus_server: PrometheusServer
) -> None:
    api = api_for("operator")
    prom = source(prometheus_server.url)
    created = create(api, {**slo_doc, "sli": {"kind": "availability"}})
    assert telemetry_source_pull(source_id=prom.pk).ok
    prom.refresh_from_db()
    last_success = prom.last_success_at
    prometheus_server.stop()
    failed = telemetry_source_pull(
        source_id=prom.pk, now=timezone.now() + timedelta(minutes=1), puller_options=FAST_FAIL
    )
    assert not failed.ok
    reason = reason_after_evaluation(api, created["id"])
    assert reason["code"] == "source_down"
    assert reason["message"].startswith("source edge-prom is down (1 failed pulls): ")
    assert failed.error in reason["message"]
    assert reason["since"] == last_success.isoformat()


@pytest.mark.prometheus
@pytest.mark.django_db
def test_discovery_lists_metrics_labels_and_bucket_boundaries(
    api_for: Any, service: Any, prometheus_server: PrometheusServer, prometheus_history: LoadedPrometheus
) -> None:
    prom = source(prometheus_server.url)
    api = api_for("viewer")
    url = f"/api/v1/telemetry-sources/{prom.pk}/discovery/"
    metrics = api.get(url).json()["metrics"]
    assert {"inference_requests_total", "inference_request_duration_seconds_bucket"} <= set(metrics)
    histogram = api.get(url, {"metric": "inference_request_duration_seconds"}).json()
    assert histogram["histogram"] is True
    assert histogram["bucket_boundaries"] == [0.1, 0.15, 2.0]
    assert histogram["labels"]["route"] == ["cache", "local"]
    assert histogram["labels"]["le"] == sorted({"0.1", "0.15", "0.150", "2", "2.0", "+Inf"})
    counter = api.get(url, {"metric": "inference_requests_total"}).json()
    assert counter["histogram"] is False and counter["bucket_boundaries"] is None
    assert counter["labels"]["outcome"] == ["error", "ok", "shed"]
    missing = api.get(url, {"metric": "no_such_metric"}).json()
    assert missing["found"] is False and missing["labels"] == {}
    bad = api.get(url, {"metric": "up{job=~'.*'}"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "metric"
    prometheus_server.stop()
    down = api.get(url)
    assert down.status_code == 502 and "edge-prom did not answer" in down.json()["detail"]


@pytest.mark.django_db
def test_the_pages_show_the_reason_next_to_no_data(
    client: Any, api_for: Any, users: Any, service: Any, slo_doc: dict[str, Any]
) -> None:
    from django.urls import reverse

    api = api_for("operator")
    created = create(api, {**slo_doc, "sli": {"kind": "availability"}})
    reason = reason_after_evaluation(api, created["id"])
    client.force_login(users["viewer"])
    detail = client.get(reverse("dashboard:slo", args=[created["id"]])).content.decode()
    assert 'data-no-data-reason="no_source"' in detail
    assert "no telemetry source serves service shelf-vision on tier edge" in detail
    service_page = client.get(reverse("dashboard:service", args=["shelf-vision"])).content.decode()
    assert reason["message"] in service_page
    overview = client.get(reverse("dashboard:overview")).content.decode()
    assert f'title="{reason["message"]}">no source</span>' in overview
