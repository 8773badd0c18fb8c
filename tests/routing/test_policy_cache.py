from __future__ import annotations

from typing import Any

from routing.policy import cache_key, default_cache_config, validate_cache_config

FULL_KEY = [
    "input_hash",
    "model_version",
    "prompt_template_version",
    "feature_schema_version",
    "policy_version",
]


def config(**layer: Any) -> dict[str, Any]:
    base = {"name": "edge-result", "kind": "edge_result", "key": FULL_KEY, "ttl": "300s"}
    return {"service": "shelf-vision", "layers": [{**base, **layer}]}


def errors(doc: dict[str, Any], **kwargs: Any) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in validate_cache_config(doc, **kwargs) if p.severity == "error"]


def test_the_default_cache_config_validates_cleanly() -> None:
    assert validate_cache_config(default_cache_config("shelf-vision")) == []
    assert (
        validate_cache_config(default_cache_config("shelf-vision", multi_tenant=True), multi_tenant=True)
        == []
    )


def test_a_cache_config_whose_key_lacks_the_model_version_is_rejected() -> None:
    doc = config(key=[f for f in FULL_KEY if f != "model_version"])
    [(path, message)] = errors(doc)
    assert path == "layers[0].key"
    assert "lacks model_version" in message


def test_it_requires_prompt_template_feature_schema_and_policy_versions() -> None:
    [(path, message)] = errors(config(key=["input_hash", "model_version"]))
    assert path == "layers[0].key"
    assert "prompt_template_version, feature_schema_version, policy_version" in message


def test_a_multi_tenant_service_needs_the_tenant_in_the_key() -> None:
    doc = config()
    assert errors(doc) == []
    assert errors(doc, multi_tenant=True)[0][1].startswith("a multi-tenant service needs the tenant")
    assert errors(config(key=[*FULL_KEY, "tenant_id"]), multi_tenant=True) == []
    assert errors({**doc, "tenant_field": "org"}, multi_tenant=True) == []


def test_it_rejects_a_zero_ttl_and_one_beyond_90_days() -> None:
    assert errors(config(ttl=0)) == [
        ("layers[0].ttl", "a TTL of 0 caches nothing; disable the layer instead")
    ]
    assert errors(config(ttl="91d"))[0][0] == "layers[0].ttl"
    assert errors(config(ttl="90d")) == []
    assert errors(config(ttl="soon"))[0][0] == "layers[0].ttl"


def test_a_low_user_facing_semantic_threshold_needs_a_reason() -> None:
    semantic = {"name": "sem", "kind": "semantic", "key": FULL_KEY[1:], "ttl": "2h"}
    low = {**semantic, "semantic": {"user_facing": 0.85, "prefetch": 0.8}}
    doc = {"service": "s", "layers": [low]}
    [(path, message)] = errors(doc)
    assert path == "layers[0].semantic.user_facing"
    assert "0.85" in message
    low["semantic"]["reason"] = "answers are product ids; tuned on 20k labelled lookups"
    assert errors(doc) == []
    assert errors({"service": "s", "layers": [semantic]})[0][0] == "layers[0].semantic"


def test_it_rejects_duplicate_layers_and_misplaced_thresholds() -> None:
    layer = config()["layers"][0]
    doc = {"service": "s", "layers": [layer, {**layer, "semantic": {"user_facing": 0.95}}]}
    assert [p for p, _ in errors(doc)] == ["layers[1].name", "layers[1].semantic"]


def test_the_key_is_stable_and_canonical() -> None:
    doc = config()
    request = {
        "input_hash": "ab12",
        "model_version": "v3",
        "prompt_template_version": "p1",
        "feature_schema_version": "f2",
        "policy_version": "7",
        "unrelated": "ignored",
    }
    key = cache_key(doc, "edge-result", request)
    reordered = config(key=list(reversed(FULL_KEY)))
    assert cache_key(reordered, "edge_result", dict(reversed(list(request.items())))).key == key.key
    assert len(key.key) == 64 and key.cacheable and key.missing == ()
    assert [name for name, _ in key.parts] == sorted(FULL_KEY)
    assert cache_key(doc, "edge-result", {**request, "model_version": "v4"}).key != key.key
    assert cache_key({**doc, "namespace": "other"}, "edge-result", request).key != key.key


def test_the_key_reports_missing_fields_and_isolates_tenants() -> None:
    doc = {**config(), "tenant_field": "tenant_id"}
    key = cache_key(doc, "edge-result", {"input_hash": "x", "model_version": "v1", "tenant_id": "acme"})
    assert key.missing == ("feature_schema_version", "policy_version", "prompt_template_version")
    assert not key.cacheable
    assert "not cacheable" in key.explain() and 'model_version = "v1"' in key.explain()
    other = cache_key(doc, "edge-result", {"input_hash": "x", "model_version": "v1", "tenant_id": "globex"})
    assert other.key != key.key and other.namespace == "shelf-vision/globex/edge-result"
    assert cache_key(doc, "edge-result", {"input_hash": "x"}).missing[0] == "tenant_id"
