"""The pure core of the reports: periods, episodes, trends, consumers, cost and CSV."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slo.budget.cost import Prices
from slo.reports import compute, cost
from slo.reports.compute import AlertRow, SeriesTotal, SloTarget
from slo.reports.cost import CostRow

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def test_periods_follow_local_calendars_across_dst():
    # Europe/Paris moves to summer time on 2026-03-29: that week is an hour short.
    period, _ = compute.report_period(
        "week", "Europe/Paris", start=date(2026, 3, 23), now=datetime(2026, 4, 6, tzinfo=UTC)
    )
    assert period.start == datetime(2026, 3, 22, 23, tzinfo=UTC)
    assert period.end == datetime(2026, 3, 29, 22, tzinfo=UTC)
    assert period.minutes == 7 * 1440 - 60
    month, _ = compute.report_period(
        "month", "America/New_York", start=None, now=datetime(2026, 1, 10, tzinfo=UTC)
    )
    assert month.label == "2025-12" and month.start == datetime(2025, 12, 1, 5, tzinfo=UTC)
    assert month.previous_start == datetime(2025, 11, 1, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("unit", "start", "path"),
    [
        ("week", date(2026, 3, 3), "start"),
        ("month", date(2026, 3, 2), "start"),
        ("day", None, "period"),
    ],
)
def test_it_refuses_periods_that_do_not_start_a_calendar_unit(unit, start, path):
    period, problems = compute.report_period(unit, "UTC", start=start, now=datetime(2026, 6, 1, tzinfo=UTC))
    assert period is None and problems[0]["path"] == path


def row(state, minutes, key="k", severity="page"):
    return AlertRow(key, 1, "burn_rate", severity, state, T0 + timedelta(minutes=minutes))


def test_episodes_are_clipped_and_ongoing_ones_end_with_the_period():
    start, end = T0 + timedelta(minutes=100), T0 + timedelta(minutes=1000)
    events = [
        row("firing", 50),
        row("resolved", 130),
        row("firing", 500),
        row("resolved", 520),
        row("firing", 990),
        row("resolved", 1200),
        row("firing", 10, key="old"),
        row("resolved", 20, key="old"),
    ]
    episodes = compute.alert_episodes(events, start=start, end=end)
    assert [(e["duration_s"], e["started_before_period"], e["ongoing_at_end"]) for e in episodes] == [
        (1800.0, True, False),
        (1200.0, False, False),
        (600.0, False, True),
    ]


@given(st.lists(st.tuples(st.sampled_from(["firing", "resolved"]), st.integers(0, 2000)), max_size=40))
def test_episodes_never_overlap_and_stay_inside_the_period(raw):
    start, end = T0 + timedelta(minutes=300), T0 + timedelta(minutes=1500)
    episodes = compute.alert_episodes([row(s, m) for s, m in raw], start=start, end=end)
    assert sum(e["duration_s"] for e in episodes) <= (end - start).total_seconds()
    spans = sorted((e["start"], e["end"]) for e in episodes)
    for (_, first_end), (second_start, _) in zip(spans, spans[1:], strict=False):
        assert first_end <= second_start
    assert all(start.isoformat() <= e["start"] < e["end"] <= end.isoformat() for e in episodes)


def test_burn_trend_directions():
    assert compute.burn_trend(2.0, 1.0)["direction"] == "up"
    assert compute.burn_trend(0.5, 1.0)["direction"] == "down"
    assert compute.burn_trend(1.01, 1.0)["direction"] == "flat"
    assert compute.burn_trend(None, 1.0) == {
        "current": None,
        "previous": 1.0,
        "change": None,
        "direction": "unknown",
    }


def test_daily_points_list_every_local_day_and_leave_gaps_without_traffic():
    start = datetime(2026, 3, 1, 23, tzinfo=UTC)  # Monday 2026-03-02 in Paris
    days = [(date(2026, 3, 2), 190.0, 200.0), (date(2026, 3, 3), 50.0, 50.0)]
    points = compute.daily_points(
        days, time_zone="Europe/Paris", start=start, end=start + timedelta(days=3), error_budget_ratio=0.01
    )
    assert [d["day"] for d in points] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert points[0]["sli"] == 0.95 and points[0]["burn_rate"] == pytest.approx(5.0)
    assert points[1]["sli"] == 1.0 and points[2]["sli"] is None


def series(source, name, labels, value, tier="edge"):
    return SeriesTotal(source, tier, name, labels, value)


TOTALS = [
    series("gateway:1", "inference_requests_total", "outcome=ok,route=local", 900),
    series("gateway:1", "inference_requests_total", "outcome=error,route=local", 60),
    series("gateway:2", "inference_requests_total", "outcome=timeout,route=cache", 30),
    series("gateway:2", "inference_requests_total", "outcome=shed,route=cache", 500),
    series("gateway:2", "inference_requests_total", "outcome=ok,route=cache", 1000),
    series("gateway:1", "inference_request_duration_seconds_count", "outcome=ok,route=local", 900),
    series("gateway:1", "inference_request_duration_seconds_count", "outcome=timeout,route=local", 10),
    series("gateway:1", "inference_request_duration_seconds_bucket", "le=0.15,outcome=ok,route=local", 850),
    series("gateway:1", "inference_request_duration_seconds_bucket", "le=0.3,outcome=ok,route=local", 890),
    series("gateway:1", "inference_request_duration_seconds_bucket", "le=+Inf,outcome=ok,route=local", 900),
    series(
        "gateway:3", "inference_requests_total", "outcome=error,route=public_cloud", 5, tier="public_cloud"
    ),
]


def test_availability_consumers_by_route_gateway_and_region():
    cells = compute.bad_events_by_series(SloTarget(1, "availability", "edge", None), TOTALS)
    sources = {
        "gateway:1": {"name": "store-1", "region": "eu-west"},
        "gateway:2": {"name": "store-2", "region": "eu-west"},
    }
    out = compute.top_consumers(cells, sources=sources, error_budget_total=45.0)
    assert out["bad_events"] == 90  # shed requests are not valid; the public tier is another SLO's
    assert [(c["key"], c["bad_events"]) for c in out["gateway"]] == [("store-1", 60), ("store-2", 30)]
    assert out["route"][0] == {
        "key": "local",
        "bad_events": 60,
        "valid_events": 960,
        "share_of_bad": 60 / 90,
        "share_of_budget": 60 / 45,
    }
    assert out["region"] == [
        {
            "key": "eu-west",
            "bad_events": 90,
            "valid_events": 1990,
            "share_of_bad": 1.0,
            "share_of_budget": 2.0,
        }
    ]


def test_latency_consumers_count_answers_outside_the_threshold():
    cells = compute.bad_events_by_series(SloTarget(1, "latency", "edge", 0.15), TOTALS)
    assert cells == {("local", "gateway:1"): [60.0, 910.0]}  # 50 slow ok answers + 10 timeouts


def test_sla_against_the_promise():
    prices = Prices.model_validate(
        {"sla": {"edge": {"p95_ms": 200, "p99_ms": 250, "availability_percent": 99.0}}}
    )
    checks = compute.sla_section(TOTALS, prices, hours=168)
    edge = next(c for c in checks if c["tier"] == "edge")
    # upper bounds: 855 of 900 answers need the 0.3 s bucket; 891 are only known to be above it
    assert edge["measured_p95_ms"] == 300 and edge["measured_p99_ms"] is None
    assert edge["measured_availability_percent"] == pytest.approx(100 * 1900 / 1990)
    assert edge["met"] is False and len(edge["breaches"]) == 3
    assert next(c for c in checks if c["tier"] == "public_cloud")["met"] is None  # nothing promised


def test_cost_summary_per_1000_by_tier_and_per_cache_hit():
    hour = T0
    rows = [
        CostRow(
            "all",
            hour,
            1,
            1000,
            2.0,
            {"cost_per_cache_hit_usd": 0.001, "saved_per_hit_usd": 0.002, "net_saving_usd": 0.5},
        ),
        CostRow("local", hour, 1, 600, 1.2, {}),
        CostRow("cache", hour, 1, 300, 0.3, {}),
        CostRow("public_cloud", hour, 1, 100, 0.5, {}),
        CostRow("all", hour + timedelta(hours=1), 1, 0, 0.0, {"cost_per_cache_hit_usd": None}),
    ]
    out = cost.cost_summary(rows, period_hours=168)
    assert out["cost_per_1000_usd"] == pytest.approx(2.0)
    assert out["tiers"]["edge"]["cost_per_1000_usd"] == pytest.approx(1500 / 900)
    assert out["tiers"]["public_cloud"]["cost_per_1000_usd"] == pytest.approx(5.0)
    assert out["tiers"]["private_cloud"]["cost_per_1000_usd"] is None  # no traffic is not free
    assert out["cache_hits"] == pytest.approx(300) and out["cost_per_cache_hit_usd"] == pytest.approx(0.001)
    assert out["saved_per_hit_usd"] == pytest.approx(0.002) and out["hours_covered"] == 2


def test_no_cost_rollups_means_unknown_cost():
    out = cost.cost_summary([], period_hours=168)
    assert (
        out["cost_per_1000_usd"] is None
        and out["cost_per_cache_hit_usd"] is None
        and out["cache_hits"] is None
    )
