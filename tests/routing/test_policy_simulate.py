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


EDGE_FIRST = {
    "service": "s",
    "rules": [
        {
            "name": "low",
            "when": {"confidence_max": 0.3},
            "chain": [hop("cache", 10), hop("private_cloud", 200)],
        },
        {"name": "default", "chain": [hop("local", 60), hop("cache", 10), hop("private_cloud", 200)]},
    ],
}
CLOUD_HEAVY = {
    "service": "s",
    "rules": [
        {
            "name": "low",
            "when": {"confidence_max": 0.7},
            "chain": [hop("public_cloud", 600), hop("private_cloud", 200)],
        },
        {"name": "default", "chain": [hop("local", 60), hop("cache", 10), hop("private_cloud", 200)]},
    ],
}


def test_escalating_to_public_cloud_predicts_higher_p95_and_cost() -> None:
    contexts = generate_contexts(DISTRIBUTION, 3000, seed=1)
    report = simulate(
        EDGE_FIRST, CLOUD_HEAVY, contexts, ROUTE_STATS, latency_threshold_ms=150, objective=99.0
    )
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
    slow = {
        "service": "s",
        "rules": [{"name": "d", "chain": [hop("private_cloud", 10, retries=2, backoff_ms=5)]}],
    }
    report = simulate(slow, slow, [{}] * 50, ROUTE_STATS, latency_threshold_ms=100)
    # p50 60 ms never fits a 10 ms timeout: three paid attempts, then explicit failure
    assert report.a.route_mix == {"failed": 1.0}
    assert report.a.attempts_per_request == 3
    assert report.a.cost_per_1000_usd == pytest.approx(1000 * 3 * 0.0003)
    assert report.a.bad_ratio == 1 and report.a.p95_ms is None


def test_it_needs_stats_for_every_route_used() -> None:
    with pytest.raises(ValueError, match="public_cloud"):
        simulate(
            CLOUD_HEAVY, CLOUD_HEAVY, [{"confidence": 0.1}], {"private_cloud": ROUTE_STATS["private_cloud"]}
        )
    with pytest.raises(ValueError):
        simulate(EDGE_FIRST, EDGE_FIRST, [], {"local": {"error_ratio": 0.1}})


def test_generate_contexts_is_seeded() -> None:
    distribution = {
        **DISTRIBUTION,
        "privacy": {"bernoulli": 0.5},
        "rtt_ms": {"lognormal": {"p50": 40, "p95": 90}},
        "temperature_c": {"normal": {"mean": 60, "sd": 30, "min": 0, "max": 90}},
    }
    first = generate_contexts(distribution, 200, seed=5)
    assert first == generate_contexts(distribution, 200, seed=5)
    assert first != generate_contexts(distribution, 200, seed=6)
    assert all(0 <= c["temperature_c"] <= 90 and c["active_workers"] == 2 for c in first)
    with pytest.raises(ValueError):
        generate_contexts({"x": {"zipf": 2}}, 1)


# A conditional rule that sends low-confidence requests to an 8 ms local hop that fails them all
# (the local model answers in about 20 ms): the only bad rule of the candidate.
GOOD = {
    "service": "s",
    "rules": [{"name": "default", "chain": [hop("local", 60), hop("private_cloud", 200)]}],
}
CONDITIONAL_BAD = {
    "service": "s",
    "rules": [
        {
            "name": "low-confidence",
            "when": {"confidence_max": 0.9},
            "chain": [hop("local", 8, on_exhausted="fail")],
        },
        {"name": "default", "chain": [hop("local", 60), hop("private_cloud", 200)]},
    ],
}
# one gateway's recorded minutes: (requests, sampled contexts)
RECORDED = [
    (
        600,
        [
            {"confidence": 0.4, "service_class": "interactive"},
            {"confidence": 0.95, "service_class": "interactive"},
            {"confidence": 0.7, "service_class": "interactive"},
        ],
    ),
    (300, [{"confidence": 0.97, "service_class": "interactive"}]),
]


def test_a_conditional_rule_is_exercised_by_recorded_contexts_and_not_by_empty_ones() -> None:
    from routing.policy import draw_recorded_contexts

    contexts = draw_recorded_contexts(RECORDED, 2000, seed=3)
    report = simulate(GOOD, CONDITIONAL_BAD, contexts, ROUTE_STATS, latency_threshold_ms=150, objective=99.0)
    # two of the four sampled contexts (each standing for 200 or 300 requests) are below 0.9: 400 of 900
    assert report.b.rule_mix["low-confidence"] == pytest.approx(400 / 900, abs=0.04)
    assert report.b.failed_ratio == pytest.approx(400 / 900, abs=0.04)
    assert report.b.budget_burn > 30 > 1 > report.a.budget_burn
    # the same rule on contexts that carry no confidence never matches: the blind spot this closes
    blind = simulate(
        GOOD, CONDITIONAL_BAD, [{}] * 2000, ROUTE_STATS, latency_threshold_ms=150, objective=99.0
    )
    assert "low-confidence" not in blind.b.rule_mix
    assert blind.b.budget_burn == pytest.approx(blind.a.budget_burn)


def test_recorded_contexts_are_drawn_by_the_traffic_they_stand_for() -> None:
    from routing.policy import draw_recorded_contexts

    # minute one: 1 context for 900 requests; minute two: 3 contexts for 100 requests
    samples = [(900, [{"region": "a"}]), (100, [{"region": "b"}, {"region": "b"}, {"region": "b"}]), (50, [])]
    drawn = draw_recorded_contexts(samples, 10_000, seed=1)
    assert len(drawn) == 10_000
    assert sum(c["region"] == "a" for c in drawn) / 10_000 == pytest.approx(0.9, abs=0.02)
    assert drawn == draw_recorded_contexts(samples, 10_000, seed=1)  # seeded
    drawn[0]["region"] = "changed"
    assert samples[0][1][0] == {"region": "a"}  # copies: the caller may add fields
    assert draw_recorded_contexts([], 10) == [] and draw_recorded_contexts([(0, [{"x": 1}])], 10) == []
