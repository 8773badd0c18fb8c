from __future__ import annotations

from typing import Any

from routing.policy import Problem, default_policy, validate_policy


def hop(route: str, timeout_ms: float = 20, **extra: Any) -> dict[str, Any]:
    return {"route": route, "timeout_ms": timeout_ms, **extra}


def policy(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"service": "shelf-vision", "rules": list(rules), **extra}


def rule(name: str, *chain: dict[str, Any], **when: Any) -> dict[str, Any]:
    return {"name": name, "when": when, "chain": list(chain) or [hop("local")]}


def errors(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in problems if p.severity == "error"]


def warnings(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in problems if p.severity == "warning"]


def check(doc: dict[str, Any], *, latency_slo_ms: float | None = None, service_class: str = "interactive"):
    return validate_policy(doc, latency_slo_ms=latency_slo_ms, service_class=service_class)


def test_it_accepts_a_clean_policy() -> None:
    doc = policy(rule("low", hop("private_cloud", 60), confidence_max=0.6), rule("default", hop("local", 40)))
    assert check(doc, latency_slo_ms=150) == []


def test_it_rejects_a_cloud_chain_that_cannot_meet_a_150ms_latency_slo() -> None:
    doc = policy(
        rule("fast", hop("local", 40), confidence_min=0.8),
        rule("escalate", hop("private_cloud", 80, retries=1, backoff_ms=10), hop("public_cloud", 120)),
    )
    problems = errors(check(doc, latency_slo_ms=150))
    assert len(problems) == 1
    path, message = problems[0]
    assert path == "rules[1].chain"
    # 80 x 2 attempts + 10 ms backoff + 120 = 290
    assert "290 ms" in message
    assert "150 ms" in message
    assert "private_cloud 170 + public_cloud 120" in message


def test_it_counts_growing_backoffs_in_the_worst_case() -> None:
    doc = policy(rule("default", hop("private_cloud", 10, retries=3, backoff_ms=10, backoff_multiplier=2)))
    # 4 attempts x 10 + backoffs 10 + 20 + 40
    assert "110 ms" in errors(check(doc, latency_slo_ms=100))[0][1]


def test_it_stops_the_worst_case_at_a_failing_hop() -> None:
    doc = policy(rule("default", hop("local", 40, on_exhausted="fail"), hop("public_cloud", 500)))
    problems = check(doc, latency_slo_ms=100)
    assert errors(problems) == []
    assert warnings(problems) == [
        ("rules[0].chain[1]", "unreachable: rules[0].chain[0] ends the chain with on_exhausted fail")
    ]


def test_it_checks_the_implicit_default_chain() -> None:
    doc = policy(rule("hot", hop("cache", 5), temperature_c_min=80))
    [(path, message)] = errors(check(doc, latency_slo_ms=100))
    assert path == "default_chain"
    assert "implicit default chain" in message


def test_it_finds_a_rule_shadowed_by_an_unconditional_rule() -> None:
    doc = policy(rule("catch-all", hop("local")), rule("low", hop("cache"), confidence_max=0.5))
    [(path, message)] = errors(check(doc))
    assert path == "rules[1]"
    assert "shadowed" in message and "'catch-all' (rules[0]) is unconditional" in message


def test_it_finds_a_rule_shadowed_by_a_wider_earlier_rule() -> None:
    doc = policy(
        rule("low", hop("cache"), confidence_max=0.6),
        rule("very-low-hot", hop("private_cloud"), confidence_max=0.3, temperature_c_min=80),
        rule("default", hop("local")),
    )
    [(path, message)] = errors(check(doc))
    assert path == "rules[1]"
    assert "'low' (rules[0]) matches every request this rule would" in message


def test_it_does_not_call_overlapping_rules_shadowed() -> None:
    doc = policy(
        rule("low", hop("cache"), confidence_max=0.6),
        rule("mid-hot", hop("private_cloud"), confidence_max=0.8, temperature_c_min=80),
        rule("eu", hop("private_cloud"), region_in=["eu-west"]),
        rule("not-eu", hop("public_cloud"), region_not_in=["eu-west", "eu-central"]),
        rule("default", hop("local")),
    )
    assert errors(check(doc)) == []


def test_it_understands_region_sets_when_checking_shadowing() -> None:
    doc = policy(
        rule("not-cn", hop("public_cloud"), region_not_in=["cn-north"]),
        rule("eu", hop("private_cloud"), region_in=["eu-west"]),
        rule("default", hop("local")),
    )
    assert errors(check(doc))[0][0] == "rules[1]"


def test_it_reports_a_rule_that_can_never_match() -> None:
    doc = policy(
        rule("empty", hop("local"), confidence_min=0.7, confidence_max=0.3), rule("default", hop("local"))
    )
    [(path, message)] = errors(check(doc))
    assert path == "rules[0].when"
    assert "can never match" in message


def test_it_reports_fallback_loops_and_repeated_hops() -> None:
    doc = policy(rule("default", hop("cache"), hop("public_cloud"), hop("cache")))
    [(path, message)] = errors(check(doc))
    assert path == "rules[0].chain[2].route"
    assert "repeated hop 'cache'" in message and "chain[0]" in message


def test_it_allows_the_same_route_in_different_regions() -> None:
    regions = {"candidates": [{"name": "eu-west"}, {"name": "eu-central"}]}
    doc = policy(
        rule("default", hop("private_cloud", region="eu-west"), hop("private_cloud", region="eu-central")),
        regions=regions,
    )
    assert errors(check(doc)) == []


def test_it_rejects_an_unknown_region() -> None:
    doc = policy(
        rule("default", hop("private_cloud", region="mars-1")), regions={"candidates": [{"name": "eu-west"}]}
    )
    assert errors(check(doc))[0][0] == "rules[0].chain[0].region"


def test_it_rejects_chains_longer_than_five_hops() -> None:
    regions = {"candidates": [{"name": f"r{i}"} for i in range(4)]}
    chain = [hop("local"), hop("cache")] + [hop("private_cloud", region=f"r{i}") for i in range(4)]
    doc = policy(rule("default", *chain), regions=regions)
    [(path, message)] = errors(check(doc))
    assert path == "rules[0].chain"
    assert "6 hops; at most 5" in message


def test_it_rejects_duplicate_rule_names() -> None:
    doc = policy(rule("same", hop("cache"), confidence_max=0.5), rule("same", hop("local")))
    assert ("rules[1].name", "duplicate rule name 'same' (also rules[0])") in errors(check(doc))


def test_it_keeps_privacy_sensitive_traffic_off_public_cloud() -> None:
    doc = policy(rule("default", hop("local"), hop("public_cloud")), admission={"best_effort_offload": False})
    assert errors(check(doc, service_class="privacy_sensitive")) == [
        ("rules[0].chain[1].route", "a privacy_sensitive service must not route to public_cloud")
    ]
    flagged = policy(rule("private", hop("public_cloud"), privacy=True), rule("default", hop("local")))
    assert errors(check(flagged))[0][0] == "rules[0].chain[0].route"


def test_it_rejects_offload_for_a_privacy_sensitive_service() -> None:
    doc = policy(rule("default", hop("local")))
    assert errors(check(doc, service_class="privacy_sensitive"))[0][0] == "admission.best_effort_offload"


def test_it_rejects_contradictory_autoscaling_thresholds() -> None:
    doc = policy(
        rule("default", hop("local")),
        autoscaling={
            "scale_out_queue_ratio": 2,
            "scale_in_queue_ratio": 3,
            "scale_out_p95_pct_of_slo": 80,
            "scale_in_p95_pct_of_slo": 90,
            "min_workers": 5,
            "max_workers": 2,
            "scale_out_cooldown_s": 300,
            "scale_in_cooldown_s": 60,
        },
    )
    problems = check(doc)
    assert [p for p, _ in errors(problems)] == [
        "autoscaling.min_workers",
        "autoscaling.scale_in_queue_ratio",
        "autoscaling.scale_in_p95_pct_of_slo",
    ]
    assert [p for p, _ in warnings(problems)] == ["autoscaling.scale_in_cooldown_s"]


def test_it_warns_about_an_unused_default_chain_and_a_foreign_service_class() -> None:
    doc = policy(
        rule("batch-only", hop("cache"), service_class_in=["batch"]),
        rule("default", hop("local")),
        default_chain=[hop("local")],
    )
    assert [p for p, _ in warnings(check(doc))] == ["rules[0].when.service_class_in", "default_chain"]


def test_it_warns_about_a_long_batching_wait() -> None:
    doc = policy(rule("default", hop("local")), batching={"max_wait_ms": 80, "max_batch_size": 8})
    assert [p for p, _ in warnings(check(doc, latency_slo_ms=150))] == ["batching.max_wait_ms"]


def test_default_policies_validate_cleanly_for_every_class() -> None:
    for service_class in ("interactive", "near_real_time", "batch", "privacy_sensitive", "safety_critical"):
        for slo_ms in (None, 100, 150, 2_000):
            doc = default_policy("shelf-vision", service_class, slo_ms)
            assert check(doc, latency_slo_ms=slo_ms, service_class=service_class) == [], (
                service_class,
                slo_ms,
            )
