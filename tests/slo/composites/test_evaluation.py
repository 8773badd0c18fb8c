"""Composite evaluation on real PostgreSQL: numbers from the members' buckets against an independent
computation, and a page of its own, naming the member that burns, through the alert outbox."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from slo.budget import notify, services
from slo.budget.buckets import EXACT_MAX_MIN, ceil_hour
from slo.composites.demo import JOURNEY
from slo.composites.evaluation import composite_evaluate
from slo.composites.services import composite_create
from slo.demo import seed_demo_catalog
from slo.engine import error_budget_ratio
from slo.models import Slo
from slo.models.budget import AlertEvent, AlertState, Notification
from slo.models.composites import CompositeStatus, CompositeStatusPoint
from tests.slo.budget.conftest import NOW, load_minutes

pytestmark = pytest.mark.django_db

HOURS = 30  # longer than 1d, so the 1d window reads hourly rollups as the period does
MEMBERS = [m["slo"] for m in JOURNEY["members"]]
WEIGHTS = [float(m["weight"]) for m in JOURNEY["members"]]
BURN_FROM = HOURS * 60 - 70  # edge-latency fails half its requests in the last 70 minutes


@pytest.fixture
def demo_slos(users):
    seed_demo_catalog(actor=users["operator"])
    return [Slo.objects.get(service__name=ref.split("/")[0], name=ref.split("/")[1]) for ref in MEMBERS]


def histories(seed: int, minutes: int, burning: bool):
    rng = np.random.default_rng(seed)
    out = []
    for i, _ref in enumerate(MEMBERS):
        valid = rng.integers(0, 120, size=minutes).astype(float)
        good = valid - rng.binomial(valid.astype(int), 0.002)
        present = rng.random(minutes) > 0.03
        if i == 3:  # fallback-success: silent for the last 2 hours (no data, never good)
            present[-120:] = False
        if burning and i == 0:
            good[BURN_FROM:] = np.floor(valid[BURN_FROM:] / 2)
        out.append((good, valid, present))
    return out


def window_sums(history, start, window_min, now=NOW):
    """Independent: raw minutes over the documented window (exact up to 6h, else whole hours)."""
    begin = now - timedelta(minutes=window_min)
    if window_min > EXACT_MAX_MIN:
        begin = ceil_hour(begin)
    lo = int((begin - start).total_seconds() // 60)
    hi = int((now - start).total_seconds() // 60)
    good, valid, present = history
    mask = present[lo:hi]
    return float(np.minimum(good, valid)[lo:hi][mask].sum()), float(valid[lo:hi][mask].sum())


def expected_bad_fraction(all_history, start, window_min, weights):
    parts, total = [], 0.0
    for history, weight in zip(all_history, weights, strict=True):
        g, v = window_sums(history, start, window_min)
        if v > 0:
            parts.append((weight, (v - g) / v))
            total += weight
    return sum(w * f for w, f in parts) / total if parts else None


def test_composite_numbers_equal_an_independent_computation_from_member_counts(users, demo_slos):
    composite = composite_create(actor=users["operator"], data=JOURNEY)
    start = NOW - timedelta(hours=HOURS)
    all_history = histories(7, HOURS * 60 + 30, burning=False)
    for slo, (good, valid, present) in zip(demo_slos, all_history, strict=True):
        load_minutes(slo, start, good, valid, present)

    report = composite_evaluate(composite_ids=[composite.pk], now=NOW)
    assert report.evaluated == 1
    assert composite_evaluate(composite_ids=[composite.pk], now=NOW).claimed == 0  # replay: nothing

    status = CompositeStatus.objects.get(composite=composite)
    budget = error_budget_ratio(99.0)
    for name, minutes in {"5m": 5, "1h": 60, "6h": 360, "1d": 1440}.items():
        bad = expected_bad_fraction(all_history, start, minutes, WEIGHTS)
        assert status.burn_rates[name] == pytest.approx(bad / budget, rel=1e-9), name
        window = status.windows[name]
        contributions = [
            m["burn_contribution"] for m in window["members"] if m["burn_contribution"] is not None
        ]
        assert sum(contributions) == pytest.approx(bad / budget, rel=1e-9)
    # the period (28 days) holds the whole history
    bad = expected_bad_fraction(all_history, start, 28 * 1440, WEIGHTS)
    assert status.sli == pytest.approx(1 - bad, rel=1e-12)
    assert status.error_budget_remaining == pytest.approx(1 - bad / budget, rel=1e-9)
    journey_events = sum(window_sums(h, start, 28 * 1440)[1] for h in all_history)
    assert status.error_budget_total == pytest.approx(budget * journey_events, rel=1e-12)

    # fallback-success had no telemetry for the last 2 hours: listed, and not counted as good
    one_hour = {m["slo"]: m for m in status.windows["1h"]["members"]}
    assert one_hour["shelf-vision/fallback-success"]["has_data"] is False
    assert one_hour["shelf-vision/fallback-success"]["burn_contribution"] is None
    assert status.burn_rates["1h"] == pytest.approx(
        expected_bad_fraction(all_history[:3], start, 60, WEIGHTS[:3]) / budget, rel=1e-9
    )


def test_one_member_burning_fast_pages_for_the_composite_and_is_named(users, demo_slos, receiver):
    services.notification_channel_save(
        actor=users["admin"],
        data={
            "name": "hook",
            "kind": "generic_webhook",
            "url": receiver.url + "/hook",
            "secret": "s3cret-signing-key-0123",
            "services": ["shelf-vision"],
        },
    )
    composite = composite_create(actor=users["operator"], data=JOURNEY)
    start = NOW - timedelta(hours=HOURS)
    all_history = histories(11, HOURS * 60, burning=True)
    for slo, (good, valid, present) in zip(demo_slos, all_history, strict=True):
        load_minutes(slo, start, good, valid, present)

    composite_evaluate(composite_ids=[composite.pk], now=start + timedelta(minutes=BURN_FROM))
    assert not AlertState.objects.filter(key__startswith=f"composite:{composite.pk}:", firing=True).exists()

    report = composite_evaluate(composite_ids=[composite.pk], now=NOW)
    assert report.transitions >= 1
    state = AlertState.objects.get(key=f"composite:{composite.pk}:page")
    assert state.firing and state.kind == "composite_burn" and state.slo_id is None
    event = AlertEvent.objects.get(state_key=state.key, state="firing")
    assert event.evidence["burning_member"] == "shelf-vision/edge-latency"
    assert event.evidence["composite"]["name"] == "shelf-vision-journey"
    tier = next(t for t in event.evidence["tiers"] if t["status"] == "firing")
    assert tier["severity"] == "page"
    assert tier["long_burn_rate"] > tier["burn_rate_threshold"] < tier["short_burn_rate"]
    top = event.evidence["burning_members"][0]
    assert top["slo"] == "shelf-vision/edge-latency" and top["share_of_burn"] > 0.9
    # the page is the composite's own: no member SLO was evaluated, none has an alert
    assert not AlertState.objects.filter(kind="burn_rate").exists()

    assert Notification.objects.filter(alert_event=event).count() == 1
    assert notify.notifications_send_due(now=NOW) == {"sent": Notification.objects.count()}
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    body = next(b for b in bodies if b["alert"]["severity"] == "page")
    assert body["alert"]["kind"] == "composite_burn" and body["alert"]["severity"] == "page"
    assert body["composite"]["name"] == "shelf-vision-journey"
    assert body["alert"]["evidence"]["burning_member"] == "shelf-vision/edge-latency"
    assert CompositeStatusPoint.objects.filter(composite=composite).count() == (
        1 if NOW.minute % 5 == 0 else 0
    ) + (1 if (start + timedelta(minutes=BURN_FROM)).minute % 5 == 0 else 0)


def test_the_periodic_task_evaluates_every_active_composite_once_per_instant(users, demo_slos):
    from slo.schedules import PERIODIC_TASKS
    from slo.tasks.composites import composites_evaluate_all

    entry = next(e for e in PERIODIC_TASKS if e["task"] == "slo.composites.evaluate_all")
    assert entry["every_s"] == 60
    composite = composite_create(actor=users["operator"], data=JOURNEY)
    assert composites_evaluate_all(now_iso=NOW.isoformat()) == 1
    assert composites_evaluate_all(now_iso=NOW.isoformat()) == 0  # claimed already for this instant
    assert CompositeStatus.objects.get(composite=composite).evaluated_at == NOW


def test_a_correction_on_the_burning_member_keeps_the_composite_from_paging(users, demo_slos):
    from slo.corrections.services import correction_create

    start = NOW - timedelta(hours=HOURS)
    burn_start = start + timedelta(minutes=BURN_FROM)
    correction_create(
        actor=users["operator"],
        data={
            "reason": "accepted incident on the edge latency",
            "scope": {"slos": ["shelf-vision/edge-latency"]},
            "start": burn_start.isoformat(),
            "end": NOW.isoformat(),
        },
        now=start,
    )
    composite = composite_create(actor=users["operator"], data=JOURNEY)
    all_history = histories(11, HOURS * 60, burning=True)
    for slo, (good, valid, present) in zip(demo_slos, all_history, strict=True):
        load_minutes(slo, start, good, valid, present)

    composite_evaluate(composite_ids=[composite.pk], now=NOW)
    assert not AlertState.objects.filter(key=f"composite:{composite.pk}:page", firing=True).exists()
    status = CompositeStatus.objects.get(composite=composite)
    edge = next(m for m in status.windows["1h"]["members"] if m["slo"] == "shelf-vision/edge-latency")
    # the excluded minutes are neither good nor bad: the edge member has no data in the last hour
    assert edge["has_data"] is False and edge["burn_contribution"] is None
    assert status.burn_rates["1h"] < 1
