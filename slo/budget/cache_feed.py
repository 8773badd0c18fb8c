"""Feed the cache alerts from pushed telemetry: hit-rate drop and stale hits, per service.

The checks themselves are pure (`slo.budget.cache_checks`) and `cache_alerts_apply` records the
transitions; this module only builds the two windows from `SeriesMinute` sums of the contract's
cache lookup counter (`inference_cache_lookups_total{layer, result}`), summed over tiers, layers
and sources. A lookup that misses one layer and hits the next counts in both: the baseline is
summed the same way, so the relative drop stays comparable.

Thresholds: the per-service values live in the cache config documents, which belong to routing,
and slo never imports routing. Callers that know them pass `thresholds` (the periodic task,
`routing.tasks.delivery.cache_alerts`, reads them from each service's cache config); services
without any get `CacheThresholds`' defaults.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, Sum

from slo.budget.cache_checks import CacheWindow
from slo.budget.services import cache_alerts_apply
from slo.contract import CACHE_LOOKUPS_TOTAL
from slo.models.catalog import Service
from slo.models.telemetry import SeriesMinute
from slo.telemetry.selectors import epoch_minute_floor

logger = logging.getLogger(__name__)

CURRENT_MINUTES = 15
BASELINE_MINUTES = 24 * 60  # the trailing day before the current window

# `result` label values -> the CacheWindow field they count in (semantic hits are hits).
_RESULT_FIELDS = {"hit": "hits", "semantic_hit": "hits", "stale_hit": "stale_hits", "miss": "misses"}


@dataclass(frozen=True)
class CacheThresholds:
    """One service's alert thresholds: `max_relative_drop` 0.3 = alert on a 30% hit-rate fall."""

    max_relative_drop: float = 0.3
    max_stale_rate: float = 0.05


def _result_of(labels: str) -> str | None:
    # `labels` is the canonical sorted `k=v,k=v` of the series (see SeriesMinute).
    for part in labels.split(","):
        key, _, value = part.partition("=")
        if key == "result":
            return value
    return None


def cache_windows(*, now: datetime) -> dict[str, tuple[CacheWindow, CacheWindow]]:
    """(current, baseline) per service that has cache lookup rows in the current window.

    Current is the last `CURRENT_MINUTES` whole minutes before `now`; baseline the
    `BASELINE_MINUTES` before that. A service with no rows in the current window is absent: no
    data is no verdict, never a resolution.
    """
    end = epoch_minute_floor(now)
    current_start = end - CURRENT_MINUTES
    baseline_start = current_start - BASELINE_MINUTES
    # One grouped query: a handful of label sets per service, summed per window in the database.
    rows = (
        SeriesMinute.objects.filter(name=CACHE_LOOKUPS_TOTAL, minute__gte=baseline_start, minute__lt=end)
        .values("service", "labels")
        .annotate(
            current=Sum("value", filter=Q(minute__gte=current_start)),
            baseline=Sum("value", filter=Q(minute__lt=current_start)),
        )
        .order_by()
    )
    sums: dict[str, dict[str, dict[str, float]]] = {}
    seen_current: set[str] = set()
    for row in rows:
        service = row["service"]
        if not service:
            continue
        if row["current"] is not None:
            seen_current.add(service)
        field = _RESULT_FIELDS.get(_result_of(row["labels"]) or "")
        if field is None:
            continue  # an unknown result value: not a lookup outcome we can classify
        by_window = sums.setdefault(service, {"current": {}, "baseline": {}})
        for window in ("current", "baseline"):
            value = float(row[window] or 0.0)
            by_window[window][field] = by_window[window].get(field, 0.0) + value
    out = {}
    for service in sorted(seen_current):
        by_window = sums.get(service, {"current": {}, "baseline": {}})
        out[service] = (
            CacheWindow(**{f: by_window["current"].get(f, 0.0) for f in ("hits", "stale_hits", "misses")}),
            CacheWindow(**{f: by_window["baseline"].get(f, 0.0) for f in ("hits", "stale_hits", "misses")}),
        )
    return out


def cache_alerts_evaluate(*, now: datetime, thresholds: Mapping[str, CacheThresholds] | None = None) -> int:
    """Run the cache alerts of every service with cache lookups in the last 15 minutes against its
    trailing day. Returns the number of alert transitions. Idempotent: a second run at any instant
    finds the alert states already flipped and records nothing."""
    windows = cache_windows(now=now)
    known = set(Service.objects.filter(name__in=list(windows)).values_list("name", flat=True))
    transitions = 0
    for name, (current, baseline) in windows.items():
        if name not in known:
            continue  # series of a deleted service: nothing to alert on
        limits = (thresholds or {}).get(name, CacheThresholds())
        transitions += cache_alerts_apply(
            service_name=name,
            current=current,
            baseline=baseline,
            now=now,
            max_relative_drop=limits.max_relative_drop,
            max_stale_rate=limits.max_stale_rate,
        )
    if transitions:
        logger.info(
            "cache alerts at %s: %s transitions over %s services", now.isoformat(), transitions, len(windows)
        )
    return transitions
