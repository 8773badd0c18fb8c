"""The budget API: roles, shapes, secrets, filters, rules export (checked by promtool)."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta

import numpy as np
import pytest

from controlplane.models.audit import AuditEvent
from slo.budget import services
from slo.budget.cost import Usage
from slo.budget.evaluation import slo_evaluate
from slo.models.budget import NotificationChannel
from tests.slo.budget.conftest import NOW, load_minutes

pytestmark = pytest.mark.django_db


@pytest.fixture
def evaluated(make_slo):
    slo = make_slo()
    start = NOW - timedelta(hours=3)
    load_minutes(slo, start, np.full(180, 99.0), np.full(180, 100.0), np.ones(180, dtype=bool))
    slo_evaluate(slo_ids=[slo.pk], now=NOW)
    slo_evaluate(slo_ids=[slo.pk], now=NOW + timedelta(minutes=1))  # 12:35: a history point
    return slo


def test_status_shows_budget_burn_rates_alerts_and_data_quality(api_for, evaluated):
    response = api_for("viewer").get(f"/api/v1/slos/{evaluated.pk}/status/")
    assert response.status_code == 200
    body = response.json()
    assert body["burn_rates"]["1h"] == pytest.approx(1.0)
    assert body["error_budget_remaining"] == pytest.approx(0.0, abs=1e-9)
    assert body["data_quality"] == "ok"
    assert {t["severity"] for t in body["tiers"]} == {"page", "ticket"}
    assert api_for(None).get(f"/api/v1/slos/{evaluated.pk}/status/").status_code == 401
    assert api_for("outsider").get(f"/api/v1/slos/{evaluated.pk}/status/").status_code == 403
    assert api_for("viewer").get("/api/v1/slos/999999/status/").status_code == 404


def test_status_shows_effective_thresholds_never_below_1x(api_for, make_slo):
    """A 7-day SLO: the ticket tiers scale to 0.7x and 0.233x; the status says 1x and why."""
    slo = make_slo(window={"type": "rolling", "days": 7})
    start = NOW - timedelta(hours=3)
    load_minutes(slo, start, np.full(180, 99.2), np.full(180, 100.0), np.ones(180, dtype=bool))
    slo_evaluate(slo_ids=[slo.pk], now=NOW)
    tiers = api_for("viewer").get(f"/api/v1/slos/{slo.pk}/status/").json()["tiers"]
    shown = [
        (
            t["long_window"],
            t["burn_rate_threshold"],
            round(t["scaled_burn_rate_threshold"], 3),
            t["threshold_raised"],
        )
        for t in tiers
    ]
    assert shown == [
        ("1h", 3.36, 3.36, False),
        ("6h", 1.4, 1.4, False),
        ("1d", 1.0, 0.7, True),
        ("3d", 1.0, 0.233, True),
    ]
    # 0.8x burn in the windows that have data: budget-neutral or better, nothing fires.
    assert {t["status"] for t in tiers} <= {"not_firing", "unknown"}


def test_timeseries_for_charts(api_for, evaluated):
    client = api_for("viewer")
    url = f"/api/v1/slos/{evaluated.pk}/timeseries/"
    start, end = (NOW - timedelta(hours=1)).isoformat(), NOW.isoformat()
    body = client.get(url, {"metric": "sli", "resolution": "minute", "start": start, "end": end}).json()
    assert len(body["points"]) == 60 and body["points"][0]["value"] == pytest.approx(0.99)
    body = client.get(
        url,
        {
            "metric": "burn_rate",
            "resolution": "hour",
            "start": (NOW - timedelta(hours=4)).isoformat(),
            "end": end,
        },
    ).json()
    # 09:34..12:34 touches the hours 09, 10, 11 and 12 (partial hours are still their own SLI)
    assert [p["value"] for p in body["points"]] == pytest.approx([1.0] * 4)
    body = client.get(
        url,
        {
            "metric": "budget_remaining",
            "resolution": "minute",
            "start": start,
            "end": (NOW + timedelta(hours=1)).isoformat(),
        },
    ).json()
    assert len(body["points"]) == 1
    bad = client.get(url, {"metric": "nope", "resolution": "day", "start": "yesterday"})
    assert bad.status_code == 400
    assert {e["path"] for e in bad.json()["errors"]} == {"start"}
    bad = client.get(url, {"metric": "nope", "resolution": "day"})
    assert {e["path"] for e in bad.json()["errors"]} == {"metric", "resolution"}


def test_channels_admin_writes_secret_is_write_only_and_audited(api_for, users):
    body = {
        "name": "hook",
        "kind": "generic_webhook",
        "url": "https://hooks.example.com/T0/B0/abc",
        "secret": "a-very-secret-signing-key",
    }
    assert api_for("operator").post("/api/v1/notification-channels/", body, format="json").status_code == 403
    response = api_for("admin").post("/api/v1/notification-channels/", body, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert "secret" not in created and created["has_secret"] is True
    channel = NotificationChannel.objects.get(name="hook")
    assert "a-very-secret" not in channel.secret_encrypted
    audit = AuditEvent.objects.filter(object_type="slo.notificationchannel").latest("id")
    assert audit.after["secret"] == "set" and "a-very-secret" not in str(audit.after)
    assert "T0/B0/abc" not in str(audit.after) and audit.after["url"].startswith(
        "https://hooks.example.com/…"
    )
    unsigned = api_for("admin").post(
        "/api/v1/notification-channels/",
        {"name": "unsigned", "kind": "generic_webhook", "url": "https://x.example"},
        format="json",
    )
    assert unsigned.status_code == 400 and unsigned.json()["errors"][0]["path"] == "secret"
    # Viewers see the channel, but not the credential in its URL.
    listed = api_for("viewer").get("/api/v1/notification-channels/").json()["results"][0]
    assert listed["url"] == "https://hooks.example.com/…"
    bad = api_for("admin").post(
        "/api/v1/notification-channels/", {"name": "x", "kind": "email"}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "email_to"
    response = api_for("admin").patch(
        f"/api/v1/notification-channels/{channel.pk}/", {"enabled": False}, format="json"
    )
    assert (
        response.status_code == 200 and response.json()["enabled"] is False and response.json()["has_secret"]
    )


def test_alert_history_is_filterable(api_for, make_slo):
    slo = make_slo()
    load_minutes(slo, NOW - timedelta(hours=2), np.zeros(120), np.full(120, 100.0), np.ones(120, dtype=bool))
    slo_evaluate(slo_ids=[slo.pk], now=NOW)
    client = api_for("viewer")
    body = client.get("/api/v1/alerts/", {"service": "shelf-vision", "severity": "page"}).json()
    assert (
        body["count"] == 1
        and body["results"][0]["state"] == "firing"
        and body["results"][0]["slo_name"] == slo.name
    )
    assert (
        client.get("/api/v1/alerts/", {"since": (NOW + timedelta(minutes=1)).isoformat()}).json()["count"]
        == 0
    )


def test_budget_policies_and_service_budget_status(api_for, service):
    admin, viewer = api_for("admin"), api_for("viewer")
    assert (
        viewer.post("/api/v1/budget-policies/", {"service": "shelf-vision"}, format="json").status_code == 403
    )
    bad = admin.post(
        "/api/v1/budget-policies/", {"service": "shelf-vision", "low_remaining_ratio": 2}, format="json"
    )
    assert bad.status_code == 400
    response = admin.post(
        "/api/v1/budget-policies/", {"service": "shelf-vision", "low_extra_approvals": 2}, format="json"
    )
    assert response.status_code == 201 and response.json()["service"] == "shelf-vision"
    again = admin.post("/api/v1/budget-policies/", {"service": "shelf-vision"}, format="json")
    assert again.status_code == 409
    status = viewer.get("/api/v1/services/shelf-vision/budget-status/").json()
    assert status["state"] == "unknown" and status["required_extra_approvals"] == 2  # no SLOs yet
    assert viewer.get("/api/v1/services/nope/budget-status/").status_code == 404


def test_cost_models_are_versioned_and_costs_are_served(api_for, service):
    admin = api_for("admin")
    first = admin.post("/api/v1/cost-models/", {"prices": {"cache_usd_per_lookup": 0.001}}, format="json")
    assert first.status_code == 201 and first.json()["version"] == 1
    second = admin.post("/api/v1/cost-models/", {"prices": {"cache_usd_per_lookup": 0.002}}, format="json")
    assert second.json()["version"] == 2
    assert admin.put(f"/api/v1/cost-models/{first.json()['id']}/", {}, format="json").status_code == 405
    assert admin.post("/api/v1/cost-models/", {"prices": {"bogus": 1}}, format="json").status_code == 400

    from slo.models.budget import CostModel

    usage = Usage(hours=1, requests={"cache": 100, "local": 100}, cache_hits=100, cache_misses=100)
    services.cost_rollup_store(
        service=service,
        resolution="hour",
        bucket_start=NOW.replace(minute=0),
        usage=usage,
        model=CostModel.objects.get(version=2),
    )
    body = (
        api_for("viewer")
        .get("/api/v1/costs/", {"service": "shelf-vision", "resolution": "hour", "route": "all"})
        .json()
    )
    assert body["count"] == 1
    row = body["results"][0]
    assert row["cost_usd"] == pytest.approx(0.4) and row["cost_per_request_usd"] == pytest.approx(0.002)
    assert row["figures"]["cost_per_cache_hit_usd"] == pytest.approx(0.004)


def test_list_endpoints_do_not_run_a_query_per_row(api_for, make_slo, django_assert_max_num_queries):
    slos = [make_slo() for _ in range(6)]
    for slo in slos:
        load_minutes(
            slo, NOW - timedelta(hours=2), np.zeros(120), np.full(120, 100.0), np.ones(120, dtype=bool)
        )
    slo_evaluate(slo_ids=[s.pk for s in slos], now=NOW)
    client = api_for("viewer")
    client.get("/api/v1/alerts/")  # warm the token and role caches
    with django_assert_max_num_queries(8):
        assert client.get("/api/v1/alerts/").json()["count"] == 12


def _promtool() -> str:
    found = shutil.which("promtool") or ("/usr/bin/promtool" if os.path.exists("/usr/bin/promtool") else None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not installed (Debian package prometheus)")
        pytest.skip("promtool is not installed")
    return found


def test_prometheus_rules_pass_promtool(api_for, make_slo, tmp_path):
    promtool = _promtool()
    make_slo()
    make_slo(
        name="edge-latency", tier="edge", sli={"kind": "latency", "threshold_ms": 150}, min_valid_events=50
    )
    make_slo(
        name="custom",
        sli={"kind": "custom", "good_query": 'foo_total{ok="1"}', "total_query": "foo_total"},
        window={"type": "calendar", "unit": "month"},
    )
    client = api_for("viewer")
    response = client.get("/api/v1/prometheus-rules/", {"service": "shelf-vision"})
    assert response.status_code == 200 and response["Content-Type"].startswith("application/yaml")
    path = tmp_path / "rules.yml"
    path.write_bytes(response.content)
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SLOErrorBudgetBurnPage" in response.content.decode()

    one = client.get(f"/api/v1/slos/{make_slo().pk}/prometheus-rules/")
    path.write_bytes(one.content)
    assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True).returncode == 0


def test_the_openapi_schema_builds(api_for):
    response = api_for("viewer").get("/api/v1/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    for route in ("/api/v1/slos/{id}/status/", "/api/v1/costs/", "/api/v1/services/{name}/budget-status/"):
        assert route in text


def test_a_budget_policy_with_non_string_change_kinds_gets_400(api_for, service):
    response = api_for("admin").post(
        "/api/v1/budget-policies/",
        {"service": "shelf-vision", "freeze_allowed_change_kinds": [{}]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "freeze_allowed_change_kinds"
