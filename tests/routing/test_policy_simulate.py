from __future__ import annotations

from typing import Any

import pytest

from routing.policy import generate_contexts, simulate

ROUTE_STATS = {
    "local": {"p50_ms": 20, "p95_ms": 35, "error_ratio": 0.01, "cost_per_request_usd": 0.00002},
    "cache": {"latency_samples_ms": [2, 3, 3, 4, 6], "error_ratio": 0.6, "cost_per_request_usd": 0.000001},
    "private_cloud": {"p50_ms": 60, "p95_ms": 110, "error_ratio": 0.005, "cost_per_request_usd": 0.0003},
    "public_cloud": {"p50_ms": 140, "p95_ms": 300, "error_ratio": 0.01, "cost_per_request_usd": 0.002},
}
DISTRIBUTION = {
    "service_class": {"choices": {"interactive": 3, "batch": 1}},
    "confidence": {"uniform": [0, 1]},
    "queue_depth": {"int_uniform": [0, 8]},
    "active_workers": 2,
}


def hop(route: str, timeout_ms: float, **extra: Any) -> dict[str, Any]:
    return {"route": route, "timeout_ms": timeout_ms, **extra}


EDGE_FIRST = {"service": "s", "rules": [
    {"name": "low", "when": {"confidence_max": 0.3}, "chain": [hop("cache", 10), hop("private_cloud", 200)]},
    {"name": "default", "chain": [hop("local", 60), hop("cache", 10), hop("private_cloud", 200)]},
]}
CLOUD_HEAVY = {"service": "s", "rules": [
    {"name": "low", "when": {"confidence_max": 0.7}, "chain": [hop("public_cloud", 600), hop("private_cloud", 200)]},
    {"name": "default", "chain": [hop("local", 60), hop("cache", 10), hop("private_cloud", 200)]},
]}


def test_escalating_to_public_cloud_predicts_higher_p95_and_cost() -> None:
    contexts = generate_contexts(DISTRIBUTION, 3000, seed=1)
    report = simulate(EDGE_FIRST, CLOUD_HEAVY, contexts, ROUTE_STATS, latency_threshold_ms=150, objective=99.0)
    assert report.route_mix_shift["public_cloud"] > 0.3
    assert report.route_mix_shift["local"] < 0
    assert report.p95_shift_ms["all"] > 50
    assert report.b.p95_ms_by_class["interactive"] > report.a.p95_ms_by_class["interactive"]
    assert report.b.cost_per_1000_usd > 3 * report.a.cost_per_1000_usd
    assert report.b.bad_ratio > report.a.bad_ratio
    assert report.b.budget_burn == pytest.approx(report.b.bad_ratio / 0.01)
    assert sum(report.a.route_mix.values()) == pytest.approx(1)


def test_simulation_is_reproducible() -> None:
    contexts = generate_contexts(DISTRIBUTION, 500, seed=3)
    first = simulate(EDGE_FIRST, CLOUD_HEAVY, contexts, ROUTE_STATS, seed=9)
    assert simulate(EDGE_FIRST, CLOUD_HEAVY, contexts, ROUTE_STATS, seed=9) == first
    same = simulate(EDGE_FIRST, EDGE_FIRST, contexts, ROUTE_STATS, seed=9)
    assert same.a == same.b and all(shift == 0 for shift in same.route_mix_shift.values())


def test_it_counts_timeouts_retries_and_failures() -> None:
    slow = {"service": "s", "rules": [{"name": "d", "chain": [hop("private_cloud", 10, retries=2, backoff_ms=5)]}]}
    report = simulate(slow, slow, [{}] * 50, ROUTE_STATS, latency_threshold_ms=100)
    # p50 60 ms never fits a 10 ms timeout: three paid attempts, then explicit failure
    assert report.a.route_mix == {"failed": 1.0}
    assert report.a.attempts_per_request == 3
    assert report.a.cost_per_1000_usd == pytest.approx(1000 * 3 * 0.0003)
    assert report.a.bad_ratio == 1 and report.a.p95_ms is None


def test_it_needs_stats_for_every_route_used() -> None:
    with pytest.raises(ValueError, match="public_cloud"):
        simulate(CLOUD_HEAVY, CLOUD_HEAVY, [{"confidence": 0.1}], {"private_cloud": ROUTE_STATS["private_cloud"]})
    with pytest.raises(ValueError):
        simulate(EDGE_FIRST, EDGE_FIRST, [], {"local": {"error_ratio": 0.1}})


def test_generate_contexts_is_seeded() -> None:
    distribution = {**DISTRIBUTION, "privacy": {"bernoulli": 0.5},
                    "rtt_ms": {"lognormal": {"p50": 40, "p95": 90}},
                    "temperature_c": {"normal": {"mean": 60, "sd": 30, "min": 0, "max": 90}}}
    first = generate_contexts(distribution, 200, seed=5)
    assert first == generate_contexts(distribution, 200, seed=5)
    assert first != generate_contexts(distribution, 200, seed=6)
    assert all(0 <= c["temperature_c"] <= 90 and c["active_workers"] == 2 for c in first)
    with pytest.raises(ValueError):
        generate_contexts({"x": {"zipf": 2}}, 1)
