"""Exact per-minute increases from raw counter values (pure numpy, no Django, no I/O).

Minute M (labelled by its start T, UTC, aligned to 60 s) owns the samples with timestamps in
(T, T + 60]. Each series is reduced to one value per minute: the last sample it has in that minute
(`last_over_time(sel[59999ms])` evaluated at T + 60 gives exactly that). From those values:

- **Increase.** A series' increase in minute M is `v[M] - v[M-1]`; both values are needed. Nothing is
  extrapolated (unlike PromQL `increase()`), so integer counters give integer increases.
- **Reset.** A drop (`v[M] < v[M-1]`) means the counter restarted from 0: the increase is `v[M]`.
  Anything counted between the previous sample and the restart is lost (Prometheus loses it too).
- **Gap.** A series with no sample in M while it has one within `lookback` minutes before *and* one
  within `lookback` minutes after M (or when what comes after M is not known yet) is in a gap: the
  minute is missing, never 0. The first minute after a gap has no left edge, so it is missing too.
- **Birth.** A series whose sample at M follows `lookback` minutes without any sample is counted from
  0 (increase = `v[M]`) only when it is known to be new: some *other* series of the same query has
  samples in both M-1 and M, which proves telemetry was flowing, so the newcomer was created (client
  libraries create labelled series on first use) since the previous scrape. Without such a witness
  (a Prometheus outage ends, or the first series ever) the minute is missing. A series back after a
  silence longer than `lookback` is also taken as new: exact when its gateway restarted, an overcount
  when the gateway kept counting while unscrapable (documented in docs/telemetry.md).
- **Death.** A series with no sample in the `lookback` minutes after its last one has gone (gateway
  removed, label set no longer used); from then on it contributes 0 to the sum.
- **Sum.** A minute of the sum over series is present only when at least one series has a sample in
  it and no series is missing in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import ArrayLike, NDArray

MINUTE_S = 60
DEFAULT_LOOKBACK_MINUTES = 10


def to_epoch_minute(moment: datetime) -> int:
    """Whole minutes since the epoch; `moment` must be timezone-aware and minute-aligned."""
    if moment.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    seconds = moment.timestamp()
    if seconds % MINUTE_S:
        raise ValueError(f"{moment.isoformat()} is not aligned to a minute")
    return int(seconds) // MINUTE_S


def from_epoch_minute(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * MINUTE_S, tz=UTC)


@dataclass(frozen=True, eq=False)
class MinuteCounts:
    """Per-minute event counts from `start_minute`; `values[i]` counts only where `present[i]`.

    Missing minutes hold 0 in `values` but must never be read as zero traffic: "no data is not good data".
    """

    start_minute: datetime
    values: NDArray[np.int64]
    present: NDArray[np.bool_]

    def __post_init__(self) -> None:
        if self.values.shape != self.present.shape or self.values.ndim != 1:
            raise ValueError("values and present must be 1-d arrays of the same length")
        to_epoch_minute(self.start_minute)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def end_minute(self) -> datetime:
        """The first minute after the last one (exclusive end)."""
        return self.start_minute + timedelta(minutes=len(self))

    def minutes(self) -> list[datetime]:
        return [self.start_minute + timedelta(minutes=i) for i in range(len(self))]

    def items(self) -> Iterator[tuple[datetime, int | None]]:
        """(minute, count) pairs; count is None for a missing minute."""
        for i, minute in enumerate(self.minutes()):
            yield minute, int(self.values[i]) if self.present[i] else None

    def equals(self, other: MinuteCounts) -> bool:
        return (
            self.start_minute == other.start_minute
            and np.array_equal(self.present, other.present)
            and np.array_equal(
                np.where(self.present, self.values, 0), np.where(other.present, other.values, 0)
            )
        )

    def concat(self, other: MinuteCounts) -> MinuteCounts:
        """Join with the counts that start where these end (resuming a pull)."""
        if other.start_minute != self.end_minute:
            raise ValueError("counts are not adjacent")
        return MinuteCounts(
            self.start_minute,
            np.concatenate([self.values, other.values]),
            np.concatenate([self.present, other.present]),
        )

    @classmethod
    def empty(cls, start_minute: datetime, n_minutes: int) -> MinuteCounts:
        return cls(start_minute, np.zeros(n_minutes, np.int64), np.zeros(n_minutes, np.bool_))


def series_increases(
    values: ArrayLike, present: ArrayLike, *, first_is_new: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Increases of one series from its per-minute last values (`present[i]`: a sample in minute i).

    Minute i is defined when the series has samples in i and i-1 (drop = reset: the increase is the new
    value). With `first_is_new`, the series' first sampled minute counts from 0 (increase = its value).
    """
    v = np.asarray(values, dtype=np.float64)
    has = np.asarray(present, dtype=np.bool_)
    prev_v = np.concatenate([[0.0], v[:-1]])
    prev_has = np.concatenate([[False], has[:-1]])
    inc = np.where(v >= prev_v, v - prev_v, v)
    defined = has & prev_has
    if first_is_new and has.any():
        first = int(np.argmax(has))
        inc[first] = v[first]
        defined[first] = True
    return np.where(defined, inc, 0.0), defined


def _window_counts(has: NDArray[np.bool_], lookback: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Samples per series in the `lookback` minutes before and after each minute (both exclusive of it)."""
    n_series, n = has.shape
    cs = np.zeros((n_series, n + 1), dtype=np.int64)
    np.cumsum(has, axis=1, out=cs[:, 1:])
    idx = np.arange(n)
    lo = np.maximum(idx - lookback, 0)
    hi = np.minimum(idx + lookback + 1, n)
    before = cs[:, idx] - cs[:, lo]
    after = cs[:, hi] - cs[:, idx + 1]
    return before, after


def sum_increases(
    values: ArrayLike,
    present: ArrayLike,
    *,
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES,
    known_minutes: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Per-minute increase of the sum of several series, following the module's rules.

    `values`/`present` are (series, minutes) arrays of per-minute last values. Minutes from
    `known_minutes` on are not known yet (the future, or past the fetched window): a series that goes
    quiet near that edge is treated as being in a gap, not as gone. Results are exact for minutes with
    at least `lookback_minutes + 1` minutes of data before them; callers fetch that much extra.
    """
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    has = np.atleast_2d(np.asarray(present, dtype=np.bool_))
    if v.shape != has.shape:
        raise ValueError("values and present must have the same shape")
    if lookback_minutes < 1:
        raise ValueError("lookback_minutes must be at least 1")
    n_series, n = has.shape
    if n_series == 0:
        return np.zeros(n), np.zeros(n, dtype=np.bool_)
    known = n if known_minutes is None else max(0, min(known_minutes, n))

    prev_v = np.concatenate([np.zeros((n_series, 1)), v[:, :-1]], axis=1)
    prev_has = np.concatenate([np.zeros((n_series, 1), dtype=np.bool_), has[:, :-1]], axis=1)
    continuing = has & prev_has
    inc = np.where(continuing, np.where(v >= prev_v, v - prev_v, v), 0.0)

    before, after = _window_counts(has, lookback_minutes)
    idx = np.arange(n)
    # a series continuing through i-1 and i is a witness that telemetry was flowing in minute i
    witnesses = continuing.sum(axis=0)
    arriving = has & ~prev_has
    born = arriving & (before == 0) & (idx >= lookback_minutes) & (witnesses > 0)
    inc = np.where(born, v, inc)
    returning = arriving & ~born
    future_unknown = idx + lookback_minutes >= known
    in_gap = ~has & (before > 0) & ((after > 0) | future_unknown)

    any_sample = has.any(axis=0)
    missing = (returning | in_gap).any(axis=0)
    ok = any_sample & ~missing & (idx < known)
    return np.where(ok, inc.sum(axis=0), 0.0), ok


def to_counts(
    start_minute: datetime, values: NDArray[np.float64], present: NDArray[np.bool_]
) -> MinuteCounts:
    """Event counts (integers) from float increases; Prometheus stores counters as float64."""
    return MinuteCounts(start_minute, np.rint(values).astype(np.int64), present.astype(np.bool_))
