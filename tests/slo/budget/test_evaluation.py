"""Evaluation: status numbers against an independent computation over the raw minute arrays."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from slo.budget.buckets import EXACT_MAX_MIN, ceil_hour
from slo.budget.evaluation import slo_evaluate, slo_evaluate_all
from slo.budget.selectors import slo_status_document
from slo.engine import error_budget_ratio
from slo.models.budget import BudgetDay, BudgetHour, SloStatus, SloStatusPoint
from slo.spec import SloSpec
from tests.slo.budget.conftest import NOW, load_minutes

pytestmark = pytest.mark.django_db

DAYS = 30
WINDOWS = {"5m": 5, "30m": 30, "1h": 60, "2h": 120, "6h": 360, "1d": 1440, "3d": 4320}


def history(seed: int, minutes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    valid = rng.integers(0, 200, size=minutes).astype(float)
    good = valid - rng.binomial(valid.astype(int), 0.004)
    present = rng.random(minutes) > 0.02  # 2% of minutes missing
    present[-3:] = [True, False, True]
    return good, valid, present


def windows_of(slo):
    status = SloStatus.objects.get(slo=slo)
    return slo_status_document(status=status, spec=SloSpec.model_validate(slo.spec))["windows"]


def expected_window(good, valid, present, start, window_min: int, now=NOW):
    """Independent: sum the raw arrays over the documented window (exact up to 6h, else from the
    first whole hour), with missing minutes counted as neither good nor bad."""
    begin = now - timedelta(minutes=window_min)
    if window_min > EXACT_MAX_MIN:
        begin = ceil_hour(begin)
    lo = int((begin - start).total_seconds() // 60)
    hi = int((now - start).total_seconds() // 60)
    mask = present[lo:hi]
    g = float(np.minimum(good, valid)[lo:hi][mask].sum())
    v = float(valid[lo:hi][mask].sum())
    return g, v, int(window_min - mask.sum())


@pytest.mark.parametrize("now", [NOW, NOW.replace(minute=0), NOW.replace(minute=59), NOW.replace(minute=1)])
def test_it_matches_an_independent_computation_for_every_window(make_slo, now):
    slo = make_slo()
    minutes = DAYS * 1440 + 90  # history runs past now; minutes at or after now must be ignored
    start = NOW - timedelta(days=DAYS)
    good, valid, present = history(1, minutes)
    load_minutes(slo, start, good, valid, present)

    report = slo_evaluate(slo_ids=[slo.pk], now=now)
    assert report.evaluated == 1

    status = SloStatus.objects.get(slo=slo)
    windows = windows_of(slo)
    budget = error_budget_ratio(99.0)
    for name, window_min in WINDOWS.items():
        g, v, missing = expected_window(good, valid, present, start, window_min, now)
        burn = ((v - g) / v) / budget
        assert status.burn_rates[name] == pytest.approx(burn, rel=1e-9, abs=1e-12), name
        assert windows[name]["valid"] == v
        assert windows[name]["missing_minutes"] == missing
    g, v, missing = expected_window(good, valid, present, start, 28 * 1440, now)
    assert status.sli == pytest.approx(g / v, rel=1e-12)
    assert status.error_budget_total == pytest.approx(budget * v, rel=1e-12)
    assert status.error_budget_consumed == v - g
    assert status.error_budget_remaining == pytest.approx(1 - (v - g) / (budget * v), rel=1e-9)
    assert windows["period"]["missing_minutes"] == missing
    assert status.data_quality == "ok"
    assert status.evaluated_at == now


def test_it_matches_the_pure_engine_on_exact_windows(make_slo):
    """Windows up to 6h are exact, so the engine over the raw arrays must agree."""
    from slo.engine import evaluate_slo
    from slo.spec import SloSpec

    slo = make_slo()
    start = NOW - timedelta(hours=8)
    good, valid, present = history(2, 8 * 60)
    load_minutes(slo, start, good, valid, present)
    slo_evaluate(slo_ids=[slo.pk], now=NOW)
    status = SloStatus.objects.get(slo=slo)
    expected = evaluate_slo(SloSpec.model_validate(slo.spec), good, valid, present, now=NOW)
    for name in ("5m", "30m", "1h", "2h", "6h"):
        assert status.burn_rates[name] == pytest.approx(expected.windows[name].burn_rate, rel=1e-9)


def test_it_reports_no_data_not_100_percent_without_traffic(make_slo):
    silent = make_slo()
    zero = make_slo()
    # `zero` reports minutes with 0 valid events: present, but still no data to judge by.
    start = NOW - timedelta(hours=2)
    load_minutes(zero, start, np.zeros(120), np.zeros(120), np.ones(120, dtype=bool))
    slo_evaluate(slo_ids=[silent.pk, zero.pk], now=NOW)
    for slo in (silent, zero):
        status = SloStatus.objects.get(slo=slo)
        assert status.data_quality == "no_data"
        assert status.sli is None
        assert status.error_budget_remaining is None
        assert status.burn_rates["1h"] is None
        assert status.alert_state == "unknown"
        assert status.time_to_exhaustion_basis == "no_data"


def test_it_reports_insufficient_traffic_below_min_valid_events(make_slo):
    slo = make_slo(min_valid_events=1000)
    start = NOW - timedelta(hours=1)
    valid = np.full(60, 10.0)
    load_minutes(slo, start, valid - 1, valid, np.ones(60, dtype=bool))
    slo_evaluate(slo_ids=[slo.pk], now=NOW)
    status = SloStatus.objects.get(slo=slo)
    assert status.data_quality == "insufficient_traffic"
    assert windows_of(slo)["5m"]["data_quality"] == "insufficient_traffic"
    # Numbers are shown, but they cannot decide an alert: 10% errors is burn 10, yet no page.
    assert status.burn_rates["5m"] == pytest.approx(10.0)
    assert status.alert_state == "unknown"


def test_it_is_idempotent_per_instant_and_never_goes_back_in_time(make_slo):
    slo = make_slo()
    load_minutes(slo, NOW - timedelta(hours=1), np.full(60, 5.0), np.full(60, 5.0), np.ones(60, dtype=bool))
    assert slo_evaluate(slo_ids=[slo.pk], now=NOW).claimed == 1
    assert slo_evaluate(slo_ids=[slo.pk], now=NOW).claimed == 0
    assert slo_evaluate(slo_ids=[slo.pk], now=NOW - timedelta(minutes=1)).claimed == 0
    assert SloStatus.objects.get(slo=slo).evaluated_at == NOW
    # NOW is on a 5-minute step? 12:34 is not: no history point. 12:35 is.
    assert not SloStatusPoint.objects.exists()
    slo_evaluate(slo_ids=[slo.pk], now=NOW + timedelta(minutes=1))
    assert SloStatusPoint.objects.filter(slo_id=slo.pk).count() == 1


def test_it_keeps_rollups_consistent_when_a_minute_is_resent(make_slo):
    slo = make_slo()
    start = NOW.replace(minute=0) - timedelta(hours=1)
    load_minutes(slo, start, np.full(60, 9.0), np.full(60, 10.0), np.ones(60, dtype=bool))
    load_minutes(slo, start, np.full(1, 10.0), np.full(1, 10.0), np.ones(1, dtype=bool))  # corrected
    hour = BudgetHour.objects.get(slo_id=slo.pk, hour=start)
    assert (hour.good, hour.valid, hour.present_minutes) == (541.0, 600.0, 60)
    day = BudgetDay.objects.get(slo_id=slo.pk, day=start.replace(hour=0))
    assert day.good == 541.0


def test_it_counts_timeslices_as_minutes(make_slo):
    slo = make_slo(budgeting_method="timeslices", timeslice_target=0.95)
    start = NOW - timedelta(minutes=10)
    valid = np.full(10, 100.0)
    good = np.array([100, 90, 96, 95, 94, 100, 100, 100, 100, 100], dtype=float)
    load_minutes(slo, start, good, valid, np.ones(10, dtype=bool))
    slo_evaluate(slo_ids=[slo.pk], now=NOW)
    window = windows_of(slo)["30m"]
    assert (window["good"], window["valid"], window["events"]) == (8.0, 10.0, 1000.0)


def test_it_evaluates_a_calendar_period_from_its_start(make_slo):
    slo = make_slo(window={"type": "calendar", "unit": "month", "timezone": "UTC"})
    start = NOW - timedelta(days=DAYS)
    good, valid, present = history(3, DAYS * 1440)
    load_minutes(slo, start, good, valid, present)
    slo_evaluate(slo_ids=[slo.pk], now=NOW)
    status = SloStatus.objects.get(slo=slo)
    month_start = NOW.replace(day=1, hour=0, minute=0)
    g, v, _ = expected_window(good, valid, present, start, int((NOW - month_start).total_seconds() // 60))
    assert status.period_start == month_start
    assert status.sli == pytest.approx(g / v, rel=1e-12)


def test_it_evaluates_all_slos_in_chunks(make_slo):
    slos = [make_slo() for _ in range(5)]
    for k, slo in enumerate(slos):
        load_minutes(
            slo, NOW - timedelta(hours=1), np.full(60, 10.0 - k), np.full(60, 10.0), np.ones(60, dtype=bool)
        )
    report = slo_evaluate_all(now=NOW, chunk_size=2)
    assert report.evaluated == 5
    remaining = [SloStatus.objects.get(slo=s).error_budget_remaining for s in slos]
    assert remaining[0] == 1.0
    assert all(not math.isnan(r) for r in remaining)
    assert remaining == sorted(remaining, reverse=True)
