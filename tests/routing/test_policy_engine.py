from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.policy import FAILED, PolicyError, compile_policy, decide, default_policy

ROUTES = ["local", "cache", "private_cloud", "public_cloud"]


def hop(route: str, timeout_ms: float = 20, **extra: Any) -> dict[str, Any]:
    return {"route": route, "timeout_ms": timeout_ms, **extra}


EDGE_POLICY = {
    "service": "shelf-vision",
    "rules": [
        {"name": "privacy", "when": {"privacy": True}, "chain": [hop("local"), hop("private_cloud")]},
        {
            "name": "hot-device",
            "when": {"temperature_c_min": 85},
            "chain": [hop("cache"), hop("private_cloud")],
        },
        {
            "name": "low-confidence-congested",
            "when": {"confidence_max": 0.6, "queue_ratio_min": 2},
            "chain": [hop("cache", 5), hop("private_cloud", 60, retries=1), hop("public_cloud", 80)],
        },
        {"name": "default", "chain": [hop("local", 40), hop("cache", 5), hop("private_cloud", 60)]},
    ],
}


def test_it_explains_a_low_confidence_request_on_a_congested_edge_device() -> None:
    context = {"confidence": 0.42, "queue_depth": 9, "active_workers": 3, "temperature_c": 71}
    decision = decide(compile_policy(EDGE_POLICY), context, explain=True)
    assert decision.rule == "low-confidence-congested"
    assert decision.rule_index == 2
    assert decision.routes == ("cache", "private_cloud", "public_cloud", FAILED)
    assert decision.chain[1].retries == 1
    assert decision.chain[-1].status == 503
    trace = decision.trace
    assert [(t.rule, t.matched) for t in trace] == [
        ("privacy", False),
        ("hot-device", False),
        ("low-confidence-congested", True),
    ]
    assert [(m.condition, m.actual, m.expected) for m in trace[0].misses] == [("privacy", False, "== True")]
    assert [(m.condition, m.actual, m.expected) for m in trace[1].misses] == [
        ("temperature_c_min", 71, ">= 85")
    ]
    text = decision.explain()
    assert "temperature_c_min: temperature_c is 71, expected >= 85" in text
    assert "rules[2] low-confidence-congested: matched" in text
    assert "cache(5ms x1) -> private_cloud(60ms x2) -> public_cloud(80ms x1) -> failed(503)" in text


def test_it_explains_every_failed_condition_and_missing_fields() -> None:
    decision = decide(EDGE_POLICY, {"confidence": 0.9}, explain=True)
    assert decision.rule == "default"
    misses = decision.trace[2].misses
    assert [(m.condition, m.actual) for m in misses] == [("confidence_max", 0.9), ("queue_ratio_min", None)]
    assert "queue_ratio is missing" in str(misses[1])


def test_it_uses_the_implicit_default_when_no_rule_is_unconditional() -> None:
    doc = {
        "service": "s",
        "rules": [{"name": "hot", "when": {"temperature_c_min": 80}, "chain": [hop("cache")]}],
    }
    decision = decide(doc, {"temperature_c": 20})
    assert decision.rule == "default"
    assert decision.routes == ("local", "cache", "private_cloud", "public_cloud", FAILED)


def test_it_ends_a_chain_at_fail_or_degrade() -> None:
    doc = {
        "service": "s",
        "rules": [
            {
                "name": "offline",
                "when": {"network_quality_in": ["offline"]},
                "chain": [
                    hop("local"),
                    hop("cache", on_exhausted={"action": "degrade", "degrade_to": "stale_cache"}),
                ],
            },
            {
                "name": "default",
                "chain": [hop("local", on_exhausted={"action": "fail", "status": 504}), hop("public_cloud")],
            },
        ],
    }
    offline = decide(doc, {"network_quality": "offline"})
    assert offline.chain[-1].route == FAILED and offline.chain[-1].degrade_to == "stale_cache"
    assert decide(doc, {}).routes == ("local", FAILED)
    assert decide(doc, {}).chain[-1].status == 504


def test_safety_critical_is_always_admitted() -> None:
    doc = {
        "service": "s",
        "admission": {"rate_limit_rps": 10, "shed_priorities": ["low", "normal", "high"]},
        "rules": [{"name": "default", "chain": [hop("local")]}],
    }
    compiled = compile_policy(doc)
    context = {"service_class": "safety_critical", "priority": "low", "observed_rps": 500, "load_pct": 99}
    assert decide(compiled, context).admission == "admitted"
    assert decide(
        compile_policy(doc, service_class="safety_critical"), {"priority": "low", "observed_rps": 500}
    ).admitted


def test_it_rejects_over_the_rate_limit_with_a_reason() -> None:
    doc = {
        "service": "s",
        "admission": {"rate_limit_rps": 100},
        "rules": [{"name": "d", "chain": [hop("local")]}],
    }
    decision = decide(doc, {"observed_rps": 150, "priority": "normal"})
    assert decision.admission == "rejected"
    assert decision.routes == (FAILED,) and decision.chain[0].status == 429
    assert "150" in decision.reason and "100" in decision.reason
    assert decide(doc, {"observed_rps": 150, "priority": "critical"}).admitted


def test_it_offloads_or_sheds_low_priority_under_load() -> None:
    doc = {
        "service": "s",
        "admission": {"shed_load_pct": 80},
        "rules": [{"name": "d", "chain": [hop("local")]}],
    }
    offloaded = decide(doc, {"load_pct": 90, "priority": "low"})
    assert offloaded.admission == "offloaded"
    assert offloaded.routes == ("public_cloud", FAILED)
    private = decide(doc, {"load_pct": 90, "priority": "low", "privacy": True})
    assert private.admission == "shed" and "privacy" in private.reason
    assert decide(doc, {"load_pct": 90, "priority": "normal"}).admission == "admitted"
    doc["admission"]["best_effort_offload"] = False
    assert decide(doc, {"load_pct": 90, "priority": "low"}).admission == "shed"


def test_it_picks_the_nearest_healthy_region_with_model_affinity() -> None:
    doc = {
        "service": "s",
        "regions": {
            "candidates": [
                {"name": "eu-west", "rtt_ms": {"eu": 10}, "models": ["small"]},
                {"name": "eu-central", "rtt_ms": {"eu": 20}},
                {"name": "us-east", "rtt_ms": {"eu": 90}},
            ]
        },
        "rules": [{"name": "d", "chain": [hop("private_cloud"), hop("private_cloud")]}],
    }
    compiled = compile_policy(doc)
    regions = lambda ctx: [h.region for h in decide(compiled, ctx).chain if h.route == "private_cloud"]  # noqa: E731
    assert regions({"region": "eu"}) == ["eu-west", "eu-central"]
    assert regions({"region": "eu", "unhealthy_regions": ["eu-west"]}) == ["eu-central", "us-east"]
    assert regions({"region": "eu", "model": "large"}) == ["eu-central", "us-east"]
    assert regions({"region": "eu", "region_rtt_ms": {"us-east": 1}}) == ["us-east", "eu-west"]
    assert regions({"region": "eu", "unhealthy_regions": ["eu-west", "eu-central", "us-east"]}) == []
    assert decide(compiled, {"region": "eu"}, explain=True).chain == decide(compiled, {"region": "eu"}).chain


def test_it_drops_repeated_hops_even_in_an_unvalidated_policy() -> None:
    doc = {
        "service": "s",
        "rules": [{"name": "d", "chain": [hop("cache"), hop("public_cloud"), hop("cache")]}],
    }
    assert decide(doc, {}).routes == ("cache", "public_cloud", FAILED)


def test_it_refuses_to_compile_an_unparseable_policy() -> None:
    with pytest.raises(PolicyError) as caught:
        compile_policy(
            {"service": "s", "rules": [{"name": "d", "chain": [{"route": "moon", "timeout_ms": 1}]}]}
        )
    assert caught.value.problems[0].path == "rules[0].chain[0].route"


def test_it_routes_the_default_policy_sensibly() -> None:
    compiled = compile_policy(default_policy("shelf-vision", "interactive", 150))
    assert decide(compiled, {"confidence": 0.95, "temperature_c": 60}).routes[0] == "local"
    assert decide(compiled, {"confidence": 0.3}).rule == "low-confidence"
    assert "public_cloud" not in decide(compiled, {"privacy": True, "confidence": 0.3}).routes


# --- properties -------------------------------------------------------------------------

numbers = st.floats(min_value=0, max_value=200, allow_nan=False)
when_strategy = st.fixed_dictionaries(
    {},
    optional={
        "confidence_min": st.floats(0, 1),
        "confidence_max": st.floats(0, 1),
        "temperature_c_min": numbers,
        "queue_ratio_min": st.floats(0, 5),
        "queue_ratio_max": st.floats(0, 5),
        "rtt_ms_max": numbers,
        "privacy": st.booleans(),
        "network_quality_in": st.lists(st.sampled_from(["good", "fair", "poor", "offline"]), min_size=1),
        "priority_in": st.lists(st.sampled_from(["critical", "high", "normal", "low"]), min_size=1),
        "region_in": st.lists(st.sampled_from(["eu", "us", "ap"]), min_size=1),
        "region_not_in": st.lists(st.sampled_from(["eu", "us", "ap"]), min_size=1),
    },
)
hop_strategy = st.builds(
    lambda route, timeout, retries, ending: {
        "route": route,
        "timeout_ms": timeout,
        "retries": retries,
        "on_exhausted": ending,
    },
    st.sampled_from(ROUTES),
    st.floats(1, 500),
    st.integers(0, 3),
    st.sampled_from(["next", "next", "next", "fail", {"action": "degrade", "degrade_to": "stale_cache"}]),
)
policy_strategy = st.builds(
    lambda rules, admission, regions: {
        "service": "prop",
        "rules": [{"name": f"r{i}", "when": when, "chain": chain} for i, (when, chain) in enumerate(rules)],
        "admission": admission,
        **(
            {"regions": {"candidates": [{"name": r, "rtt_ms": {"eu": n}} for n, r in enumerate(regions)]}}
            if regions
            else {}
        ),
    },
    st.lists(st.tuples(when_strategy, st.lists(hop_strategy, min_size=1, max_size=7)), max_size=8),
    st.fixed_dictionaries(
        {},
        optional={
            "rate_limit_rps": st.floats(1, 1000),
            "shed_load_pct": st.floats(1, 100),
            "best_effort_offload": st.booleans(),
            "shed_priorities": st.lists(st.sampled_from(["high", "normal", "low"])),
        },
    ),
    st.lists(st.sampled_from(["eu-west", "eu-central", "us-east"]), unique=True, max_size=3),
)
context_strategy = st.fixed_dictionaries(
    {},
    optional={
        "service_class": st.sampled_from(["interactive", "batch", "safety_critical"]),
        "priority": st.sampled_from(["critical", "high", "normal", "low"]),
        "confidence": st.floats(0, 1),
        "temperature_c": numbers,
        "queue_depth": st.integers(0, 20),
        "active_workers": st.integers(0, 4),
        "rtt_ms": numbers,
        "privacy": st.booleans(),
        "network_quality": st.sampled_from(["good", "fair", "poor", "offline"]),
        "region": st.sampled_from(["eu", "us", "ap"]),
        "model": st.sampled_from(["small", "large"]),
        "unhealthy_regions": st.lists(st.sampled_from(["eu-west", "eu-central", "us-east"])),
        "observed_rps": st.floats(0, 2000),
        "load_pct": st.floats(0, 100),
    },
)


def policy_routes(doc: dict[str, Any]) -> set[str]:
    routes = {h["route"] for r in doc["rules"] for h in r["chain"]}
    if not doc["rules"] or doc["rules"][-1]["when"]:
        routes |= set(ROUTES)  # the implicit default chain
    if doc["admission"].get("best_effort_offload", True):
        routes.add("public_cloud")
    return routes | {FAILED}


@settings(max_examples=300, deadline=None)
@given(policy_strategy, context_strategy)
def test_decide_is_deterministic_loop_free_and_explain_agrees(
    doc: dict[str, Any], context: dict[str, Any]
) -> None:
    compiled = compile_policy(doc)
    fast = decide(compiled, context)
    again = decide(compile_policy(doc), dict(context))
    explained = decide(compiled, context, explain=True)
    assert fast == again
    assert explained.routes == fast.routes
    assert explained.rule == fast.rule and explained.chain == fast.chain
    assert set(fast.routes) <= policy_routes(doc)
    hops = [(h.route, h.region) for h in fast.chain]
    assert len(hops) == len(set(hops)), "a route repeats: the chain loops"
    assert fast.chain[-1].route == FAILED, "every chain ends in explicit failure"
    assert all(h.route != FAILED for h in fast.chain[:-1])
    if fast.admitted and fast.admission == "admitted":
        assert explained.trace[-1].matched and not any(t.matched for t in explained.trace[:-1])
    if context.get("service_class") == "safety_critical":
        assert fast.admission == "admitted"
