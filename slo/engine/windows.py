"""Windows: burn-rate window lengths, calendar periods and O(n) window sums.

Everything here works on per-minute arrays. A minute is one column; `end_index` is exclusive, so
the window of w minutes ending at `end_index` is columns `[end_index - w, end_index)`, the same
convention as Python slices. Minutes before column 0 are not known and count as missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

MINUTE_S = 60
HOUR_MIN = 60
DAY_MIN = 24 * HOUR_MIN

# The windows of the SRE workbook's multi-window multi-burn-rate alerts (table 5-8): long windows
# 1h, 6h, 1d, 3d and their short windows (1/12 of the long one): 5m, 30m, 2h, 6h.
BURN_WINDOWS_MIN: dict[str, int] = {
    "5m": 5,
    "30m": 30,
    "1h": HOUR_MIN,
    "2h": 2 * HOUR_MIN,
    "6h": 6 * HOUR_MIN,
    "1d": DAY_MIN,
    "3d": 3 * DAY_MIN,
}

# Rows of a 2-D batch are summed in blocks of this many SLOs so the int64 cumulative sums of a
# block stay small (512 x 3 days of minutes x 8 bytes = 18 MB per array) whatever the batch size.
CHUNK_ROWS = 512


def window_name(minutes: int) -> str:
    """The Prometheus-style name of a window: 5m, 1h, 3d, 90m."""
    if minutes > 0 and minutes % DAY_MIN == 0:
        return f"{minutes // DAY_MIN}d"
    if minutes > 0 and minutes % HOUR_MIN == 0:
        return f"{minutes // HOUR_MIN}h"
    return f"{minutes}m"


def calendar_period_bounds(
    unit: Literal["week", "month"], tz_name: str, now: datetime, start: str | None = None
) -> tuple[datetime, datetime]:
    """The calendar week or month containing `now`, as `[start, end)` in the zone `tz_name`.

    Periods start at local midnight; weeks start on Monday (ISO 8601). With `start` (a local wall
    time, e.g. "2022-01-01 12:00:00", OpenSLO's calendar startTime) periods start there instead:
    every 7 days from it, or each month on its day (the month's last day when shorter) at its time.
    The bounds are aware datetimes in `tz_name`. Subtract them only after `.astimezone(UTC)`: Python
    subtracts two datetimes that share a tzinfo as wall times, which is an hour off across a DST change.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    tz = ZoneInfo(tz_name)
    if start is not None:
        return _anchored_bounds(unit, tz, now, datetime.fromisoformat(start).replace(tzinfo=None))
    today = now.astimezone(tz).date()
    if unit == "week":
        start_day = today - timedelta(days=today.weekday())
        end_day = start_day + timedelta(days=7)
    elif unit == "month":
        start_day = today.replace(day=1)
        if start_day.month == 12:
            end_day = start_day.replace(year=start_day.year + 1, month=1)
        else:
            end_day = start_day.replace(month=start_day.month + 1)
    else:
        raise ValueError(f"unknown calendar unit {unit!r}")
    return _local_midnight(start_day, tz), _local_midnight(end_day, tz)


def _anchored_bounds(
    unit: Literal["week", "month"], tz: ZoneInfo, now: datetime, anchor: datetime
) -> tuple[datetime, datetime]:
    wall = now.astimezone(tz).replace(tzinfo=None)
    if unit == "week":
        begin = anchor + timedelta(days=7 * ((wall - anchor) // timedelta(days=7)))
        end = begin + timedelta(days=7)
    elif unit == "month":
        year, month = wall.year, wall.month
        begin = _month_anchor(anchor, year, month)
        if begin > wall:
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
            begin = _month_anchor(anchor, year, month)
        end = _month_anchor(anchor, year + 1, 1) if month == 12 else _month_anchor(anchor, year, month + 1)
    else:
        raise ValueError(f"unknown calendar unit {unit!r}")
    return _local_wall(begin, tz), _local_wall(end, tz)


def _month_anchor(anchor: datetime, year: int, month: int) -> datetime:
    last = (date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)) - timedelta(days=1)
    return anchor.replace(year=year, month=month, day=min(anchor.day, last.day))


def _local_wall(wall: datetime, tz: ZoneInfo) -> datetime:
    # as _local_midnight: a wall time skipped by DST maps to the first real instant after the jump
    return wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # Midnight can be skipped by a DST jump (America/Santiago moves 00:00 -> 01:00). With fold=0
    # zoneinfo maps a skipped wall time with the offset from before the jump, which is exactly the
    # instant of the jump: the first real instant of the day. The UTC round trip then gives that
    # instant its real local reading (01:00). An ambiguous midnight takes its first occurrence.
    naive = datetime(day.year, day.month, day.day)
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


def minutes_between(start: datetime, end: datetime) -> int:
    """Whole minutes from `start` to `end` (aware datetimes), counted in UTC so DST cannot skew it."""
    seconds = (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()
    return int(seconds // MINUTE_S)


@dataclass(frozen=True)
class WindowSums:
    """Totals per window, each array shaped `(n_windows,)` or `(n_slos, n_windows)`.

    `good` and `valid` are in budget units: events for occurrences budgeting, minutes for
    timeslices. `valid_events` is the raw count of valid events (the traffic), used for the
    data-quality check against `min_valid_events`; it equals `valid` for occurrences.
    `missing_minutes` counts minutes of the window without telemetry (neither good nor bad).
    """

    good: np.ndarray
    valid: np.ndarray
    valid_events: np.ndarray
    missing_minutes: np.ndarray

    @classmethod
    def from_array(
        cls,
        sums: np.ndarray,
        missing_minutes: np.ndarray | None = None,
        valid_events: np.ndarray | None = None,
    ) -> WindowSums:
        """Wrap pre-aggregated sums shaped `(n_slos, n_windows, 2)` (good, valid).

        This is the entry for sums the caller already has (hourly rollups plus minute buckets in
        SQL, Prometheus recording rules). Good is capped at valid per window: a counter reset or
        `increase()` extrapolation must not produce an SLI above 1 or a negative bad count.
        """
        sums = np.asarray(sums, dtype=np.float64)
        if sums.ndim != 3 or sums.shape[2] != 2:
            raise ValueError(f"sums must be shaped (n_slos, n_windows, 2), got {sums.shape}")
        valid = sums[:, :, 1]
        good = np.minimum(sums[:, :, 0], valid)
        if missing_minutes is None:
            missing_minutes = np.zeros(valid.shape, dtype=np.int64)
        if valid_events is None:
            valid_events = valid
        return cls(good, valid, np.asarray(valid_events, dtype=np.float64), np.asarray(missing_minutes))


def window_sums(
    good: np.ndarray,
    valid: np.ndarray,
    present: np.ndarray | None,
    end_index: int,
    windows_minutes: Sequence[int] | np.ndarray,
    *,
    valid_events: np.ndarray | None = None,
) -> WindowSums:
    """Sum good, valid and missing minutes over every window ending at `end_index` (exclusive).

    `good`/`valid` are per-minute arrays shaped `(n_minutes,)` or `(n_slos, n_minutes)`; `present`
    is the same shape, False where no telemetry arrived (None: all present). Missing minutes count
    as neither good nor bad. `windows_minutes` is a sequence shared by all rows, or an int array
    `(n_slos, n_windows)` when windows differ per row (the SLO period). One cumulative sum per
    array makes every window O(1), so all windows together cost O(n_minutes).
    """
    good = np.asarray(good)
    valid = np.asarray(valid)
    one_dim = good.ndim == 1
    if one_dim:
        good, valid = good[None, :], valid[None, :]
        present = None if present is None else np.asarray(present)[None, :]
        valid_events = None if valid_events is None else np.asarray(valid_events)[None, :]
    if good.shape != valid.shape or good.ndim != 2:
        raise ValueError("good and valid must have the same 1-D or 2-D shape")
    n_rows, n_minutes = good.shape
    if not 0 <= end_index <= n_minutes:
        raise ValueError(f"end_index {end_index} outside 0..{n_minutes}")
    windows = np.broadcast_to(
        np.asarray(windows_minutes, dtype=np.int64), (n_rows, np.shape(windows_minutes)[-1])
    )
    if (windows < 0).any():
        raise ValueError("windows must not be negative")

    # Only the longest window's minutes matter; slicing first keeps the cumulative sums short.
    first = max(0, end_index - int(windows.max(initial=0)))
    span = end_index - first
    out_good = np.empty(windows.shape, dtype=np.float64)
    out_valid = np.empty(windows.shape, dtype=np.float64)
    out_events = np.empty(windows.shape, dtype=np.float64)
    out_missing = np.empty(windows.shape, dtype=np.int64)
    for lo in range(0, n_rows, CHUNK_ROWS):
        hi = min(lo + CHUNK_ROWS, n_rows)
        rows = slice(lo, hi)
        block_present = (
            np.ones((hi - lo, span), dtype=bool)
            if present is None
            else np.asarray(present[rows, first:end_index], dtype=bool)
        )
        block_valid = np.where(block_present, valid[rows, first:end_index], 0)
        # Cap good at valid minute by minute: a bad minute elsewhere must not be hidden by an
        # over-counted one (counter resets, increase() extrapolation).
        block_good = np.where(
            block_present, np.minimum(good[rows, first:end_index], valid[rows, first:end_index]), 0
        )
        block_events = (
            block_valid
            if valid_events is None
            else np.where(block_present, valid_events[rows, first:end_index], 0)
        )
        # Window start columns relative to `first`, clipped at the first known minute.
        block_windows = windows[rows]
        starts = np.clip(span - block_windows, 0, span)
        for values, out in ((block_good, out_good), (block_valid, out_valid), (block_events, out_events)):
            cum = _cumsum0(values)
            out[rows] = cum[:, span : span + 1] - np.take_along_axis(cum, starts, axis=1)
        cum_present = _cumsum0(block_present.astype(np.int32))
        present_in_window = cum_present[:, span : span + 1] - np.take_along_axis(cum_present, starts, axis=1)
        # Minutes before column 0 are unknown, so they are missing too.
        out_missing[rows] = block_windows - present_in_window
    if one_dim:
        return WindowSums(out_good[0], out_valid[0], out_events[0], out_missing[0])
    return WindowSums(out_good, out_valid, out_events, out_missing)


def _cumsum0(values: np.ndarray) -> np.ndarray:
    """Cumulative sum along the last axis with a leading 0 column (sum of [a, b) = c[b] - c[a])."""
    dtype = np.float64 if np.issubdtype(values.dtype, np.floating) else np.int64
    cum = np.zeros((values.shape[0], values.shape[1] + 1), dtype=dtype)
    np.cumsum(values, axis=1, dtype=dtype, out=cum[:, 1:])
    return cum


def window_sums_with_rollups(
    minute_good: np.ndarray,
    minute_valid: np.ndarray,
    minute_present: np.ndarray | None,
    hourly_good: np.ndarray,
    hourly_valid: np.ndarray,
    hourly_present_minutes: np.ndarray,
    windows_minutes: Sequence[int] | np.ndarray,
) -> WindowSums:
    """Window sums from recent minute buckets plus older hourly rollups (how long windows scale).

    Layout, per row: the minute arrays `(n_slos, n_minutes)` end now (their last column is the
    last complete minute) and their first column starts on an hour boundary; the hourly arrays
    `(n_slos, n_hours)` are the whole hours just before it, with `hourly_present_minutes` the number
    of minutes (0..60) of each hour that had telemetry. A window that reaches back past the minute
    arrays takes whole hours from the rollups; the part of the oldest hour that the window covers
    cannot be split out of its rollup, so those minutes are reported as missing rather than
    guessed (at most 59 minutes, e.g. 0.15% of a 28-day window).
    """
    minute_good = np.atleast_2d(minute_good)
    n_rows, n_minutes = minute_good.shape
    hourly_good = np.atleast_2d(hourly_good)
    n_hours = hourly_good.shape[1]
    windows = np.broadcast_to(
        np.asarray(windows_minutes, dtype=np.int64), (n_rows, np.shape(windows_minutes)[-1])
    )

    in_minutes = np.minimum(windows, n_minutes)
    recent = window_sums(
        minute_good,
        np.atleast_2d(minute_valid),
        None if minute_present is None else np.atleast_2d(minute_present),
        n_minutes,
        in_minutes,
    )
    older_minutes = windows - in_minutes
    whole_hours = np.minimum(older_minutes // HOUR_MIN, n_hours)
    # The same O(n) cumulative sums, with an hour per column and windows counted in hours. The
    # present-minutes counts ride along as the "events" array, so they are summed the same way.
    older = window_sums(
        hourly_good,
        np.atleast_2d(hourly_valid),
        None,
        n_hours,
        whole_hours,
        valid_events=np.atleast_2d(hourly_present_minutes),
    )
    older_good, older_valid, older_present = older.good, older.valid, older.valid_events.astype(np.int64)
    # Unreadable minutes: the split oldest hour, anything older than the rollups, and minutes of
    # the whole hours that had no telemetry.
    older_missing = (older_minutes - whole_hours * HOUR_MIN) + (whole_hours * HOUR_MIN - older_present)
    return WindowSums(
        good=recent.good + older_good,
        valid=recent.valid + older_valid,
        valid_events=recent.valid_events + older_valid,
        missing_minutes=recent.missing_minutes + older_missing.astype(np.int64),
    )


def budget_units(
    good: np.ndarray,
    valid: np.ndarray,
    present: np.ndarray | None,
    method: str,
    timeslice_target: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per-minute (good, valid, valid_events) in the units the budget is counted in.

    - occurrences: events; returned unchanged (valid_events None: same as valid).
    - timeslices: a minute with traffic is one valid slice, and a good one when its SLI
      (good/valid) reaches `timeslice_target`. Minutes without traffic are not slices.
    - ratio_timeslices: valid slices as above, good = that minute's SLI, so the SLI over a window
      is the mean of per-minute ratios.
    Missing minutes are never slices. Rollups for timeslice SLOs must store these units.
    """
    good = np.asarray(good)
    valid = np.asarray(valid)
    if method == "occurrences":
        return good, valid, None
    present_mask = np.ones(valid.shape, dtype=bool) if present is None else np.asarray(present, dtype=bool)
    has_traffic = present_mask & (valid > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(has_traffic, np.minimum(good, valid) / np.where(has_traffic, valid, 1), 0.0)
    if method == "timeslices":
        if timeslice_target is None:
            raise ValueError("timeslices budgeting needs timeslice_target")
        slice_good = (has_traffic & (ratio >= timeslice_target)).astype(np.float64)
    elif method == "ratio_timeslices":
        slice_good = ratio
    else:
        raise ValueError(f"unknown budgeting method {method!r}")
    events = np.where(present_mask, valid, 0)
    return slice_good, has_traffic.astype(np.float64), events
