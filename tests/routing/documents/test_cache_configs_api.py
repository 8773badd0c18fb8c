"""Cache configs over the API: validation, explain-key, semantic threshold tuning."""

from __future__ import annotations

import random

from routing.models.documents import CacheConfigDocument
from tests.routing.documents.conftest import edited

URL = "/api/v1/cache-configs/"


def test_a_key_without_the_model_version_is_rejected(api_for, latency_slo, cache_doc):
    bad = edited(cache_doc)
    bad["layers"][0]["key"] = [f for f in bad["layers"][0]["key"] if f != "model_version"]
    response = api_for("operator").post(URL, {"document": bad}, format="json")
    assert response.status_code == 400
    (error,) = [e for e in response.json()["errors"] if e["path"] == "layers[0].key"]
    assert "model_version" in error["message"]
    assert not CacheConfigDocument.objects.exists()


def test_a_multi_tenant_service_needs_the_tenant_in_the_key(api_for, latency_slo, cache_doc, service_doc):
    api_for("operator").put(
        "/api/v1/services/shelf-vision/", {**service_doc, "multi_tenant": True}, format="json"
    )
    response = api_for("operator").post(URL, {"document": cache_doc}, format="json")
    assert response.status_code == 400
    assert {e["path"] for e in response.json()["errors"]} == {
        "layers[0].key",
        "layers[1].key",
        "layers[2].key",
    }
    fixed = api_for("operator").post(
        URL, {"document": edited(cache_doc, tenant_field="tenant_id")}, format="json"
    )
    assert fixed.status_code == 201


def test_explain_key_gives_parts_and_missing_fields(api_for, cache):
    request = {"input_hash": "abc", "model_version": "v12", "prompt_template_version": "p3"}
    response = api_for("viewer").post(
        f"{URL}{cache['id']}/explain-key/", {"request": request, "layer": "edge-result"}, format="json"
    )
    assert response.status_code == 200, response.json()
    (key,) = response.json()["keys"]
    assert key["cacheable"] is False
    assert key["missing"] == ["feature_schema_version", "policy_version"]
    assert {"field": "model_version", "value": "v12", "missing": False} in key["parts"]
    assert len(key["key"]) == 64 and key["namespace"] == "shelf-vision/edge-result"
    every = (
        api_for("viewer").post(f"{URL}{cache['id']}/explain-key/", {"request": request}, format="json").json()
    )
    assert [k["layer"] for k in every["keys"]] == ["edge-result", "regional-embedding", "semantic"]
    unknown = api_for("viewer").post(
        f"{URL}{cache['id']}/explain-key/", {"request": {}, "layer": "nope"}, format="json"
    )
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["path"] == "layer"


def _samples(n: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        similarity = rng.uniform(0.7, 1.0)
        # above 0.93 answers are almost always right; below they are often wrong
        correct = rng.random() < (0.995 if similarity >= 0.93 else 0.6)
        out.append({"similarity": round(similarity, 4), "correct": correct})
    return out


def test_recommend_threshold_from_samples(api_for, cache):
    body = {"samples": _samples(2000), "max_false_hit_rate": 0.02}
    response = api_for("viewer").post(f"{URL}{cache['id']}/recommend-threshold/", body, format="json")
    assert response.status_code == 200, response.json()
    result = response.json()
    recommendation = result["recommendation"]
    assert recommendation["status"] == "ok"
    assert 0.9 <= recommendation["threshold"] <= 0.97
    assert recommendation["false_hit_rate"] <= 0.02
    assert 0 < recommendation["expected_hit_rate"] < 1
    assert result["cost_saved_per_hit"]["source"] == "assumed"  # no cost telemetry in this test
    assert result["cost_saved_per_1000_lookups_usd"] > 0
    assert result["current"]["layer"] == "semantic" and result["current"]["threshold"] == 0.95


def test_recommend_threshold_from_csv_and_too_few_samples(api_for, cache):
    rows = "\n".join(f"{s['similarity']},{'true' if s['correct'] else 'false'}" for s in _samples(10))
    response = api_for("viewer").post(
        f"{URL}{cache['id']}/recommend-threshold/",
        {"csv": "similarity,correct\n" + rows, "max_false_hit_rate": 0.05, "cost_saved_per_hit_usd": 0.001},
        format="json",
    )
    assert response.status_code == 200, response.json()
    recommendation = response.json()["recommendation"]
    assert recommendation["status"] == "insufficient_samples" and recommendation["threshold"] is None
    assert "at least 30" in recommendation["reason"]
    assert response.json()["cost_saved_per_hit"] == {"usd": 0.001, "source": "given"}


def test_recommend_threshold_rejects_bad_samples(api_for, cache):
    url = f"{URL}{cache['id']}/recommend-threshold/"
    bad = api_for("viewer").post(
        url, {"samples": [{"similarity": "x", "correct": 1}], "max_false_hit_rate": 0.1}, format="json"
    )
    assert bad.status_code == 400
    assert {e["path"] for e in bad.json()["errors"]} == {"samples[0].similarity", "samples[0].correct"}
    no_target = api_for("viewer").post(url, {"samples": []}, format="json")
    assert no_target.status_code == 400 and no_target.json()["errors"][0]["path"] == "max_false_hit_rate"
    bad_csv = api_for("viewer").post(url, {"csv": "a,b\n1,2", "max_false_hit_rate": 0.1}, format="json")
    assert bad_csv.status_code == 400 and bad_csv.json()["errors"][0]["path"] == "csv"
