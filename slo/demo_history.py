"""Weeks of per-minute SLI history for the demo SLOs, so a fresh install has budgets to look at.

Deterministic (seeded): diurnal traffic, a steady error level well inside each budget, and a few
stories: an incident on shelf-vision's edge latency three days ago, fraud-score's edge latency
burning its budget low, and a two-hour telemetry gap on doc-summarizer (shown as missing, not good).
The history feed is stored as retired at its last minute, so it never makes later minutes missing;
live data comes from the demo gateways.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from slo.budget.buckets import MinuteCount
from slo.budget.evaluation import budget_minutes_record, slo_evaluate_all
from slo.models import Slo
from slo.models.telemetry import SliFeed
from slo.telemetry.derive import SliRow
from slo.telemetry.selectors import epoch_minute_floor, minute_datetime
from slo.telemetry.services import telemetry_sli_rows_store

SOURCE = "demo:history"

# requests per minute at the daily peak, and the bad-event ratio as a share of the error budget
PROFILES: dict[tuple[str, str], dict[str, Any]] = {
    ("shelf-vision", "edge-latency"): {"rpm": 1200, "burn": 0.4, "incident": (3 * 1440, 90, 0.09)},
    ("shelf-vision", "edge-availability"): {"rpm": 1200, "burn": 0.3, "incident": (3 * 1440, 40, 0.03)},
    ("shelf-vision", "cloud-latency"): {"rpm": 300, "burn": 0.5},
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
    total = 0
    for slo in slos:
        profile = PROFILES.get((slo.service.name, slo.name))
        if profile is None or slo.pk in seeded:
            continue
        rows = _history(slo.pk, slo.objective, profile, start, end, rng)
        total += telemetry_sli_rows_store(source=SOURCE, rows=rows, mode="retired")
        # The budget engine keeps its own buckets (in budget units); its periodic sync only
        # looks back minutes, so history is handed to it directly.
        budget_minutes_record(rows=[
            MinuteCount(row.slo_id, minute_datetime(row.minute), row.good, row.valid) for row in rows if row.present
        ])
    if total:
        report = slo_evaluate_all(now=timezone.now())
        stdout.write(f"demo history: {total} SLO minutes over {days} days; {report.evaluated} SLOs evaluated")


def _history(slo_id: int, objective: float, profile: dict[str, Any], start: int, end: int,
             rng: np.random.Generator) -> list[SliRow]:
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
        bad_ratio[max(first, 0):max(first + length, 0)] = ratio
    bad = rng.binomial(valid, np.clip(bad_ratio, 0, 1)).astype(np.int64)
    present = np.ones(minutes.shape, dtype=bool)
    gap = profile.get("gap")
    if gap is not None:
        ago, length = gap
        present[len(minutes) - ago:len(minutes) - ago + length] = False
    return [
        SliRow(slo_id, int(m), int(v - b) if p else 0, int(v) if p else 0, bool(p))
        for m, v, b, p in zip(minutes.tolist(), valid.tolist(), bad.tolist(), present.tolist(), strict=True)
    ]
