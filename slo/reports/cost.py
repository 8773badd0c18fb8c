"""The cost section of an error-budget report, from hourly `CostRollup` rows (no Django).

Split out of `slo.reports.compute` (same conventions: a figure that cannot be computed is None).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slo.reports.compute import _div, finite

TIER_ROUTES = {
    "edge": ("local", "cache"),
    "private_cloud": ("private_cloud",),
    "public_cloud": ("public_cloud",),
}


@dataclass(frozen=True)
class CostRow:
    """One hourly `CostRollup` row."""

    route: str
    bucket_start: datetime
    cost_model_version: int
    requests: float
    cost_usd: float
    figures: Mapping[str, Any]


def cost_summary(rows: Iterable[CostRow], *, period_hours: float) -> dict[str, Any]:
    """Cost of the period from hourly rollups: totals, cost per 1,000 inferences overall and by tier,
    cost per cache hit and what the cache saved.

    Cache hits are not stored in the rollups; an hour's hits are recovered as its cache cost divided
    by its cost per hit (hours where the cache cost nothing cannot say, and are left out of the
    per-hit figures, which then cover `hit_hours`)."""
    rows = list(rows)
    overall = [r for r in rows if r.route == "all"]
    by_route: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in rows:
        if r.route != "all":
            by_route[r.route][0] += r.cost_usd
            by_route[r.route][1] += r.requests
    requests = sum(r.requests for r in overall)
    cost = sum(r.cost_usd for r in overall)
    hits = hit_cost = saved = 0.0
    hit_hours = 0
    cache_cost_by_hour = {r.bucket_start: r.cost_usd for r in rows if r.route == "cache"}
    for r in overall:
        per_hit = finite(r.figures.get("cost_per_cache_hit_usd"))
        cache_cost = cache_cost_by_hour.get(r.bucket_start, 0.0)
        if per_hit and per_hit > 0 and cache_cost > 0:
            hour_hits = cache_cost / per_hit
            hits += hour_hits
            hit_cost += cache_cost
            saved += hour_hits * (finite(r.figures.get("saved_per_hit_usd")) or 0.0)
            hit_hours += 1
    tiers = {}
    for tier, routes in TIER_ROUTES.items():
        tier_cost = sum(by_route[r][0] for r in routes if r in by_route)
        tier_requests = sum(by_route[r][1] for r in routes if r in by_route)
        per_request = _div(tier_cost, tier_requests)
        tiers[tier] = {
            "requests": tier_requests,
            "cost_usd": tier_cost,
            "cost_per_1000_usd": None if per_request is None else per_request * 1000,
        }
    per_request = _div(cost, requests)
    return {
        "hours_covered": len({r.bucket_start for r in overall}),
        "period_hours": period_hours,
        "cost_model_versions": sorted({r.cost_model_version for r in overall}),
        "requests": requests,
        "cost_usd": cost,
        "cost_per_1000_usd": None if per_request is None else per_request * 1000,
        "tiers": tiers,
        "routes": {route: {"cost_usd": v[0], "requests": v[1]} for route, v in sorted(by_route.items())},
        "cache_hits": hits if hit_hours else None,
        "cost_per_cache_hit_usd": _div(hit_cost, hits),
        "saved_per_hit_usd": _div(saved, hits),
        "net_saving_usd": sum(finite(r.figures.get("net_saving_usd")) or 0.0 for r in overall),
        "hit_hours": hit_hours,
    }
