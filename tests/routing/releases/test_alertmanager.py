"""The Alertmanager webhook as a rollback trigger (routing/releases/alertmanager.py): only alerts about
the rollout act, every received alert is recorded with its verdict, and people can read them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from routing.models.releases import AlertReceipt, Release
from routing.releases import alertmanager, lifecycle, rollout
from routing.releases.alertmanager import alertmanager_webhook_handle
from tests.routing.releases.conftest import T0

pytestmark = pytest.mark.django_db

AM = "alertmanager:am"


def iso(moment: Any) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"  # Alertmanager's nanoseconds


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "control-plane",
        "groupKey": "{}:{alertname}",
        "alerts": list(alerts),
    }


def page(starts_at: Any = T0 + timedelta(minutes=2), **labels: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "startsAt": iso(starts_at),
        "fingerprint": labels.pop("fingerprint", "f1"),
        "labels": {
            "alertname": "SLOErrorBudgetBurnPage",
            "slo_service": "shelf-vision",
            "severity": "page",
            **labels,
        },
    }


@pytest.fixture
def rolling(fleet: Any, push: Any, evaluate: Any, make_release: Any, users: dict[str, Any]) -> Release:
    """A hotfix rolling out on the edge: wave 1 is one gateway (eu-central) of three regions."""
    from routing.releases.service_settings import release_settings_save

    gateways = fleet(4, regions=("eu-west", "eu-central", "us-east"))
    for gateway in gateways:
        push(gateway, T0 - timedelta(minutes=60), 60, ok_fast=300)
    evaluate(T0)
    release_settings_save(
        actor=users["admin"],
        service_name="shelf-vision",
        data={"required_approvals": 1, "canary": {"lag_minutes": 0}},
    )
    release = make_release(kind="hotfix", reason="fix the incident", target={"tier": "edge"})
    lifecycle.release_submit(actor=users["operator"], release_id=release.pk, now=T0)
    lifecycle.release_approve(actor=users["approver"], release_id=release.pk, comment="ok", now=T0)
    assert rollout.release_step(release_id=release.pk, now=T0) == "wave:0:delivering"
    release.refresh_from_db()
    assert [t.gateway.region for t in release.targets.filter(wave=0)] == ["eu-central"]
    return release


def test_an_old_ticket_alert_resent_during_a_hotfix_leaves_it_running(rolling):
    days_ago = T0 - timedelta(days=3)
    old_ticket = page(days_ago, severity="ticket", alertname="SLOErrorBudgetBurnTicket", fingerprint="t")
    old_page = page(days_ago, fingerprint="p")  # the incident the hotfix fixes
    for resend in range(3):  # Alertmanager re-sends on repeat_interval
        result = alertmanager_webhook_handle(
            actor=AM, payload=notification(old_ticket, old_page), now=T0 + timedelta(minutes=1 + resend)
        )
        assert result["rolled_back"] == [] and result["alerts"] == 2
    rolling.refresh_from_db()
    assert rolling.state == "rolling_out" and not rolling.rollbacks.exists()
    receipts = AlertReceipt.objects.filter(release=rolling)
    assert receipts.count() == 6 and not receipts.filter(acted=True).exists()
    assert set(receipts.filter(fingerprint="t").values_list("reason", flat=True)) == {
        "severity ticket: only page alerts roll back a release"
    }
    assert all(
        "before the rollout began" in r
        for r in receipts.filter(fingerprint="p").values_list("reason", flat=True)
    )


def test_a_fresh_page_alert_rolls_it_back_with_the_alert_as_evidence(rolling):
    old = page(T0 - timedelta(days=3), fingerprint="old")
    fresh = page(T0 + timedelta(minutes=2), fingerprint="new", slo_name="latency", slo_tier="edge")
    result = alertmanager_webhook_handle(
        actor=AM, payload=notification(old, fresh), now=T0 + timedelta(minutes=3)
    )
    assert result["rolled_back"] == [rolling.pk]
    assert [(d["fingerprint"], d["acted"]) for d in result["decisions"]] == [("old", False), ("new", True)]
    rolling.refresh_from_db()
    assert rolling.state == "rolled_back"
    rollback = rolling.rollbacks.get()
    assert rollback.trigger == "alertmanager" and rollback.actor_name == AM
    assert [a["fingerprint"] for a in rollback.evidence["alerts"]] == ["new"]
    assert rollback.evidence["alerts"][0]["labels"]["slo_name"] == "latency"
    assert "after the rollout began" in rollback.evidence["alerts"][0]["why"]
    assert "SLOErrorBudgetBurnPage" in rollback.reason
    assert AlertReceipt.objects.get(fingerprint="new").rollback == rollback
    assert AlertReceipt.objects.get(fingerprint="old").rollback is None
    # the next re-send finds nothing rolling out, and says so
    again = alertmanager_webhook_handle(actor=AM, payload=notification(fresh), now=T0 + timedelta(minutes=4))
    assert again["rolled_back"] == []
    assert again["decisions"][0]["reason"] == "no release of shelf-vision is rolling out"


def test_alerts_about_other_tiers_regions_or_services_do_not_act(rolling):
    alerts = [
        page(fingerprint="tier", tier="public_cloud"),
        page(fingerprint="region", region="eu-west"),  # a region the hotfix has not reached
        page(fingerprint="other", slo_service="fraud-score"),
        {
            "status": "firing",
            "fingerprint": "nameless",
            "labels": {"alertname": "Watchdog", "severity": "page"},
            "startsAt": iso(T0 + timedelta(minutes=2)),
        },
        {**page(fingerprint="resolved"), "status": "resolved"},
        {**page(fingerprint="no-start"), "startsAt": "0001-01-01"},
    ]
    result = alertmanager_webhook_handle(
        actor=AM, payload=notification(*alerts), now=T0 + timedelta(minutes=3)
    )
    assert result["rolled_back"] == []
    reasons = {d["fingerprint"]: d["reason"] for d in result["decisions"]}
    assert reasons == {
        "tier": "tier=public_cloud: the release runs on edge",
        "region": "region=eu-west: the release runs in eu-central",
        "other": "no release of fraud-score is rolling out",
        "nameless": "names no service (no service or slo_service label)",
        "resolved": "resolved: only a firing alert rolls back",
        "no-start": "startsAt 0001-01-01 is not a time: cannot tell whether the alert began during the rollout",
    }
    assert AlertReceipt.objects.count() == 6
    assert Release.objects.get(pk=rolling.pk).state == "rolling_out"
    # the region it does run in acts
    hit = alertmanager_webhook_handle(
        actor=AM, payload=notification(page(region="eu-central")), now=T0 + timedelta(minutes=4)
    )
    assert hit["rolled_back"] == [rolling.pk]


def test_the_service_chooses_which_severities_roll_back(rolling, api_for):
    bad = api_for("admin").put(
        "/api/v1/release-settings/shelf-vision/", {"alert_severities": []}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "alert_severities"
    assert api_for("viewer").get("/api/v1/release-settings/shelf-vision/").json()["alert_severities"] == [
        "page"
    ]
    critical = page(severity="critical")
    assert alertmanager_webhook_handle(actor=AM, payload=notification(critical), now=T0)["rolled_back"] == []
    saved = api_for("admin").put(
        "/api/v1/release-settings/shelf-vision/",
        {"required_approvals": 1, "alert_severities": ["page", "critical"]},
        format="json",
    )
    assert saved.status_code == 200 and saved.json()["alert_severities"] == ["page", "critical"]
    assert alertmanager_webhook_handle(actor=AM, payload=notification(critical), now=T0)["rolled_back"] == [
        rolling.pk
    ]


def test_received_alerts_are_listed_by_the_api_and_on_the_release_page(rolling, api_for, users, client):
    _row, secret = alertmanager.webhook_secret_create(actor=users["admin"], name="am")
    webhook = APIClient()
    webhook.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    body = notification(page(T0 - timedelta(days=1), fingerprint="old"), page(fingerprint="new"))
    response = webhook.post("/api/v1/alertmanager/webhook/", body, format="json")
    assert response.status_code == 200 and response.json()["rolled_back"] == [rolling.pk]

    assert api_for("outsider").get("/api/v1/alertmanager/alerts/").status_code == 403
    listed = api_for("viewer").get(f"/api/v1/alertmanager/alerts/?release={rolling.pk}").json()
    assert [(r["fingerprint"], r["acted"], r["received_by"]) for r in listed["results"]] == [
        ("new", True, "alertmanager:am"),
        ("old", False, "alertmanager:am"),
    ]
    assert listed["results"][0]["rollback"] == rolling.rollbacks.get().pk
    acted_only = api_for("viewer").get("/api/v1/alertmanager/alerts/?acted=false&service=shelf-vision").json()
    assert [r["fingerprint"] for r in acted_only["results"]] == ["old"]
    detail = api_for("viewer").get(f"/api/v1/releases/{rolling.pk}/").json()
    assert {r["fingerprint"]: r["acted"] for r in detail["alerts_received"]} == {"new": True, "old": False}

    client.force_login(users["viewer"])
    page_html = client.get(f"/releases/{rolling.pk}/").content.decode()
    assert "Alerts received" in page_html and "before the rollout began" in page_html


def test_a_malformed_notification_is_refused_and_nothing_is_recorded(rolling, api_for):
    body = notification(page(fingerprint="ok"), {"labels": {"alertname": 3}})
    response = api_for("operator").post("/api/v1/alertmanager/webhook/", body, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "alerts[1].labels"
    assert not AlertReceipt.objects.exists()
    assert Release.objects.get(pk=rolling.pk).state == "rolling_out"
