"""Reads of stored telemetry, numpy-friendly, for the budget engine, charts and debugging.

`sli_minutes` / `sli_hours` sum over sources and apply the coverage rule (docs/telemetry.md,
"Storage and missing data"): a minute is present only if every source expected to report it did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from django.db import connection

from slo.models.telemetry import SeriesMinute, SliFeed, SliHour, SliMinute
from slo.telemetry.presence import expected_feeds, present_mask

MINUTE_S = 60
HOUR_S = 3600
_ID_CHUNK = 10_000


@dataclass(frozen=True)
class SliMinutes:
    """Per-minute sums over sources, rows in the order of `slo_ids`, columns from `start`.

    `good`/`valid` are int64 and hold 0 where `present` is False: a missing minute is neither good
    nor bad and must never be read as zero traffic.
    """

    slo_ids: list[int]
    start: datetime
    good: np.ndarray
    valid: np.ndarray
    present: np.ndarray

    @property
    def n_minutes(self) -> int:
        return int(self.good.shape[1])

    def minutes(self) -> list[datetime]:
        return [self.start + timedelta(minutes=i) for i in range(self.n_minutes)]


@dataclass(frozen=True)
class SliHours:
    """Hourly rollups: sums over the present minutes of each hour (good capped at valid per
    minute) and `present_minutes` (0..60), rows in the order of `slo_ids`, columns from `start`."""

    slo_ids: list[int]
    start: datetime
    good: np.ndarray
    valid: np.ndarray
    present_minutes: np.ndarray


def epoch_minute_floor(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return int(moment.timestamp() // MINUTE_S)


def minute_datetime(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * MINUTE_S, tz=UTC)


def sli_minutes(slo_ids: Sequence[int], start: datetime, end: datetime) -> SliMinutes:
    """Good, valid and the present mask per SLO and minute in [start, end), both floored to minutes."""
    first, stop = epoch_minute_floor(start), epoch_minute_floor(end)
    good, valid, present = minute_arrays(list(slo_ids), first, max(stop, first))
    return SliMinutes(list(slo_ids), minute_datetime(first), good, valid, present)


def sli_hours(slo_ids: Sequence[int], start: datetime, end: datetime) -> SliHours:
    """Hourly rollups per SLO in [start, end), both floored to whole hours. Hours without a rollup
    row have no telemetry (present_minutes 0)."""
    first = int(start.timestamp() // HOUR_S)
    stop = max(int(end.timestamp() // HOUR_S), first)
    ids = list(slo_ids)
    shape = (len(ids), stop - first)
    good = np.zeros(shape, dtype=np.int64)
    valid = np.zeros(shape, dtype=np.int64)
    present = np.zeros(shape, dtype=np.int64)
    row_of = {slo_id: row for row, slo_id in enumerate(ids)}
    table = SliHour._meta.db_table
    for chunk in _chunks(ids):
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT slo_id, hour, good, valid, present_minutes FROM {table} "
                f"WHERE slo_id IN ({_marks(chunk)}) AND hour >= %s AND hour < %s",
                [*chunk, first, stop],
            )
            rows = cursor.fetchall()
        if rows:
            data = np.array(rows, dtype=np.int64)
            r = np.array([row_of[i] for i in data[:, 0]])
            col = data[:, 1] - first
            good[r, col], valid[r, col], present[r, col] = data[:, 2], data[:, 3], data[:, 4]
    return SliHours(ids, datetime.fromtimestamp(first * HOUR_S, tz=UTC), good, valid, present)


def minute_arrays(slo_ids: list[int], first: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(good, valid, present) shaped (len(slo_ids), stop - first) for epoch minutes [first, stop)."""
    n = stop - first
    shape = (len(slo_ids), n)
    good = np.zeros(shape, dtype=np.int64)
    valid = np.zeros(shape, dtype=np.int64)
    n_present = np.zeros(shape, dtype=np.int32)
    n_gaps = np.zeros(shape, dtype=np.int32)
    row_of = {slo_id: row for row, slo_id in enumerate(slo_ids)}
    if n <= 0 or not slo_ids:
        return good, valid, np.zeros(shape, dtype=bool)
    table = SliMinute._meta.db_table
    feeds: list[tuple[int, str, int, int]] = []
    for chunk in _chunks(slo_ids):
        with connection.cursor() as cursor:
            # One row per (SLO, minute): sums over sources of the rows with data, and how many
            # sources reported data or a gap. Booleans are 0/1 on SQLite, so CASE works on both.
            cursor.execute(
                "SELECT slo_id, minute, "
                "SUM(CASE WHEN present THEN good ELSE 0 END), SUM(CASE WHEN present THEN valid ELSE 0 END), "
                "SUM(CASE WHEN present THEN 1 ELSE 0 END), SUM(CASE WHEN present THEN 0 ELSE 1 END) "
                f"FROM {table} WHERE slo_id IN ({_marks(chunk)}) AND minute >= %s AND minute < %s "
                "GROUP BY slo_id, minute",
                [*chunk, first, stop],
            )
            rows = cursor.fetchall()
        if rows:
            data = np.array(rows, dtype=np.int64)
            r = np.array([row_of[i] for i in data[:, 0]])
            col = data[:, 1] - first
            good[r, col], valid[r, col] = data[:, 2], data[:, 3]
            n_present[r, col], n_gaps[r, col] = data[:, 4], data[:, 5]
        feeds.extend(
            SliFeed.objects.filter(slo_id__in=chunk).values_list(
                "slo_id", "mode", "first_minute", "last_minute"
            )
        )
    present = present_mask(n_present, n_gaps, expected_feeds(feeds, row_of, first, stop))
    return np.where(present, good, 0), np.where(present, valid, 0), present


def contract_series(
    *,
    start: datetime,
    end: datetime,
    services: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Pushed contract series in [start, end): columns minute (UTC datetime), source, name,
    service, tier, labels (canonical `k=v,...`, `le` normalised) and value. For cost (usage by
    route, accelerator, cache result) and gateway health; one row per series and minute."""
    rows = SeriesMinute.objects.filter(
        minute__gte=epoch_minute_floor(start), minute__lt=epoch_minute_floor(end)
    )
    if services is not None:
        rows = rows.filter(service__in=list(services))
    if names is not None:
        rows = rows.filter(name__in=list(names))
    if sources is not None:
        rows = rows.filter(source__in=list(sources))
    columns = ["minute", "source", "name", "service", "tier", "labels", "value"]
    frame = pd.DataFrame.from_records(list(rows.values_list(*columns)), columns=columns)
    frame["minute"] = pd.to_datetime(frame["minute"].astype("int64") * MINUTE_S, unit="s", utc=True)
    return frame


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[i : i + _ID_CHUNK] for i in range(0, len(ids), _ID_CHUNK)] or [[]]


def _marks(values: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(values)) or "NULL"
