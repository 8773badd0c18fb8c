"""Incremental window state: running totals per SLO and window, so a minute's evaluation reads a few
points instead of re-summing minutes, hours and days.

Every window column of an evaluation is a set of minutes `[S, now)`: exact windows (up to 6 hours)
start at `now - w`, longer ones and the period at the first whole hour inside (`ceil_hour`), or at
the period's start while it began within the exact span (the rules of `slo.budget.buckets`).
`WindowState` keeps, per SLO, the sums of those sets as of an instant `as_of` (its window ends,
exclusive) with each column's start `S`. Moving to `now`:

    sums(now) = sums(as_of) + minutes [as_of, now) - the minutes [S(as_of), S(now)) that left

which is one minute in and, per exact window, one minute out each minute (an hour out, from the
hourly rollup, when a long window's start crosses an hour). Late and backfilled minutes: the
bucket writer (`buckets.record_minutes`) adds each written minute's change to every column whose
`[S, as_of)` holds it, in the same transaction and under the same lock as the buckets, so the
state always equals a re-sum of the buckets. A state that is missing, older than 6 hours, for
other window columns, or whose start moves back or by more than 6 hours (a new calendar period)
is rebuilt from the buckets (`window_sums_for`); so is every SLO once a day (its id picks the
minute), which also bounds float rounding from running sums of non-integer units.

Concurrency: the evaluation holds the bucket lock in shared mode from reading the state to writing
it; the writer holds it exclusively. Several evaluating workers run together; a sync waits for
them (and they for it), so no write falls between a state read and its write-back.
PostgreSQL only: the embedded SQLite mode re-sums (`window_sums_for`) every time.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from django.db import connection

from controlplane.lib.pgarrays import bytea_array, int_array
from slo.budget.buckets import EXACT_MAX_MIN, window_sums_for
from slo.engine import BatchParams, WindowSums

BUCKET_LOCK = "slo_budget_buckets"
# Each SLO is rebuilt from the buckets once per this many minutes (at the minute its id picks).
REBUILD_EVERY_MIN = 1440
_TABLE = "slo_windowstate"


def _ceil_hour(minute: np.ndarray) -> np.ndarray:
    return -((-minute) // 60) * 60


def _at(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, UTC)


def window_starts(params: BatchParams, now_min: int) -> np.ndarray:
    """Start (epoch minute) of every column at `now_min`, shaped (n, W + 1)."""
    minutes = params.window_minutes
    start = now_min - minutes
    long = minutes > EXACT_MAX_MIN
    # The period column: exact while it began within the exact span, else from its first whole hour.
    period_exact = start[:, -1] >= now_min - EXACT_MAX_MIN
    long[:, -1] = ~period_exact
    return np.where(long, _ceil_hour(start), start).astype(np.int64)


def _key(params: BatchParams) -> str:
    return ",".join(str(m) for m in params.burn_windows_min)


def _subset(params: BatchParams, rows: list[int]) -> BatchParams:
    """`params` for some rows, enough for `window_sums_for` (names and period lengths)."""
    return dataclasses.replace(
        params,
        names=tuple(params.names[r] for r in rows),
        period_window_min=params.period_window_min[rows],
    )


def window_sums_incremental(
    slo_ids: Sequence[int], params: BatchParams, now: datetime
) -> tuple[WindowSums, int, int]:
    """Window sums as `window_sums_for` returns them, from the running state (rebuilt from the buckets
    where needed), and the state moved to `now`. Call inside the evaluation's transaction. Returns
    (sums, queries, SLOs rebuilt)."""
    ids = list(slo_ids)
    if connection.vendor != "postgresql":
        sums, queries = window_sums_for(ids, params, now)
        return sums, queries, len(ids)
    now_min = int(now.astimezone(UTC).timestamp() // 60)
    n, width = len(ids), len(params.burn_windows_min) + 1
    key = _key(params)
    new_starts = window_starts(params, now_min)
    acc = np.zeros((n, width, 4))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(hashtext(%s))", [BUCKET_LOCK])
        cursor.execute(
            f"SELECT slo_id, as_of, key, starts, sums FROM {_TABLE} WHERE slo_id = ANY(%s::bigint[])",
            [int_array(ids)],
        )
        stored = {row[0]: row[1:] for row in cursor.fetchall()}
        queries = 2
        row_of = {slo_id: i for i, slo_id in enumerate(ids)}
        rebuild: list[int] = []
        write = True
        # Rows to advance, grouped by their as_of (one group in the steady state).
        groups: dict[int, list[int]] = defaultdict(list)
        old_starts = np.zeros((n, width), dtype=np.int64)
        for slo_id, row in row_of.items():
            state = stored.get(slo_id)
            if state is None or state[1] != key or (slo_id + now_min) % REBUILD_EVERY_MIN == 0:
                rebuild.append(row)
                continue
            as_of, _key_stored, starts, sums = state
            if as_of > now_min:
                write = False  # an older instant (a replay): answer from the buckets, keep the state
                rebuild.append(row)
                continue
            starts_arr = np.frombuffer(bytes(starts), dtype=np.int64)
            if (
                now_min - as_of > EXACT_MAX_MIN
                or starts_arr.shape[0] != width
                or (new_starts[row] < starts_arr).any()
                or (new_starts[row] - starts_arr > EXACT_MAX_MIN).any()
            ):
                rebuild.append(row)
                continue
            acc[row] = np.frombuffer(bytes(sums), dtype=np.float64).reshape(width, 4)
            old_starts[row] = starts_arr
            groups[as_of].append(row)
        for as_of, rows in groups.items():
            if as_of < now_min:
                queries += _advance(cursor, ids, rows, as_of, now_min, old_starts, new_starts, acc)
        if rebuild:
            rebuilt, q = window_sums_for([ids[r] for r in rebuild], _subset(params, rebuild), now)
            queries += q
            minutes = params.window_minutes[rebuild]
            acc[rebuild, :, 0] = rebuilt.good
            acc[rebuild, :, 1] = rebuilt.valid
            acc[rebuild, :, 2] = rebuilt.valid_events
            acc[rebuild, :, 3] = minutes - rebuilt.missing_minutes
        if write:
            connection._slo_newest_as_of = None  # type: ignore[attr-defined] # see _newest_as_of
            cursor.execute(
                f"""
                INSERT INTO {_TABLE} (slo_id, as_of, key, starts, sums)
                SELECT slo_id, %s, %s, starts, sums FROM unnest(%s::bigint[], %s::bytea[], %s::bytea[])
                  AS v(slo_id, starts, sums)
                ON CONFLICT (slo_id) DO UPDATE
                  SET as_of = EXCLUDED.as_of, key = EXCLUDED.key, starts = EXCLUDED.starts, sums = EXCLUDED.sums
                """,
                [
                    now_min,
                    key,
                    int_array(ids),
                    bytea_array(new_starts[r].tobytes() for r in range(n)),
                    bytea_array(acc[r].tobytes() for r in range(n)),
                ],
            )
            queries += 1
    sums = WindowSums(
        good=np.minimum(acc[:, :, 0], acc[:, :, 1]),
        valid=acc[:, :, 1],
        valid_events=acc[:, :, 2],
        missing_minutes=np.rint(params.window_minutes - acc[:, :, 3]).astype(np.int64),
    )
    return sums, queries, len(rebuild)


def _advance(
    cursor,  # noqa: ANN001 - a DB-API cursor
    ids: list[int],
    rows: list[int],
    as_of: int,
    now_min: int,
    old_starts: np.ndarray,
    new_starts: np.ndarray,
    acc: np.ndarray,
) -> int:
    """Add the minutes `[as_of, now)` to every column of `rows` and take out what left each column
    (`[old start, new start)`): minutes, or whole hours from the hourly rollup when both ends are
    on the hour. One query per table. Returns the number of queries."""
    group_ids = int_array(ids[r] for r in rows)
    id_lo, id_hi = min(ids[r] for r in rows), max(ids[r] for r in rows)
    local = {ids[r]: k for k, r in enumerate(rows)}
    # Distinct leaving ranges of the group: (lo, hi) -> [(row index in group, column)].
    olds, news = old_starts[rows], new_starts[rows]
    ks, cols = np.nonzero(olds != news)
    los, his = olds[ks, cols], news[ks, cols]
    minute_ranges: list[tuple[int, int, tuple[np.ndarray, np.ndarray] | None]] = [(as_of, now_min, None)]
    hour_ranges: list[tuple[int, int, tuple[np.ndarray, np.ndarray] | None]] = []
    for lo, hi in sorted(set(zip(los.tolist(), his.tolist(), strict=True))):
        mask = (los == lo) & (his == hi)
        cells = (ks[mask], cols[mask])
        (hour_ranges if lo % 60 == 0 and hi % 60 == 0 else minute_ranges).append((lo, hi, cells))
    delta = np.zeros((len(rows), acc.shape[1], 4))
    queries = 0
    for table, column, ranges in (
        ("slo_budgetminute", "minute", minute_ranges),
        ("slo_budgethour", "hour", hour_ranges),
    ):
        if not ranges:
            continue
        # One group per range (ranges may overlap), each a plain index range scan.
        present = "1" if table == "slo_budgetminute" else "present_minutes"
        union = " UNION ALL ".join(
            f"SELECT {j} AS j, slo_id, good, valid, events, {present} AS present FROM {table} "
            # The id bounds make the scan of the (time, slo) index a tight range for the chunk's SLOs.
            f"WHERE slo_id = ANY(%s::bigint[]) AND {column} >= %s AND {column} < %s "
            f"AND slo_id BETWEEN %s AND %s"
            for j in range(len(ranges))
        )
        args: list[object] = []
        for lo, hi, _cells in ranges:
            args += [group_ids, _at(lo), _at(hi), id_lo, id_hi]
        cursor.execute(
            f"SELECT slo_id, j, SUM(good), SUM(valid), SUM(events), SUM(present) FROM ({union}) u GROUP BY 1, 2",
            args,
        )
        queries += 1
        records = cursor.fetchall()
        if not records:
            continue
        data = np.zeros((len(rows), len(ranges), 4))
        for slo_id, j, *values in records:
            data[local[slo_id], j] = values
        for j, (_lo, _hi, cells) in enumerate(ranges):
            if cells is None:  # entering: every column
                delta += data[:, j][:, None, :]
                continue
            k, col = cells  # (row, column) pairs are distinct within a range
            delta[k, col] -= data[k, j]
    acc[rows] += delta
    return queries


def state_apply_writes(cursor, changes: dict[int, list[tuple[int, float, float, float, int]]]) -> int:  # noqa: ANN001
    """Add written minutes to the running state (the bucket writer calls this under its exclusive
    lock): `changes` maps an SLO to `(epoch minute, Δgood, Δvalid, Δevents, Δpresent)` per written
    minute. A minute counts in a column when `S <= minute < as_of`. Returns the states changed."""
    if not changes:
        return 0
    # Most writes are the newest minute, which no state holds yet: skip the SLOs whose earliest
    # written minute is at or after every state's `as_of` before joining the rest.
    newest = _newest_as_of(cursor)
    if newest is None:
        return 0
    firsts = {i: min(c[0] for c in minutes) for i, minutes in changes.items()}
    ids = [i for i, first in firsts.items() if first < newest]
    if not ids:
        return 0
    first = [firsts[i] for i in ids]
    cursor.execute(
        f"""
        SELECT s.slo_id, s.as_of, s.starts, s.sums FROM {_TABLE} s
        JOIN unnest(%s::bigint[], %s::bigint[]) AS k(slo_id, first) ON k.slo_id = s.slo_id
        WHERE s.as_of > k.first
        """,
        [int_array(ids), int_array(first)],
    )
    rows = cursor.fetchall()
    if not rows:
        return 0
    out_ids, out_sums = [], []
    for slo_id, as_of, starts, sums in rows:
        starts_arr = np.frombuffer(bytes(starts), dtype=np.int64)
        acc = np.frombuffer(bytes(sums), dtype=np.float64).reshape(len(starts_arr), 4).copy()
        for minute, dg, dv, de, dp in changes[slo_id]:
            if minute < as_of:
                acc[starts_arr <= minute] += (dg, dv, de, dp)
        out_ids.append(slo_id)
        out_sums.append(acc.tobytes())
    cursor.execute(
        f"""
        UPDATE {_TABLE} s SET sums = v.sums
        FROM unnest(%s::bigint[], %s::bytea[]) AS v(slo_id, sums) WHERE s.slo_id = v.slo_id
        """,
        [int_array(out_ids), bytea_array(out_sums)],
    )
    return len(out_ids)


def _newest_as_of(cursor) -> int | None:  # noqa: ANN001 - a DB-API cursor
    """The newest `as_of` of any state, scanned once per writing transaction: under the writer's
    exclusive lock no evaluation moves a state, and the writer itself never changes `as_of`."""
    cursor.execute("SELECT txid_current()")
    txid = cursor.fetchone()[0]
    cached = getattr(connection, "_slo_newest_as_of", None)
    if cached is not None and cached[0] == txid:
        return cached[1]
    cursor.execute(f"SELECT max(as_of) FROM {_TABLE}")
    newest = cursor.fetchone()[0]
    connection._slo_newest_as_of = (txid, newest)  # type: ignore[attr-defined]
    return newest


def minute_deltas(ids, epoch, goods, valids, events, old):  # noqa: ANN001, ANN202 - parallel lists
    """Per SLO: (epoch minute, Δgood, Δvalid, Δevents, Δpresent) of each written minute."""
    out: dict[int, list[tuple[int, float, float, float, int]]] = {}
    for slo_id, minute, good, valid, event_count in zip(ids, epoch, goods, valids, events, strict=True):
        previous = old.get((slo_id, minute))
        if previous is None:
            change = (minute, good, valid, event_count, 1)
        else:
            change = (minute, good - previous[0], valid - previous[1], event_count - previous[2], 0)
        out.setdefault(slo_id, []).append(change)
    return out
