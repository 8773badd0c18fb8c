"""Feeding the budget buckets from stored telemetry (`slo.telemetry.selectors.minute_arrays`).

Telemetry owns ingest (pull and push, several sources, coverage rules); the budget engine keeps
its own buckets in budget units. Every write of SLI minutes records the span it wrote
(`SliSpan`, in the same transaction; also a retired feed and an SLO edit, see
`slo.telemetry.spans`). `budget_sync_pending`, the periodic task, syncs exactly those spans,
whatever their age within the minute retention: a Prometheus backfill of three days, a push of a
minute two days old. A sync re-reads the spans' minutes, converts the present ones to budget
units and writes only the minutes that differ from what the buckets hold, so a re-run is cheap
and harmless.

Claims: a transaction locks spans with `FOR UPDATE SKIP LOCKED` (oldest first), syncs them and
deletes them before it commits. Two workers never take the same span; a crash rolls the deletes
back with the writes, so the spans wait for the next run; a span committed after the claim (its
minutes too) stays for the next run. Sync transactions also hold a try-lock, so only one runs at a
time (`_sync_lock`); a second run finds it taken and leaves the spans to the first. `budget_sync` re-reads a recent window of every SLO (tests,
benchmarks, manual repair).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from slo.budget.buckets import MinuteCount, floor_minute, record_minutes
from slo.budget.evaluation import active_specs, parsed_spec
from slo.corrections.exclusion import exclusions_for
from slo.models import Slo
from slo.spec import SloSpec

CHUNK = 2000
# SLO x minute cells read at once (about 100 bytes each in the arrays below): bounds memory.
MAX_READ_CELLS = 2_000_000
# Spans claimed per transaction, and the cells one transaction syncs at most (claimed spans past
# it are left for the next transaction). Writing new minutes runs at roughly 10,000-20,000 a
# second (`record_minutes`), so a transaction commits within a minute or so and a 3-day backfill
# of 10,000 SLOs (43 M minutes) advances in steps instead of one transaction the task time limit
# would kill and a retry would repeat.
CLAIM_LIMIT = 50_000
MAX_TRANSACTION_CELLS = 500_000
# Two spans of one SLO this close are read as one (the minutes between are re-read harmlessly).
MERGE_GAP_MINUTES = 15
# Distinct time ranges read per transaction before ranges are widened to whole hours (spans from
# many gateways' late minutes would otherwise cost one read each).
MAX_RANGES = 64


@dataclass(frozen=True)
class SpanSync:
    """What one `budget_sync_pending` run did."""

    spans: int
    minutes_read: int
    minutes_written: int


def budget_sync(*, now: datetime, minutes: int = 15) -> int:
    """Sync minutes `[now - minutes, now)` of every active SLO. Returns the minutes written."""
    end = _epoch_minute(floor_minute(now))
    start = end - minutes
    slos = list(
        Slo.objects.filter(archived_at__isnull=True).order_by("pk").values_list("pk", "spec", "version")
    )
    written = 0
    for lo in range(0, len(slos), CHUNK):
        chunk = slos[lo : lo + CHUNK]
        specs = {pk: parsed_spec(pk, version, spec) for pk, spec, version in chunk}
        with transaction.atomic():
            written += _sync_block([pk for pk, _spec, _version in chunk], specs, start, end, now)
    return written


def budget_sync_pending(
    *,
    now: datetime,
    limit: int = CLAIM_LIMIT,
    max_cells: int = MAX_TRANSACTION_CELLS,
    max_seconds: float | None = None,
    wait: bool = False,
) -> SpanSync:
    """Sync every recorded span (see the module docstring), one bounded transaction at a time,
    until none is left, the rest is held by another worker, or (with `max_seconds`) no new
    transaction should start: the next run continues from the spans left. With `wait` (the
    evaluation, which must see every minute written before it), a sync in progress is waited for
    and the spans it leaves are taken, instead of stopping."""
    from slo.models.telemetry import SliSpan

    started = time.monotonic()
    spans = read = written = 0
    while max_seconds is None or time.monotonic() - started < max_seconds:
        with transaction.atomic():
            if not _sync_lock(wait):
                break  # another worker is syncing: it takes the spans (ours would wait for it)
            claimed = list(
                SliSpan.objects.select_for_update(skip_locked=True)
                .order_by("id")
                .values_list("id", "slo_id", "first_minute", "last_minute")[:limit]
            )
            if not claimed:
                break
            # Oldest first, up to the cell budget (at least one span); the rest stay for the next loop.
            taken, cells = [], 0
            for span in claimed:
                cells += span[3] - span[2] + 1
                if taken and cells > max_cells:
                    break
                taken.append(span)
            minutes_read, minutes_written = _sync_spans([span[1:] for span in taken], now)
            _spans_delete([span[0] for span in taken])
        spans += len(taken)
        read += minutes_read
        written += minutes_written
        if len(claimed) < limit and len(taken) == len(claimed):
            break
    return SpanSync(spans=spans, minutes_read=read, minutes_written=written)


def _sync_lock(wait: bool = False) -> bool:
    """One sync transaction at a time (PostgreSQL; SQLite has one writer). Disjoint claims alone
    are not enough: two syncs holding different spans of one minute could read it before and
    after a re-send, and the older read, written last, would stay in the buckets while its span
    is gone. Under this lock a sync reads telemetry after every earlier sync committed. With
    `wait`, wait for the sync holding it to commit instead of leaving the spans to it."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('slo_budget_sync'))")
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext('slo_budget_sync'))")
        return bool(cursor.fetchone()[0])


def _sync_spans(spans: Sequence[tuple[int, int, int]], now: datetime) -> tuple[int, int]:
    """Sync `(slo id, first minute, last minute)` spans of active SLOs; minutes older than the
    minute retention are skipped (`record_minutes` ignores them). Returns (cells read, written)."""
    cutoff = _epoch_minute(now) - settings.TELEMETRY_MINUTE_RETENTION_DAYS * 1440
    wanted: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for slo_id, lo, hi in spans:
        if hi >= cutoff:
            wanted[slo_id].append((max(lo, cutoff), hi))
    specs = _active_specs(list(wanted))
    ranges = _ranges({slo_id: wanted[slo_id] for slo_id in specs}, quantum=1)
    if len(ranges) > MAX_RANGES:
        ranges = _ranges({slo_id: wanted[slo_id] for slo_id in specs}, quantum=60)
    read = written = 0
    for (lo, hi), ids in sorted(ranges.items()):
        stop = hi + 1
        # Long ranges in day-long pieces, SLOs in chunks that keep each read under the cell bound.
        for first in range(lo, stop, 1440):
            last = min(first + 1440, stop)
            per_read = max(1, min(CHUNK, MAX_READ_CELLS // (last - first)))
            for k in range(0, len(ids), per_read):
                chunk = ids[k : k + per_read]
                written += _sync_block(chunk, specs, first, last, now)
                read += len(chunk) * (last - first)
    return read, written


def _active_specs(ids: list[int]) -> dict[int, SloSpec]:
    """Parsed specs of the SLOs among `ids` that are not archived. On PostgreSQL the ids go as one
    array and only documents the parsed-spec cache lacks are read (`evaluation.active_specs`)."""
    if connection.vendor == "postgresql":
        rows, docs = active_specs(ids)
        return {
            pk: parsed_spec(pk, version, docs.get(pk), digest=digest) for pk, version, digest, _s, _n in rows
        }
    active = Slo.objects.filter(archived_at__isnull=True)
    chunks = [active.filter(pk__in=ids[k : k + 10_000]) for k in range(0, len(ids), 10_000)]
    return {
        pk: parsed_spec(pk, version, spec)
        for rows in chunks
        for pk, spec, version in rows.values_list("pk", "spec", "version")
    }


def _ranges(wanted: dict[int, list[tuple[int, int]]], *, quantum: int) -> dict[tuple[int, int], list[int]]:
    """SLO ids by the (first, last) minute range to read: each SLO's spans widened to `quantum`
    boundaries and merged when they overlap or nearly touch."""
    out: dict[tuple[int, int], list[int]] = defaultdict(list)
    for slo_id, spans in wanted.items():
        merged: list[list[int]] = []
        for lo, hi in sorted((lo - lo % quantum, hi - hi % quantum + quantum - 1) for lo, hi in spans):
            if merged and lo <= merged[-1][1] + MERGE_GAP_MINUTES + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        for lo, hi in merged:
            out[(lo, hi)].append(slo_id)
    return out


def _spans_delete(ids: list[int]) -> None:
    """Delete synced spans by id (one array parameter on PostgreSQL, chunks on SQLite)."""
    from slo.models.telemetry import SliSpan

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {SliSpan._meta.db_table} WHERE id = ANY(%s)", [ids])
        return
    for start in range(0, len(ids), 10_000):
        SliSpan.objects.filter(pk__in=ids[start : start + 10_000]).delete()


def _sync_block(ids: list[int], specs: dict[int, SloSpec], first: int, stop: int, now: datetime) -> int:
    """Write the present minutes `[first, stop)` (epoch minutes) of SLOs `ids` whose budget units
    differ from the buckets. Returns the minutes written."""
    from slo.telemetry.selectors import minute_arrays, minute_datetime

    good, valid, present = minute_arrays(ids, first, stop)
    good = good.astype(np.float64)
    valid = valid.astype(np.float64)
    # Minutes a status correction excludes hold zero budget units (neither good nor bad).
    exclusions = exclusions_for({i: specs[i] for i in ids}, first, stop)
    if exclusions:
        excluded = exclusions.mask(ids, first, stop)
        good[excluded] = 0.0
        valid[excluded] = 0.0
    start = minute_datetime(first)
    units = _units([specs[i] for i in ids], good, valid)
    mine, mine_present = _current(ids, start, good.shape[1])
    differs = (~mine_present) | (np.abs(units - mine) > 0).any(axis=2)
    rows, cols = np.nonzero(present & differs)
    changed = [
        MinuteCount(ids[r], start + timedelta(minutes=c), good[r, c], valid[r, c])
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
    ]
    if not changed:
        return 0
    return record_minutes(changed, specs, now=now, exclusions=exclusions)


def _epoch_minute(moment: datetime) -> int:
    return int(moment.timestamp() // 60)


def _units(specs: list[SloSpec], good: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(good units, valid units, events) per cell, shaped (n, minutes, 3): `to_budget_units` on
    whole rows (a backfill reads days of minutes per SLO)."""
    out = np.empty((*good.shape, 3))
    capped = np.minimum(good, valid)
    out[:, :, 0], out[:, :, 1], out[:, :, 2] = capped, valid, valid
    for row, spec in enumerate(specs):
        if spec.budgeting_method == "occurrences":
            continue
        traffic = valid[row] > 0
        ratio = np.divide(capped[row], valid[row], out=np.zeros_like(valid[row]), where=traffic)
        if spec.budgeting_method == "timeslices":
            target = spec.timeslice_target if spec.timeslice_target is not None else 1.0
            ratio = (ratio >= target).astype(np.float64)
        out[row, :, 0] = np.where(traffic, ratio, 0.0)
        out[row, :, 1] = traffic.astype(np.float64)
    return out


def _current(ids: list[int], start: datetime, n_minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """What the buckets hold: (values shaped (n, minutes, 3), present mask)."""
    end = start + timedelta(minutes=n_minutes)
    values = np.zeros((len(ids), n_minutes, 3))
    present = np.zeros((len(ids), n_minutes), dtype=bool)
    row_of = {slo_id: i for i, slo_id in enumerate(ids)}
    if connection.vendor != "postgresql":
        from slo.models.budget import BudgetMinute

        records = BudgetMinute.objects.filter(slo_id__in=ids, minute__gte=start, minute__lt=end).values_list(
            "slo_id", "minute", "good", "valid", "events"
        )
        for slo_id, minute, good, valid, events in records:
            row, col = row_of[slo_id], int((minute - start).total_seconds() // 60)
            values[row, col] = (good, valid, events)
            present[row, col] = True
        return values, present
    with connection.cursor() as cursor:
        # The column index computed in SQL: parsing 150,000 timestamps in Python costs seconds.
        cursor.execute(
            "SELECT slo_id, (extract(epoch FROM minute)::bigint - %s) / 60, good, valid, events "
            "FROM slo_budgetminute WHERE slo_id = ANY(%s) AND minute >= %s AND minute < %s",
            [int(start.timestamp()), ids, start, end],
        )
        records = cursor.fetchall()
    if records:
        data = np.asarray(records, dtype=np.float64)
        rows = np.fromiter((row_of[int(i)] for i in data[:, 0]), dtype=np.int64, count=len(data))
        cols = data[:, 1].astype(np.int64)
        values[rows, cols] = data[:, 2:5]
        present[rows, cols] = True
    return values, present
