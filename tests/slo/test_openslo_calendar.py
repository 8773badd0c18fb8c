"""OpenSLO calendar windows: startTime is honoured (periods start there), and written back as given."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from slo.engine.evaluate import period_minutes
from slo.engine.windows import calendar_period_bounds
from slo.openslo import LABEL_CALENDAR_START, export_openslo, import_openslo
from slo.spec import parse_slo_spec

SHAPES = Path(__file__).resolve().parents[1] / "fixtures" / "openslo" / "shapes"


def calendar_slo(duration: str, start: str, zone: str) -> str:
    text = (SHAPES / "calendar-timeslices.yaml").read_text(encoding="utf-8")
    return (
        text.replace("duration: 1m", f"duration: {duration}")
        .replace("startTime: 2023-03-01 06:00:00", f"startTime: {start}")
        .replace("timeZone: Europe/Berlin", f"timeZone: {zone}")
    )


def test_a_month_starting_on_the_first_at_six_runs_from_six_to_six() -> None:
    spec = import_openslo(calendar_slo("1M", "2023-03-01 06:00:00", "Europe/Berlin")).slos[0]

    # 05:30 local on 1 December is still November's period
    minutes, whole, bounds = period_minutes(spec, datetime(2026, 12, 1, 4, 30, tzinfo=UTC))
    assert bounds is not None
    assert [b.isoformat() for b in bounds] == ["2026-11-01T06:00:00+01:00", "2026-12-01T06:00:00+01:00"]
    assert whole == 30 * 1440 and minutes == whole - 30
    # an hour later it is December's
    _, _, bounds = period_minutes(spec, datetime(2026, 12, 1, 5, 30, tzinfo=UTC))
    assert bounds is not None and bounds[0].isoformat() == "2026-12-01T06:00:00+01:00"


def test_a_week_starting_saturday_noon_keeps_local_noon_across_a_dst_change() -> None:
    start, end = calendar_period_bounds(
        "week", "America/New_York", datetime(2026, 11, 4, tzinfo=UTC), "2022-01-01 12:00:00"
    )
    assert (start.isoformat(), end.isoformat()) == ("2026-10-31T12:00:00-04:00", "2026-11-07T12:00:00-05:00")
    assert (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() == 7 * 86400 + 3600


def test_a_month_anchored_on_the_31st_ends_on_shorter_months_last_day() -> None:
    start, end = calendar_period_bounds(
        "month", "UTC", datetime(2026, 3, 15, tzinfo=UTC), "2024-01-31 00:00:00"
    )
    assert (start.date().isoformat(), end.date().isoformat()) == ("2026-02-28", "2026-03-31")


@pytest.mark.parametrize(
    ("start", "window_start", "label"),
    [
        ("2022-01-01 12:00:00", "2022-01-01 12:00:00", None),  # a Saturday noon: applied
        ("2022-01-03 00:00:00", None, "2022-01-03 00:00:00"),  # a Monday midnight: our default weeks
        ("2022-01-01T12:00:00", "2022-01-01 12:00:00", "2022-01-01T12:00:00"),  # another spelling
    ],
)
def test_the_start_is_applied_and_written_back_as_given(
    start: str, window_start: str | None, label: str | None
) -> None:
    result = import_openslo(calendar_slo("1w", start, "America/New_York"))
    assert result.problems == []
    spec = result.slos[0]
    assert spec.window.start == window_start
    assert spec.labels.get(LABEL_CALENDAR_START) == label
    assert "startTime" not in " ".join(p.path for p in result.unsupported)  # nothing about it is dropped

    document = next(yaml.safe_load_all(export_openslo(result.slos[:1])))
    assert document["spec"]["timeWindow"][0]["calendar"] == {
        "startTime": start,
        "timeZone": "America/New_York",
    }


def test_a_start_that_is_not_a_time_is_refused_with_its_path() -> None:
    result = import_openslo(calendar_slo("1w", "next tuesday", "UTC"))
    assert [p.path for p in result.problems] == ["documents[0].spec.timeWindow[0].calendar.startTime"]
    assert result.slos == []


def test_the_spec_checks_a_start_given_through_the_api() -> None:
    doc = {
        "name": "a",
        "service": "s",
        "objective": 99,
        "sli": {"kind": "availability"},
        "window": {"type": "calendar", "unit": "week", "start": "2022-01-01 12:00:00+02:00"},
    }
    spec, problems = parse_slo_spec(doc)
    assert spec is None and "no UTC offset" in problems[0].message
    spec, problems = parse_slo_spec({**doc, "window": {**doc["window"], "start": "2022-01-01 12:00:00"}})
    assert spec is not None and problems == []
