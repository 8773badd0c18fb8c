"""Default documents: the house standard, which validates cleanly for any service class.

Local first, cache second, cloud third, explicit failure last; timeouts are shared out of the
latency SLO so the worst case of every chain stays within it.
"""

from __future__ import annotations

import math
from typing import Any

from .cache import CacheConfig
from .schema import STANDARD_CHAIN, RoutingPolicy

# relative share of the latency budget each route gets when a chain is fitted to an SLO
_ROUTE_WEIGHT = {"local": 5, "cache": 1, "private_cloud": 6, "public_cloud": 7}
# keep 5% of the SLO for the gateway itself and the network to the client
_BUDGET_SHARE = 0.95


def _chain(routes: list[str], latency_slo_ms: float | None) -> list[dict[str, Any]]:
    if latency_slo_ms is None:
        standard = {hop["route"]: hop for hop in STANDARD_CHAIN}
        return [dict(standard[route]) for route in routes]
    total_weight = sum(_ROUTE_WEIGHT[route] for route in routes)
    budget = latency_slo_ms * _BUDGET_SHARE
    return [
        {"route": route, "timeout_ms": max(1, math.floor(budget * _ROUTE_WEIGHT[route] / total_weight))}
        for route in routes
    ]


def default_policy(service: str, service_class: str, latency_slo_ms: float | None) -> dict[str, Any]:
    """A routing policy document (a plain dict, ready to store as a version) for one service."""
    private = service_class == "privacy_sensitive"
    cloud = ["private_cloud"] if private else ["private_cloud", "public_cloud"]

    def chain(*routes: str) -> list[dict[str, Any]]:
        return _chain([r for r in routes if not (private and r == "public_cloud")], latency_slo_ms)

    rules: list[dict[str, Any]] = []
    if not private:
        rules.append(
            {
                "name": "privacy-stays-private",
                "description": "privacy-flagged requests never leave edge and private cloud",
                "when": {"privacy": True},
                "chain": chain("local", "cache", "private_cloud"),
            }
        )
    offline_chain = chain("local", "cache")
    offline_chain[-1]["on_exhausted"] = {"action": "degrade", "degrade_to": "default_response"}
    rules += [
        {
            "name": "backhaul-offline",
            "description": "without a network only the device can answer",
            "when": {"network_quality_in": ["offline"]},
            "chain": offline_chain,
        },
        {
            "name": "low-confidence",
            "description": "the edge model is unsure: escalate to a larger cloud model",
            "when": {"confidence_max": 0.6},
            "chain": chain("cache", *cloud),
        },
        {
            "name": "edge-hot",
            "description": "a hot device throttles: keep load off it",
            "when": {"temperature_c_min": 85},
            "chain": chain("cache", *cloud),
        },
        {
            "name": "edge-low-memory",
            "when": {"memory_headroom_pct_max": 10},
            "chain": chain("cache", *cloud),
        },
        {
            "name": "edge-congested",
            "description": "more than two queued requests per worker",
            "when": {"queue_ratio_min": 2},
            "chain": chain("cache", *cloud),
        },
        {"name": "default", "chain": chain("local", "cache", *cloud)},
    ]
    admission: dict[str, Any] = {"best_effort_offload": not private}
    if service_class == "safety_critical":
        admission["shed_priorities"] = []
    batching = None
    if service_class in ("batch", "near_real_time"):
        wait_ms = 50.0 if latency_slo_ms is None else min(50.0, latency_slo_ms / 4)
        batching = {"max_wait_ms": wait_ms, "max_batch_size": 32}
    doc: dict[str, Any] = {
        "service": service,
        "description": f"default policy for a {service_class} service",
        "rules": rules,
        "admission": admission,
    }
    if batching is not None:
        doc["batching"] = batching
    RoutingPolicy.model_validate(doc)  # a broken default is a bug here, not a user problem
    return doc


def default_cache_config(service: str, *, multi_tenant: bool = False) -> dict[str, Any]:
    """A cache config document with an edge result cache, a regional embedding cache and a
    semantic cache, keyed on everything their entries depend on."""
    versions = ["model_version", "prompt_template_version", "feature_schema_version", "policy_version"]
    every_change = ["model_version", "source_data_version", "prompt_template_version", "policy_version"]
    doc: dict[str, Any] = {
        "service": service,
        "layers": [
            {
                "name": "edge-result",
                "kind": "edge_result",
                "key": ["input_hash", *versions],
                "ttl": "300s",
                "max_entries": 10_000,
                "eviction": "lru",
                "invalidate_on": every_change,
            },
            {
                "name": "regional-embedding",
                "kind": "regional_embedding",
                "key": ["input_hash", "model_version", "feature_schema_version"],
                "ttl": "7d",
                "max_entries": 1_000_000,
                "eviction": "lfu",
                "invalidate_on": ["model_version", "source_data_version"],
            },
            {
                "name": "semantic",
                "kind": "semantic",
                # the similarity search runs inside the partition these fields select
                "key": versions,
                "ttl": "2h",
                "max_entries": 100_000,
                "eviction": "lru",
                "semantic": {"user_facing": 0.95, "prefetch": 0.85},
                "invalidate_on": every_change,
            },
        ],
        "alerts": {"hit_rate_drop_pct": 20, "stale_hit_rate_max": 0.02},
    }
    if multi_tenant:
        doc["tenant_field"] = "tenant_id"
    CacheConfig.model_validate(doc)
    return doc
