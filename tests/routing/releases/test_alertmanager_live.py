"""A real Alertmanager (Debian's prometheus-alertmanager) notifies the control plane's webhook on a
live server during a hotfix rollout.

The incident the hotfix fixes has been paging and ticketing for three days; Alertmanager keeps
re-sending those alerts on `repeat_interval`. They are recorded and leave the rollout running. A
page alert that begins during the rollout, for the targeted service and tier, rolls it back, with
the alert as the rollback's evidence.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from routing.models.releases import AlertReceipt, Release
from routing.releases import alertmanager as alertmanager_service
from tests.support import alertmanager as support
from tests.support.alertmanager import webhook_config

alertmanager = support.alertmanager

pytestmark = [pytest.mark.django_db(transaction=True)]

SERVICE = "shelf-vision"
OLD_TICKET = {
    "alertname": "SLOErrorBudgetBurnTicket",
    "slo_service": SERVICE,
    "slo_name": "availability",
    "slo_tier": "all",
    "severity": "ticket",
}
OLD_PAGE = {
    "alertname": "SLOErrorBudgetBurnPage",
    "slo_service": SERVICE,
    "slo_name": "availability",
    "slo_tier": "all",
    "severity": "page",
}
FRESH_PAGE = {
    "alertname": "SLOErrorBudgetBurnPage",
    "slo_service": SERVICE,
    "slo_name": "latency",
    "slo_tier": "edge",
    "severity": "page",
}


def receipts_of(alertname: str, slo_name: str) -> list[AlertReceipt]:
    return [
        r
        for r in AlertReceipt.objects.filter(alertname=alertname).order_by("id")
        if r.labels.get("slo_name") == slo_name
    ]


def test_an_old_alert_resent_during_a_hotfix_is_recorded_and_a_fresh_page_rolls_it_back(
    live_server, alertmanager, rolling_edge_hotfix, users, api_for
):
    hotfix = rolling_edge_hotfix
    now = hotfix.rollout_started_at

    _row, secret = alertmanager_service.webhook_secret_create(actor=users["admin"], name="am-live")
    alertmanager.start(
        webhook_config(
            f"{live_server.url}/api/v1/alertmanager/webhook/",
            bearer=secret,
            group_by=("alertname", "slo_service"),
            repeat_interval_s=2,
        )
    )
    three_days_ago = (now - timedelta(days=3)).isoformat()
    alertmanager.post_alerts(
        [
            {
                "labels": OLD_TICKET,
                "annotations": {"summary": "ticket-level burn since the incident began"},
                "startsAt": three_days_ago,
            },
            {
                "labels": OLD_PAGE,
                "annotations": {"summary": "the incident the hotfix fixes"},
                "startsAt": three_days_ago,
            },
        ]
    )

    # Alertmanager sends both, then re-sends them every repeat_interval: each delivery is recorded.
    alertmanager.wait_for(
        lambda: (
            len(receipts_of("SLOErrorBudgetBurnTicket", "availability")) >= 2
            and len(receipts_of("SLOErrorBudgetBurnPage", "availability")) >= 2
        ),
        30,
        "two deliveries of each old alert",
    )
    hotfix.refresh_from_db()
    assert hotfix.state == "rolling_out"
    assert not hotfix.rollbacks.exists()
    for receipt in receipts_of("SLOErrorBudgetBurnTicket", "availability"):
        assert receipt.release_id == hotfix.pk and not receipt.acted
        assert receipt.reason.startswith("severity ticket: only page alerts roll back"), receipt.reason
        assert receipt.received_by == "alertmanager:am-live"
    for receipt in receipts_of("SLOErrorBudgetBurnPage", "availability"):
        assert not receipt.acted and "before the rollout began" in receipt.reason, receipt.reason
        assert receipt.starts_at < hotfix.rollout_started_at

    # A page that begins now (Alertmanager stamps startsAt), on the tier the hotfix runs on.
    alertmanager.post_alerts([{"labels": FRESH_PAGE, "annotations": {"summary": "edge latency burning"}}])
    alertmanager.wait_for(
        lambda: Release.objects.get(pk=hotfix.pk).state == "rolled_back", 30, "the rollback"
    )
    rollback = hotfix.rollbacks.get()
    assert rollback.trigger == "alertmanager" and rollback.actor_name == "alertmanager:am-live"
    assert [a["labels"]["slo_name"] for a in rollback.evidence["alerts"]] == ["latency"]
    assert rollback.evidence["alerts"][0]["labels"]["severity"] == "page"
    assert "after the rollout began" in rollback.evidence["alerts"][0]["why"]
    assert set(rollback.gateway_revisions) == {str(g) for g in hotfix.waves[0]["gateway_ids"]}
    acted = AlertReceipt.objects.get(acted=True)
    assert acted.labels["slo_name"] == "latency" and acted.rollback_id == rollback.pk
    assert acted.starts_at >= hotfix.rollout_started_at

    # What Alertmanager sent is visible to anyone who reads releases.
    listed = api_for("viewer").get(f"/api/v1/alertmanager/alerts/?release={hotfix.pk}").json()
    assert listed["count"] == AlertReceipt.objects.filter(release=hotfix).count() >= 5
    assert {(r["alertname"], r["acted"]) for r in listed["results"]} >= {
        ("SLOErrorBudgetBurnTicket", False),
        ("SLOErrorBudgetBurnPage", False),
        ("SLOErrorBudgetBurnPage", True),
    }
    detail = api_for("viewer").get(f"/api/v1/releases/{hotfix.pk}/").json()
    assert any(r["acted"] and r["rollback"] == rollback.pk for r in detail["alerts_received"])
