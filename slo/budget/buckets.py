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

from controlplane.lib.pgarrays import float_array, int_array
from slo.corrections.exclusion import Exclusions, zero_excluded
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


def record_minutes(
    rows: Iterable[MinuteCount],
    specs: dict[int, SloSpec],
    *,
    now: datetime | None = None,
    exclusions: Exclusions | None = None,
) -> int:
    """Upsert minutes (a re-sent minute replaces the old one) and refresh the touched hour and day
    rollups from them, in the caller's transaction. Returns the number of minutes written.

    Replaying a batch is harmless: an unchanged minute has a zero delta.
    Rollups follow by deltas against the minutes' previous values, under an advisory lock.
    With `now`, minutes older than the minute retention before it are ignored: their previous
    values may be pruned already, so a delta could count them twice. The telemetry feed always
    passes `now`; a caller loading history (tests, imports) may leave it out.
    Minutes a status correction excludes are stored as zero units: neither good nor bad
    (`slo.corrections.exclusion`; pass `exclusions` when the caller has them already).
    """
    from django.conf import settings

    cutoff = (
        now - timedelta(days=settings.TELEMETRY_MINUTE_RETENTION_DAYS)
        if now is not None
        else datetime.min.replace(tzinfo=UTC)
    )
    ids: list[int] = []
    minutes: list[datetime] = []
    goods: list[float] = []
    valids: list[float] = []
    events: list[float] = []
    seen: dict[tuple[int, datetime], int] = {}
    for row in rows:
        spec = specs.get(row.slo_id)
        minute = floor_minute(row.minute)
        if spec is None or minute < cutoff:
            continue
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
    zero_excluded(ids, minutes, goods, valids, events, specs, exclusions)
    hours = sorted({(i, floor_hour(m)) for i, m in zip(ids, minutes, strict=True)})
    days = sorted({(i, floor_day(h)) for i, h in hours})
    if connection.vendor != "postgresql":
        _record_portable(ids, minutes, goods, valids, events, hours, days)
        return len(ids)
    # Epoch minutes as integers: psycopg converts 10,000 datetimes each way far slower than ints.
    epoch = [int(m.timestamp()) // 60 for m in minutes]
    with connection.cursor() as cursor:
        # Rollups move by deltas (new minute - old minute), so a write touches one row per hour and
        # day instead of re-reading their minutes. Deltas need the old values to be stable until
        # commit: one writer at a time (the sync task is the only regular writer).
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('slo_budget_buckets'))")
        cursor.execute(
            """
            SELECT m.slo_id, k.m, m.good, m.valid, m.events
            FROM unnest(%s::bigint[], %s::bigint[]) AS k(slo_id, m)
            JOIN slo_budgetminute m ON m.slo_id = k.slo_id AND m.minute = to_timestamp(k.m * 60)
            """,
            [int_array(ids), int_array(epoch)],
        )
        old = {(r[0], r[1]): r[2:] for r in cursor.fetchall()}
        cursor.execute(
            """
            INSERT INTO slo_budgetminute (slo_id, minute, good, valid, events)
            SELECT slo_id, to_timestamp(m * 60), good, valid, events
            FROM unnest(%s::bigint[], %s::bigint[], %s::float8[], %s::float8[], %s::float8[])
              AS v(slo_id, m, good, valid, events)
            ON CONFLICT (slo_id, minute) DO UPDATE
              SET good = EXCLUDED.good, valid = EXCLUDED.valid, events = EXCLUDED.events
            """,
            [int_array(ids), int_array(epoch), float_array(goods), float_array(valids), float_array(events)],
        )
        # The running window totals follow the same deltas (late and backfilled minutes).
        from slo.budget.window_state import minute_deltas, state_apply_writes

        state_apply_writes(cursor, minute_deltas(ids, epoch, goods, valids, events, old))
        for table, column, span_min in (("slo_budgethour", "hour", 60), ("slo_budgetday", "day", 1440)):
            deltas: dict[tuple[int, int], list[float]] = {}
            for slo_id, minute, good, valid, event_count in zip(
                ids, epoch, goods, valids, events, strict=True
            ):
                previous = old.get((slo_id, minute))
                delta = deltas.setdefault((slo_id, minute - minute % span_min), [0.0, 0.0, 0.0, 0])
                if previous is None:
                    delta[0] += good
                    delta[1] += valid
                    delta[2] += event_count
                    delta[3] += 1  # a newly present minute
                else:
                    delta[0] += good - previous[0]
                    delta[1] += valid - previous[1]
                    delta[2] += event_count - previous[2]
            keys = list(deltas)
            cursor.execute(
                f"""
                INSERT INTO {table} (slo_id, {column}, good, valid, events, present_minutes)
                SELECT slo_id, to_timestamp(m * 60), good, valid, events, present
                FROM unnest(%s::bigint[], %s::bigint[], %s::float8[], %s::float8[], %s::float8[], %s::int[])
                  AS v(slo_id, m, good, valid, events, present)
                ON CONFLICT (slo_id, {column}) DO UPDATE
                  SET good = {table}.good + EXCLUDED.good, valid = {table}.valid + EXCLUDED.valid,
                      events = {table}.events + EXCLUDED.events,
                      present_minutes = {table}.present_minutes + EXCLUDED.present_minutes
                """,
                [
                    int_array(k[0] for k in keys),
                    int_array(k[1] for k in keys),
                    *(float_array(deltas[k][i] for k in keys) for i in range(3)),
                    int_array(deltas[k][3] for k in keys),
                ],
            )
    return len(ids)


def _record_portable(ids, minutes, goods, valids, events, hours, days) -> None:  # noqa: ANN001 - lists
    """The ORM version of `record_minutes` for the embedded SQLite mode (slower, same result)."""
    from slo.models.budget import BudgetDay, BudgetHour, BudgetMinute

    BudgetMinute.objects.bulk_create(
        [
            BudgetMinute(slo_id=i, minute=m, good=g, valid=v, events=e)
            for i, m, g, v, e in zip(ids, minutes, goods, valids, events, strict=True)
        ],
        update_conflicts=True,
        unique_fields=["slo", "minute"],
        update_fields=["good", "valid", "events"],
    )
    for model, parent, key, span, rows in (
        (BudgetHour, BudgetMinute, "hour", HOUR, hours),
        (BudgetDay, BudgetHour, "day", DAY, days),
    ):
        out = []
        for slo_id, start in rows:
            time_field = "minute" if parent is BudgetMinute else "hour"
            children = parent.objects.filter(
                slo_id=slo_id, **{f"{time_field}__gte": start, f"{time_field}__lt": start + span}
            )
            values = list(
                children.values_list(
                    "good", "valid", "events", *(["present_minutes"] if parent is BudgetHour else [])
                )
            )
            present = sum(v[3] for v in values) if parent is BudgetHour else len(values)
            out.append(
                model(
                    slo_id=slo_id,
                    **{key: start},
                    good=sum(v[0] for v in values),
                    valid=sum(v[1] for v in values),
                    events=sum(v[2] for v in values),
                    present_minutes=present,
                )
            )
        model.objects.bulk_create(
            out,
            update_conflicts=True,
            unique_fields=["slo", key],
            update_fields=["good", "valid", "events", "present_minutes"],
        )


def prune_buckets(*, now: datetime) -> dict[str, int]:
    """Retention: minutes for TELEMETRY_MINUTE_RETENTION_DAYS, hours and days for
    TELEMETRY_HOUR_RETENTION_DAYS (the longest SLO window is 400 days)."""
    from django.conf import settings

    from slo.models.budget import BudgetDay, BudgetHour, BudgetMinute

    minute_cut = now - timedelta(days=settings.TELEMETRY_MINUTE_RETENTION_DAYS)
    hour_cut = now - timedelta(days=settings.TELEMETRY_HOUR_RETENTION_DAYS)
    return {
        "minutes": BudgetMinute.objects.filter(minute__lt=minute_cut).delete()[0],
        "hours": BudgetHour.objects.filter(hour__lt=hour_cut).delete()[0],
        "days": BudgetDay.objects.filter(day__lt=floor_day(hour_cut)).delete()[0],
    }


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
            _add_rows(acc, period_col, row_of, cursor.fetchall())

        # 2. Hours: every shared column's whole hours, and the period's last partial day.
        hour_cols = [(col, hours_from) for col, _s, _h, hours_from in plan.shared if hours_from is not None]
        uses_rollups = any(s is not None for s in plan.period_hour_start)
        if hour_cols or uses_rollups:
            starts = sorted({h for _, h in hour_cols} | {plan.days_end})
            # Bands again: hours grouped between the segment starts, then suffix sums.
            cursor.execute(
                """
                SELECT slo_id, width_bucket(hour, %s::timestamptz[]), SUM(good), SUM(valid), SUM(events),
                       SUM(present_minutes)
                FROM slo_budgethour
                WHERE slo_id = ANY(%s) AND hour >= %s AND hour < %s
                GROUP BY 1, 2
                """,
                [starts, ids, starts[0], plan.tail_start],
            )
            queries += 1
            position = {start: k for k, start in enumerate(starts)}
            hour_bands = np.zeros((n, len(starts) + 1, 4))
            for slo_id, band, *values in cursor.fetchall():
                hour_bands[row_of[slo_id], band] = values
            # hours[:, k] = everything from starts[k] to the current hour (band k+1 onwards).
            hours = np.cumsum(hour_bands[:, ::-1], axis=1)[:, ::-1][:, 1:]
            for col, hours_from in hour_cols:
                acc[:, col] += hours[:, position[hours_from]]
            with_days = np.array(
                [
                    h is not None and d is not None
                    for h, d in zip(plan.period_hour_start, plan.period_day_start, strict=True)
                ],
                dtype=bool,
            )
            acc[with_days, period_col] += hours[with_days, position[plan.days_end]]

            # 3. The period: its first partial day in hours, whole days in days. SLOs that share a
            #    period start (every 28-day SLO, every calendar month in one zone) share constant
            #    bounds, so each group is a plain index range scan; the groups are one UNION ALL.
            if uses_rollups:
                groups: dict[tuple[datetime, datetime], list[int]] = {}
                for row, (hour, day) in enumerate(
                    zip(plan.period_hour_start, plan.period_day_start, strict=True)
                ):
                    if hour is not None:
                        # Without whole days, the hours run to the current hour and no day is read.
                        groups.setdefault((hour, day if day is not None else plan.tail_start), []).append(
                            ids[row]
                        )
                for table, column, bounds in (
                    ("slo_budgethour", "hour", [(h0, h1) for h0, h1 in groups]),
                    ("slo_budgetday", "day", [(h1, plan.days_end) for _h0, h1 in groups]),
                ):
                    parts, args = [], []
                    for (lo, hi), group_ids in zip(bounds, groups.values(), strict=True):
                        if lo >= hi:
                            continue
                        parts.append(
                            f"SELECT slo_id, good, valid, events, present_minutes FROM {table} "
                            f"WHERE slo_id = ANY(%s) AND {column} >= %s AND {column} < %s"
                        )
                        args += [group_ids, lo, hi]
                    if not parts:
                        continue
                    cursor.execute(
                        "SELECT slo_id, SUM(good), SUM(valid), SUM(events), SUM(present_minutes) "
                        f"FROM ({' UNION ALL '.join(parts)}) p GROUP BY slo_id",
                        args,
                    )
                    queries += 1
                    _add_rows(acc, period_col, row_of, cursor.fetchall())

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


def _add_rows(acc: np.ndarray, col: int, row_of: dict[int, int], records: list[tuple]) -> None:
    """Add `(slo_id, good, valid, events, present)` records to one column, in one numpy step."""
    if not records:
        return
    data = np.nan_to_num(np.asarray([r[1:] for r in records], dtype=np.float64))
    rows = np.fromiter((row_of[r[0]] for r in records), dtype=np.int64, count=len(records))
    np.add.at(acc[:, col], rows, data)


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
    hour_from = min(
        [h for *_x, h in plan.shared if h is not None]
        + [plan.days_end, plan.tail_start]
        + [h for h in plan.period_hour_start if h is not None]
    )
    hours = list(
        BudgetHour.objects.filter(slo_id__in=ids, hour__gte=hour_from, hour__lt=plan.tail_start).values_list(
            "slo_id", "hour", "good", "valid", "events", "present_minutes"
        )
    )

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
    day_rows = list(
        BudgetDay.objects.filter(slo_id__in=ids, day__lt=plan.days_end).values_list(
            "slo_id", "day", "good", "valid", "events", "present_minutes"
        )
    )
    for row, slo_id in enumerate(ids):
        exact, first_hour, first_day = (
            plan.period_exact_start[row],
            plan.period_hour_start[row],
            plan.period_day_start[row],
        )
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
