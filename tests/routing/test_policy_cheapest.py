"""cheapest_compliant: a bounded search over chain orders and rule thresholds for the cheapest
policy whose predicted burn stays at or below 1x (pure; figures checked by hand)."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.policy import compile_policy
from routing.policy.cheapest import cheapest_compliant
from routing.policy.simulate import RouteStats, replay

FAST_CHEAP = {"error_ratio": 0.0, "cost_per_request_usd": 0.0001, "p50_ms": 30, "p95_ms": 60}
CLOUD = {"error_ratio": 0.0, "cost_per_request_usd": 0.002, "p50_ms": 80, "p95_ms": 150}
PUBLIC = {"error_ratio": 0.0, "cost_per_request_usd": 0.004, "p50_ms": 90, "p95_ms": 160}


def policy(default_chain: list[str], hot_min: float | None = None) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    if hot_min is not None:
        rules.append(
            {
                "name": "hot",
                "when": {"temperature_c_min": hot_min},
                "chain": [{"route": "private_cloud", "timeout_ms": 400}],
            }
        )
    rules.append({"name": "default", "chain": [{"route": r, "timeout_ms": 400} for r in default_chain]})
    return {"service": "s", "rules": rules}


def contexts(n: int = 400, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"temperature_c": rng.uniform(50, 80), "service_class": "interactive"} for _ in range(n)]


def stats(**over: dict[str, Any]) -> dict[str, Any]:
    return {"local": FAST_CHEAP, "private_cloud": CLOUD, "public_cloud": PUBLIC, "cache": FAST_CHEAP, **over}


def test_the_cheap_route_first_is_found_and_its_cost_is_exact():
    result = cheapest_compliant(
        policy(["private_cloud", "local"]), contexts(), stats(), objective=99.0, latency_threshold_ms=300
    )
    assert result.status == "cheaper"
    assert result.document is not None
    assert [h["route"] for h in result.document["rules"][-1]["chain"]] == ["local", "private_cloud"]
    # independent: no errors and no timeouts, so every request is one attempt on its first route
    assert abs(result.current.cost_per_1000_usd - 1000 * 0.002) < 1e-9
    assert result.best is not None and abs(result.best.cost_per_1000_usd - 1000 * 0.0001) < 1e-9
    assert result.best.budget_burn == 0.0
    assert result.changes == ["rule default: chain local>private_cloud"]


def test_a_cheaper_order_that_breaks_the_slo_is_rejected_with_its_burn():
    slow_local = {"error_ratio": 0.0, "cost_per_request_usd": 0.0001, "p50_ms": 350, "p95_ms": 380}
    result = cheapest_compliant(
        policy(["private_cloud", "local"]),
        contexts(),
        stats(local=slow_local),
        objective=99.0,
        latency_threshold_ms=300,
    )
    assert result.status == "current_is_cheapest" and result.document == policy(["private_cloud", "local"])
    (rejected,) = result.rejected
    assert rejected.description == "rule default: chain local>private_cloud"
    assert rejected.reason.startswith("non_compliant: predicted burn")
    # independent: every answer from local takes 350-380 ms > 300 ms: all requests are bad,
    # burn = 1 / (1 - 0.99) = 100x
    assert abs(rejected.budget_burn - 100.0) < 1e-9
    assert result.rejected_counts == {"non_compliant": 1}


def test_a_threshold_is_raised_until_no_request_pays_for_the_cloud():
    current = policy(["local", "private_cloud"], hot_min=60)
    ctx = contexts()
    result = cheapest_compliant(current, ctx, stats(), objective=99.0, latency_threshold_ms=300)
    assert result.status == "cheaper" and result.document is not None
    # first improvement: 60 x 1.25 = 75 is cheaper, then 75 x 1.25 = 94 (an integer stays one),
    # above every context's 50-80 C: nothing is hot any more
    assert result.changes == ["rule hot: temperature_c_min 60 -> 75", "rule hot: temperature_c_min 75 -> 94"]
    assert result.document["rules"][0]["when"]["temperature_c_min"] == 94
    hot = sum(1 for c in ctx if c["temperature_c"] >= 60)
    assert abs(result.current.cost_per_1000_usd - (hot * 0.002 + (400 - hot) * 0.0001) / 400 * 1000) < 1e-9
    assert abs(result.best.cost_per_1000_usd - 0.1) < 1e-9
    assert {r.reason.split(":")[0] for r in result.rejected} <= {"not_cheaper", "non_compliant", "invalid"}


def test_kept_rules_are_left_alone():
    current = policy(["private_cloud", "local"], hot_min=60)
    result = cheapest_compliant(
        current, contexts(), stats(), objective=99.0, latency_threshold_ms=300, keep_rules={"hot"}
    )
    assert result.changes == ["rule default: chain local>private_cloud"]
    assert result.document is not None and result.document["rules"][0] == current["rules"][0]
    assert not any(r.description.startswith("rule hot") for r in result.rejected)


def test_no_compliant_policy_gives_none():
    broken = {"error_ratio": 1.0, "cost_per_request_usd": 0.0001, "p50_ms": 30, "p95_ms": 60}
    result = cheapest_compliant(
        policy(["local"]), contexts(50), stats(local=broken), objective=99.0, latency_threshold_ms=300
    )
    assert result.status == "none_compliant" and result.document is None and result.best is None


def test_the_validate_callback_rejects_candidates_as_invalid():
    result = cheapest_compliant(
        policy(["private_cloud", "local"]),
        contexts(50),
        stats(),
        objective=99.0,
        validate=lambda doc: (
            ["local first is not allowed"] if doc["rules"][-1]["chain"][0]["route"] == "local" else []
        ),
    )
    assert result.status == "current_is_cheapest"
    assert result.rejected[0].reason == "invalid: local first is not allowed"


route_figures = st.fixed_dictionaries(
    {
        "error_ratio": st.sampled_from([0.0, 0.001, 0.01, 0.1, 0.5]),
        "cost_per_request_usd": st.sampled_from([0.0, 0.0001, 0.001, 0.004]),
        "p50_ms": st.sampled_from([20, 80, 250]),
        "p95_ms": st.sampled_from([300, 500]),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    local=route_figures,
    private=route_figures,
    public=route_figures,
    order=st.permutations(["local", "private_cloud", "public_cloud"]),
    hot_min=st.sampled_from([None, 55.0, 70.0]),
    objective=st.sampled_from([90.0, 99.0, 99.9]),
)
def test_never_non_compliant_and_never_costlier_than_a_compliant_current(
    local, private, public, order, hot_min, objective
):
    figures = stats(local=local, private_cloud=private, public_cloud=public)
    current = policy(list(order), hot_min=hot_min)
    ctx = contexts(120)
    result = cheapest_compliant(
        copy.deepcopy(current), ctx, figures, objective=objective, latency_threshold_ms=400, max_candidates=60
    )
    compiled_stats = {k: RouteStats.of(v) for k, v in figures.items()}

    def figures_of(document: dict[str, Any]) -> tuple[float, float]:
        report = replay(
            compile_policy(document), ctx, compiled_stats, latency_threshold_ms=400, objective=objective
        )
        assert report.budget_burn is not None
        return report.budget_burn, report.cost_per_1000_usd

    current_burn, current_cost = figures_of(current)
    if result.document is None:
        assert result.status == "none_compliant" and current_burn > 1.0
        return
    burn, cost = figures_of(result.document)  # replayed independently of the search
    assert burn <= 1.0
    if current_burn <= 1.0:
        assert cost <= current_cost
    if result.status == "current_is_cheapest":
        assert result.document == current
