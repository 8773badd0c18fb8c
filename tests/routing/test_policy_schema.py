from __future__ import annotations

import pytest
import yaml

from routing.policy import (
    cache_config_json_schema,
    parse_duration,
    parse_policy,
    routing_policy_json_schema,
    validate_policy,
)

POLICY_YAML = """
service: shelf-vision
rules:
  - name: low-confidence
    when: {confidence_max: 0.6}
    chain:
      - {route: private_cloud, timeout_ms: 60, retries: 1, backoff_ms: 5}
      - {route: public_cloud, timeout_ms: 60, on_exhausted: {action: fail, status: 504}}
  - name: default
    chain:
      - {route: local, timeout_ms: 40}
      - {route: cache, timeout_ms: 10, on_exhausted: {action: degrade, degrade_to: stale_cache}}
"""


def test_it_parses_a_yaml_document() -> None:
    policy, problems = parse_policy(yaml.safe_load(POLICY_YAML))
    assert problems == []
    assert policy is not None
    assert [r.name for r in policy.rules] == ["low-confidence", "default"]
    assert policy.rules[0].chain[1].on_exhausted.status == 504


def test_it_reports_an_unknown_route_with_a_dotted_path() -> None:
    doc = yaml.safe_load(POLICY_YAML)
    doc["rules"][1]["chain"][1]["route"] = "gpu-farm"
    problems = validate_policy(doc, latency_slo_ms=None, service_class="interactive")
    assert [p.path for p in problems] == ["rules[1].chain[1].route"]
    assert "unknown route 'gpu-farm'" in problems[0].message
    assert problems[0].severity == "error"


def test_it_refuses_failed_as_a_configured_hop() -> None:
    problems = validate_policy(
        {"service": "s", "rules": [{"name": "r", "chain": [{"route": "failed", "timeout_ms": 1}]}]},
        latency_slo_ms=None,
        service_class=None,
    )
    assert problems[0].path == "rules[0].chain[0].route"
    assert "on_exhausted" in problems[0].message


def test_it_forbids_unknown_fields() -> None:
    problems = validate_policy(
        {
            "service": "s",
            "rules": [
                {"name": "r", "when": {"confidance_max": 0.5}, "chain": [{"route": "local", "timeout_ms": 5}]}
            ],
        },
        latency_slo_ms=None,
        service_class=None,
    )
    assert [(p.path, p.message) for p in problems] == [("rules[0].when.confidance_max", "unknown field")]


def test_it_accepts_on_exhausted_shorthand() -> None:
    policy, _ = parse_policy(
        {
            "service": "s",
            "rules": [{"name": "r", "chain": [{"route": "local", "timeout_ms": 5, "on_exhausted": "fail"}]}],
        }
    )
    assert policy is not None and policy.rules[0].chain[0].on_exhausted.action == "fail"


def test_it_rejects_a_non_object() -> None:
    assert parse_policy(["nope"])[1][0].path == "policy"


def test_it_exports_json_schemas() -> None:
    policy_schema = routing_policy_json_schema()
    cache_schema = cache_config_json_schema()
    assert policy_schema["additionalProperties"] is False
    assert "Hop" in policy_schema["$defs"]
    assert "CacheLayer" in cache_schema["$defs"]
    ttl = cache_schema["$defs"]["CacheLayer"]["properties"]["ttl"]
    assert ttl["anyOf"][1]["type"] == "string"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("300s", 300),
        ("5m", 300),
        ("2h", 7200),
        ("7d", 604_800),
        ("1w", 604_800),
        ("250ms", 0.25),
        (42, 42),
        ("90", 90),
    ],
)
def test_it_parses_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["5 parsecs", "-3s", -1, True, None, "h"])
def test_it_rejects_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)
