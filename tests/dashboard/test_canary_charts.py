"""The release page's canary charts: canary against baseline per wave, with the limits the analysis
held each measurement against, built from stored canary measurements."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from routing.releases import canary
from web.canary_charts import canary_charts

T0 = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def _evidence(canary_p95: float, baseline_p95: float, canary_errors: float, minute: int) -> dict[str, Any]:
    """Evidence shaped as the rollout stores it: the pure analysis' checks plus both groups."""
    criteria = canary.Criteria()
    slo = canary.SloWindow("availability", 0.99, 1000, 1000)
    ours = canary.GroupStats(slos=[slo], requests=1000, errors=canary_errors, p95_ms=canary_p95)
    theirs = canary.GroupStats(slos=[slo], requests=1000, errors=2, p95_ms=baseline_p95)
    end = T0 + timedelta(minutes=minute)
    return {
        **canary.measure(ours, theirs, criteria).as_dict(),
        "window": {"start": (end - timedelta(minutes=5)).isoformat(), "end": end.isoformat()},
        "criteria": criteria.as_dict(),
        "canary": {"requests": 1000, "errors": canary_errors, "p95_ms": canary_p95},
        "baseline": {"requests": 1000, "errors": 2, "p95_ms": baseline_p95},
    }


def test_each_wave_gets_canary_baseline_and_limit_lines_from_its_measurements() -> None:
    rows = [
        ("canary:0", T0, _evidence(100, 100, 1, 5)),
        ("canary:0", T0, _evidence(120, 100, 9, 10)),
        ("wave:1", T0, {"checks": []}),  # not a canary measurement
        ("canary:1", T0, _evidence(90, 95, 0, 20)),
    ]
    waves = canary_charts(rows)
    assert [w["wave"] for w in waves] == [1, 2] and [w["measurements"] for w in waves] == [2, 1]
    p95, errors = waves[0]["charts"]
    lines = {trace["name"]: trace["y"] for trace in p95.figure["data"]}
    # the limit is the baseline's p95 plus 10%, as the analysis judged it
    assert lines == {"canary": [100, 120], "baseline": [100, 100], "limit (fails above)": [110.0, 110.0]}
    assert p95.figure["data"][0]["x"] == [
        (T0 + timedelta(minutes=5)).isoformat(),
        (T0 + timedelta(minutes=10)).isoformat(),
    ]
    ratios = {trace["name"]: trace["y"] for trace in errors.figure["data"]}
    assert ratios["canary"] == [0.001, 0.009] and ratios["baseline"] == [0.002, 0.002]
    assert ratios["limit (fails above)"] == [0.004, 0.004]  # 2 x the baseline's 0.2%
    assert "10% above the baseline" in waves[0]["caption"] and "2× the baseline" in waves[0]["caption"]
    # one measurement: drawn with a dot, and the page says there are too few points for a line
    assert waves[1]["charts"][0].too_few


def test_a_measurement_without_baseline_has_no_relative_points() -> None:
    evidence = _evidence(100, 100, 1, 5)
    evidence["baseline"] = None
    evidence["checks"] = [c for c in evidence["checks"] if c["name"] not in ("p95_latency", "error_ratio")]
    (wave,) = canary_charts([("canary:0", T0, evidence)])
    lines = {trace["name"]: trace["y"] for trace in wave["charts"][0].figure["data"]}
    assert lines["baseline"] == [None] and lines["limit (fails above)"] == [None] and lines["canary"] == [100]


@pytest.mark.django_db
def test_release_page_and_its_live_twin_show_the_canary_charts(page_for: Any, pending_release: Any) -> None:
    from routing.releases import gates
    from routing.releases.transitions import store_gate_results

    viewer = page_for("viewer")
    regions = json.loads(viewer.get(f"/releases/{pending_release.pk}/live/").content)["regions"]
    assert "No canary measurement yet" in regions["canary"]
    store_gate_results(
        pending_release,
        [gates.GateOutcome("canary", "pass", _evidence(100, 100, 1, 5))],
        stage="canary:0",
        now=T0,
    )
    page = viewer.get(f"/releases/{pending_release.pk}/").content.decode()
    regions = json.loads(viewer.get(f"/releases/{pending_release.pk}/live/").content)["regions"]
    for html in (page, regions["canary"]):
        assert 'data-chart="chart-canary-1-p95"' in html and 'id="chart-canary-1-errors"' in html
        assert "Wave 1: p95 latency, canary vs baseline" in html
