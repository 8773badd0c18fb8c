"""Which Alertmanager alerts are about a rollout (routing/releases/alerts.py): plain data, no Django."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from routing.releases.alerts import MAX_ALERTS, RolloutScope, judge, parse_webhook, severities_problems

STARTED = datetime(2026, 3, 11, 10, 0, tzinfo=UTC)
SCOPE = RolloutScope(
    release_id=7,
    service="shelf-vision",
    rollout_started_at=STARTED,
    tiers=frozenset({"edge"}),
    regions=frozenset({"eu-west"}),
    severities=frozenset({"page"}),
)


def alert(
    labels: dict[str, str] | None = None,
    starts_at: str | None = "2026-03-11T10:05:00Z",
    status: str = "firing",
) -> Any:
    raw: dict[str, Any] = {
        "status": status,
        "labels": {"alertname": "Burn", "service": "shelf-vision", "severity": "page", **(labels or {})},
    }
    if starts_at is not None:
        raw["startsAt"] = starts_at
    alerts, problems = parse_webhook({"version": "4", "alerts": [raw]})
    assert not problems
    return alerts[0]


def reason(labels: dict[str, str] | None = None, **kw: Any) -> str:
    verdict = judge(alert(labels, **kw), SCOPE)
    assert not verdict.acts, verdict
    return verdict.reason


def test_a_fresh_page_alert_about_the_rollout_acts():
    verdict = judge(alert({"tier": "edge", "region": "eu-west"}), SCOPE)
    assert verdict.acts and "after the rollout began" in verdict.reason and "tier=edge" in verdict.reason
    # no tier or region label: about the whole service, which includes what the release runs on
    assert judge(alert(), SCOPE).acts
    assert judge(alert({"slo_tier": "all", "slo_service": "shelf-vision"}), SCOPE).acts
    # the very instant the rollout began counts as during it
    assert judge(alert(starts_at="2026-03-11T10:00:00Z"), SCOPE).acts


def test_alertmanager_nanosecond_timestamps_are_read():
    parsed = alert(starts_at="2026-03-11T10:05:00.123456789Z")
    assert parsed.starts_at == STARTED + timedelta(minutes=5, microseconds=123456)
    assert alert(starts_at="2026-03-11T12:05:00+02:00").starts_at == STARTED + timedelta(minutes=5)


def test_each_reason_not_to_act_is_said():
    assert reason(status="resolved").startswith("resolved")
    assert reason({"severity": "ticket"}).startswith("severity ticket: only page alerts")
    assert reason({"severity": ""}).startswith("severity (none)")
    assert "before the rollout began" in reason(starts_at="2026-03-08T09:00:00Z")
    assert "not a time" in reason(starts_at="yesterday")
    assert "(missing)" in reason(starts_at=None)
    assert "not a time" in reason(starts_at="2026-03-11T10:05:00")  # no zone: no instant either
    assert reason({"tier": "public_cloud"}) == "tier=public_cloud: the release runs on edge"
    assert reason({"slo_tier": "private_cloud"}) == "slo_tier=private_cloud: the release runs on edge"
    assert reason({"region": "us-east"}) == "region=us-east: the release runs in eu-west"
    assert reason({"service": "fraud-score"}).startswith("about service fraud-score")


def test_an_unstarted_rollout_is_never_rolled_back_by_an_alert():
    verdict = judge(
        alert(), RolloutScope(7, "shelf-vision", None, frozenset({"edge"}), frozenset(), frozenset({"page"}))
    )
    assert not verdict.acts and verdict.reason == "the rollout has not started"


def test_the_group_status_applies_to_alerts_without_their_own():
    alerts, _ = parse_webhook({"status": "resolved", "alerts": [{"labels": {"service": "s"}}]})
    assert alerts[0].status == "resolved"


def test_malformed_bodies_name_the_path():
    assert parse_webhook([])[1] == [
        ("alerts", "an Alertmanager webhook body (version 4) with an alerts list")
    ]
    assert parse_webhook({"version": "3", "alerts": []})[1][0][0] == "version"
    _, problems = parse_webhook(
        {
            "alerts": [
                1,
                {"labels": {"a": 1}},
                {"labels": {}, "annotations": "x"},
                {"labels": {}, "status": "pending"},
            ]
        }
    )
    assert [p for p, _ in problems] == [
        "alerts[0]",
        "alerts[1].labels",
        "alerts[2].annotations",
        "alerts[3].status",
    ]
    too_many = {"alerts": [{"labels": {}}] * (MAX_ALERTS + 1)}
    assert parse_webhook(too_many)[1][0][0] == "alerts"


def test_severity_settings_are_checked():
    assert severities_problems(["page", "critical"]) == []
    assert severities_problems([]) and severities_problems("page") and severities_problems([""])
    assert severities_problems([" page"]) and severities_problems([1])
