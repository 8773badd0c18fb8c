"""The budget engine against answers computed independently, with plain Python loops."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slo.engine import (
    BURN_WINDOWS_MIN,
    WindowSums,
    batch_params,
    calendar_period_bounds,
    default_alert_tiers,
    evaluate_batch,
    evaluate_minutes,
    evaluate_slo,
    window_sums,
    window_sums_with_rollups,
)
from slo.engine.windows import _local_midnight
from slo.spec import SloSpec

TOL = 1e-9


def make_spec(**overrides: object) -> SloSpec:
    data: dict[str, object] = {
        "name": "requests-ok",
        "service": "shelf-vision",
        "sli": {"kind": "availability"},
        "objective": 99.9,
        "window": {"type": "rolling", "days": 28},
    }
    data.update(overrides)
    return SloSpec.model_validate(data)


# ---------------------------------------------------------------- independent reference


def naive_window(good, valid, present, end: int, minutes: int) -> tuple[int, int, int]:
    """(good, valid, missing minutes) over [end - minutes, end), one minute at a time."""
    total_good = total_valid = missing = 0
    for i in range(end - minutes, end):
        if i < 0 or (present is not None and not present[i]):
            missing += 1
            continue
        total_good += min(int(good[i]), int(valid[i]))
        total_valid += int(valid[i])
    return total_good, total_valid, missing


def naive_burn(good: int, valid: int, objective_percent: float) -> float:
    if valid == 0:
        return math.nan
    return ((valid - good) / valid) / (1 - objective_percent / 100)


def close(actual: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(actual)
    return abs(actual - expected) <= TOL * max(1.0, abs(expected))


def random_minutes(seed: int, n_minutes: int, error_rate: float, missing_rate: float = 0.0):
    rng = np.random.default_rng(seed)
    valid = rng.integers(0, 200, n_minutes).astype(np.int64)
    good = valid - rng.binomial(valid, error_rate)
    present = rng.random(n_minutes) >= missing_rate
    return good.astype(np.int64), valid, present


# ---------------------------------------------------------------- known datasets


def test_it_computes_a_hand_worked_example():
    # 1 hour of 100 requests a minute; the last 10 minutes fail 1 request each. Objective 99.9%.
    valid = np.full(60, 100, dtype=np.int64)
    good = valid.copy()
    good[-10:] -= 1
    result = evaluate_slo(make_spec(), good, valid)

    # 5m: 5 bad of 500 = 1%, / 0.1% budget = 10x. 1h: 10 of 6000 = 1/600 -> 1.6667x.
    assert result.windows["5m"].burn_rate == pytest.approx(10.0, abs=TOL)
    assert result.windows["1h"].burn_rate == pytest.approx(10 / 6000 / 0.001, abs=TOL)
    assert result.windows["30m"].burn_rate == pytest.approx(10 / 3000 / 0.001, abs=TOL)
    # The period is everything we have: allowed bad = 0.001 x 6000 = 6, bad = 10.
    assert result.sli == pytest.approx(5990 / 6000, abs=TOL)
    assert result.error_budget_total == pytest.approx(6.0, abs=TOL)
    assert result.error_budget_consumed == 10
    assert result.error_budget_remaining_ratio == pytest.approx(1 - 10 / 6, abs=TOL)
    # 28 days minus the hour we have are missing.
    assert result.period.missing_minutes == 28 * 1440 - 60
    assert result.budget_exhausted is True
    assert result.time_to_exhaustion_s == 0.0
    assert result.time_to_exhaustion_basis == "exhausted"


@pytest.mark.parametrize("objective", [99.0, 99.5, 99.9, 99.95])
def test_it_matches_loops_on_a_random_dataset(objective):
    n_minutes = 4 * 1440 + 17
    good, valid, present = random_minutes(seed=7, n_minutes=n_minutes, error_rate=0.002, missing_rate=0.03)
    spec = make_spec(objective=objective, window={"type": "rolling", "days": 3})
    result = evaluate_slo(spec, good, valid, present)

    for name, minutes in BURN_WINDOWS_MIN.items():
        g, v, missing = naive_window(good, valid, present, n_minutes, minutes)
        window = result.windows[name]
        assert (window.good, window.valid, window.missing_minutes) == (g, v, missing)
        assert close(window.burn_rate, naive_burn(g, v, objective)), name
        assert close(window.sli, g / v)

    g, v, missing = naive_window(good, valid, present, n_minutes, 3 * 1440)
    allowed_bad = (1 - objective / 100) * v
    assert close(result.sli, g / v)
    assert close(result.error_budget_remaining_ratio, 1 - (v - g) / allowed_bad)
    # Pyrra's form of the same number.
    target = objective / 100
    assert close(result.error_budget_remaining_ratio, ((1 - target) - (v - g) / v) / (1 - target))
    assert result.period.missing_minutes == missing


def test_it_reports_no_data_not_100_percent_for_zero_traffic():
    zeros = np.zeros(3 * 1440, dtype=np.int64)
    result = evaluate_slo(make_spec(), zeros, zeros)
    assert result.data_quality == "no_data"
    assert math.isnan(result.sli)
    assert math.isnan(result.error_budget_remaining_ratio)
    assert all(w.data_quality == "no_data" and math.isnan(w.burn_rate) for w in result.windows.values())
    assert result.alert_state == "unknown"
    assert result.time_to_exhaustion_basis == "no_data"
    as_dict = result.as_dict()
    assert as_dict["sli"] is None
    assert as_dict["error_budget_remaining_ratio"] is None
    assert as_dict["windows"]["1h"]["burn_rate"] is None


def test_it_reports_no_data_when_every_minute_is_missing():
    valid = np.full(120, 50, dtype=np.int64)
    present = np.zeros(120, dtype=bool)
    result = evaluate_slo(make_spec(), valid, valid, present)
    assert result.windows["1h"].data_quality == "no_data"
    assert result.windows["1h"].missing_minutes == 60
    assert result.windows["1h"].valid == 0
    assert result.alert_state == "unknown"


def test_it_flags_insufficient_traffic_below_min_valid_events():
    valid = np.ones(3 * 1440, dtype=np.int64)  # one request a minute
    result = evaluate_slo(make_spec(min_valid_events=100), valid, valid)
    assert result.windows["5m"].data_quality == "insufficient_traffic"
    assert result.windows["1h"].data_quality == "insufficient_traffic"
    assert result.windows["2h"].data_quality == "ok"  # 120 events
    # Numbers are still computed, just not trusted for a verdict.
    assert result.windows["5m"].sli == 1.0
    page_1h = result.tiers[0]
    assert page_1h.status == "unknown"
    assert page_1h.holds is None
    assert result.alert_state == "unknown"


def test_it_ignores_missing_minutes_and_counts_them():
    good, valid, present = random_minutes(seed=3, n_minutes=600, error_rate=0.01)
    present[-45:-15] = False
    # Garbage in the missing minutes must not count as good or bad.
    good_garbage, valid_garbage = good.copy(), valid.copy()
    good_garbage[-45:-15], valid_garbage[-45:-15] = 0, 10_000
    result = evaluate_slo(make_spec(), good_garbage, valid_garbage, present)
    g, v, missing = naive_window(good, valid, present, 600, 60)
    assert (result.windows["1h"].good, result.windows["1h"].valid) == (g, v)
    assert result.windows["1h"].missing_minutes == 30 == missing
    assert result.windows["5m"].missing_minutes == 0


def test_it_caps_good_at_valid_minute_by_minute():
    # An over-counted minute (increase() extrapolation) must not hide a bad one.
    valid = np.array([10, 10], dtype=np.int64)
    good = np.array([12, 8], dtype=np.int64)
    sums = window_sums(good, valid, None, 2, [2])
    assert (sums.good[0], sums.valid[0]) == (18, 20)


# ---------------------------------------------------------------- alerts


def burning_series(start_minute: int, n_minutes: int, bad_per_minute: int) -> tuple[np.ndarray, np.ndarray]:
    valid = np.full(n_minutes, 1000, dtype=np.int64)
    good = valid.copy()
    good[start_minute:] -= bad_per_minute
    return good, valid


def test_page_fires_exactly_when_the_1h_burn_crosses_the_threshold():
    # 30-day SLO at 99.9%: page at 1h burn > 14.4. From minute s, 2% of requests fail (burn 20),
    # so after k bad minutes the 1h burn is 20k/60: 14.33 at k = 43, 14.67 at k = 44.
    spec = make_spec(window={"type": "rolling", "days": 30})
    s = 3 * 1440 + 100
    good, valid = burning_series(s, s + 120, bad_per_minute=20)

    before = evaluate_slo(spec, good, valid, end_index=s + 43)
    at = evaluate_slo(spec, good, valid, end_index=s + 44)

    assert before.windows["1h"].burn_rate == pytest.approx(20 * 43 / 60, abs=TOL)
    assert before.windows["5m"].burn_rate == pytest.approx(20.0, abs=TOL)
    assert before.tiers[0].burn_rate_threshold == 14.4
    assert before.tiers[0].status == "not_firing"
    assert before.alert_state == "none"

    assert at.windows["1h"].burn_rate == pytest.approx(20 * 44 / 60, abs=TOL)
    assert at.tiers[0].status == "firing"
    assert at.tiers[0].long_burn_rate > 14.4 and at.tiers[0].short_burn_rate > 14.4
    assert at.alert_state == "page"


def test_page_tier_matches_the_workbook_condition_minute_by_minute():
    spec = make_spec(window={"type": "rolling", "days": 30})
    rng = np.random.default_rng(11)
    n_minutes = 3 * 1440 + 240
    valid = np.full(n_minutes, 1000, dtype=np.int64)
    bad = np.zeros(n_minutes, dtype=np.int64)
    # Bursts of errors of random size, so the 1h and 5m burns cross 14.4 at various times.
    bad[3 * 1440 :] = rng.choice([0, 0, 5, 30, 60], size=240)
    good = valid - bad
    seen = set()
    for end in range(3 * 1440, n_minutes + 1):
        g1, v1, _ = naive_window(good, valid, None, end, 60)
        g5, v5, _ = naive_window(good, valid, None, end, 5)
        expected = naive_burn(g1, v1, 99.9) > 14.4 and naive_burn(g5, v5, 99.9) > 14.4
        seen.add(expected)
        result = evaluate_slo(spec, good, valid, end_index=end)
        assert (result.tiers[0].status == "firing") == expected, end
    assert seen == {True, False}


def test_missing_short_window_makes_a_hot_tier_unknown_not_resolved():
    spec = make_spec(window={"type": "rolling", "days": 30})
    s = 3 * 1440
    # 5% errors (burn 50) for the last 30 minutes: 1h burn 25 > 14.4, 6h burn 4.2 < 6.
    good, valid = burning_series(s + 60, s + 90, bad_per_minute=50)
    present = np.ones(s + 90, dtype=bool)
    present[-5:] = False  # the gateway went silent for the last 5 minutes
    result = evaluate_slo(spec, good, valid, present)
    page_1h = result.tiers[0]
    assert page_1h.long_burn_rate > 14.4
    assert page_1h.short_data_quality == "no_data"
    assert page_1h.status == "unknown"
    assert result.alert_state == "unknown"


def test_a_cold_long_window_decides_the_tier_even_if_the_short_one_is_missing():
    spec = make_spec(window={"type": "rolling", "days": 30})
    valid = np.full(3 * 1440 + 60, 1000, dtype=np.int64)
    present = np.ones(valid.shape, dtype=bool)
    present[-5:] = False
    result = evaluate_slo(spec, valid, valid, present)
    # false AND unknown = false: no burn over 1h means the 1h/5m tier cannot hold.
    assert result.tiers[0].status == "not_firing"
    # The 6h/30m tier and the ticket tiers are decided too (long windows at 0), so: none.
    assert result.alert_state == "none"


def test_a_ticket_with_an_unknown_page_reports_unknown():
    spec = make_spec(window={"type": "rolling", "days": 30})
    n = 3 * 1440 + 60
    valid = np.full(n, 2000, dtype=np.int64)
    good = valid.copy()
    good[-1440:] -= 7  # burn 3.5 for the last day: ticket (1d and 2h > 3)
    good[-15:] = valid[-15:] - 160  # burn 80 for the last 15 minutes
    present = np.ones(n, dtype=bool)
    present[-5:] = False  # ... of which the last 5 are missing
    result = evaluate_slo(spec, good, valid, present)
    statuses = {(t.severity, t.long_window): t.status for t in result.tiers}
    # 1h burn (45 x 3.5 + 10 x 80) / 55 = 17.4 > 14.4, but the 5m window has no data.
    assert result.windows["1h"].burn_rate == pytest.approx((45 * 3.5 + 10 * 80) / 55, abs=TOL)
    assert statuses[("page", "1h")] == "unknown"
    # 6h burn (345 x 3.5 + 800) / 355 = 5.65 < 6: decided.
    assert statuses[("page", "6h")] == "not_firing"
    assert statuses[("ticket", "1d")] == "firing"
    # A page may be hidden behind the missing minutes, so the overall state is unknown.
    assert result.alert_state == "unknown"


@pytest.mark.parametrize(
    ("days", "scaled", "effective"),
    [
        (30, [14.4, 6.0, 3.0, 1.0], [14.4, 6.0, 3.0, 1.0]),
        # The 3-day ticket scales to 0.933x and is raised to budget-neutral burn.
        (28, [13.44, 5.6, 2.8, 0.9333333333333333], [13.44, 5.6, 2.8, 1.0]),
        # The demo's doc-summarizer: 7 days would ticket at 0.7x and 0.233x.
        (7, [3.36, 1.4, 0.7, 0.23333333333333334], [3.36, 1.4, 1.0, 1.0]),
        # 1 day: even the fast page scales below 1x (0.48x).
        (1, [0.48, 0.2, 0.1, 0.03333333333333333], [1.0, 1.0, 1.0, 1.0]),
    ],
)
def test_thresholds_scale_with_the_slo_window_and_never_go_below_1x(days, scaled, effective):
    tiers = default_alert_tiers(days)
    assert [t.scaled_burn_rate_threshold for t in tiers] == pytest.approx(scaled, abs=TOL)
    assert [t.burn_rate_threshold for t in tiers] == pytest.approx(effective, abs=TOL)
    assert [t.threshold_raised for t in tiers] == [s < 1.0 for s in scaled]
    assert [(t.long_window, t.short_window) for t in tiers] == [
        ("1h", "5m"),
        ("6h", "30m"),
        ("1d", "2h"),
        ("3d", "6h"),
    ]
    assert [t.severity for t in tiers] == ["page", "page", "ticket", "ticket"]


def test_thirty_day_thresholds_are_the_workbook_numbers_exactly():
    assert [t.burn_rate_threshold for t in default_alert_tiers(30)] == [14.4, 6.0, 3.0, 1.0]


def test_calendar_month_alerts_use_the_nominal_30_days():
    spec = make_spec(window={"type": "calendar", "unit": "month", "timezone": "Europe/Berlin"})
    now = datetime(2025, 2, 10, 12, 0, tzinfo=UTC)
    valid = np.full(3 * 1440, 10, dtype=np.int64)
    result = evaluate_slo(spec, valid, valid, now=now)
    assert [t.burn_rate_threshold for t in result.tiers] == [14.4, 6.0, 3.0, 1.0]


def test_it_honours_custom_alert_tiers():
    spec = make_spec(
        window={"type": "rolling", "days": 30},
        alert_tiers=[
            {"severity": "page", "budget_percent": 4, "long_window_s": 4 * 3600, "short_window_s": 20 * 60}
        ],
    )
    n = 3 * 1440 + 300
    good, valid = burning_series(n - 300, n, bad_per_minute=20)
    result = evaluate_slo(spec, good, valid)
    assert len(result.tiers) == 1
    tier = result.tiers[0]
    assert (tier.long_window, tier.short_window) == ("4h", "20m")
    assert tier.burn_rate_threshold == pytest.approx(4 * 720 / 100 / 4, abs=TOL)  # 7.2
    assert tier.long_burn_rate == pytest.approx(20 * 240 / 240, abs=TOL)
    assert "4h" in result.windows and "20m" in result.windows
    assert result.alert_state == "page"


# ---------------------------------------------------------------- time to exhaustion


def test_time_to_exhaustion_is_remaining_budget_over_the_1h_burn():
    spec = make_spec(window={"type": "rolling", "days": 28})
    n = 3 * 1440
    valid = np.full(n, 1000, dtype=np.int64)
    good = valid.copy()
    good[-60:] -= 2  # 0.2% errors in the last hour: 1h burn 2.0
    result = evaluate_slo(spec, good, valid)
    bad = 120
    allowed = 0.001 * n * 1000
    remaining = 1 - bad / allowed
    assert result.error_budget_remaining_ratio == pytest.approx(remaining, abs=TOL)
    assert result.time_to_exhaustion_s == pytest.approx(remaining * 28 * 86400 / 2.0, rel=TOL)
    assert result.time_to_exhaustion_basis == "projected"


def test_time_to_exhaustion_is_none_when_not_burning():
    valid = np.full(120, 1000, dtype=np.int64)
    result = evaluate_slo(make_spec(), valid, valid)
    assert result.time_to_exhaustion_basis == "not_burning"
    assert result.as_dict()["time_to_exhaustion_s"] is None
    assert result.budget_exhausted is False


# ---------------------------------------------------------------- timeslices


def test_timeslices_count_good_minutes():
    spec = make_spec(budgeting_method="timeslices", timeslice_target=0.95, min_valid_events=1)
    valid = np.array([100, 100, 0, 100, 20, 100], dtype=np.int64)
    good = np.array([95, 94, 0, 100, 19, 50], dtype=np.int64)
    present = np.array([True, True, True, True, True, False])
    result = evaluate_slo(spec, good, valid, present)
    # Slices with traffic among present minutes: 0, 1, 3, 4. Good (>= 0.95): 0, 3, 4 (19/20 = 0.95).
    expected_good = sum(1 for i in range(6) if present[i] and valid[i] > 0 and good[i] / valid[i] >= 0.95)
    expected_valid = sum(1 for i in range(6) if present[i] and valid[i] > 0)
    assert (expected_good, expected_valid) == (3, 4)
    window = result.windows["5m"]  # minutes 1..5
    assert (window.good, window.valid) == (2, 3)
    assert window.valid_events == 100 + 100 + 20
    assert result.sli == pytest.approx(3 / 4, abs=TOL)
    assert result.error_budget_remaining_ratio == pytest.approx(1 - 1 / (0.001 * 4), abs=TOL)


def test_ratio_timeslices_average_per_minute_ratios():
    spec = make_spec(budgeting_method="ratio_timeslices")
    valid = np.array([100, 10, 0, 1000], dtype=np.int64)
    good = np.array([90, 10, 0, 500], dtype=np.int64)
    result = evaluate_slo(spec, good, valid)
    assert result.sli == pytest.approx((0.9 + 1.0 + 0.5) / 3, abs=TOL)


def test_timeslice_min_valid_events_counts_requests_not_minutes():
    spec = make_spec(budgeting_method="timeslices", timeslice_target=0.9, min_valid_events=50)
    valid = np.full(10, 20, dtype=np.int64)
    result = evaluate_slo(spec, valid, valid)
    assert result.windows["5m"].data_quality == "ok"  # 100 requests, though only 5 slices


# ---------------------------------------------------------------- calendar periods


def utc_hours(start: datetime, end: datetime) -> float:
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600


def test_calendar_month_across_spring_dst_is_an_hour_short():
    start, end = calendar_period_bounds("month", "Europe/Berlin", datetime(2025, 3, 15, tzinfo=UTC))
    assert start == datetime(2025, 3, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    assert start.utcoffset() == timedelta(hours=1) and end.utcoffset() == timedelta(hours=2)
    assert (end.month, end.day, end.hour) == (4, 1, 0)
    assert utc_hours(start, end) == 31 * 24 - 1


def test_calendar_month_across_autumn_dst_is_an_hour_long():
    start, end = calendar_period_bounds("month", "Europe/Berlin", datetime(2025, 10, 31, 22, 59, tzinfo=UTC))
    assert (start.month, end.month) == (10, 11)
    assert utc_hours(start, end) == 31 * 24 + 1


def test_calendar_week_starts_monday_local_midnight_across_dst():
    # Sunday 30 March 2025 03:00 Berlin: the week of Monday 24 March, 167 hours long.
    start, end = calendar_period_bounds("week", "Europe/Berlin", datetime(2025, 3, 30, 1, 0, tzinfo=UTC))
    assert (start.date().isoformat(), start.weekday(), start.hour) == ("2025-03-24", 0, 0)
    assert end.date().isoformat() == "2025-03-31"
    assert utc_hours(start, end) == 167


def test_calendar_month_end_follows_the_local_zone():
    # 23:30 UTC on 31 January is already 1 February in Berlin, still January in New York.
    now = datetime(2025, 1, 31, 23, 30, tzinfo=UTC)
    berlin = calendar_period_bounds("month", "Europe/Berlin", now)
    new_york = calendar_period_bounds("month", "America/New_York", now)
    assert berlin[0].month == 2 and utc_hours(*berlin) == 28 * 24
    assert new_york[0].month == 1 and new_york[1].month == 2
    # December rolls into the next year; a leap February has 29 days.
    dec = calendar_period_bounds("month", "UTC", datetime(2024, 12, 31, 23, 59, tzinfo=UTC))
    assert (dec[1].year, dec[1].month) == (2025, 1)
    feb = calendar_period_bounds("month", "UTC", datetime(2024, 2, 29, 12, tzinfo=UTC))
    assert utc_hours(*feb) == 29 * 24


def test_the_period_start_instant_belongs_to_the_new_period():
    start = datetime(2025, 3, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    bounds = calendar_period_bounds("month", "Europe/Berlin", start)
    assert bounds[0] == start


def test_a_skipped_midnight_starts_the_day_at_the_first_real_instant():
    # Chile moved clocks from 00:00 to 01:00 on 8 September 2024.
    midnight = _local_midnight(datetime(2024, 9, 8).date(), ZoneInfo("America/Santiago"))
    assert (midnight.hour, midnight.utcoffset()) == (1, timedelta(hours=-3))


def test_calendar_bounds_refuse_a_naive_now():
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar_period_bounds("week", "UTC", datetime(2025, 1, 1))


def test_calendar_slo_sums_the_period_so_far():
    spec = make_spec(window={"type": "calendar", "unit": "week", "timezone": "UTC"})
    now = datetime(2025, 3, 5, 6, 0, tzinfo=UTC)  # Wednesday 06:00: 2 days 6 hours into the week
    n = 4 * 1440
    valid = np.full(n, 10, dtype=np.int64)
    result = evaluate_slo(spec, valid, valid, now=now)
    elapsed = 2 * 1440 + 360
    assert result.period.window_minutes == elapsed
    assert result.period.valid == 10 * elapsed
    assert result.period_total_minutes == 7 * 1440
    assert result.period_start == datetime(2025, 3, 3, tzinfo=ZoneInfo("UTC"))


# ---------------------------------------------------------------- serialisation and batch


def test_as_dict_is_strict_json():
    good, valid, present = random_minutes(seed=5, n_minutes=2000, error_rate=0.01, missing_rate=0.1)
    spec = make_spec(window={"type": "calendar", "unit": "month", "timezone": "Europe/Paris"})
    result = evaluate_slo(spec, good, valid, present, now=datetime(2025, 6, 2, tzinfo=UTC))
    text = json.dumps(result.as_dict(), allow_nan=False)
    assert '"period_start": "2025-06-01T00:00:00+02:00"' in text


def test_pre_aggregated_sums_give_the_same_result_as_minutes():
    specs = [make_spec(), make_spec(name="b", objective=99.0, window={"type": "rolling", "days": 3})]
    good, valid, present = random_minutes(seed=9, n_minutes=5000, error_rate=0.004, missing_rate=0.02)
    from_minutes = evaluate_minutes(
        specs, np.tile(good, (2, 1)), np.tile(valid, (2, 1)), np.tile(present, (2, 1))
    )
    params = batch_params(specs)
    minute_sums = from_minutes.sums
    stacked = np.stack([minute_sums.good, minute_sums.valid], axis=-1)
    from_sums = evaluate_batch(WindowSums.from_array(stacked, minute_sums.missing_minutes), params)
    for row in range(2):
        assert from_sums.slo(row).as_dict() == from_minutes.slo(row).as_dict()


# ---------------------------------------------------------------- properties

windows_strategy = st.lists(st.integers(0, 400), min_size=1, max_size=6)


@st.composite
def minute_data(draw, max_rows: int = 4):
    n_rows = draw(st.integers(1, max_rows))
    n_minutes = draw(st.integers(1, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    valid = rng.integers(0, draw(st.sampled_from([1, 3, 50, 1000])), (n_rows, n_minutes)).astype(np.int64)
    good = valid - rng.binomial(valid, draw(st.sampled_from([0.0, 0.001, 0.05, 0.5])))
    # Occasionally over-count good, as counter extrapolation does.
    good = good + (rng.random((n_rows, n_minutes)) < 0.02)
    present = rng.random((n_rows, n_minutes)) >= draw(st.sampled_from([0.0, 0.1, 0.9, 1.0]))
    end_index = draw(st.integers(0, n_minutes))
    return good.astype(np.int64), valid, present, end_index


@settings(max_examples=150, deadline=None)
@given(data=minute_data(), windows=windows_strategy)
def test_window_sums_equal_naive_sums(data, windows):
    good, valid, present, end_index = data
    sums = window_sums(good, valid, present, end_index, windows)
    for row in range(good.shape[0]):
        for col, minutes in enumerate(windows):
            expected = naive_window(good[row], valid[row], present[row], end_index, minutes)
            actual = (sums.good[row, col], sums.valid[row, col], sums.missing_minutes[row, col])
            assert actual == expected
    single = window_sums(good[0], valid[0], present[0], end_index, windows)
    assert np.array_equal(single.good, sums.good[0]) and np.array_equal(
        single.missing_minutes, sums.missing_minutes[0]
    )


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    n_hours=st.integers(0, 8),
    minute_hours=st.integers(0, 3),
    minutes_past=st.integers(0, 59),
    windows=st.lists(st.integers(1, 800), min_size=1, max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_rollups_equal_minute_sums_without_the_split_hour(
    data, n_hours, minute_hours, minutes_past, windows, seed
):
    rng = np.random.default_rng(seed)
    n_minutes = minute_hours * 60 + minutes_past
    total = n_hours * 60 + n_minutes
    valid = rng.integers(0, 20, (2, total)).astype(np.int64)
    good = valid - rng.binomial(valid, 0.1)
    present = rng.random((2, total)) >= data.draw(st.sampled_from([0.0, 0.2]))
    old = n_hours * 60
    hourly_good = np.where(present[:, :old], good[:, :old], 0).reshape(2, n_hours, 60).sum(axis=2)
    hourly_valid = np.where(present[:, :old], valid[:, :old], 0).reshape(2, n_hours, 60).sum(axis=2)
    hourly_present = present[:, :old].reshape(2, n_hours, 60).sum(axis=2)
    sums = window_sums_with_rollups(
        good[:, old:], valid[:, old:], present[:, old:], hourly_good, hourly_valid, hourly_present, windows
    )
    for row in range(2):
        for col, minutes in enumerate(windows):
            # The reference: minute sums over the window shrunk to whole hours beyond the minute
            # arrays; the dropped minutes of the split hour count as missing.
            beyond = max(0, minutes - n_minutes)
            readable = n_minutes + min(beyond // 60, n_hours) * 60 if beyond else minutes
            g, v, missing = naive_window(good[row], valid[row], present[row], total, readable)
            assert (sums.good[row, col], sums.valid[row, col]) == (g, v)
            assert sums.missing_minutes[row, col] == missing + (minutes - readable)


spec_strategy = st.builds(
    lambda objective, days, min_valid, method, custom, i: make_spec(
        name=f"slo-{i}",
        objective=objective,
        window={"type": "rolling", "days": days},
        min_valid_events=min_valid,
        budgeting_method=method,
        timeslice_target=0.9 if method == "timeslices" else None,
        alert_tiers=(
            [
                {
                    "severity": "ticket",
                    "budget_percent": 5,
                    "long_window_s": 3 * 3600,
                    "short_window_s": 15 * 60,
                }
            ]
            if custom
            else None
        ),
    ),
    objective=st.sampled_from([90.0, 99.0, 99.5, 99.9, 99.99]),
    days=st.sampled_from([1, 7, 28, 30]),
    min_valid=st.sampled_from([1, 10, 500]),
    method=st.sampled_from(["occurrences", "occurrences", "timeslices", "ratio_timeslices"]),
    custom=st.booleans(),
    i=st.integers(0, 10**6),
)


def test_a_seven_day_slo_burning_at_budget_neutral_raises_no_ticket():
    """59% of the budget left and burning at 0.8x: on course to meet the objective, so no alert.

    Scaled to 7 days the workbook's ticket tiers would fire at 0.7x and 0.233x.
    """
    spec = make_spec(objective=99.0, window={"type": "rolling", "days": 7})
    n = 7 * 1440
    valid = np.full(n, 1000, dtype=np.int64)
    # 0.8% errors = 0.8x burn over the last 3 days; the days before were clean.
    good = np.where(np.arange(n) >= n - 3 * 1440, 992, 1000).astype(np.int64)
    result = evaluate_slo(spec, good, valid)
    assert result.windows["3d"].burn_rate == pytest.approx(0.8, abs=TOL)
    assert [t.burn_rate_threshold for t in result.tiers] == pytest.approx([3.36, 1.4, 1.0, 1.0], abs=TOL)
    assert [t.status for t in result.tiers] == ["not_firing"] * 4
    assert result.alert_state == "none"

    # 1.2x is over budget-neutral: the 3-day ticket fires (6h and 3d both 1.2x).
    worse = np.where(np.arange(n) >= n - 3 * 1440, 988, 1000).astype(np.int64)
    assert evaluate_slo(spec, worse, valid).alert_state == "ticket"


tier_strategy = st.fixed_dictionaries(
    {
        "severity": st.sampled_from(["page", "ticket"]),
        "budget_percent": st.floats(0.001, 100, allow_nan=False),
        "long_window_s": st.integers(60, 30 * 86400),
        "short_window_s": st.integers(60, 86400),
    }
)
window_strategy = st.one_of(
    st.builds(lambda days: {"type": "rolling", "days": days}, st.integers(1, 400)),
    st.builds(lambda unit: {"type": "calendar", "unit": unit}, st.sampled_from(["week", "month"])),
)


@settings(max_examples=200, deadline=None)
@given(
    objective=st.floats(0.1, 99.999, allow_nan=False),
    window=window_strategy,
    tiers=st.none() | st.lists(tier_strategy, min_size=1, max_size=4),
    bad_per_minute=st.integers(0, 50),
)
def test_no_tier_threshold_in_any_status_is_below_1x(objective, window, tiers, bad_per_minute):
    spec = make_spec(objective=objective, window=window, alert_tiers=tiers)
    n = 2 * 1440
    valid = np.full(n, 50, dtype=np.int64)
    good = valid - bad_per_minute
    result = evaluate_slo(spec, good, valid, now=datetime(2025, 3, 20, 12, 0, tzinfo=UTC))
    assert result.tiers, "every SLO has alert tiers"
    for tier in result.tiers:
        assert tier.burn_rate_threshold >= 1.0
    for tier in result.as_dict()["tiers"]:
        assert tier["burn_rate_threshold"] >= 1.0


@settings(max_examples=60, deadline=None)
@given(data=minute_data(max_rows=5), specs=st.data())
def test_batch_equals_single_slo_results(data, specs):
    good, valid, present, end_index = data
    n_rows = good.shape[0]
    spec_list = [specs.draw(spec_strategy) for _ in range(n_rows)]
    batch = evaluate_minutes(spec_list, good, valid, present, end_index=end_index)
    for row, spec in enumerate(spec_list):
        single = evaluate_slo(spec, good[row], valid[row], present[row], end_index=end_index)
        assert batch.slo(row).as_dict() == single.as_dict()
