"""simulate: replay request contexts through two policy versions and predict the difference.

Each context is decided by each policy, then its chain is played out against measured route
behaviour (latency distribution, error ratio, cost per attempt): an attempt slower than the hop's
timeout counts as a timeout, a failed attempt is retried after its backoff, and an exhausted chain
fails. Both versions draw from RNGs seeded alike, so reruns give identical reports and the two
versions see the same luck while they take the same path.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import CompiledPolicy, DecidedHop, compile_policy, decide
from .schema import FAILED, RoutingPolicy

_Z95 = 1.6448536269514722  # standard normal quantile at 0.95


@dataclass(frozen=True)
class RouteStats:
    """Measured behaviour of one route: latency samples, or p50/p95 (fitted as a lognormal).

    For the cache route, `error_ratio` is the miss ratio.
    """

    error_ratio: float = 0.0
    cost_per_request_usd: float = 0.0
    latency_samples_ms: tuple[float, ...] = ()
    p50_ms: float | None = None
    p95_ms: float | None = None

    def __post_init__(self) -> None:
        if not self.latency_samples_ms and (self.p50_ms is None or self.p95_ms is None):
            raise ValueError("route stats need latency_samples_ms or both p50_ms and p95_ms")
        if self.p50_ms is not None and self.p95_ms is not None and not 0 < self.p50_ms <= self.p95_ms:
            raise ValueError("route stats need 0 < p50_ms <= p95_ms")
        if not 0 <= self.error_ratio <= 1:
            raise ValueError("error_ratio must be within [0, 1]")

    @classmethod
    def of(cls, value: RouteStats | Mapping[str, Any]) -> RouteStats:
        if isinstance(value, RouteStats):
            return value
        data = dict(value)
        if "latency_samples_ms" in data:
            data["latency_samples_ms"] = tuple(float(x) for x in data["latency_samples_ms"])
        return cls(**data)

    def sampler(self, rng: random.Random):
        if self.latency_samples_ms:
            samples = self.latency_samples_ms
            return lambda: rng.choice(samples)
        assert self.p50_ms is not None and self.p95_ms is not None
        mu = math.log(self.p50_ms)
        sigma = (math.log(self.p95_ms) - mu) / _Z95
        return lambda: rng.lognormvariate(mu, sigma)


@dataclass(frozen=True)
class VersionReport:
    requests: int
    route_mix: dict[str, float]  # share of requests answered by each route (failed included)
    p95_ms: float | None
    p95_ms_by_class: dict[str, float]
    failed_ratio: float
    # bad events: failed, or slower than the latency threshold when one is given
    bad_ratio: float
    # bad_ratio / allowed bad ratio: 1.0 spends the error budget exactly (None without objective)
    budget_burn: float | None
    cost_per_1000_usd: float
    attempts_per_request: float
    # share of requests decided by each rule (by name; `admission:<outcome>` when admission control
    # decided): shows which rules the contexts exercised
    rule_mix: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SimulationReport:
    a: VersionReport
    b: VersionReport
    route_mix_shift: dict[str, float] = field(default_factory=dict)
    p95_shift_ms: dict[str, float] = field(default_factory=dict)
    cost_per_1000_shift_usd: float = 0.0
    bad_ratio_shift: float = 0.0
    latency_threshold_ms: float | None = None
    objective: float | None = None


def _play(
    chain: Sequence[DecidedHop],
    stats: Mapping[str, RouteStats],
    samplers: Mapping[str, Any],
    rng: random.Random,
) -> tuple[str, float, float, int]:
    """(route that answered or failed, elapsed ms, cost, attempts) of one request."""
    elapsed = cost = 0.0
    attempts = 0
    for hop in chain:
        if hop.route == FAILED:
            break
        name = (
            f"{hop.route}@{hop.region}" if hop.region and f"{hop.route}@{hop.region}" in stats else hop.route
        )
        route_stats, sample = stats[name], samplers[name]
        for attempt in range(1 + hop.retries):
            if attempt:
                elapsed += hop.backoff_ms * hop.backoff_multiplier ** (attempt - 1)
            attempts += 1
            cost += route_stats.cost_per_request_usd  # a timed-out attempt is still paid for
            latency = sample()
            if latency > hop.timeout_ms:
                elapsed += hop.timeout_ms
                continue
            elapsed += latency
            if rng.random() < route_stats.error_ratio:
                continue
            return hop.route, elapsed, cost, attempts
    return FAILED, elapsed, cost, attempts


def _run(
    compiled: CompiledPolicy,
    contexts: Sequence[Mapping[str, Any]],
    stats: Mapping[str, RouteStats],
    *,
    seed: int,
    latency_threshold_ms: float | None,
    objective: float | None,
) -> VersionReport:
    rng = random.Random(seed)
    samplers = {name: s.sampler(rng) for name, s in stats.items()}
    routes: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    latencies: dict[str, list[float]] = defaultdict(list)
    all_latencies: list[float] = []
    bad = failed = attempts_total = 0
    cost_total = 0.0
    for context in contexts:
        decision = decide(compiled, context)
        rules[decision.rule if decision.rule is not None else f"admission:{decision.admission}"] += 1
        missing = {h.route for h in decision.chain if h.route != FAILED and h.route not in stats}
        if missing:
            raise ValueError(f"route_stats has no entry for {', '.join(sorted(missing))}")
        route, elapsed, cost, attempts = _play(decision.chain, stats, samplers, rng)
        routes[route] += 1
        attempts_total += attempts
        cost_total += cost
        if route == FAILED:
            failed += 1
            bad += 1
        else:
            latencies[str(context.get("service_class", "unknown"))].append(elapsed)
            all_latencies.append(elapsed)
            if latency_threshold_ms is not None and elapsed > latency_threshold_ms:
                bad += 1
    count = len(contexts)
    bad_ratio = bad / count if count else 0.0
    burn = None
    if objective is not None and count:
        burn = bad_ratio / (1 - objective / 100)
    return VersionReport(
        requests=count,
        route_mix={route: n / count for route, n in sorted(routes.items())} if count else {},
        p95_ms=float(np.percentile(all_latencies, 95)) if all_latencies else None,
        p95_ms_by_class={cls: float(np.percentile(v, 95)) for cls, v in sorted(latencies.items())},
        failed_ratio=failed / count if count else 0.0,
        bad_ratio=bad_ratio,
        budget_burn=burn,
        cost_per_1000_usd=1000 * cost_total / count if count else 0.0,
        attempts_per_request=attempts_total / count if count else 0.0,
        rule_mix={rule: n / count for rule, n in sorted(rules.items())} if count else {},
    )


def replay(
    compiled: CompiledPolicy,
    contexts: Sequence[Mapping[str, Any]],
    stats: Mapping[str, RouteStats],
    *,
    seed: int = 0,
    latency_threshold_ms: float | None = None,
    objective: float | None = None,
) -> VersionReport:
    """One version's predicted figures (what `simulate` computes for each side)."""
    return _run(
        compiled, contexts, stats, seed=seed, latency_threshold_ms=latency_threshold_ms, objective=objective
    )


def simulate(
    policy_a: RoutingPolicy | CompiledPolicy | Mapping[str, Any],
    policy_b: RoutingPolicy | CompiledPolicy | Mapping[str, Any],
    contexts: Sequence[Mapping[str, Any]],
    route_stats: Mapping[str, RouteStats | Mapping[str, Any]],
    *,
    latency_threshold_ms: float | None = None,
    objective: float | None = None,
    seed: int = 0,
) -> SimulationReport:
    """Predict how version B changes route mix, p95 per service class, bad-event ratio against
    the SLO (`objective` in percent, e.g. 99.5) and cost per 1,000 inferences, versus version A.

    `route_stats` is keyed by route (`private_cloud@eu-west` overrides one region).
    """
    if objective is not None and not 0 < objective < 100:
        raise ValueError("objective is a percentage in (0, 100)")
    stats = {name: RouteStats.of(value) for name, value in route_stats.items()}
    compiled_a = policy_a if isinstance(policy_a, CompiledPolicy) else compile_policy(policy_a)
    compiled_b = policy_b if isinstance(policy_b, CompiledPolicy) else compile_policy(policy_b)
    a = _run(
        compiled_a, contexts, stats, seed=seed, latency_threshold_ms=latency_threshold_ms, objective=objective
    )
    b = _run(
        compiled_b, contexts, stats, seed=seed, latency_threshold_ms=latency_threshold_ms, objective=objective
    )
    routes = sorted(set(a.route_mix) | set(b.route_mix))
    classes = sorted(set(a.p95_ms_by_class) & set(b.p95_ms_by_class))
    p95_shift = {cls: b.p95_ms_by_class[cls] - a.p95_ms_by_class[cls] for cls in classes}
    if a.p95_ms is not None and b.p95_ms is not None:
        p95_shift["all"] = b.p95_ms - a.p95_ms
    return SimulationReport(
        a=a,
        b=b,
        route_mix_shift={r: b.route_mix.get(r, 0.0) - a.route_mix.get(r, 0.0) for r in routes},
        p95_shift_ms=p95_shift,
        cost_per_1000_shift_usd=b.cost_per_1000_usd - a.cost_per_1000_usd,
        bad_ratio_shift=b.bad_ratio - a.bad_ratio,
        latency_threshold_ms=latency_threshold_ms,
        objective=objective,
    )


def _draw(spec: Any, rng: random.Random) -> Any:
    if not isinstance(spec, Mapping):
        return spec  # a constant
    if len(spec) != 1:
        raise ValueError(f"a field distribution has exactly one kind, got {sorted(spec)}")
    ((kind, params),) = spec.items()
    if kind == "choices":
        values = list(params)
        return rng.choices(values, weights=[float(params[v]) for v in values])[0]
    if kind == "uniform":
        low, high = params
        return rng.uniform(low, high)
    if kind == "int_uniform":
        low, high = params
        return rng.randint(low, high)
    if kind == "bernoulli":
        return rng.random() < float(params)
    if kind == "normal":
        value = rng.gauss(params["mean"], params["sd"])
        return min(max(value, params.get("min", -math.inf)), params.get("max", math.inf))
    if kind == "lognormal":
        mu = math.log(params["p50"])
        return rng.lognormvariate(mu, (math.log(params["p95"]) - mu) / _Z95)
    raise ValueError(f"unknown distribution kind {kind!r}")


def generate_contexts(distribution: Mapping[str, Any], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` request contexts drawn field by field (in sorted field order, for reproducibility).

    Each field maps to a constant or to one of: `{choices: {value: weight}}`, `{uniform: [lo, hi]}`,
    `{int_uniform: [lo, hi]}`, `{bernoulli: p}`, `{normal: {mean, sd, min?, max?}}`,
    `{lognormal: {p50, p95}}`.
    """
    rng = random.Random(seed)
    fields = sorted(distribution)
    return [{name: _draw(distribution[name], rng) for name in fields} for _ in range(n)]


def draw_recorded_contexts(
    samples: Sequence[tuple[float, Sequence[Mapping[str, Any]]]], n: int, seed: int = 0
) -> list[dict[str, Any]]:
    """`n` request contexts drawn with replacement from recorded samples, in proportion to the
    traffic each context stands for.

    Each sample is (requests, contexts): a uniform sample of the requests one gateway decided in one
    minute, so each of its contexts stands for requests / len(contexts) requests (a busy gateway's
    minute weighs more than a quiet one's). The draw follows the order given, so a seed reproduces
    it. No usable sample gives [].
    """
    pool: list[Mapping[str, Any]] = []
    weights: list[float] = []
    for requests, contexts in samples:
        if not contexts or requests <= 0:
            continue
        share = float(requests) / len(contexts)
        pool.extend(contexts)
        weights.extend([share] * len(contexts))
    if not pool or n <= 0:
        return []
    rng = random.Random(seed)
    return [dict(context) for context in rng.choices(pool, weights=weights, k=n)]
