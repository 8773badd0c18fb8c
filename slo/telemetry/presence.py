"""Which SLO minutes are present: every source expected to report a minute did (pure numpy).

A minute is present when at least one source reported it with data, no source reported it as a
gap, and as many sources reported it as feeds were expected to (see `SliFeed`). Anything else is
missing: neither good nor bad ("no data is not good data").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

# A push feed stays expected this long after its last minute: a gateway that stops pushing leaves
# missing minutes for an hour, then is presumed gone (removed, re-registered) and stops counting.
PUSH_SILENCE_MINUTES = 60


def feed_end(mode: str, last_minute: int, push_silence_minutes: int = PUSH_SILENCE_MINUTES) -> float:
    """The first minute a feed is no longer expected (exclusive end); inf while a pull is enabled."""
    if mode == "pull":
        return np.inf
    if mode == "push":
        return last_minute + 1 + push_silence_minutes
    return last_minute + 1


def expected_feeds(
    feeds: Iterable[tuple[int, str, int, int]],
    row_of: dict[int, int],
    first: int,
    stop: int,
    push_silence_minutes: int = PUSH_SILENCE_MINUTES,
) -> np.ndarray:
    """How many feeds expect each (row, minute) of [first, stop). `feeds`: (slo_id, mode, first, last)."""
    out = np.zeros((len(row_of), max(stop - first, 0)), dtype=np.int32)
    for slo_id, mode, feed_first, feed_last in feeds:
        row = row_of.get(slo_id)
        if row is None:
            continue
        lo = max(feed_first, first) - first
        end = feed_end(mode, feed_last, push_silence_minutes)
        hi = int(min(end, stop)) - first
        if hi > lo:
            out[row, lo:hi] += 1
    return out


def present_mask(n_present: np.ndarray, n_gaps: np.ndarray, n_expected: np.ndarray) -> np.ndarray:
    """Present where some source reported data, none reported a gap, and all expected ones reported."""
    return (n_present > 0) & (n_gaps == 0) & (n_present >= n_expected)


def hourly(values: np.ndarray, first_minute: int, hours: Sequence[int]) -> np.ndarray:
    """Sums over whole hours of a (rows, minutes) array that starts at `first_minute` (hour-aligned)."""
    rows, n = values.shape
    first_hour = first_minute // 60
    shaped = values[:, : (n // 60) * 60].reshape(rows, n // 60, 60).sum(axis=2)
    return shaped[:, [h - first_hour for h in hours]]
