"""Capacity recommendations from stored gateway health (PostgreSQL): opened from the policy's
rules, audited and notified, confirmed while the advice holds, cleared only after a calm period,
and exposed on the API, the scaler endpoint, /metrics and the service page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from routing.capacity.services import capacity_evaluate
from routing.fleet.services import heartbeat_record
from routing.models.capacity import CapacityRecommendation, GatewayHealthSample

pytestmark = pytest.mark.django_db

CALM = {
    "temperature_c": 60.0,
    "memory_headroom_pct": 40.0,
    "queue_depth": 1,
    "active_workers": 2,
    "p95_ms": 30.0,
}
HOT = {**CALM, "temperature_c": 92.0, "memory_headroom_pct": 6.0, "queue_depth": 9, "backhaul_healthy": True}


@pytest.fixture
def settings_fast(settings):
    settings.CAPACITY_WINDOW_S = 60
    settings.CAPACITY_CLEAR_AFTER_S = 180
    return settings


def _beats(gateway_id: int, health: dict, start, minutes: float, every_s: int = 15) -> None:
    for i in range(int(minutes * 60 / every_s)):
        heartbeat_record(
            gateway_id=gateway_id, data={"health": health}, now=start + timedelta(seconds=i * every_s)
        )


def test_a_heartbeat_stores_its_health_and_bad_fields_are_missing_not_zero(register):
    gateway = register("edge-1").gateway
    now = timezone.now()
    heartbeat_record(
        gateway_id=gateway.pk,
        data={
            "health": {
                "temperature_c": 71.5,
                "queue_depth": "deep",
                "active_workers": 3,
                "backhaul_healthy": 1,
            }
        },
        now=now,
    )
    sample = GatewayHealthSample.objects.get(gateway_id=gateway.pk)
    assert (sample.temperature_c, sample.queue_depth, sample.active_workers, sample.backhaul_healthy) == (
        71.5,
        None,
        3,
        None,
    )


def test_a_hot_edge_gateway_opens_one_offload_recommendation_that_clears_after_the_calm_period(
    register, settings_fast
):
    from controlplane.models.audit import AuditEvent
    from slo.models.budget import AlertEvent, Notification, NotificationChannel

    NotificationChannel.objects.create(name="ops", kind="generic_webhook", url="http://127.0.0.1:9/hook")
    gateway = register("edge-1").gateway
    t0 = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=30)
    _beats(gateway.pk, CALM, t0, 5)
    assert capacity_evaluate(now=t0 + timedelta(minutes=5)).opened == []
    _beats(gateway.pk, HOT, t0 + timedelta(minutes=5), 2)
    report = capacity_evaluate(now=t0 + timedelta(minutes=7))
    (rec,) = CapacityRecommendation.objects.all()
    assert report.opened == [rec.pk]
    assert (rec.action, rec.tier, rec.region, rec.state) == ("offload_to_cloud", "edge", "eu-west", "active")
    assert rec.amount == 2 and rec.current_workers == 2
    assert "92 C, above 85 C" in rec.reason
    assert rec.evidence["windows"][-1]["temperature_c"] == 92.0
    assert AuditEvent.objects.filter(action="capacity_recommend", object_id=str(rec.pk)).exists()
    event = AlertEvent.objects.get(kind="capacity", state="firing")
    assert event.evidence["recommendation"] == rec.pk
    assert Notification.objects.filter(alert_event=event).count() == 1
    assert AlertEvent.objects.filter(kind="device_health", state="firing").count() == 1

    # the load stops; calm but within CAPACITY_CLEAR_AFTER_S: still open, calm_since set
    _beats(gateway.pk, CALM, t0 + timedelta(minutes=7), 2)
    capacity_evaluate(now=t0 + timedelta(minutes=8))
    rec.refresh_from_db()
    assert rec.state == "active" and rec.calm_since == t0 + timedelta(minutes=8)
    # a hot blip while calming resets the calm period instead of clearing and re-opening
    _beats(gateway.pk, HOT, t0 + timedelta(minutes=9), 0.25)
    capacity_evaluate(now=t0 + timedelta(minutes=9, seconds=15))
    rec.refresh_from_db()
    assert rec.state == "active" and rec.calm_since is None
    _beats(gateway.pk, CALM, t0 + timedelta(minutes=9, seconds=15), 5)
    for minute in (10, 11, 12):
        capacity_evaluate(now=t0 + timedelta(minutes=minute))
    rec.refresh_from_db()
    assert rec.state == "active"  # calm since 10:00, 120 s < 180 s
    capacity_evaluate(now=t0 + timedelta(minutes=13))
    rec.refresh_from_db()
    assert rec.state == "cleared" and rec.cleared_at == t0 + timedelta(minutes=13)
    assert CapacityRecommendation.objects.count() == 1  # no flapping: one row from open to clear
    assert AuditEvent.objects.filter(action="capacity_clear", object_id=str(rec.pk)).exists()
    assert AlertEvent.objects.filter(kind="capacity", state="resolved").count() == 1
    assert AlertEvent.objects.filter(kind="device_health", state="resolved").count() == 1


def test_a_cloud_pool_queueing_scales_out_with_the_policys_rules_and_the_scaler_endpoint_reads_it(
    register, settings_fast, api_for, users
):
    gateway = register("cloud-1", tier="private_cloud").gateway
    t0 = timezone.now() - timedelta(minutes=3)
    _beats(gateway.pk, {**CALM, "queue_depth": 9, "active_workers": 3}, t0, 3)
    capacity_evaluate(now=t0 + timedelta(minutes=3))
    (rec,) = CapacityRecommendation.objects.all()
    # independent: ceil(9 / 1.25) = 8 workers wanted, 3 running
    assert (rec.action, rec.desired_workers, rec.amount) == ("scale_out", 8, 5)

    viewer = api_for("viewer")
    listed = viewer.get("/api/v1/capacity/recommendations/", {"service": "shelf-vision"}).json()
    assert [(r["action"], r["pool"], r["amount"]) for r in listed["results"]] == [("scale_out", "", 5)]
    metric = viewer.get(
        "/api/v1/capacity/scaler/", {"service": "shelf-vision", "tier": "private_cloud"}
    ).json()
    assert (metric["currentWorkers"], metric["desiredWorkers"], metric["offloadWorkers"]) == (3, 8, 0)
    bad = viewer.get("/api/v1/capacity/scaler/", {"tier": "moon"})
    assert bad.status_code == 400
    assert {e["path"] for e in bad.json()["errors"]} == {"service", "tier"}
    assert viewer.get("/api/v1/capacity/scaler/", {"service": "nope"}).status_code == 404

    metrics = viewer.get("/metrics").content.decode()
    assert re.search(
        r'controlplane_capacity_desired_workers\{pool="",region="eu-west",service="shelf-vision",'
        r'tier="private_cloud"\} 8\.0',
        metrics,
    ), metrics[-2000:]
    assert 'controlplane_capacity_recommendation{action="scale_out"' in metrics

    history = viewer.get(f"/api/v1/gateways/{gateway.pk}/health/", {"since": t0.isoformat()}).json()
    assert len(history["points"]) == 12 and history["points"][0]["queue_depth"] == 9
    assert viewer.get(f"/api/v1/gateways/{gateway.pk}/health/", {"since": "x"}).status_code == 400

    from django.test import Client

    client = Client()
    client.force_login(users["viewer"])
    page = client.get("/services/shelf-vision/").content.decode()
    assert "Capacity recommendations" in page and "scale out</strong> by 5" in page


def test_postgresql_and_python_aggregations_agree(register, settings_fast):
    from routing.capacity.health import _accumulate_python, _accumulate_sql

    one, two = register("edge-1").gateway, register("edge-2", region="eu-central").gateway
    t0 = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=4)
    _beats(one.pk, HOT, t0, 2, every_s=10)
    _beats(two.pk, {**CALM, "accelerator_util_pct": 40.0}, t0, 3, every_s=20)
    heartbeat_record(gateway_id=two.pk, data={"health": {"queue_depth": 4}}, now=t0 + timedelta(seconds=5))
    args = {"since": t0, "until": t0 + timedelta(minutes=5), "window_s": 60, "gateway_ids": None}
    sql, python = _accumulate_sql(**args), _accumulate_python(**args)
    assert set(sql) == set(python) == {one.pk, two.pk}
    for gateway in sql:
        assert set(sql[gateway]) == set(python[gateway])
        for bucket, acc in sql[gateway].items():
            assert {k: getattr(acc, k) for k in acc.__slots__} == {
                k: getattr(python[gateway][bucket], k) for k in acc.__slots__
            }
    first = sql[two.pk][int(t0.timestamp() // 60)]
    # independent: 3 reports of queue 1 and one of 4 in the first minute; the bare report has no workers
    assert (first.n, first.queue, first.workers, first.accel, first.accel_n) == (4, 7.0, 2, 120.0, 3)
