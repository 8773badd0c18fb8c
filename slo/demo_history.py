"""Weeks of per-minute SLI history for the demo SLOs, so a fresh install has budgets to look at.

Deterministic (seeded): diurnal traffic, a steady error level well inside each budget, and a few
stories: an incident on shelf-vision's edge latency three days ago, fraud-score's edge latency
burning its budget low, and a two-hour telemetry gap on doc-summarizer (shown as missing, not good).
The history feed is stored as retired at its last minute, so it never makes later minutes missing;
live data comes from the demo gateways.

The budget engine's status history (the points the SLO page's budget chart reads) is back-filled
too: the engine evaluates each seeded SLO from its buckets at every whole hour of the history, as
its periodic evaluation would have, and only the history points are written (not the current
status, and no alert transitions: nothing is notified about the past).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from slo.budget.buckets import HOUR, MinuteCount, ceil_hour, floor_hour, window_sums_for
from slo.budget.evaluation import budget_minutes_record, parsed_spec, slo_evaluate_all
from slo.engine import ALERT_STATES, DATA_QUALITY, batch_params, evaluate_batch
from slo.models import Slo
from slo.models.budget import SloStatusPoint
from slo.models.telemetry import SliFeed
from slo.telemetry.derive import SliRow
from slo.telemetry.selectors import epoch_minute_floor, minute_datetime
from slo.telemetry.storage import telemetry_sli_rows_store

SOURCE = "demo:history"

# requests per minute at the daily peak, and the bad-event ratio as a share of the error budget
PROFILES: dict[tuple[str, str], dict[str, Any]] = {
    ("shelf-vision", "edge-latency"): {"rpm": 1200, "burn": 0.4, "incident": (3 * 1440, 90, 0.09)},
    ("shelf-vision", "edge-availability"): {"rpm": 1200, "burn": 0.3, "incident": (3 * 1440, 40, 0.03)},
    ("shelf-vision", "cloud-latency"): {"rpm": 300, "burn": 0.5},
    ("shelf-vision", "interactive-latency"): {"rpm": 960, "burn": 0.4, "incident": (3 * 1440, 90, 0.09)},
    ("shelf-vision", "batch-availability"): {"rpm": 240, "burn": 0.2},
    ("shelf-vision", "cloud-ttft"): {"rpm": 300, "burn": 0.3},
    ("shelf-vision", "fallback-success"): {"rpm": 80, "burn": 0.6},
    ("fraud-score", "edge-latency"): {"rpm": 900, "burn": 0.9, "incident": (20 * 60, 240, 0.006)},
    ("fraud-score", "cloud-availability"): {"rpm": 200, "burn": 0.2},
    ("fraud-score", "cache-correctness"): {"rpm": 400, "burn": 0.5},
    ("doc-summarizer", "cloud-availability"): {"rpm": 30, "burn": 0.3, "gap": (2 * 1440, 120)},
    ("doc-summarizer", "private-freshness"): {"rpm": 30, "burn": 0.4},
}


def seed_demo(*, days: int, stdout: Any) -> None:
    """Generate `days` of history for the demo SLOs that have none yet (idempotent)."""
    if days <= 0:
        return
    end = epoch_minute_floor(timezone.now() - timedelta(minutes=2))
    start = end - days * 1440
    rng = np.random.default_rng(20261127)
    slos = Slo.objects.filter(archived_at__isnull=True).select_related("service")
    seeded = set(SliFeed.objects.filter(source=SOURCE).values_list("slo_id", flat=True))
    todo = [slo for slo in slos if PROFILES.get((slo.service.name, slo.name)) and slo.pk not in seeded]
    if not todo:
        stdout.write("demo history: already seeded")
        return
    total = 0
    clock = time.monotonic()
    for index, slo in enumerate(todo, 1):
        rows = _history(slo.pk, slo.objective, PROFILES[(slo.service.name, slo.name)], start, end, rng)
        total += telemetry_sli_rows_store(source=SOURCE, rows=rows, mode="retired")
        # The budget engine keeps its own buckets (in budget units); its periodic sync only
        # looks back minutes, so history is handed to it directly.
        budget_minutes_record(
            rows=[
                MinuteCount(row.slo_id, minute_datetime(row.minute), row.good, row.valid)
                for row in rows
                if row.present
            ]
        )
        stdout.write(
            f"demo history: {index}/{len(todo)} {slo.service.name}/{slo.name}: {days} days of minutes "
            f"({time.monotonic() - clock:.0f}s)"
        )
    points = status_history_backfill(
        slo_ids=[slo.pk for slo in todo],
        start=minute_datetime(start),
        end=minute_datetime(end),
        stdout=stdout,
    )
    report = slo_evaluate_all(now=timezone.now())
    stdout.write(
        f"demo history: {total} SLO minutes over {days} days, {points} hourly budget points; "
        f"{report.evaluated} SLOs evaluated ({time.monotonic() - clock:.0f}s)"
    )


def status_history_backfill(
    *, slo_ids: Sequence[int], start: datetime, end: datetime, stdout: Any = None
) -> int:
    """Status history points at every whole hour in `(start, end]` for these SLOs, computed by the
    budget engine from the buckets as of that hour. Existing points are kept. Returns points written."""
    rows = list(
        Slo.objects.filter(pk__in=slo_ids, archived_at__isnull=True).values_list("id", "version", "spec")
    )
    if not rows:
        return 0
    ids = [slo_id for slo_id, _v, _s in rows]
    specs = [parsed_spec(slo_id, version, spec) for slo_id, version, spec in rows]
    instants = []
    at = ceil_hour(start + HOUR)  # the first hour has at least an hour of history behind it
    while at <= floor_hour(end):
        instants.append(at)
        at += HOUR
    written = 0
    batch: list[SloStatusPoint] = []
    for index, at in enumerate(instants, 1):
        params = batch_params(specs, now=at)
        sums, _queries = window_sums_for(ids, params, at)
        result = evaluate_batch(sums, params)
        period_col = len(params.burn_windows_min)
        hour_col = params.burn_windows_min.index(60)
        for row, slo_id in enumerate(ids):
            batch.append(
                SloStatusPoint(
                    slo_id=slo_id,
                    at=at,
                    sli=_finite(result.sli[row, period_col]),
                    burn_rate_1h=_finite(result.burn_rate[row, hour_col]),
                    error_budget_remaining=_finite(result.error_budget_remaining_ratio[row]),
                    alert_state=ALERT_STATES[result.alert_state[row]],
                    data_quality=DATA_QUALITY[result.data_quality[row, period_col]],
                )
            )
        if len(batch) >= 2000 or index == len(instants):
            SloStatusPoint.objects.bulk_create(batch, ignore_conflicts=True)
            written += len(batch)
            batch = []
        if stdout is not None and (index % 168 == 0 or index == len(instants)):
            stdout.write(f"demo history: budget history {index}/{len(instants)} hours evaluated")
    return written


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _history(
    slo_id: int, objective: float, profile: dict[str, Any], start: int, end: int, rng: np.random.Generator
) -> list[SliRow]:
    minutes = np.arange(start, end)
    hour_of_day = (minutes % 1440) / 60.0
    # Diurnal traffic: a trough at 03:00 UTC, a peak at 15:00.
    shape = 0.55 + 0.45 * np.sin((hour_of_day - 9.0) / 24.0 * 2 * math.pi)
    valid = rng.poisson(profile["rpm"] * shape).astype(np.int64)
    bad_ratio = np.full(minutes.shape, (1 - objective / 100.0) * profile["burn"])
    incident = profile.get("incident")
    if incident is not None:
        ago, length, ratio = incident
        first = len(minutes) - ago
        bad_ratio[max(first, 0) : max(first + length, 0)] = ratio
    bad = rng.binomial(valid, np.clip(bad_ratio, 0, 1)).astype(np.int64)
    present = np.ones(minutes.shape, dtype=bool)
    gap = profile.get("gap")
    if gap is not None:
        ago, length = gap
        present[len(minutes) - ago : len(minutes) - ago + length] = False
    return [
        SliRow(slo_id, int(m), int(v - b) if p else 0, int(v) if p else 0, bool(p))
        for m, v, b, p in zip(minutes.tolist(), valid.tolist(), bad.tolist(), present.tolist(), strict=True)
    ]
