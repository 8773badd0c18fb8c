"""Where both telemetry paths end: the SLI minutes, the sources' feeds and the hourly rollups.

Push ingest (`slo.telemetry.ingest`) and Prometheus pulls (`slo.telemetry.pull`) both end in
`sli_rows_write`, inside the caller's transaction: it upserts the per-minute SLI rows (re-sending a
minute replaces it, never adds), extends the sources' feeds (what "missing" is measured against)
and marks every touched hour as pending. `telemetry_rollup_pending` (a task enqueued on commit,
plus a periodic sweep) recomputes pending hours: it claims them with SKIP LOCKED, and an ingest
re-marking an hour locks that row until it commits, so a rollup never deletes the mark of minutes
it could not see yet. Writers of one source are serialised by an advisory lock (their
delete-then-insert of series must not interleave).

Telemetry data is not audited row by row (it is data, not configuration, and arrives many times a
second); it is counted in the control plane's metrics and the sources' statistics.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from django.db import transaction
from django.utils import timezone

from slo.models.telemetry import SliFeed, SliHour, SliHourPending, SliMinute
from slo.telemetry.derive import SliRow
from slo.telemetry.selectors import minute_arrays
from slo.telemetry.spans import span_statements, written_spans
from slo.telemetry.sql import Statement, is_postgres, run_statements, upsert, upsert_statements

logger = logging.getLogger(__name__)

_SLI_TABLE = SliMinute._meta.db_table
_FEED_TABLE = SliFeed._meta.db_table
_HOUR_TABLE = SliHour._meta.db_table
_PENDING_TABLE = SliHourPending._meta.db_table


def sli_rows_write(source: str, mode: str, rows: Sequence[SliRow], now: datetime) -> int:
    """Upsert SLI minutes, extend the feeds, mark touched hours pending (one round trip on
    PostgreSQL). Runs inside the caller's transaction. Returns the hours marked."""
    if not rows:
        return 0
    spans: dict[int, list[int]] = {}
    touched: set[tuple[int, int]] = set()
    for r in rows:
        span = spans.get(r.slo_id)
        if span is None:
            spans[r.slo_id] = [r.minute, r.minute]
        else:
            span[0] = min(span[0], r.minute)
            span[1] = max(span[1], r.minute)
        touched.add((r.slo_id, r.minute // 60))
    statements: list[Statement] = [
        *span_statements(written_spans(rows), now),
        *upsert_statements(
            _SLI_TABLE,
            ("slo_id", "minute", "source", "good", "valid", "present"),
            ("slo_id", "minute", "source"),
            [(r.slo_id, r.minute, source, r.good, r.valid, bool(r.present)) for r in rows],
            array_types=("bigint", "bigint", "text", "bigint", "bigint", "boolean"),
        ),
        *upsert_statements(
            _FEED_TABLE,
            ("slo_id", "source", "mode", "first_minute", "last_minute"),
            ("slo_id", "source"),
            [(slo_id, source, mode, lo, hi) for slo_id, (lo, hi) in spans.items()],
            update={
                "first_minute": "{least}({table}.first_minute, excluded.first_minute)",
                "last_minute": "{greatest}({table}.last_minute, excluded.last_minute)",
            },
            array_types=("bigint", "text", "text", "bigint", "bigint"),
        ),
        # DO UPDATE (not DO NOTHING): it locks an existing mark until we commit, so a rollup
        # running now skips it instead of deleting it without seeing our minutes.
        *upsert_statements(
            _PENDING_TABLE,
            ("slo_id", "hour", "marked_at"),
            ("slo_id", "hour"),
            sorted((slo_id, hour, now.timestamp()) for slo_id, hour in touched),
            array_types=("bigint", "bigint", "double precision"),
        ),
    ]
    run_statements(statements)
    return len(touched)


def telemetry_rollup_pending(*, limit: int = 20_000) -> int:
    """Recompute the hourly rollups of pending hours, `limit` per transaction, until none is left
    (or another worker holds the rest). Returns the hours rolled up."""
    done = 0
    while True:
        with transaction.atomic():
            claimed = list(
                SliHourPending.objects.select_for_update(skip_locked=True)
                .order_by("slo_id", "hour")
                .values_list("slo_id", "hour")[:limit]
            )
            if not claimed:
                return done
            touched: dict[int, set[int]] = defaultdict(set)
            for slo_id, hour in claimed:
                touched[slo_id].add(hour)
            _rollup(touched)
            _pending_delete(claimed)
        done += len(claimed)
        if len(claimed) < limit:
            return done


def _pending_delete(claimed: Sequence[tuple[int, int]]) -> None:
    """Delete claimed (slo, hour) marks. One statement joined against two arrays on PostgreSQL: a
    row-value `IN` list of this size overflows its parser's stack (at about 8,000 pairs); SQLite
    (one writer) deletes SLO by SLO."""
    if is_postgres():
        run_statements(
            [
                (
                    f"DELETE FROM {_PENDING_TABLE} p USING unnest(%s::bigint[], %s::bigint[]) AS c(slo_id, hour) "
                    "WHERE p.slo_id = c.slo_id AND p.hour = c.hour",
                    [[slo_id for slo_id, _ in claimed], [hour for _, hour in claimed]],
                )
            ]
        )
        return
    hours_of: dict[int, list[int]] = defaultdict(list)
    for slo_id, hour in claimed:
        hours_of[slo_id].append(hour)
    for slo_id, hours in hours_of.items():
        for start in range(0, len(hours), 10_000):
            SliHourPending.objects.filter(slo_id=slo_id, hour__in=hours[start : start + 10_000]).delete()


def _rollup(touched: dict[int, set[int]]) -> int:
    """Recompute the hourly rollups of the touched (SLO, hour) pairs from the minutes."""
    if not touched:
        return 0
    slo_ids = sorted(touched)
    all_hours = sorted({h for hours in touched.values() for h in hours})
    out: list[tuple[int, int, int, int, int]] = []
    # Contiguous runs of hours keep the minute arrays small when the hours are far apart.
    for run in _runs(all_hours):
        first, stop = run[0] * 60, (run[-1] + 1) * 60
        good, valid, present = minute_arrays(slo_ids, first, stop)
        rows, n = good.shape
        # Good capped at valid per minute, as the budget engine does with minute buckets.
        by_hour = [
            a.reshape(rows, n // 60, 60).sum(axis=2)
            for a in (np.minimum(good, valid), valid, present.astype(np.int64))
        ]
        for row, slo_id in enumerate(slo_ids):
            for hour in touched[slo_id]:
                if run[0] <= hour <= run[-1]:
                    col = hour - run[0]
                    out.append(
                        (
                            slo_id,
                            hour,
                            int(by_hour[0][row, col]),
                            int(by_hour[1][row, col]),
                            int(by_hour[2][row, col]),
                        )
                    )
    upsert(_HOUR_TABLE, ("slo_id", "hour", "good", "valid", "present_minutes"), ("slo_id", "hour"), out)
    return len(out)


def _runs(hours: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for hour in hours:
        if runs and hour == runs[-1][-1] + 1:
            runs[-1].append(hour)
        else:
            runs.append([hour])
    return runs


def telemetry_sli_rows_store(
    *, source: str, rows: Sequence[SliRow], mode: str = "push", now: datetime | None = None
) -> int:
    """Store already-derived SLI minutes for `source` (demo history, importers), then roll up.

    Same idempotent upsert as ingest: re-storing a minute replaces it. Returns the rows stored."""
    if mode not in ("push", "retired"):
        raise ValueError("mode must be push or retired")
    now = now or timezone.now()
    for start in range(0, len(rows), 50_000):
        with transaction.atomic():
            sli_rows_write(source, mode, rows[start : start + 50_000], now)
    telemetry_rollup_pending()
    return len(rows)


# Enqueue at most one rollup task per process per this many seconds: one run rolls up every
# pending hour, and the periodic sweep catches marks made after the last run.
ROLLUP_DEBOUNCE_S = 1.0
_last_rollup_enqueued = [0.0]


def schedule_rollup() -> None:
    """Enqueue a rollup run (ingest calls it on commit), at most once per ROLLUP_DEBOUNCE_S."""
    now = time.monotonic()
    if now - _last_rollup_enqueued[0] < ROLLUP_DEBOUNCE_S:
        return
    _last_rollup_enqueued[0] = now
    from kombu.exceptions import OperationalError as BrokerError

    from slo.tasks.telemetry import rollup_hours

    try:
        rollup_hours.delay()
    except (BrokerError, OSError) as exc:
        # the data is committed and the hour stays pending: the periodic sweep rolls it up
        logger.warning("could not enqueue the telemetry rollup (%s); the periodic sweep will do it", exc)
