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
    per-hit figures, which then cover `hit_hours`).

    LLM tokens (`tokens`): input and output tokens and their token cost by route and tier, with the
    cost per 1,000 tokens (the route's or tier's whole cost, compute and fees included, per 1,000
    tokens it processed) and the cost per request beside it."""
    rows = list(rows)
    overall = [r for r in rows if r.route == "all"]
    by_route: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    # route -> input tokens, output tokens, token cost
    route_tokens: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for r in rows:
        if r.route != "all":
            by_route[r.route][0] += r.cost_usd
            by_route[r.route][1] += r.requests
            for i, key in enumerate(("input_tokens", "output_tokens", "token_cost_usd")):
                route_tokens[r.route][i] += finite(r.figures.get(key)) or 0.0
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
        "tokens": _token_summary(by_route, route_tokens, overall),
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


def _per_1k(cost: float, tokens: float) -> float | None:
    per_token = _div(cost, tokens)
    return None if per_token is None else per_token * 1000


def _token_figures(cost: float, requests: float, tokens: list[float]) -> dict[str, Any]:
    return {
        "input_tokens": tokens[0],
        "output_tokens": tokens[1],
        "token_cost_usd": tokens[2],
        "cost_usd": cost,
        "requests": requests,
        "cost_per_request_usd": _div(cost, requests),
        "cost_per_1k_tokens_usd": _per_1k(cost, tokens[0] + tokens[1]),
    }


def _token_summary(
    by_route: Mapping[str, list[float]], route_tokens: Mapping[str, list[float]], overall: list[CostRow]
) -> dict[str, Any]:
    """Token figures of the period by route and tier (routes and tiers without tokens left out)."""
    routes = {
        route: _token_figures(by_route[route][0], by_route[route][1], route_tokens[route])
        for route in sorted(route_tokens)
        if route_tokens[route][0] or route_tokens[route][1]
    }
    tiers = {}
    for tier, members in TIER_ROUTES.items():
        tokens = [sum(route_tokens[r][i] for r in members if r in route_tokens) for i in range(3)]
        if tokens[0] or tokens[1]:
            cost = sum(by_route[r][0] for r in members if r in by_route)
            requests = sum(by_route[r][1] for r in members if r in by_route)
            tiers[tier] = _token_figures(cost, requests, tokens)
    total = [sum(v[i] for v in route_tokens.values()) for i in range(3)]
    all_cost = sum(v[0] for v in by_route.values())
    return {
        "input_tokens": total[0],
        "output_tokens": total[1],
        "token_cost_usd": total[2],
        "unpriced_tokens": sum(finite(r.figures.get("unpriced_tokens")) or 0.0 for r in overall),
        "cost_per_1k_tokens_usd": _per_1k(all_cost, total[0] + total[1]),
        "routes": routes,
        "tiers": tiers,
    }
