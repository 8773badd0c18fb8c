"""Pure canary analysis with plain numbers."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from routing.releases.canary import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    Criteria,
    GroupStats,
    SloWindow,
    burn_rate,
    histogram_p95,
    measure,
    overall,
)

CRITERIA = Criteria()


def group(good: float, valid: float, *, requests: float | None = None, errors: float = 0, p95: float = 40.0):
    return GroupStats(
        slos=[SloWindow("latency", 0.99, good, valid)],
        requests=valid if requests is None else requests,
        errors=errors,
        p95_ms=p95,
    )


def test_it_passes_a_canary_that_behaves_like_the_fleet():
    result = measure(group(995, 1000, errors=2), group(2990, 3000, errors=6), CRITERIA)
    assert result.verdict == PASS
    assert {c.name for c in result.checks} == {
        "canary_traffic",
        "burn_rate:latency",
        "p95_latency",
        "error_ratio",
    }


def test_it_fails_on_absolute_burn():
    result = measure(group(800, 1000), group(3000, 3000), CRITERIA)  # 20% bad at a 1% budget: burn 20
    check = next(c for c in result.checks if c.name == "burn_rate:latency")
    assert (
        result.verdict == FAIL and check.outcome == FAIL and check.value == 20.0 and check.threshold == 10.0
    )


def test_it_fails_when_p95_is_more_than_ten_percent_worse():
    assert measure(group(1000, 1000, p95=45), group(3000, 3000, p95=40), CRITERIA).verdict == FAIL
    assert measure(group(1000, 1000, p95=43.9), group(3000, 3000, p95=40), CRITERIA).verdict == PASS


def test_it_fails_when_the_error_ratio_more_than_doubles():
    assert measure(group(1000, 1000, errors=25), group(3000, 3000, errors=30), CRITERIA).verdict == FAIL
    assert measure(group(1000, 1000, errors=19), group(3000, 3000, errors=30), CRITERIA).verdict == PASS


def test_a_baseline_without_errors_does_not_make_one_error_infinitely_worse():
    assert measure(group(1000, 1000, errors=1), group(3000, 3000, errors=0), CRITERIA).verdict == PASS


def test_low_canary_traffic_is_inconclusive_never_pass_or_fail():
    result = measure(group(10, 50), group(3000, 3000), CRITERIA)
    assert result.verdict == INCONCLUSIVE
    assert measure(group(0, 0, requests=0), None, CRITERIA).verdict == INCONCLUSIVE


def test_without_a_baseline_absolute_criteria_still_decide_and_say_so():
    result = measure(group(1000, 1000), None, CRITERIA)
    assert result.verdict == PASS
    assert any(c.name == "relative" and c.outcome == "skipped" for c in result.checks)
    assert measure(group(500, 1000), None, CRITERIA).verdict == FAIL


def test_it_needs_consecutive_failures_before_failing():
    assert overall([FAIL], CRITERIA) == PASS
    assert overall([FAIL, PASS, FAIL], CRITERIA) == PASS
    assert overall([PASS, FAIL, FAIL], CRITERIA) == FAIL
    assert overall([PASS, INCONCLUSIVE], CRITERIA) == INCONCLUSIVE
    assert overall([], CRITERIA) == PASS


def test_burn_rate_is_undefined_without_events():
    assert burn_rate(0, 0, 0.99) is None
    assert math.isclose(burn_rate(990, 1000, 0.99), 1.0)
    assert burn_rate(1200, 1000, 0.99) == 0.0  # good above valid (counter reset) is capped


def test_histogram_p95_interpolates_like_prometheus():
    buckets = {0.1: 50.0, 0.2: 90.0, 0.5: 100.0, math.inf: 100.0}
    assert math.isclose(histogram_p95(buckets), 0.35)
    assert histogram_p95({}) is None and histogram_p95({math.inf: 0.0}) is None
    assert histogram_p95({0.1: 0.0, math.inf: 10.0}) == 0.1  # above the last finite bucket


@given(st.integers(100, 10_000), st.floats(0, 1), st.integers(100, 10_000), st.floats(0, 1))
def test_a_canary_no_worse_than_its_baseline_never_fails_relative_checks(
    valid, bad_ratio, base_valid, base_bad
):
    canary = GroupStats(slos=[], requests=valid, errors=round(valid * min(bad_ratio, base_bad)), p95_ms=50)
    baseline = GroupStats(slos=[], requests=base_valid, errors=round(base_valid * base_bad), p95_ms=50)
    result = measure(canary, baseline, CRITERIA)
    error_check = next(c for c in result.checks if c.name == "error_ratio")
    # equal or lower ratio (up to rounding) is always within 2x of max(baseline, floor)
    if canary.errors / canary.requests <= baseline.errors / baseline.requests + 1 / canary.requests:
        assert error_check.outcome == PASS or canary.errors / canary.requests > 2 * max(
            baseline.errors / baseline.requests, CRITERIA.error_ratio_floor
        )
