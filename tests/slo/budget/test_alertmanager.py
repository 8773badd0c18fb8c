"""The Alertmanager channel keeps a firing alert alive with `endsAt` re-posts (as Prometheus does) and
posts the resolution when it resolves: against a real Alertmanager whose `resolve_timeout` is a few
seconds, and against a recording receiver for the exact payloads."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.utils import timezone

from controlplane.schedules import declared_periodic_tasks
from slo.budget import notify, services
from slo.budget.alertmanager import RESOLVED_RETENTION, alertmanager_repost, ends_at_horizon
from slo.budget.evaluation import slo_evaluate
from slo.models.budget import AlertState, NotificationChannel
from tests.slo.budget.conftest import NOW, load_minutes
from tests.support.alertmanager import AlertmanagerServer, require_alertmanager, webhook_config

pytestmark = pytest.mark.django_db

RESOLVE_TIMEOUT_S = 3
RESOLVED_AT = NOW + timedelta(minutes=70)


def burning_then_recovered(slo: Any, at: Any = NOW) -> None:
    """Two hours at 50% errors up to `at` (the page fires at `at`), then 75 clean minutes (by
    `at` + 70 min every page tier's short window is clean: the page resolves there)."""
    load_minutes(
        slo, at - timedelta(hours=2), np.full(120, 100.0), np.full(120, 200.0), np.ones(120, dtype=bool)
    )
    load_minutes(slo, at, np.full(75, 200.0), np.full(75, 200.0), np.ones(75, dtype=bool))


def page_channel(users: Any, url: str, **extra: Any) -> NotificationChannel:
    data = {"name": "am", "kind": "alertmanager", "url": url, "severities": ["page"], **extra}
    return services.notification_channel_save(actor=users["admin"], data=data)


def ours(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["labels"].get("alertname") == "SLOErrorBudgetBurn"]


def webhook_statuses(receiver: Any, alertname: str) -> list[str]:
    out = []
    for request in receiver.requests:
        body = json.loads(request["body"])
        out += [a["status"] for a in body["alerts"] if a["labels"]["alertname"] == alertname]
    return out


def wait_for(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_a_real_alertmanager_keeps_our_alert_active_past_resolve_timeout_until_we_resolve_it(
    make_slo, users, receiver, tmp_path
):
    require_alertmanager()
    am = AlertmanagerServer(tmp_path)
    am.start(
        webhook_config(receiver.url + "/am-hook", resolve_timeout_s=RESOLVE_TIMEOUT_S, repeat_interval_s=3600)
    )
    try:
        page_channel(users, am.url)
        slo = make_slo()
        # On the wall clock Alertmanager keeps: fired 75 minutes ago, resolves 5 minutes ago.
        fired_at = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=75)
        resolved_at = fired_at + timedelta(minutes=70)
        burning_then_recovered(slo, fired_at)
        slo_evaluate(slo_ids=[slo.pk], now=fired_at)
        assert AlertState.objects.get(key=f"slo:{slo.pk}:page").firing
        # A control alert posted the way a one-shot sender does (no endsAt): Alertmanager ends it
        # after resolve_timeout. It shows this Alertmanager really resolves what is not re-posted.
        am.post_alerts([{"labels": {"alertname": "OneShotControl", "service": "shelf-vision"}}])

        assert notify.notifications_send_due(now=timezone.now()) == {"sent": 1}
        [active] = ours(am.alerts())
        assert active["status"]["state"] == "active"
        assert active["labels"] == {
            "alertname": "SLOErrorBudgetBurn",
            "service": "shelf-vision",
            "slo": slo.name,
            "severity": "page",
            "alert_kind": "burn_rate",
            "slo_service": "shelf-vision",
            "slo_name": slo.name,
        }
        assert "burn rate" in active["annotations"]["description"]
        assert json.loads(active["annotations"]["evidence"])["tiers"]
        first_ends_at = active["endsAt"]

        # More than resolve_timeout later, with a re-post pass in between: still active, and on-call was
        # told "firing" only; the control alert has ended and its "resolved" went out.
        time.sleep(1.5)
        assert alertmanager_repost(now=timezone.now()) == {"am": 1}
        assert wait_for(
            lambda: "resolved" in webhook_statuses(receiver, "OneShotControl"), RESOLVE_TIMEOUT_S + 10
        )
        time.sleep(RESOLVE_TIMEOUT_S + 1)
        [active] = ours(am.alerts())
        assert active["status"]["state"] == "active"
        assert active["endsAt"] > first_ends_at  # the re-post moved endsAt forward
        assert active["labels"]["slo"] == slo.name  # same label set: the same Alertmanager alert
        assert not [a for a in am.alerts() if a["labels"]["alertname"] == "OneShotControl"]
        assert set(webhook_statuses(receiver, "SLOErrorBudgetBurn")) == {"firing"}

        # We resolve: the resolution reaches Alertmanager, which drops it from the active list and
        # tells on-call "resolved".
        slo_evaluate(slo_ids=[slo.pk], now=resolved_at)
        assert not AlertState.objects.get(key=f"slo:{slo.pk}:page").firing
        assert notify.notifications_send_due(now=timezone.now()) == {"sent": 1}
        assert ours(am.alerts()) == []
        assert wait_for(lambda: "resolved" in webhook_statuses(receiver, "SLOErrorBudgetBurn"), 10)
        # The next minute's re-post pass posts the resolution again; it never revives the alert.
        assert alertmanager_repost(now=timezone.now() + timedelta(minutes=1)) == {"am": 1}
        assert ours(am.alerts()) == []
    finally:
        am.stop()


def test_the_repost_pass_posts_firing_alerts_ahead_and_resolutions_for_a_while(make_slo, users, receiver):
    page_channel(users, receiver.url)
    services.notification_channel_save(
        actor=users["admin"],
        data={"name": "elsewhere", "kind": "alertmanager", "url": receiver.url + "/x", "services": ["nope"]},
    )
    slo = make_slo()
    burning_then_recovered(slo)
    slo_evaluate(slo_ids=[slo.pk], now=NOW)

    later = NOW + timedelta(minutes=1)
    assert alertmanager_repost(now=later) == {"am": 1, "elsewhere": 0}
    assert alertmanager_repost(now=later + timedelta(seconds=5)) == {}  # claimed moments ago: no double post
    assert alertmanager_repost(now=later + timedelta(minutes=1)) == {"am": 1, "elsewhere": 0}
    posts = [json.loads(r["body"]) for r in receiver.requests]
    assert [r["path"] for r in receiver.requests] == ["/api/v2/alerts", "/api/v2/alerts"]
    assert [len(p) for p in posts] == [1, 1]
    first, second = posts[0][0], posts[1][0]
    assert first["labels"] == second["labels"]  # Alertmanager's identity of the alert
    assert first["startsAt"] == second["startsAt"] == NOW.isoformat()
    assert first["endsAt"] == (later + ends_at_horizon()).isoformat()
    assert second["endsAt"] == (later + timedelta(minutes=1) + ends_at_horizon()).isoformat()
    assert ends_at_horizon() == timedelta(minutes=4)  # 4 x max(evaluation 60 s, re-send 60 s)

    # It resolves; an outbox row queued while it fired but sent only now posts the resolution,
    # and the pass re-posts the resolution until RESOLVED_RETENTION has passed.
    slo_evaluate(slo_ids=[slo.pk], now=RESOLVED_AT)
    receiver.requests.clear()
    assert notify.notifications_send_due(now=RESOLVED_AT) == {"sent": 2}  # the firing and the resolved rows
    for request in receiver.requests:
        [alert] = json.loads(request["body"])
        assert alert["labels"] == first["labels"]
        assert (alert["startsAt"], alert["endsAt"]) == (NOW.isoformat(), RESOLVED_AT.isoformat())
    receiver.requests.clear()
    assert alertmanager_repost(now=RESOLVED_AT + timedelta(minutes=5)) == {"am": 1, "elsewhere": 0}
    [resolved] = receiver.json(0)
    assert resolved["endsAt"] == RESOLVED_AT.isoformat() and "resolved" in resolved["annotations"]["summary"]
    assert alertmanager_repost(now=RESOLVED_AT + RESOLVED_RETENTION + timedelta(minutes=1)) == {
        "am": 0,
        "elsewhere": 0,
    }
    assert len(receiver.requests) == 1


def test_a_failed_repost_is_logged_and_retried_by_the_next_pass(make_slo, users, receiver, caplog):
    page_channel(users, receiver.url)
    slo = make_slo()
    burning_then_recovered(slo)
    slo_evaluate(slo_ids=[slo.pk], now=NOW)
    receiver.status = 503
    assert alertmanager_repost(now=NOW) == {}
    assert "alertmanager channel am failed: channel answered HTTP 503" in caplog.text
    receiver.status = 200
    assert alertmanager_repost(now=NOW + timedelta(minutes=1)) == {"am": 1}
    assert len(receiver.requests) == 2


def test_the_repost_runs_every_minute_from_beat():
    [entry] = [e for e in declared_periodic_tasks() if e["task"] == "slo.budget.alertmanager_repost"]
    assert timedelta(seconds=entry["every_s"]) * 3 < ends_at_horizon()  # three lost passes before endsAt
    from slo.tasks.budget import alertmanager_repost as task

    assert task.name == "slo.budget.alertmanager_repost"
