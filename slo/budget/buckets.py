"""Budget buckets: per-minute SLI counts in budget units, hourly and daily rollups, and the SQL that
turns them into window sums for the engine.

Why our own buckets: the engine counts *budget units* (events, or minutes for timeslice SLOs), and
a 28-day window over 10,000 SLOs cannot be read minute by minute (400 M rows). Each write keeps the
three tables consistent; each evaluation reads at most ~6 hours of minutes, 3 days of hours and the
period's days, summed inside PostgreSQL.

Window rules (documented in docs/budget.md):

- Windows up to 6 hours (5m, 30m, 1h, 2h, 6h, and a calendar period that started within the last 6
  hours) are exact: the minutes `[now - w, now)`.
- Longer windows (1d, 3d, the SLO period) start at the first whole hour inside the window: minutes
  of the current hour, then whole hours (and whole UTC days) back to `ceil_hour(now - w)`. The
  minutes of the oldest partial hour are reported as missing, never guessed (at most 59 minutes,
  0.15% of a 28-day window), exactly like `slo.engine.window_sums_with_rollups`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db import connection

from slo.engine import BatchParams, WindowSums
from slo.spec import SloSpec

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# Windows up to this many minutes are read minute by minute, exactly.
EXACT_MAX_MIN = 6 * 60


@dataclass(frozen=True)
class MinuteCount:
    """One minute of one SLO's raw SLI counts (good and valid events). Absent minutes are missing."""

    slo_id: int
    minute: datetime
    good: float
    valid: float


def floor_minute(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(second=0, microsecond=0)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floored = floor_hour(moment)
    return floored if floored == moment else floored + HOUR


def floor_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_day(moment: datetime) -> datetime:
    floored = floor_day(moment)
    return floored if floored == moment else floored + DAY


def to_budget_units(spec: SloSpec, good: float, valid: float) -> tuple[float, float, float]:
    """(good units, valid units, valid events) of one present minute, by the budgeting method.

    Mirrors `slo.engine.budget_units`: occurrences count events (good capped at valid); timeslices
    count a minute with traffic as one slice, good when its ratio reaches the target;
    ratio_timeslices count the minute's ratio as its good part.
    """
    good = min(good, valid)
    if spec.budgeting_method == "occurrences":
        return good, valid, valid
    if valid <= 0:
        return 0.0, 0.0, valid
    ratio = good / valid
    if spec.budgeting_method == "timeslices":
        target = spec.timeslice_target if spec.timeslice_target is not None else 1.0
        return (1.0 if ratio >= target else 0.0), 1.0, valid
    return ratio, 1.0, valid


def record_minutes(rows: Iterable[MinuteCount], specs: dict[int, SloSpec]) -> int:
    """Upsert minutes (a re-sent minute replaces the old one) and refresh the touched hour and day
    rollups from them, in the caller's transaction. Returns the number of minutes written.

    The rollups are recomputed from the minutes, never incremented, so replaying a batch is harmless.
    Minutes older than the minute retention can no longer correct their rollups.
    """
    ids: list[int] = []
    minutes: list[datetime] = []
    goods: list[float] = []
    valids: list[float] = []
    events: list[float] = []
    seen: dict[tuple[int, datetime], int] = {}
    for row in rows:
        spec = specs.get(row.slo_id)
        if spec is None:
            continue
        minute = floor_minute(row.minute)
        good, valid, event_count = to_budget_units(spec, float(row.good), float(row.valid))
        key = (row.slo_id, minute)
        if key in seen:  # the last value of a minute wins, like an upsert
            index = seen[key]
            goods[index], valids[index], events[index] = good, valid, event_count
            continue
        seen[key] = len(ids)
        ids.append(row.slo_id)
        minutes.append(minute)
        goods.append(good)
        valids.append(valid)
        events.append(event_count)
    if not ids:
        return 0
    hours = sorted({(i, floor_hour(m)) for i, m in zip(ids, minutes, strict=True)})
    days = sorted({(i, floor_day(h)) for i, h in hours})
    if connection.vendor != "postgresql":
        _record_portable(ids, minutes, goods, valids, events, hours, days)
        return len(ids)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO slo_budgetminute (slo_id, minute, good, valid, events)
            SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::float8[], %s::float8[], %s::float8[])
            ON CONFLICT (slo_id, minute) DO UPDATE
              SET good = EXCLUDED.good, valid = EXCLUDED.valid, events = EXCLUDED.events
            """,
            [ids, minutes, goods, valids, events],
        )
        cursor.execute(
            """
            INSERT INTO slo_budgethour (slo_id, hour, good, valid, events, present_minutes)
            SELECT t.slo_id, t.hour, SUM(m.good), SUM(m.valid), SUM(m.events), COUNT(*)
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS t(slo_id, hour)
            JOIN slo_budgetminute m
              ON m.slo_id = t.slo_id AND m.minute >= t.hour AND m.minute < t.hour + interval '1 hour'
            GROUP BY t.slo_id, t.hour
            ON CONFLICT (slo_id, hour) DO UPDATE
              SET good = EXCLUDED.good, valid = EXCLUDED.valid, events = EXCLUDED.events,
                  present_minutes = EXCLUDED.present_minutes
            """,
            [[h[0] for h in hours], [h[1] for h in hours]],
        )
        cursor.execute(
            """
            INSERT INTO slo_budgetday (slo_id, day, good, valid, events, present_minutes)
            SELECT t.slo_id, t.day, SUM(h.good), SUM(h.valid), SUM(h.events), SUM(h.present_minutes)
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS t(slo_id, day)
            JOIN slo_budgethour h
              ON h.slo_id = t.slo_id AND h.hour >= t.day AND h.hour < t.day + interval '1 day'
            GROUP BY t.slo_id, t.day
            ON CONFLICT (slo_id, day) DO UPDATE
              SET good = EXCLUDED.good, valid = EXCLUDED.valid, events = EXCLUDED.events,
                  present_minutes = EXCLUDED.present_minutes
            """,
            [[d[0] for d in days], [d[1] for d in days]],
        )
    return len(ids)


def _record_portable(ids, minutes, goods, valids, events, hours, days) -> None:  # noqa: ANN001 - lists
    """The ORM version of `record_minutes` for the embedded SQLite mode (slower, same result)."""
    from slo.models.budget import BudgetDay, BudgetHour, BudgetMinute

    BudgetMinute.objects.bulk_create(
        [BudgetMinute(slo_id=i, minute=m, good=g, valid=v, events=e)
         for i, m, g, v, e in zip(ids, minutes, goods, valids, events, strict=True)],
        update_conflicts=True, unique_fields=["slo", "minute"], update_fields=["good", "valid", "events"],
    )
    for model, parent, key, span, rows in (
        (BudgetHour, BudgetMinute, "hour", HOUR, hours),
        (BudgetDay, BudgetHour, "day", DAY, days),
    ):
        out = []
        for slo_id, start in rows:
            time_field = "minute" if parent is BudgetMinute else "hour"
            children = parent.objects.filter(slo_id=slo_id, **{f"{time_field}__gte": start, f"{time_field}__lt": start + span})
            values = list(children.values_list("good", "valid", "events", *(["present_minutes"] if parent is BudgetHour else [])))
            present = sum(v[3] for v in values) if parent is BudgetHour else len(values)
            out.append(model(slo_id=slo_id, **{key: start}, good=sum(v[0] for v in values), valid=sum(v[1] for v in values),
                             events=sum(v[2] for v in values), present_minutes=present))
        model.objects.bulk_create(
            out, update_conflicts=True, unique_fields=["slo", key],
            update_fields=["good", "valid", "events", "present_minutes"],
        )


# ------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class _Plan:
    """Where each window column of a batch comes from. Times are UTC, minute-aligned.

    A shared column (the same window for every SLO) with start `s` is: the head minutes
    `[s, ceil_hour(s))` (exact windows only: for longer ones they are the unread, missing part),
    the whole hours `[hour_start, tail_start)`, and the current hour's minutes `[tail_start, now)`.
    A window that starts inside the current hour is the minutes `[s, now)`.
    """

    now: datetime
    tail_start: datetime  # floor_hour(now)
    # per shared column: (col, start, head minutes from, hours from or None)
    shared: list[tuple[int, datetime, datetime | None, datetime | None]]
    minute_ranges: list[tuple[datetime, datetime]]  # what the minute query reads
    boundaries: list[datetime]  # band edges of the minute query
    # the period column, per SLO: exact from minutes (start), or rollups from a whole hour
    period_exact_start: list[datetime | None]
    period_hour_start: list[datetime | None]  # ceil_hour(period start) when not exact
    period_day_start: list[datetime | None]  # first whole UTC day inside, when days are used
    days_end: datetime  # floor_day(tail_start): days cover [period_day_start, days_end)


def _merge(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(r for r in ranges if r[0] < r[1]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _plan(params: BatchParams, now: datetime) -> _Plan:
    tail_start = floor_hour(now)
    exact_lo = now - timedelta(minutes=EXACT_MAX_MIN)
    shared = []
    ranges = [(tail_start, now)]
    edges = {tail_start}
    for col, window_min in enumerate(params.burn_windows_min):
        start = now - timedelta(minutes=int(window_min))
        if start >= tail_start:
            shared.append((col, start, start, None))  # inside the current hour: minutes only
            ranges.append((start, now))
            edges.add(start)
        elif window_min <= EXACT_MAX_MIN:
            shared.append((col, start, start, ceil_hour(start)))
            ranges.append((start, ceil_hour(start)))
            edges.update((start, ceil_hour(start)))
        else:
            shared.append((col, start, None, ceil_hour(start)))
    days_end = floor_day(tail_start)
    p_exact: list[datetime | None] = []
    p_hour: list[datetime | None] = []
    p_day: list[datetime | None] = []
    for period_min in params.period_window_min:
        start = now - timedelta(minutes=int(period_min))
        if start >= exact_lo:
            p_exact.append(start)
            p_hour.append(None)
            p_day.append(None)
            continue
        first_hour = ceil_hour(start)
        first_day = ceil_day(first_hour)
        p_exact.append(None)
        p_hour.append(first_hour)
        # Days only when at least one whole day fits before the current day; otherwise hours only.
        p_day.append(first_day if first_day < days_end else None)
    return _Plan(now, tail_start, shared, _merge(ranges), sorted(edges), p_exact, p_hour, p_day, days_end)


def window_sums_for(slo_ids: Sequence[int], params: BatchParams, now: datetime) -> tuple[WindowSums, int]:
    """Window sums shaped `(n, W + 1)` in `params`' column order for SLOs `slo_ids` (row i = SLO
    slo_ids[i]), read from the bucket tables. Returns the sums and the number of SQL queries."""
    now = floor_minute(now)
    plan = _plan(params, now)
    n, w = len(slo_ids), len(params.burn_windows_min) + 1
    period_col = w - 1
    # (good, valid, events, present minutes) per cell, accumulated from the segments below.
    acc = np.zeros((n, w, 4), dtype=np.float64)
    row_of = {slo_id: i for i, slo_id in enumerate(slo_ids)}
    ids = list(slo_ids)
    queries = 0
    if connection.vendor != "postgresql":
        return _window_sums_portable(ids, params, plan, acc, row_of), 4

    with connection.cursor() as cursor:
        # 1. Minutes: only the current hour and the partial first hour of each exact window, grouped
        #    into bands between the segment edges, so PostgreSQL does 4 sums per row. A segment's
        #    sum is then a difference of cumulative band sums.
        union = " UNION ALL ".join(
            "SELECT slo_id, minute, good, valid, events FROM slo_budgetminute "
            "WHERE slo_id = ANY(%s) AND minute >= %s AND minute < %s"
            for _ in plan.minute_ranges
        )
        args: list[object] = [plan.boundaries]
        for lo, hi in plan.minute_ranges:
            args += [ids, lo, hi]
        cursor.execute(
            f"""
            SELECT slo_id, width_bucket(minute, %s::timestamptz[]), SUM(good), SUM(valid), SUM(events), COUNT(*)
            FROM ({union}) m
            GROUP BY 1, 2
            """,
            args,
        )
        queries += 1
        edges = plan.boundaries
        bands = np.zeros((n, len(edges) + 1, 4))
        for slo_id, band, *values in cursor.fetchall():
            # width_bucket: band k holds [edges[k-1], edges[k]); band 0 is before the first edge.
            bands[row_of[slo_id], band] = values
        # cum[:, j] = everything before edges[j]; the last column is everything up to now.
        cum = np.concatenate([np.zeros((n, 1, 4)), np.cumsum(bands, axis=1)], axis=1)[:, 1:]
        edge_index = {edge: j for j, edge in enumerate(edges)}

        def minutes_between(lo: datetime, hi: datetime | None) -> np.ndarray:
            end = cum[:, -1] if hi is None else cum[:, edge_index[hi]]
            return end - cum[:, edge_index[lo]]

        tail = minutes_between(plan.tail_start, None)
        for col, _start, head_from, hours_from in plan.shared:
            if hours_from is None:
                acc[:, col] += minutes_between(head_from, None)
                continue
            if head_from is not None:
                acc[:, col] += minutes_between(head_from, hours_from)
            acc[:, col] += tail

        # A calendar period that began within the exact span is read minute by minute from its start.
        exact = [(i, start) for i, start in enumerate(plan.period_exact_start) if start is not None]
        if exact:
            cursor.execute(
                """
                SELECT m.slo_id, SUM(m.good), SUM(m.valid), SUM(m.events), COUNT(*)
                FROM slo_budgetminute m
                JOIN unnest(%s::bigint[], %s::timestamptz[]) AS p(slo_id, start) ON p.slo_id = m.slo_id
                WHERE m.minute >= p.start AND m.minute < %s
                GROUP BY m.slo_id
                """,
                [[ids[i] for i, _ in exact], [start for _, start in exact], now],
            )
            queries += 1
            for slo_id, *values in cursor.fetchall():
                acc[row_of[slo_id], period_col] += np.nan_to_num(np.asarray(values, dtype=np.float64))

        # 2. Hours: every shared column's whole hours, and the period's last partial day.
        hour_cols = [(col, hours_from) for col, _s, _h, hours_from in plan.shared if hours_from is not None]
        uses_rollups = any(s is not None for s in plan.period_hour_start)
        if hour_cols or uses_rollups:
            starts = sorted({h for _, h in hour_cols} | {plan.days_end})
            select = ", ".join(_sums("h", "h.hour >= %s") for _ in starts)
            cursor.execute(
                f"""
                SELECT h.slo_id, {select}
                FROM slo_budgethour h
                WHERE h.slo_id = ANY(%s) AND h.hour >= %s AND h.hour < %s
                GROUP BY h.slo_id
                """,
                [a for start in starts for a in [start] * 4] + [ids, starts[0], plan.tail_start],
            )
            queries += 1
            position = {start: k for k, start in enumerate(starts)}
            hours = np.zeros((n, len(starts), 4))
            for slo_id, *values in cursor.fetchall():
                hours[row_of[slo_id]] = np.nan_to_num(np.asarray(values, dtype=np.float64)).reshape(-1, 4)
            for col, hours_from in hour_cols:
                acc[:, col] += hours[:, position[hours_from]]
            with_days = np.array(
                [h is not None and d is not None for h, d in zip(plan.period_hour_start, plan.period_day_start, strict=True)],
                dtype=bool,
            )
            acc[with_days, period_col] += hours[with_days, position[plan.days_end]]

            # 3. The period, per SLO: its first partial day in hours, whole days in days.
            if uses_rollups:
                # Without whole days, the hours run to the current hour and the day range is empty.
                h1 = [
                    (day if day is not None else (plan.tail_start if hour is not None else None))
                    for hour, day in zip(plan.period_hour_start, plan.period_day_start, strict=True)
                ]
                cursor.execute(
                    """
                    SELECT p.slo_id, hs.good, hs.valid, hs.events, hs.present, ds.good, ds.valid,
                           ds.events, ds.present
                    FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS p(slo_id, h0, h1)
                    CROSS JOIN LATERAL (
                        SELECT SUM(h.good) AS good, SUM(h.valid) AS valid, SUM(h.events) AS events,
                               SUM(h.present_minutes) AS present
                        FROM slo_budgethour h
                        WHERE h.slo_id = p.slo_id AND h.hour >= p.h0 AND h.hour < p.h1
                    ) hs
                    CROSS JOIN LATERAL (
                        SELECT SUM(d.good) AS good, SUM(d.valid) AS valid, SUM(d.events) AS events,
                               SUM(d.present_minutes) AS present
                        FROM slo_budgetday d
                        WHERE d.slo_id = p.slo_id AND d.day >= p.h1 AND d.day < %s
                    ) ds
                    WHERE p.h0 IS NOT NULL
                    """,
                    [ids, plan.period_hour_start, h1, plan.days_end],
                )
                queries += 1
                for record in cursor.fetchall():
                    values = np.nan_to_num(np.asarray(record[1:], dtype=np.float64).reshape(-1, 4))
                    acc[row_of[record[0]], period_col] += values[0] + values[1]

    # A rollup-read period also holds the current hour's minutes.
    rollup_period = np.array([s is not None for s in plan.period_hour_start], dtype=bool)
    acc[rollup_period, period_col] += tail[rollup_period]

    window_minutes = params.window_minutes
    sums = WindowSums(
        good=np.minimum(acc[:, :, 0], acc[:, :, 1]),
        valid=acc[:, :, 1],
        valid_events=acc[:, :, 2],
        # Minutes of the window we could not read (no telemetry, or the split oldest hour).
        missing_minutes=(window_minutes - acc[:, :, 3]).astype(np.int64),
    )
    return sums, queries


def _window_sums_portable(
    ids: list[int], params: BatchParams, plan: _Plan, acc: np.ndarray, row_of: dict[int, int]
) -> WindowSums:
    """The same segments as `window_sums_for`, summed in numpy from plain ORM reads (embedded
    SQLite mode; fine for the few hundred SLOs a single machine holds)."""
    from slo.models.budget import BudgetDay, BudgetHour, BudgetMinute

    n = len(ids)
    period_col = acc.shape[1] - 1
    minutes = []
    for lo, hi in plan.minute_ranges:
        minutes += BudgetMinute.objects.filter(slo_id__in=ids, minute__gte=lo, minute__lt=hi).values_list(
            "slo_id", "minute", "good", "valid", "events"
        )

    def minute_sum(lo: datetime, hi: datetime) -> np.ndarray:
        out = np.zeros((n, 4))
        for slo_id, minute, good, valid, events in minutes:
            if lo <= minute < hi:
                out[row_of[slo_id]] += (good, valid, events, 1)
        return out

    tail = minute_sum(plan.tail_start, plan.now)
    hour_from = min([h for *_x, h in plan.shared if h is not None] + [plan.days_end, plan.tail_start]
                    + [h for h in plan.period_hour_start if h is not None])
    hours = list(BudgetHour.objects.filter(slo_id__in=ids, hour__gte=hour_from, hour__lt=plan.tail_start).values_list(
        "slo_id", "hour", "good", "valid", "events", "present_minutes"))

    def hour_sum(lo: datetime, hi: datetime, only: int | None = None) -> np.ndarray:
        out = np.zeros((n, 4))
        for slo_id, hour, *values in hours:
            if lo <= hour < hi and (only is None or slo_id == only):
                out[row_of[slo_id]] += values
        return out

    for col, _start, head_from, hours_from in plan.shared:
        if hours_from is None:
            acc[:, col] += minute_sum(head_from, plan.now)
            continue
        if head_from is not None:
            acc[:, col] += minute_sum(head_from, hours_from)
        acc[:, col] += hour_sum(hours_from, plan.tail_start) + tail
    day_rows = list(BudgetDay.objects.filter(slo_id__in=ids, day__lt=plan.days_end).values_list(
        "slo_id", "day", "good", "valid", "events", "present_minutes"))
    for row, slo_id in enumerate(ids):
        exact, first_hour, first_day = plan.period_exact_start[row], plan.period_hour_start[row], plan.period_day_start[row]
        if exact is not None:
            acc[row, period_col] += minute_sum(exact, plan.now)[row]
            continue
        if first_day is None:
            acc[row, period_col] += hour_sum(first_hour, plan.tail_start, slo_id)[row] + tail[row]
            continue
        acc[row, period_col] += hour_sum(first_hour, first_day, slo_id)[row]
        acc[row, period_col] += hour_sum(plan.days_end, plan.tail_start, slo_id)[row] + tail[row]
        for day_slo, day, *values in day_rows:
            if day_slo == slo_id and first_day <= day:
                acc[row, period_col] += values
    return WindowSums(
        good=np.minimum(acc[:, :, 0], acc[:, :, 1]),
        valid=acc[:, :, 1],
        valid_events=acc[:, :, 2],
        missing_minutes=(params.window_minutes - acc[:, :, 3]).astype(np.int64),
    )


def _sums(alias: str, condition: str, count: bool = False) -> str:
    """Four FILTERed aggregates (good, valid, events, present minutes) for one segment."""
    present = "COUNT(*)" if count else f"SUM({alias}.present_minutes)"
    return ", ".join(
        f"{expr} FILTER (WHERE {condition})"
        for expr in (f"SUM({alias}.good)", f"SUM({alias}.valid)", f"SUM({alias}.events)", present)
    )
