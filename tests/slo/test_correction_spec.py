"""The correction document's minutes, pure: occurrences of a recurring window in a zone with DST
against a brute-force wall-clock check of every minute (hypothesis picks the ranges)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from slo.corrections.spec import parse_correction_spec

EPOCH_2026 = datetime(2026, 1, 1, tzinfo=UTC)


def spec_for(rrule: str, zone: str, start: str, minutes: int, end: str | None = None):  # noqa: ANN201
    doc = {
        "reason": "maintenance",
        "scope": {"tier": "edge"},
        "start": start,
        "recurrence": {"rrule": rrule, "timezone": zone, "duration_minutes": minutes},
    }
    if end:
        doc["end"] = end
    spec, problems = parse_correction_spec(doc)
    assert spec is not None, problems
    return spec


def brute(lo: datetime, hi: datetime, zone: str, weekday: int | None, h0: int, h1: int) -> set[int]:
    """Every minute whose wall-clock time in `zone` is on `weekday` (None: any day) within [h0, h1)."""
    tz = ZoneInfo(zone)
    out = set()
    m = lo
    while m < hi:
        local = m.astimezone(tz)
        if (weekday is None or local.weekday() == weekday) and h0 <= local.hour < h1:
            out.add(int(m.timestamp()) // 60)
        m += timedelta(minutes=1)
    return out


def minutes_of(ranges: list[tuple[int, int]]) -> set[int]:
    return {m for lo, hi in ranges for m in range(lo, hi)}


@settings(max_examples=40, deadline=None)
@given(day=st.integers(0, 364), span_days=st.integers(1, 9))
def test_sundays_two_to_four_in_berlin_match_the_wall_clock_all_year(day: int, span_days: int) -> None:
    spec = spec_for("FREQ=WEEKLY;BYDAY=SU", "Europe/Berlin", "2025-12-28T02:00:00+01:00", 120)
    lo = EPOCH_2026 + timedelta(days=day, hours=day % 24)
    hi = lo + timedelta(days=span_days)
    assert minutes_of(spec.excluded_minutes(lo, hi)) == brute(lo, hi, "Europe/Berlin", 6, 2, 4)


@settings(max_examples=25, deadline=None)
@given(day=st.integers(0, 364))
def test_a_daily_night_window_in_new_york_matches_the_wall_clock(day: int) -> None:
    spec = spec_for("FREQ=DAILY", "America/New_York", "2025-12-31T01:00:00-05:00", 180)
    lo = EPOCH_2026 + timedelta(days=day)
    hi = lo + timedelta(days=3)
    assert minutes_of(spec.excluded_minutes(lo, hi)) == brute(lo, hi, "America/New_York", None, 1, 4)


def test_the_dst_sundays_of_2026_explicitly() -> None:
    spec = spec_for("FREQ=WEEKLY;BYDAY=SU", "Europe/Berlin", "2026-03-01T02:00:00+01:00", 120)
    u = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    assert list(spec.occurrences(u(2026, 3, 28), u(2026, 3, 30))) == [(u(2026, 3, 29, 1), u(2026, 3, 29, 2))]
    assert list(spec.occurrences(u(2026, 10, 24), u(2026, 10, 26))) == [
        (u(2026, 10, 25, 0), u(2026, 10, 25, 3))
    ]
    assert list(spec.occurrences(u(2026, 3, 21), u(2026, 3, 23))) == [(u(2026, 3, 22, 1), u(2026, 3, 22, 3))]
    assert list(spec.occurrences(u(2026, 2, 1), u(2026, 3, 1))) == []  # before its start


def test_end_is_the_last_start_and_one_off_ranges_clip() -> None:
    spec = spec_for("FREQ=DAILY", "UTC", "2026-05-01T00:00:00Z", 30, end="2026-05-03T00:00:00Z")
    u = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    assert [a.day for a, _ in spec.occurrences(u(2026, 4, 1), u(2026, 6, 1))] == [1, 2, 3]
    one, problems = parse_correction_spec(
        {
            "reason": "x",
            "scope": {"service": "s"},
            "start": "2026-05-01T00:00:00Z",
            "end": "2026-05-01T01:00:00Z",
        }
    )
    assert one is not None and not problems
    lo = int(u(2026, 5, 1, 0, 30).timestamp()) // 60
    assert one.excluded_minutes(u(2026, 5, 1, 0, 30), u(2026, 6, 1)) == [(lo, lo + 30)]
