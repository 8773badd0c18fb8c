"""A 3-day backfill pulled from a REAL Prometheus reaches the budget at the next scheduled sync,
exactly (tests/support/prometheus.py loads the history)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from controlplane.celery import app
from slo.budget.buckets import ceil_hour
from slo.contract import REQUESTS_TOTAL
from slo.counters import from_epoch_minute
from slo.models.budget import BudgetDay, BudgetHour, BudgetMinute
from slo.models.telemetry import SliSpan
from slo.telemetry.pull import telemetry_source_pull
from slo.telemetry.sources import telemetry_source_create
from tests.slo.budget.test_sync_spans import buckets, run_scheduled_sync, status_at
from tests.support.prometheus import (
    History,
    LoadedPrometheus,
    SeriesHistory,
    expected_sum,
    history_start_s,
    require_prometheus,
    start_with_history,
)

pytestmark = [pytest.mark.django_db, pytest.mark.prometheus]

MINUTES = 3 * 1440 + 240
FIRST_PULL = 120  # the source starts here with a 2-hour backfill...
CAUGHT_UP = FIRST_PULL + 3 * 1440 - 10  # ...is down for three days, then one pull catches up
LABELS = {"service": "shelf-vision", "tier": "edge", "route": "local"}


@pytest.fixture(scope="module")
def backfill_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedPrometheus]:
    require_prometheus()
    rng = np.random.default_rng(14)
    history = History(start_s=history_start_s(5), minutes=MINUTES)
    observed = np.ones(MINUTES, dtype=bool)
    observed[2000:2012] = False  # a scrape gap during the outage: missing minutes, never good ones
    history.add(
        SeriesHistory(REQUESTS_TOTAL, {**LABELS, "outcome": "ok"}, rng.integers(50, 120, MINUTES), observed)
    )
    errors = rng.integers(0, 4, MINUTES)
    errors[3000:3090] = rng.integers(20, 60, 90)  # an incident on the third day
    history.add(
        SeriesHistory(REQUESTS_TOTAL, {**LABELS, "outcome": "error"}, errors, np.ones(MINUTES, dtype=bool))
    )
    server = start_with_history(tmp_path_factory.mktemp("prometheus-backfill"), history)
    try:
        yield LoadedPrometheus(server, history)
    finally:
        server.stop()


def at(history: History, i: int) -> datetime:
    return from_epoch_minute(history.start_s // 60 + i)


def test_a_three_day_backfill_reaches_the_budget_at_the_next_scheduled_sync(
    backfill_prometheus: LoadedPrometheus, service: Any
) -> None:
    from slo.services import slo_create

    history = backfill_prometheus.history
    slo = slo_create(
        actor=None,
        data={
            "name": "edge-availability",
            "service": "shelf-vision",
            "tier": "edge",
            "sli": {"kind": "availability"},
            "objective": 99.0,
            "window": {"type": "rolling", "days": 28},
        },
    )
    source = telemetry_source_create(
        actor=None,
        data={
            "name": "edge-prom",
            "url": backfill_prometheus.server.url,
            "tier": "edge",
            "scrape_lag_s": 0,
            "backfill_minutes": FIRST_PULL,
        },
    )
    ok = (REQUESTS_TOTAL, {**LABELS, "outcome": "ok"})
    error = (REQUESTS_TOTAL, {**LABELS, "outcome": "error"})
    good, good_present = expected_sum(history, [ok])
    valid, valid_present = expected_sum(history, [ok, error])
    present = good_present & valid_present

    assert telemetry_source_pull(source_id=source.pk, now=at(history, FIRST_PULL)).ok
    run_scheduled_sync()
    assert BudgetMinute.objects.filter(slo_id=slo.pk).count() == int(present[:FIRST_PULL].sum())

    # Three days later the source is back: one pull reads the three days after its watermark.
    caught_up = telemetry_source_pull(source_id=source.pk, now=at(history, CAUGHT_UP))
    assert caught_up.ok and caught_up.slo_minutes == 3 * 1440
    app.loader.import_default_modules()
    app.tasks["slo.tasks.telemetry.rollup_hours"].apply().get()
    results = run_scheduled_sync()
    assert sum(r["minutes_written"] for r in results) == int(present[FIRST_PULL:CAUGHT_UP].sum())

    minutes = dict(
        (int(m.timestamp() // 60) - history.start_s // 60, (g, v))
        for m, g, v in BudgetMinute.objects.filter(slo_id=slo.pk).values_list("minute", "good", "valid")
    )
    want = {i: (float(good[i]), float(valid[i])) for i in np.flatnonzero(present[:CAUGHT_UP]).tolist()}
    assert minutes == want
    # the rollups moved with the minutes
    assert (
        sum(BudgetHour.objects.filter(slo_id=slo.pk).values_list("valid", flat=True))
        == valid[:CAUGHT_UP].sum()
    )
    assert (
        sum(BudgetDay.objects.filter(slo_id=slo.pk).values_list("good", flat=True)) == good[:CAUGHT_UP].sum()
    )

    now = at(history, CAUGHT_UP)
    doc = status_at(slo, now)
    # 3d: whole hours from ceil_hour(now - 3 days), then the current hour's minutes
    lo = int((ceil_hour(now - timedelta(days=3)) - at(history, 0)).total_seconds() // 60)
    window = doc["windows"]["3d"]
    assert (window["good"], window["valid"]) == (
        float(good[lo:CAUGHT_UP].sum()),
        float(valid[lo:CAUGHT_UP].sum()),
    )
    assert window["missing_minutes"] == 3 * 1440 - int(present[lo:CAUGHT_UP].sum())
    bad, total = float(valid[lo:CAUGHT_UP].sum() - good[lo:CAUGHT_UP].sum()), float(valid[lo:CAUGHT_UP].sum())
    assert window["burn_rate"] == pytest.approx((bad / total) / 0.01, rel=1e-12)
    # the 28-day budget holds every minute pulled
    bad, total = float(valid[:CAUGHT_UP].sum() - good[:CAUGHT_UP].sum()), float(valid[:CAUGHT_UP].sum())
    assert (doc["windows"]["period"]["good"], doc["windows"]["period"]["valid"]) == (total - bad, total)
    assert doc["error_budget_remaining"] == pytest.approx(1 - bad / (0.01 * total), rel=1e-12)

    # (c) idempotent: nothing left to sync; a re-pull (it re-reads its last 10 minutes) changes nothing
    before = buckets(slo)
    assert run_scheduled_sync() == [{"spans": 0, "minutes_read": 0, "minutes_written": 0}] * len(results)
    assert telemetry_source_pull(source_id=source.pk, now=at(history, CAUGHT_UP)).ok
    again = run_scheduled_sync()
    assert sum(r["spans"] for r in again) == 1 and sum(r["minutes_written"] for r in again) == 0
    assert buckets(slo) == before and not SliSpan.objects.exists()
