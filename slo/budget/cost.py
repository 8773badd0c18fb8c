"""Cost per hit, pure (no Django): a versioned price list turns usage telemetry into money.

Usage is what gateways measure over one bucket (an hour or a day) for one service: client requests
by the route that answered, fallback attempts, retries, compute seconds by tier and accelerator,
egress bytes, cache lookups by result, edge device count, bad events and latency histograms.

Attribution rules (docs/budget.md):

- Compute is measured per tier and charged to the route that runs on that tier (edge -> `local`,
  private_cloud -> `private_cloud`, public_cloud -> `public_cloud`). It already includes the work
  of retries and fallbacks: that is what makes the all-in cost honest.
- Per-request fees are charged per *attempt*: requests answered by a route, plus the failed
  attempts that preceded a fallback (`fallbacks_from`) and retries at that route.
- Edge devices cost `edge_device_usd_per_hour x device hours`, amortised over the requests the
  edge answered (`local` and `cache`).
- The cache costs `cache_usd_per_lookup` per lookup (hits and misses), charged to `cache`.
- A bad event (one that spent error budget) costs `sla_penalty_usd_per_bad_event`; a stale hit costs
  `stale_hit_cost_usd` (the correctness cost of a wrong answer).
- Saved per hit = what the average miss path costs per request minus the cache's own cost per hit;
  net saving = hits x saved per hit - stale hits x stale-hit cost.
- LLM tokens cost `token_usd_per_1k[provider][model].input` (or `.output`) per 1,000 tokens of that
  direction, charged to the route that processed them. Tokens of a provider and model the price
  list does not name cost nothing and are counted in `unpriced_tokens` (never silently free).
  Cost per 1k tokens is the route's (or tier's, or the whole bucket's) full direct cost, compute
  and fees included, per 1,000 input and output tokens it processed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slo.spec import problems_from_validation_error

ROUTES = ("local", "cache", "private_cloud", "public_cloud", "failed")
TIERS = ("edge", "private_cloud", "public_cloud")
ROUTE_OF_TIER = {"edge": "local", "private_cloud": "private_cloud", "public_cloud": "public_cloud"}
TIER_OF_ROUTE = {
    "local": "edge",
    "cache": "edge",
    "private_cloud": "private_cloud",
    "public_cloud": "public_cloud",
}
NonNegative = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlaPromise(_Strict):
    """What a tier's provider promises: latency percentiles (ms) and availability (percent)."""

    p95_ms: NonNegative | None = None
    p99_ms: NonNegative | None = None
    availability_percent: Annotated[float, Field(gt=0, le=100)] | None = None


class TokenPrice(_Strict):
    """USD per 1,000 tokens of one provider's model, by direction."""

    input: NonNegative = 0.0
    output: NonNegative = 0.0


class Prices(_Strict):
    """One cost model version's prices (USD)."""

    compute_usd_per_s: dict[str, dict[str, NonNegative]] = Field(
        default_factory=dict, description="tier -> accelerator -> USD per compute second"
    )
    egress_usd_per_gb: dict[str, NonNegative] = Field(
        default_factory=dict, description="tier -> USD per GB (1e9 bytes)"
    )
    request_fee_usd: dict[str, NonNegative] = Field(
        default_factory=dict, description="route -> USD per attempt"
    )
    edge_device_usd_per_hour: NonNegative = 0.0
    cache_usd_per_lookup: NonNegative = 0.0
    sla_penalty_usd_per_bad_event: NonNegative = 0.0
    stale_hit_cost_usd: NonNegative = 0.0
    sla: dict[str, SlaPromise] = Field(default_factory=dict, description="tier -> promised SLA")
    token_usd_per_1k: dict[str, dict[str, TokenPrice]] = Field(
        default_factory=dict, description="provider -> model -> USD per 1,000 input / output tokens"
    )


def parse_prices(data: Any) -> tuple[Prices | None, list[dict[str, str]]]:
    """Validate a price list: (prices, []) or (None, problems)."""
    if not isinstance(data, dict):
        return None, [{"path": "prices", "message": "must be an object"}]
    try:
        prices = Prices.model_validate(data)
    except ValidationError as exc:
        return None, [p.as_dict() for p in problems_from_validation_error(exc, prefix="prices")]
    problems = []
    for tier in [*prices.compute_usd_per_s, *prices.egress_usd_per_gb, *prices.sla]:
        if tier not in TIERS:
            problems.append({"path": f"prices.{tier}", "message": f"unknown tier; use {list(TIERS)}"})
    for route in prices.request_fee_usd:
        if route not in ROUTES:
            problems.append(
                {"path": f"prices.request_fee_usd.{route}", "message": f"unknown route; use {list(ROUTES)}"}
            )
    return (None, problems) if problems else (prices, [])


@dataclass
class Usage:
    """Measured usage of one service over one bucket. Missing keys count as zero."""

    hours: float
    requests: dict[str, float] = field(default_factory=dict)  # route -> client requests answered
    fallbacks_from: dict[str, float] = field(default_factory=dict)  # route -> attempts that fell back
    retries: dict[str, float] = field(default_factory=dict)  # route -> extra attempts
    compute_seconds: dict[tuple[str, str], float] = field(default_factory=dict)  # (tier, accelerator)
    egress_bytes: dict[str, float] = field(default_factory=dict)  # route -> bytes
    cache_hits: float = 0.0  # fresh and semantic hits
    cache_stale_hits: float = 0.0
    cache_misses: float = 0.0
    edge_device_hours: float = 0.0  # edge devices x hours they were up in the bucket
    bad_events: float = 0.0
    # tier -> ascending [(upper bound seconds, cumulative count)], ending with (inf, total)
    latency_buckets: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    availability: dict[str, tuple[float, float]] = field(default_factory=dict)  # tier -> (good, valid)
    # (route, provider, model, direction) -> LLM tokens
    tokens: dict[tuple[str, str, str, str], float] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteCost:
    route: str
    requests: float
    attempts: float
    cost_usd: float
    cost_per_request_usd: float | None
    input_tokens: float = 0.0
    output_tokens: float = 0.0
    token_cost_usd: float = 0.0
    cost_per_1k_tokens_usd: float | None = None


@dataclass(frozen=True)
class SlaCheck:
    tier: str
    measured_p95_ms: float | None
    measured_p99_ms: float | None
    measured_availability_percent: float | None
    promised: dict[str, float | None]
    breaches: list[str]


@dataclass(frozen=True)
class CostFigures:
    """Every figure for one bucket; None where the denominator is zero (no traffic is not free)."""

    requests: float
    direct_cost_usd: float
    sla_penalty_usd: float
    stale_hit_cost_usd: float
    all_in_cost_usd: float
    cost_per_request_usd: float | None
    retry_and_fallback_cost_usd: float
    cost_per_1000_by_tier_usd: dict[str, float | None]
    cost_per_cache_hit_usd: float | None
    miss_path_cost_per_request_usd: float | None
    saved_per_hit_usd: float | None
    net_saving_usd: float | None
    routes: dict[str, RouteCost]
    sla: list[SlaCheck]
    input_tokens: float = 0.0
    output_tokens: float = 0.0
    token_cost_usd: float = 0.0
    unpriced_tokens: float = 0.0
    cost_per_1k_tokens_usd: float | None = None
    cost_per_1k_tokens_by_tier_usd: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _div(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def quantile_upper_bound(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The smallest bucket bound below which at least `q` of the observations fall (seconds).

    Conservative (an upper bound; never interpolated, like the SLIs): inf when the quantile lies in
    the +Inf bucket, None without observations.
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    for bound, cumulative in buckets:
        if cumulative >= q * total:
            return bound
    return math.inf


def compute_costs(usage: Usage, prices: Prices) -> CostFigures:
    """All cost figures of one bucket."""
    route_cost = dict.fromkeys(ROUTES, 0.0)
    attempt_cost = dict.fromkeys(ROUTES, 0.0)  # fees of attempts that did not answer
    for (tier, accelerator), seconds in usage.compute_seconds.items():
        price = prices.compute_usd_per_s.get(tier, {}).get(accelerator, 0.0)
        route_cost[ROUTE_OF_TIER.get(tier, "local")] += seconds * price
    for route, nbytes in usage.egress_bytes.items():
        tier = TIER_OF_ROUTE.get(route, "edge")
        route_cost[route] = route_cost.get(route, 0.0) + nbytes / 1e9 * prices.egress_usd_per_gb.get(
            tier, 0.0
        )
    attempts = {}
    for route in ROUTES:
        answered = usage.requests.get(route, 0.0)
        extra = usage.fallbacks_from.get(route, 0.0) + usage.retries.get(route, 0.0)
        attempts[route] = answered + extra
        fee = prices.request_fee_usd.get(route, 0.0)
        route_cost[route] += attempts[route] * fee
        attempt_cost[route] = extra * fee
    tokens = {route: [0.0, 0.0, 0.0] for route in ROUTES}  # input, output, token cost
    unpriced = 0.0
    for (route, provider, model, direction), count in usage.tokens.items():
        price = prices.token_usd_per_1k.get(provider, {}).get(model)
        per_route = tokens.setdefault(route, [0.0, 0.0, 0.0])
        per_route[0 if direction == "input" else 1] += count
        if price is None:
            unpriced += count
            continue
        cost = count / 1000 * (price.input if direction == "input" else price.output)
        per_route[2] += cost
        route_cost[route] = route_cost.get(route, 0.0) + cost
    lookups = usage.cache_hits + usage.cache_stale_hits + usage.cache_misses
    cache_cost = lookups * prices.cache_usd_per_lookup
    route_cost["cache"] += cache_cost
    # Edge devices serve `local` and `cache` answers: amortise over both by requests.
    device_cost = prices.edge_device_usd_per_hour * usage.edge_device_hours
    edge_requests = usage.requests.get("local", 0.0) + usage.requests.get("cache", 0.0)
    for route in ("local", "cache"):
        share = _div(usage.requests.get(route, 0.0), edge_requests)
        route_cost[route] += device_cost * (
            share if share is not None else (1.0 if route == "local" else 0.0)
        )

    requests = sum(usage.requests.get(route, 0.0) for route in ROUTES)
    direct = sum(route_cost.values())
    penalty = usage.bad_events * prices.sla_penalty_usd_per_bad_event
    stale = usage.cache_stale_hits * prices.stale_hit_cost_usd
    all_in = direct + penalty + stale

    # Retries and fallbacks: the fees of the extra attempts. Their compute is inside the measured
    # compute seconds and cannot be split out of them.
    retry_cost = sum(attempt_cost.values())

    tier_cost = {
        "edge": route_cost["local"] + route_cost["cache"],
        "private_cloud": route_cost["private_cloud"],
        "public_cloud": route_cost["public_cloud"],
    }
    tier_requests = {
        "edge": edge_requests,
        "private_cloud": usage.requests.get("private_cloud", 0.0),
        "public_cloud": usage.requests.get("public_cloud", 0.0),
    }
    per_1000 = {t: (None if (v := _div(tier_cost[t], tier_requests[t])) is None else v * 1000) for t in TIERS}
    tier_tokens = {
        "edge": sum(tokens[r][0] + tokens[r][1] for r in ("local", "cache")),
        "private_cloud": tokens["private_cloud"][0] + tokens["private_cloud"][1],
        "public_cloud": tokens["public_cloud"][0] + tokens["public_cloud"][1],
    }
    per_1k_tokens = {t: _per_1k(tier_cost[t], tier_tokens[t]) for t in TIERS}
    input_tokens = sum(v[0] for v in tokens.values())
    output_tokens = sum(v[1] for v in tokens.values())

    hits = usage.cache_hits + usage.cache_stale_hits
    cost_per_hit = _div(route_cost["cache"], hits)
    miss_requests = sum(usage.requests.get(r, 0.0) for r in ("local", "private_cloud", "public_cloud"))
    miss_cost = route_cost["local"] + route_cost["private_cloud"] + route_cost["public_cloud"]
    miss_per_request = _div(miss_cost, miss_requests)
    saved = None if miss_per_request is None or cost_per_hit is None else miss_per_request - cost_per_hit
    net = None if saved is None else hits * saved - stale

    routes = {
        route: RouteCost(
            route,
            usage.requests.get(route, 0.0),
            attempts[route],
            route_cost[route],
            _div(route_cost[route], usage.requests.get(route, 0.0)),
            tokens[route][0],
            tokens[route][1],
            tokens[route][2],
            _per_1k(route_cost[route], tokens[route][0] + tokens[route][1]),
        )
        for route in ROUTES
        if route_cost[route] or attempts[route] or tokens[route][0] or tokens[route][1]
    }
    return CostFigures(
        requests=requests,
        direct_cost_usd=direct,
        sla_penalty_usd=penalty,
        stale_hit_cost_usd=stale,
        all_in_cost_usd=all_in,
        cost_per_request_usd=_div(all_in, requests),
        retry_and_fallback_cost_usd=retry_cost,
        cost_per_1000_by_tier_usd=per_1000,
        cost_per_cache_hit_usd=cost_per_hit,
        miss_path_cost_per_request_usd=miss_per_request,
        saved_per_hit_usd=saved,
        net_saving_usd=net,
        routes=routes,
        sla=sla_checks(usage, prices),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        token_cost_usd=sum(v[2] for v in tokens.values()),
        unpriced_tokens=unpriced,
        cost_per_1k_tokens_usd=_per_1k(direct, input_tokens + output_tokens),
        cost_per_1k_tokens_by_tier_usd=per_1k_tokens,
    )


def _per_1k(cost: float, tokens: float) -> float | None:
    """USD per 1,000 tokens; None without tokens."""
    per_token = _div(cost, tokens)
    return None if per_token is None else per_token * 1000


def sla_checks(usage: Usage, prices: Prices) -> list[SlaCheck]:
    """Measured p95/p99 (upper bounds from the histogram) and availability against each tier's promise."""
    out = []
    for tier in TIERS:
        promise = prices.sla.get(tier)
        buckets = usage.latency_buckets.get(tier)
        good_valid = usage.availability.get(tier)
        if promise is None and buckets is None and good_valid is None:
            continue
        p95 = quantile_upper_bound(buckets or [], 0.95)
        p99 = quantile_upper_bound(buckets or [], 0.99)
        availability = None
        if good_valid and good_valid[1] > 0:
            availability = 100.0 * good_valid[0] / good_valid[1]
        breaches = []
        if promise is not None:
            for name, measured, promised in (("p95", p95, promise.p95_ms), ("p99", p99, promise.p99_ms)):
                if promised is not None and measured is not None and measured * 1000 > promised:
                    breaches.append(f"{name} {measured * 1000:g} ms > promised {promised:g} ms")
            if (
                promise.availability_percent is not None
                and availability is not None
                and availability < promise.availability_percent
            ):
                breaches.append(
                    f"availability {availability:.4g}% < promised {promise.availability_percent:g}%"
                )
        out.append(
            SlaCheck(
                tier=tier,
                measured_p95_ms=None if p95 is None else p95 * 1000,
                measured_p99_ms=None if p99 is None else p99 * 1000,
                measured_availability_percent=availability,
                promised=promise.model_dump() if promise else {},
                breaches=breaches,
            )
        )
    return out


def merge_usage(parts: list[Usage]) -> Usage:
    """Add usages (e.g. hours into a day). Latency buckets add bound by bound."""
    out = Usage(hours=sum(p.hours for p in parts))
    for p in parts:
        for name in ("requests", "fallbacks_from", "retries", "compute_seconds", "egress_bytes", "tokens"):
            target: dict[Any, float] = getattr(out, name)
            source: Mapping[Any, float] = getattr(p, name)
            for key, value in source.items():
                target[key] = target.get(key, 0.0) + value
        out.cache_hits += p.cache_hits
        out.cache_stale_hits += p.cache_stale_hits
        out.cache_misses += p.cache_misses
        out.edge_device_hours += p.edge_device_hours
        out.bad_events += p.bad_events
        for tier, (good, valid) in p.availability.items():
            g, v = out.availability.get(tier, (0.0, 0.0))
            out.availability[tier] = (g + good, v + valid)
        for tier, buckets in p.latency_buckets.items():
            merged = dict(out.latency_buckets.get(tier, []))
            for bound, count in buckets:
                merged[bound] = merged.get(bound, 0.0) + count
            out.latency_buckets[tier] = sorted(merged.items())
    return out
