"""Spans of SLO minutes the budget feed must sync (`SliSpan`): what an ingest wrote, or whose
coverage changed.

Every write of SLI minutes (push, pull, import: `services._store`) records the runs of minutes it
wrote per SLO in the same transaction, so a committed minute always has a span; retiring a feed
records the minutes its end turns from missing to present; an SLO edit records the minutes whose
budget units may change. `slo.budget.feed.budget_sync_pending` consumes them, whatever their age.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from slo.models.telemetry import SliSpan
from slo.telemetry.derive import SliRow
from slo.telemetry.presence import PUSH_SILENCE_MINUTES
from slo.telemetry.selectors import epoch_minute_floor
from slo.telemetry.sql import Statement, insert_statements, run_statements

# Minutes of one SLO at most this far apart are one span: the sync re-reads the few unwritten
# minutes between them rather than running one more read.
SPAN_GAP_MINUTES = 60

_SPAN_TABLE = SliSpan._meta.db_table


def written_spans(rows: Sequence[SliRow]) -> list[tuple[int, int, int]]:
    """(slo id, first minute, last minute) runs that cover the rows' minutes, per SLO."""
    by_slo: dict[int, list[int]] = defaultdict(list)
    for r in rows:
        by_slo[r.slo_id].append(r.minute)
    spans = []
    for slo_id, minutes in by_slo.items():
        minutes.sort()
        lo = hi = minutes[0]
        for minute in minutes:
            if minute > hi + SPAN_GAP_MINUTES:
                spans.append((slo_id, lo, hi))
                lo = minute
            hi = minute
        spans.append((slo_id, lo, hi))
    return spans


def span_statements(spans: Sequence[tuple[int, int, int]], now: datetime) -> list[Statement]:
    """Record spans: plain inserts in the caller's transaction, so they commit with the minutes they
    describe, and an ingest never waits for a sync that holds older spans."""
    return insert_statements(
        _SPAN_TABLE,
        ("slo_id", "first_minute", "last_minute", "marked_at"),
        [(slo_id, lo, hi, now.timestamp()) for slo_id, lo, hi in spans],
        array_types=("bigint", "bigint", "bigint", "double precision"),
    )


def telemetry_spans_mark(*, slo_ids: Sequence[int], now: datetime | None = None) -> int:
    """Have the budget feed re-read every stored minute of these SLOs (those in the minute
    retention), e.g. after an edit that changes how minutes convert to budget units. Returns the
    spans recorded."""
    now = now or timezone.now()
    current = epoch_minute_floor(now)
    first = current - settings.TELEMETRY_MINUTE_RETENTION_DAYS * 1440
    run_statements(span_statements([(slo_id, first, current) for slo_id in slo_ids], now))
    return len(slo_ids)


def feeds_retire(feeds: Any, now: datetime) -> int:
    """Retire the feeds of a `SliFeed` queryset and record the minutes whose coverage that changes:
    a feed no longer expected after its last minute can turn minutes other sources reported from
    missing to present (a push feed was expected for the silence grace after its last minute, a
    pull feed until now). Returns the feeds retired."""
    current = epoch_minute_floor(now)
    live = feeds.exclude(mode="retired")
    spans = []
    for slo_id, mode, last in live.values_list("slo_id", "mode", "last_minute"):
        end = min(last + PUSH_SILENCE_MINUTES if mode == "push" else current, current)
        if end > last:
            spans.append((slo_id, last + 1, end))
    run_statements(span_statements(spans, now))
    return live.update(mode="retired")
