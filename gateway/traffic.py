"""Simulated inference traffic that obeys the running routing policy and cache config.

Each request context is drawn from a seeded distribution, decided by the pure policy engine
(routing.policy.decide), and played out against per-route latency and error profiles: an attempt
slower than its hop's timeout is a timeout, a failed attempt is retried after its backoff, an
exhausted hop falls back to the next one. Cache hops hit with a probability that follows the cache
config (enabled layers, TTLs, semantic thresholds). Nothing sleeps: time is simulated, so a run is
deterministic for a seed and cheap enough to run at hundreds of requests per second.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.batching import Slot
from routing.policy import CacheConfig, CompiledPolicy, decide, generate_contexts, parse_duration  # noqa: F401
from routing.policy.schema import FAILED

_Z95 = 1.6448536269514722
LAYER_LABEL = {
    "edge_result": "result",
    "regional_embedding": "embedding",
    "regional_feature": "embedding",
    "semantic": "semantic",
}
ACCELERATOR = {
    "local": "edge-npu",
    "cache": "cpu",
    "private_cloud": "gpu-private",
    "public_cloud": "gpu-public",
}


@dataclass(frozen=True)
class CacheModel:
    """Hit probabilities derived from a cache config (see `cache_model`)."""

    result_hit: float = 0.0
    semantic_hit: float = 0.0
    stale_share: float = 0.0
    ttl_s: float = 300.0
    layers: tuple[str, ...] = ()


def cache_model(config: CacheConfig | None, base_hit_ratio: float) -> CacheModel:
    """A result layer hits `base_hit_ratio` at a 5-minute TTL, less when the TTL is shorter; a
    semantic layer adds hits as its user-facing threshold drops below 0.95, and with them stale or
    false hits; very long TTLs serve stale answers too."""
    if config is None:
        return CacheModel()
    result_hit = semantic_hit = stale = 0.0
    ttl_s = 300.0
    layers: list[str] = []
    for layer in config.layers:
        if not layer.enabled:
            continue
        label = LAYER_LABEL.get(layer.kind, "result")
        layers.append(label)
        if layer.kind == "edge_result":
            ttl_s = float(layer.ttl)
            result_hit = base_hit_ratio * min(1.0, math.sqrt(max(ttl_s, 0.0) / 300.0))
            stale += min(0.3, ttl_s / (7 * 86_400) * 0.3)
        elif layer.kind == "semantic" and layer.semantic is not None:
            looseness = max(0.0, 0.97 - layer.semantic.user_facing)
            semantic_hit = min(0.5, 0.05 + looseness * 2.0)
            stale += looseness * 1.5
    return CacheModel(
        min(result_hit, 0.95), semantic_hit, min(stale, 0.9), ttl_s, tuple(dict.fromkeys(layers))
    )


@dataclass
class Outcome:
    route: str
    outcome: str  # ok | error | timeout | shed
    elapsed_ms: float
    cost_usd: float
    fallbacks: list[tuple[str, str, str]] = field(default_factory=list)
    cache: list[tuple[str, str]] = field(default_factory=list)  # (layer, result)
    compute_s: dict[str, float] = field(default_factory=dict)
    egress_bytes: int = 0
    data_age_s: float = 0.0
    # what the policy decided (for decision records): the matched rule, admission and route chain
    rule: str | None = None
    admission: str | None = None
    chain: tuple[str, ...] = ()
    collapsed: bool = False  # answered by an identical request in flight (gateway.collapse)


class TrafficModel:
    """Plays requests through a compiled policy. Not thread-safe: one instance per traffic thread."""

    def __init__(self, routes: Mapping[str, Mapping[str, float]], *, seed: int) -> None:
        self.rng = random.Random(seed)
        self.down_regions: frozenset[str] = frozenset()  # private-cloud regions that do not answer
        self.routes = {name: dict(profile) for name, profile in routes.items()}
        self._lognormal = {
            name: (math.log(p["p50_ms"]), (math.log(p["p95_ms"]) - math.log(p["p50_ms"])) / _Z95)
            for name, p in self.routes.items()
        }

    def latency_ms(self, route: str) -> float:
        mu, sigma = self._lognormal[route]
        return self.rng.lognormvariate(mu, sigma)

    def play(self, compiled: CompiledPolicy, cache: CacheModel, context: Mapping[str, Any]) -> Outcome:
        return self.play_decided(decide(compiled, context), cache, context)

    def play_decided(
        self, decision: Any, cache: CacheModel, context: Mapping[str, Any], local: Slot | None = None
    ) -> Outcome:
        """Play a decided request; `local` is its first local attempt's time in the local queue
        (gateway.batching), None to draw it as if a worker were free."""
        outcome = self._play(decision, cache, context, local)
        outcome.rule, outcome.admission, outcome.chain = (
            decision.rule,
            str(decision.admission),
            decision.routes,
        )
        return outcome

    def _play(
        self, decision: Any, cache: CacheModel, context: Mapping[str, Any], local: Slot | None = None
    ) -> Outcome:
        if not decision.admitted and decision.admission in ("shed", "rejected"):
            return Outcome(FAILED, "shed", 0.0, 0.0)
        rng = self.rng
        elapsed = cost = 0.0
        fallbacks: list[tuple[str, str, str]] = []
        lookups: list[tuple[str, str]] = []
        compute: dict[str, float] = {}
        egress = 0
        last_failure = "error"
        previous: str | None = None
        for hop in decision.chain:
            if hop.route == FAILED:
                break
            if previous is not None:
                fallbacks.append((previous, hop.route, "pending"))
            previous = hop.route
            profile = self.routes.get(hop.route)
            if profile is None:
                last_failure = "error"
                continue  # a route this gateway has no backend for (validation normally refuses it)
            if hop.route == "cache":
                cost += profile.get("cost_usd", 0.0)
                hit = self._cache_lookup(cache, lookups)
                latency = min(self.latency_ms("cache"), hop.timeout_ms)
                elapsed += latency
                if hit is not None:
                    return self._done(
                        "cache",
                        "ok",
                        elapsed,
                        cost,
                        fallbacks,
                        lookups,
                        compute,
                        egress,
                        data_age_s=rng.uniform(0, cache.ttl_s),
                    )
                last_failure = "error"
                continue
            for attempt in range(1 + hop.retries):
                if attempt:
                    elapsed += hop.backoff_ms * hop.backoff_multiplier ** (attempt - 1)
                cost += profile.get("cost_usd", 0.0)  # a timed-out attempt is still paid for
                compute[ACCELERATOR.get(hop.route, hop.route)] = compute.get(
                    ACCELERATOR.get(hop.route, hop.route), 0.0
                ) + profile.get("compute_s", 0.0)
                if hop.route != "local":
                    egress += int(context.get("payload_bytes", 10_000))
                if hop.route == "private_cloud" and hop.region in self.down_regions:
                    elapsed += hop.timeout_ms  # a region that is down never answers
                    last_failure = "timeout"
                    continue
                if hop.route == "local" and attempt == 0 and local is not None:
                    latency = local.queue_ms + local.inference_ms if local.batch else math.inf
                else:
                    latency = self.latency_ms(hop.route)
                if latency > hop.timeout_ms:
                    elapsed += hop.timeout_ms
                    last_failure = "timeout"
                    continue
                elapsed += latency
                if rng.random() < profile.get("error_ratio", 0.0):
                    last_failure = "error"
                    continue
                return self._done(
                    hop.route,
                    "ok",
                    elapsed,
                    cost,
                    fallbacks,
                    lookups,
                    compute,
                    egress,
                    data_age_s=rng.uniform(0.05, 2.0),
                )
        return self._done(FAILED, last_failure, elapsed, cost, fallbacks, lookups, compute, egress)

    def _cache_lookup(self, cache: CacheModel, lookups: list[tuple[str, str]]) -> str | None:
        rng = self.rng
        if "result" in cache.layers:
            if rng.random() < cache.result_hit:
                result = "stale_hit" if rng.random() < cache.stale_share else "hit"
                lookups.append(("result", result))
                return result
            lookups.append(("result", "miss"))
        if "semantic" in cache.layers:
            if rng.random() < cache.semantic_hit:
                result = "stale_hit" if rng.random() < cache.stale_share else "semantic_hit"
                lookups.append(("semantic", result))
                return result
            lookups.append(("semantic", "miss"))
        return None

    @staticmethod
    def _done(
        route: str,
        outcome: str,
        elapsed: float,
        cost: float,
        fallbacks: list[tuple[str, str, str]],
        lookups: list[tuple[str, str]],
        compute: dict[str, float],
        egress: int,
        data_age_s: float = 0.0,
    ) -> Outcome:
        # every fallback of the request shares its final outcome: did falling back save it?
        resolved = [(a, b, outcome) for a, b, _ in fallbacks]
        return Outcome(route, outcome, elapsed, cost, resolved, lookups, compute, egress, data_age_s)


class ContextReservoir:
    """A uniform sample of at most `size` of one minute's request contexts (reservoir sampling,
    Algorithm R) and `seen`, how many contexts the minute had. The control plane replays these to
    simulate a routing policy on real traffic; its own RNG keeps sampling from changing the traffic."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.size, self.rng = size, rng
        self.seen = 0
        self.contexts: list[dict[str, Any]] = []

    def add(self, context: Mapping[str, Any]) -> None:
        self.seen += 1
        if len(self.contexts) < self.size:
            self.contexts.append(compact_context(context))
            return
        slot = self.rng.randrange(self.seen)
        if slot < self.size:
            self.contexts[slot] = compact_context(context)


def compact_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context as pushed: fields without a value left out, fractions to 4 decimals."""
    return {
        name: round(value, 4) if isinstance(value, float) else value
        for name, value in context.items()
        if value is not None
    }


def summarize(outcomes: list[Outcome], *, latency_threshold_ms: float | None = None) -> dict[str, Any]:
    """Route mix, outcome mix, p95 and cost of a list of outcomes (for tests and /status)."""
    served = [o for o in outcomes if o.outcome != "shed"]
    ok = [o for o in served if o.outcome == "ok"]
    latencies = sorted(o.elapsed_ms for o in ok)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else None
    p50 = latencies[min(len(latencies) - 1, int(0.5 * len(latencies)))] if latencies else None
    result: dict[str, Any] = {
        "requests": len(outcomes),
        "routes": dict(Counter(o.route for o in outcomes)),
        "outcomes": dict(Counter(o.outcome for o in outcomes)),
        "availability": len(ok) / len(served) if served else None,
        "p50_ms": p50,
        "p95_ms": p95,
        "cost_per_1000_usd": 1000 * sum(o.cost_usd for o in outcomes) / len(outcomes) if outcomes else 0.0,
    }
    if latency_threshold_ms is not None:
        valid = [o for o in served if o.outcome in ("ok", "timeout")]
        good = [o for o in valid if o.outcome == "ok" and o.elapsed_ms <= latency_threshold_ms]
        result["latency_sli"] = len(good) / len(valid) if valid else None
    return result
