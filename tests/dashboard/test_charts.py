"""controlplane/lib/charts.py: pure helpers (no database)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from controlplane.lib.charts import (
    Chart,
    duration,
    line_figure,
    percent,
    ratio,
    slo_state,
)
from controlplane.lib.histograms import histogram_quantile

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)


def state(**kw: object) -> str:
    base = {
        "evaluated_at": NOW,
        "data_quality": "ok",
        "alert_state": "none",
        "remaining": 0.5,
        "now": NOW,
        "stale_after_s": 300,
    }
    base.update(kw)
    return slo_state(**base)  # type: ignore[arg-type]


def test_it_never_calls_missing_data_ok() -> None:
    assert state() == "ok"
    assert state(evaluated_at=None) == "not_evaluated"
    assert state(evaluated_at=NOW - timedelta(minutes=10)) == "stale"
    assert state(data_quality="no_data", remaining=None) == "no_data"
    assert state(alert_state="page") == "page"
    assert state(remaining=-0.1) == "exhausted"
    assert state(alert_state="unknown") == "unknown"


def test_it_formats_missing_numbers_as_a_dash() -> None:
    assert percent(None) == ratio(None) == duration(None) == "—"
    assert percent(float("nan")) == "—"
    assert percent(0.99512) == "99.512%"
    assert ratio(14.4) == "14.40×"
    assert duration(95) == "1m 35s" and duration(90000) == "1d 1h"


def test_it_interpolates_quantiles_like_prometheus() -> None:
    buckets = {0.1: 50.0, 0.2: 100.0, math.inf: 100.0}
    assert histogram_quantile(0.5, buckets) == 0.1
    assert histogram_quantile(0.75, buckets) == 0.15000000000000002
    assert histogram_quantile(0.95, {}) is None
    assert histogram_quantile(0.95, {0.1: 0.0, math.inf: 0.0}) is None
    # in the +Inf bucket: only known to be above the highest finite bound
    assert histogram_quantile(0.99, {0.1: 10.0, math.inf: 100.0}) == 0.1


@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=8), st.floats(0.01, 0.99))
def test_quantiles_stay_within_the_bucket_bounds(increments: list[int], q: float) -> None:
    bounds = [0.05 * (i + 1) for i in range(len(increments))]
    cumulative, total = {}, 0.0
    for bound, inc in zip(bounds, increments, strict=True):
        total += inc
        cumulative[bound] = total
    cumulative[math.inf] = total
    value = histogram_quantile(q, cumulative)
    if total == 0:
        assert value is None
    else:
        assert value is not None and 0 <= value <= bounds[-1]


def test_it_turns_non_finite_values_into_gaps_and_knows_an_empty_chart() -> None:
    figure = line_figure(
        title="t",
        series=[{"name": "a", "x": [1, 2], "y": [float("inf"), None]}],
        y_title="y",
        thresholds=[{"value": 1, "label": "one"}],
    )
    assert figure["data"][0]["y"] == [None, None]
    assert figure["layout"]["annotations"][0]["text"] == "one"
    assert not Chart("c", figure).has_data
    assert Chart(
        "c", line_figure(title="t", series=[{"name": "a", "x": [1], "y": [0.0]}], y_title="y")
    ).has_data
