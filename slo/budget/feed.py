"""Feeding the budget buckets from stored telemetry (`slo.telemetry.selectors.sli_minutes`).

Telemetry owns ingest (pull and push, several sources, coverage rules); the budget engine keeps
its own buckets in budget units. A sync re-reads a recent span of minutes for every SLO, converts
the present ones to budget units, and writes only the minutes that differ from what the buckets
hold, so a re-run is cheap and harmless. The periodic task syncs the last 15 minutes every minute
(pull lag plus the puller's 10-minute lookback) and the last day every hour (late pushes and
backfills after an outage); an older backfill needs a manual run with a larger `minutes`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from django.db import connection, transaction

from slo.budget.buckets import MinuteCount, floor_minute, record_minutes, to_budget_units
from slo.models import Slo
from slo.spec import SloSpec

CHUNK = 2000


def budget_sync(*, now: datetime, minutes: int = 15) -> int:
    """Sync minutes `[now - minutes, now)` of every active SLO. Returns the minutes written."""
    from slo.telemetry.selectors import sli_minutes

    end = floor_minute(now)
    start = end - timedelta(minutes=minutes)
    slos = list(Slo.objects.filter(archived_at__isnull=True).order_by("pk").values_list("pk", "spec"))
    written = 0
    for lo in range(0, len(slos), CHUNK):
        chunk = slos[lo : lo + CHUNK]
        ids = [pk for pk, _ in chunk]
        specs = {pk: SloSpec.model_validate(spec) for pk, spec in chunk}
        data = sli_minutes(ids, start, end)
        mine = _current(ids, start, end)
        changed = []
        rows, cols = np.nonzero(data.present)
        for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
            slo_id = ids[row]
            minute = data.start + timedelta(minutes=col)
            good, valid = float(data.good[row, col]), float(data.valid[row, col])
            if mine.get((slo_id, minute)) != to_budget_units(specs[slo_id], good, valid):
                changed.append(MinuteCount(slo_id, minute, good, valid))
        if changed:
            with transaction.atomic():
                written += record_minutes(changed, specs)
    return written


def _current(ids: list[int], start: datetime, end: datetime) -> dict[tuple[int, datetime], tuple[float, float, float]]:
    if connection.vendor != "postgresql":
        from slo.models.budget import BudgetMinute

        rows = BudgetMinute.objects.filter(slo_id__in=ids, minute__gte=start, minute__lt=end)
        return {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows.values_list("slo_id", "minute", "good", "valid", "events")}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT slo_id, minute, good, valid, events FROM slo_budgetminute "
            "WHERE slo_id = ANY(%s) AND minute >= %s AND minute < %s",
            [ids, start, end],
        )
        return {(r[0], r[1]): (r[2], r[3], r[4]) for r in cursor.fetchall()}
