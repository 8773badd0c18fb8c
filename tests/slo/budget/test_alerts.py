"""Page alerts fire at the first evaluation after the workbook condition holds, resolve after, and
notify once per transition through every channel kind."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from django.core import mail

from controlplane.lib import signing
from slo.budget import notify, services
from slo.budget.alerts import alerts_renotify
from slo.budget.cache_checks import CacheWindow
from slo.budget.evaluation import slo_evaluate
from slo.engine import evaluate_slo
from slo.models.budget import AlertEvent, AlertState, Notification
from slo.spec import SloSpec
from tests.slo.budget.conftest import NOW, load_minutes

pytestmark = pytest.mark.django_db

SECRET = "s3cret-signing-key-0123"
HOURS = 8
BURST = (6 * 60, 6 * 60 + 20)  # minutes [360, 380) of the history fail at 50%


@pytest.fixture
def channels(users, receiver, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    admin = users["admin"]
    made = {
        "webhook": services.notification_channel_save(
            actor=admin,
            data={"name": "hook", "kind": "generic_webhook", "url": receiver.url + "/hook", "secret": SECRET},
        ),
        "slack": services.notification_channel_save(
            actor=admin,
            data={"name": "slack", "kind": "slack", "url": receiver.url + "/slack", "severities": ["page"]},
        ),
        "alertmanager": services.notification_channel_save(
            actor=admin,
            data={"name": "am", "kind": "alertmanager", "url": receiver.url, "services": ["shelf-vision"]},
        ),
        "email": services.notification_channel_save(
            actor=admin, data={"name": "mail", "kind": "email", "email_to": ["sre@example.com"]}
        ),
        "other": services.notification_channel_save(
            actor=admin,
            data={"name": "other", "kind": "slack", "url": receiver.url + "/other", "services": ["nope"]},
        ),
    }
    return made


def burst_history():
    minutes = HOURS * 60
    valid = np.full(minutes, 200.0)
    good = valid.copy()
    good[BURST[0] : BURST[1]] = 100.0  # 50% errors: burn 50 on a 99% SLO
    return good, valid, np.ones(minutes, dtype=bool)


def expected_page(spec, good, valid, present, end_index):
    result = evaluate_slo(spec, good, valid, present, end_index=end_index)
    page = [t for t in result.tiers if t.severity == "page"]
    if any(t.status == "firing" for t in page):
        return True
    return False if all(t.status == "not_firing" for t in page) else None


def test_it_pages_at_the_first_evaluation_after_the_condition_and_resolves_once(make_slo, channels, receiver):
    slo = make_slo()
    spec = SloSpec.model_validate(slo.spec)
    start = NOW - timedelta(hours=HOURS)
    good, valid, present = burst_history()
    load_minutes(slo, start, good, valid, present)

    # Independently: the first minute boundary where a page tier holds, and where all stop holding.
    verdicts = {i: expected_page(spec, good, valid, present, i) for i in range(BURST[0], HOURS * 60)}
    first_fire = min(i for i, v in verdicts.items() if v)
    first_resolve = min(i for i, v in verdicts.items() if i > first_fire and v is False)
    assert BURST[0] < first_fire < BURST[1] < first_resolve

    seen = []
    for i in range(BURST[0], first_resolve + 3):
        now = start + timedelta(minutes=i)
        slo_evaluate(slo_ids=[slo.pk], now=now)
        slo_evaluate(slo_ids=[slo.pk], now=now)  # a replay for the same instant changes nothing
        seen.append((i, AlertState.objects.filter(key=f"slo:{slo.pk}:page", firing=True).exists()))
    fired_at = min(i for i, firing in seen if firing)
    resolved_at = min(i for i, firing in seen if i > fired_at and not firing)
    assert (fired_at, resolved_at) == (first_fire, first_resolve)

    events = list(AlertEvent.objects.filter(slo=slo, severity="page").order_by("at"))
    assert [(e.state, e.at) for e in events] == [
        ("firing", start + timedelta(minutes=first_fire)),
        ("resolved", start + timedelta(minutes=first_resolve)),
    ]
    firing = events[0]
    assert set(firing.windows) <= {"5m", "1h", "30m", "6h"}
    tier = next(t for t in firing.evidence["tiers"] if t["status"] == "firing")
    assert (
        tier["long_burn_rate"] > tier["burn_rate_threshold"]
        and tier["short_burn_rate"] > tier["burn_rate_threshold"]
    )

    # One notification per transition per matching channel ("other" filters another service).
    per_event = Notification.objects.filter(alert_event=firing).values_list("channel__name", flat=True)
    assert sorted(per_event) == ["am", "hook", "mail", "slack"]
    counts = notify.notifications_send_due(now=NOW)
    sent_total = Notification.objects.filter(alert_event__slo=slo).count()
    assert counts == {"sent": sent_total}
    assert notify.notifications_send_due(now=NOW) == {}  # nothing is sent twice

    hooks = [r for r in receiver.requests if r["path"] == "/hook"]
    page_hooks = [r for r in hooks if json.loads(r["body"])["alert"]["severity"] == "page"]
    assert [json.loads(r["body"])["alert"]["state"] for r in page_hooks] == ["firing", "resolved"]
    for r in hooks:
        header = r["headers"]["X-Signature"]
        ts = int(header.split(",")[0][2:])
        assert signing.verify(SECRET, r["body"], header, now=ts)
        signing.verify_standard_webhook(SECRET, r["body"], r["headers"], now=ts)
        assert r["headers"]["webhook-id"] == f"notification-{r['headers']['X-Notification-Id']}"
        for secret, now in (("wrong-secret-0123456", ts), (SECRET, ts + 301)):
            with pytest.raises(signing.SignatureError):
                signing.verify(secret, r["body"], header, now=now)
            with pytest.raises(signing.SignatureError):
                signing.verify_standard_webhook(secret, r["body"], r["headers"], now=now)
    slack = [json.loads(r["body"]) for r in receiver.requests if r["path"] == "/slack"]
    assert len(slack) == 2 and "FIRING" in slack[0]["text"] and "resolved" in slack[1]["text"]
    am = [json.loads(r["body"]) for r in receiver.requests if r["path"] == "/api/v2/alerts"]
    page_am = [a[0] for a in am if a[0]["labels"]["severity"] == "page"]
    # Both rows are sent after the alert resolved: each posts the alert as it is now (resolved).
    fired, resolved = (start + timedelta(minutes=m) for m in (first_fire, first_resolve))
    assert [(a["startsAt"], a["endsAt"]) for a in page_am] == [(fired.isoformat(), resolved.isoformat())] * 2
    assert page_am[0]["labels"]["slo"] == page_am[0]["labels"]["slo_name"] == slo.name
    assert not [r for r in receiver.requests if r["path"] == "/other"]
    page_mail = [m for m in mail.outbox if "[page]" in m.subject]
    assert len(page_mail) == 2 and page_mail[0].to == ["sre@example.com"]


def test_missing_data_never_resolves_a_firing_alert(make_slo):
    slo = make_slo()
    start = NOW - timedelta(hours=2)
    valid = np.full(120, 200.0)
    good = valid * 0.5
    load_minutes(slo, start, good, valid, np.ones(120, dtype=bool))
    slo_evaluate(slo_ids=[slo.pk], now=NOW)
    assert AlertState.objects.get(key=f"slo:{slo.pk}:page").firing
    # Telemetry stops: every short window goes no_data; the page stays firing, no resolved event.
    slo_evaluate(slo_ids=[slo.pk], now=NOW + timedelta(minutes=90))
    assert AlertState.objects.get(key=f"slo:{slo.pk}:page").firing
    assert not AlertEvent.objects.filter(slo=slo, state="resolved").exists()


def test_a_failing_channel_is_retried_with_backoff(make_slo, users, receiver):
    receiver.status = 500
    services.notification_channel_save(
        actor=users["admin"],
        data={
            "name": "hook",
            "kind": "generic_webhook",
            "url": receiver.url,
            "severities": ["page"],
            "secret": SECRET,
        },
    )
    slo = make_slo()
    load_minutes(slo, NOW - timedelta(hours=2), np.zeros(120), np.full(120, 100.0), np.ones(120, dtype=bool))
    slo_evaluate(slo_ids=[slo.pk], now=NOW)
    assert notify.notifications_send_due(now=NOW) == {"pending": 1}
    row = Notification.objects.get()
    assert (
        row.attempts == 1
        and "HTTP 500" in row.last_error
        and row.next_attempt_at == NOW + timedelta(seconds=30)
    )
    assert notify.notifications_send_due(now=NOW + timedelta(seconds=10)) == {}  # not due yet
    receiver.status = 200
    assert notify.notifications_send_due(now=NOW + timedelta(seconds=30)) == {"sent": 1}


def test_it_reminds_still_firing_alerts_once_per_interval(make_slo, users, receiver):
    services.notification_channel_save(
        actor=users["admin"],
        data={
            "name": "hook",
            "kind": "generic_webhook",
            "url": receiver.url,
            "renotify_interval_s": 3600,
            "severities": ["page"],
            "secret": SECRET,
        },
    )
    slo = make_slo()
    load_minutes(slo, NOW - timedelta(hours=2), np.zeros(120), np.full(120, 100.0), np.ones(120, dtype=bool))
    slo_evaluate(slo_ids=[slo.pk], now=NOW)
    assert alerts_renotify(now=NOW + timedelta(minutes=30)) == 0
    assert alerts_renotify(now=NOW + timedelta(minutes=60)) == 1
    assert alerts_renotify(now=NOW + timedelta(minutes=61)) == 0
    assert Notification.objects.filter(reason="reminder").count() == 1


def test_cache_alerts_fire_and_clear_without_spam(service):
    baseline = CacheWindow(hits=800, stale_hits=0, misses=200)
    assert (
        services.cache_alerts_apply(
            service_name="shelf-vision", current=CacheWindow(400, 100, 500), baseline=baseline, now=NOW
        )
        == 2
    )  # hit rate 0.5 vs 0.8 (-37.5%), stale 20% of hits
    assert (
        services.cache_alerts_apply(
            service_name="shelf-vision", current=CacheWindow(400, 100, 500), baseline=baseline, now=NOW
        )
        == 0
    )
    # Too little traffic is unknown: nothing resolves.
    assert (
        services.cache_alerts_apply(
            service_name="shelf-vision",
            current=CacheWindow(4, 0, 1),
            baseline=baseline,
            now=NOW + timedelta(minutes=1),
        )
        == 0
    )
    assert (
        services.cache_alerts_apply(
            service_name="shelf-vision",
            current=CacheWindow(790, 5, 205),
            baseline=baseline,
            now=NOW + timedelta(minutes=2),
        )
        == 2
    )
    kinds = list(AlertEvent.objects.order_by("at", "kind").values_list("kind", "state"))
    assert kinds == [
        ("cache_hit_drop", "firing"),
        ("stale_hits", "firing"),
        ("cache_hit_drop", "resolved"),
        ("stale_hits", "resolved"),
    ]


def test_model_skew_hook_takes_plain_rows(service):
    rows = [
        ("shelf-vision", "edge", "v7"),
        ("shelf-vision", "public_cloud", "v8"),
        ("unknown-svc", "edge", "v1"),
    ]
    assert services.model_skew_apply(rows=rows, now=NOW) == 1
    event = AlertEvent.objects.get(kind="model_skew")
    assert event.evidence["versions_by_tier"] == {"edge": ["v7"], "public_cloud": ["v8"]}
    assert (
        services.model_skew_apply(
            rows=[("shelf-vision", "edge", "v8"), ("shelf-vision", "public_cloud", "v8")],
            now=NOW + timedelta(minutes=1),
        )
        == 1
    )
