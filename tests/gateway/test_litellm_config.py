"""The LiteLLM compiler and read-back check (pure), and registering a LiteLLM proxy (API, PostgreSQL)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.litellm_config import compile_litellm, config_diff, readback_mismatches, running_view
from routing.policy import default_cache_config, default_policy
from tests.gateway.litellm_support import SERVICE, deployments

TARGET = {"proxy_url": "http://127.0.0.1:4000", "tier": "private_cloud", "deployments": deployments()}


def bundle(policy: dict[str, Any], cache: dict[str, Any] | None = None, revision: int = 4) -> dict[str, Any]:
    return {
        "revision": revision,
        "service": SERVICE,
        "routing_policy": policy,
        "cache_config": cache if cache is not None else default_cache_config(SERVICE),
        "model_version": None,
    }


def test_the_default_chain_becomes_model_groups_fallbacks_timeouts_and_the_cache():
    policy = {
        "service": SERVICE,
        "rules": [
            {
                "name": "unsure",
                "when": {"confidence_max": 0.6},
                "chain": [{"route": "public_cloud", "timeout_ms": 300}],
            },
            {
                "name": "default",
                "chain": [
                    {"route": "cache", "timeout_ms": 5},
                    {"route": "local", "timeout_ms": 40},
                    {"route": "private_cloud", "timeout_ms": 120, "retries": 2, "backoff_ms": 10},
                ],
            },
        ],
    }
    cache = {
        "service": SERVICE,
        "namespace": "tenant-a",
        "layers": [
            {
                "name": "edge-result",
                "kind": "edge_result",
                "key": [
                    "input_hash",
                    "model_version",
                    "prompt_template_version",
                    "feature_schema_version",
                    "policy_version",
                ],
                "ttl": "5m",
            }
        ],
    }
    compiled = compile_litellm(bundle(policy, cache), TARGET)
    assert compiled.ok, compiled.problems
    config = compiled.config
    assert [e["model_name"] for e in config["model_list"]] == [SERVICE, f"{SERVICE}--private_cloud"]
    local, cloud = config["model_list"]
    assert local["litellm_params"]["timeout"] == 0.04 and "num_retries" not in local["litellm_params"]
    assert cloud["litellm_params"]["timeout"] == 0.12 and cloud["litellm_params"]["num_retries"] == 2
    assert local["litellm_params"]["model"] == "openai/edge-small"
    assert local["model_info"]["slo_revision"] == 4 and local["model_info"]["slo_route"] == "local"
    assert local["model_info"]["slo_fingerprint"] == cloud["model_info"]["slo_fingerprint"]
    assert config["router_settings"]["fallbacks"] == [{SERVICE: [f"{SERVICE}--private_cloud"]}]
    assert config["router_settings"]["routing_strategy"] == "simple-shuffle"
    assert (config["router_settings"]["allowed_fails"], config["router_settings"]["cooldown_time"]) == (3, 30)
    assert config["litellm_settings"]["cache_params"] == {
        "type": "local",
        "ttl": 300,
        "namespace": "tenant-a",
    }
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}
    paths = {n["path"] for n in compiled.not_enforced}
    assert {"routing_policy.rules[0]", "routing_policy.rules[1].chain[2].backoff_ms"} <= paths
    assert "confidence_max" in next(
        n["reason"] for n in compiled.not_enforced if n["path"] == "routing_policy.rules[0]"
    )


def test_a_semantic_layer_needs_redis_and_an_embedding_model_else_it_is_reported():
    policy = default_policy(SERVICE, "interactive", None)
    policy["rules"][-1]["chain"] = [{"route": "cache", "timeout_ms": 5}, {"route": "local", "timeout_ms": 40}]
    plain = compile_litellm(bundle(policy), TARGET)
    assert plain.config["litellm_settings"]["cache_params"]["type"] == "local"
    assert any("semantic cache needs Redis" in n["reason"] for n in plain.not_enforced)
    semantic = compile_litellm(
        bundle(policy),
        {**TARGET, "semantic_cache": {"embedding_model": "embedder", "redis_url": "os.environ/R"}},
    )
    params = semantic.config["litellm_settings"]["cache_params"]
    assert params["type"] == "redis-semantic" and params["similarity_threshold"] == 0.95
    assert params["redis_semantic_cache_embedding_model"] == "embedder"


def test_what_cannot_compile_is_a_problem_and_a_changed_fingerprint_shows_in_the_read_back():
    only_local = {**TARGET, "deployments": {"local": deployments()["local"]}}
    policy = default_policy(SERVICE, "interactive", None)
    broken = compile_litellm(bundle(policy), only_local)
    assert (
        not broken.ok
        and "no deployment for route(s) private_cloud, public_cloud" in broken.problems[0]["message"]
    )
    compiled = compile_litellm(bundle(policy), TARGET).config
    # what the proxy would answer if it ran exactly this config (plus its own defaults)
    model_info = {
        "data": [
            {
                "model_name": e["model_name"],
                "litellm_params": {
                    **e["litellm_params"],
                    "api_key": "sk-resolved",
                    "use_in_pass_through": False,
                },
                "model_info": {**e["model_info"], "db_model": False, "max_tokens": None},
            }
            for e in compiled["model_list"]
        ]
    }
    router = {"current_values": {**compiled["router_settings"], "timeout": 6000}}
    ping = {
        "status": "healthy",
        "cache_type": "local",
        "litellm_cache_params": '{"namespace": "shelf-vision", "ttl": 300}',
    }
    running = running_view(model_info, router, ping)
    assert readback_mismatches(compiled, running) == []
    assert config_diff(compiled, running) == ""
    older = copy.deepcopy(model_info)
    older["data"][0]["model_info"]["slo_revision"] = 3
    older["data"][1]["litellm_params"]["timeout"] = 9
    problems = readback_mismatches(compiled, running_view(older, router, ping))
    assert any("slo_revision is 3, want 4" in p for p in problems) and any(
        "timeout is 9" in p for p in problems
    )
    assert readback_mismatches(compiled, running_view(model_info, router, None)) == ["cache is off, want on"]


@pytest.mark.django_db
def test_registering_a_litellm_proxy_validates_its_adapter_and_never_stores_a_key_in_clear(api_for, service):
    from routing.models.fleet import Gateway

    doc = {
        "name": "litellm-a",
        "kind": "litellm-proxy",
        "service": SERVICE,
        "tier": "private_cloud",
        "push_url": "http://127.0.0.1:4010/config",
        "adapter": {
            "proxy_url": "http://127.0.0.1:4000",
            "deployments": {"local": {"model": "openai/x", "api_key": "sk-literal"}, "edge": {"model": "m"}},
            "failure": {"allowed_fails": -1},
        },
    }
    response = api_for("operator").post("/api/v1/gateways/", doc, format="json")
    assert response.status_code == 400
    paths = {e["path"] for e in response.json()["errors"]}
    assert paths == {
        "adapter.deployments.local.api_key",
        "adapter.deployments.edge",
        "adapter.failure.allowed_fails",
        "adapter_secret",
    }, response.json()
    assert not Gateway.objects.exists()
    doc["adapter"] = {"proxy_url": "http://127.0.0.1:4000", "deployments": deployments()}
    doc["adapter_secret"] = "sk-master-xyz"
    created = api_for("operator").post("/api/v1/gateways/", doc, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["kind"] == "litellm-proxy" and "adapter_secret" not in body
    stored = Gateway.objects.get(pk=body["id"])
    assert "sk-master-xyz" not in stored.adapter_secret_encrypted and stored.adapter_secret_encrypted
    # the kind is fixed; a reference gateway takes no adapter
    change = api_for("operator").patch(f"/api/v1/gateways/{stored.pk}/", {"kind": "reference"}, format="json")
    assert change.status_code == 400 and change.json()["errors"][0]["path"] == "kind"
    plain = api_for("operator").post(
        "/api/v1/gateways/",
        {"name": "ref-a", "service": SERVICE, "tier": "edge", "adapter": {"proxy_url": "http://x"}},
        format="json",
    )
    assert plain.status_code == 400 and plain.json()["errors"][0]["path"] == "adapter"
