"""Simulation against a baseline, activity from the fleet's applied revisions, list queries."""

from __future__ import annotations

from routing.documents.simulation import histogram_quantile
from tests.routing.documents.conftest import edited

URL = "/api/v1/routing-policies/"

TRAFFIC = {
    "confidence": {"uniform": [0.3, 1.0]},
    "queue_depth": {"int_uniform": [0, 6]},
    "active_workers": 2,
    "temperature_c": {"normal": {"mean": 65, "sd": 8}},
    "network_quality": {"choices": {"good": 0.9, "fair": 0.1}},
}


def _escalating(policy_doc):
    """Every default request goes to public cloud first: more latency, more cost."""
    doc = edited(policy_doc)
    doc["rules"][-1]["chain"] = [
        {"route": "public_cloud", "timeout_ms": 100},
        {"route": "local", "timeout_ms": 40},
        {"route": "cache", "timeout_ms": 5},
    ]
    return doc


def test_simulating_more_public_cloud_predicts_higher_p95_and_cost(api_for, policy, policy_doc):
    line = f"{URL}{policy['id']}/"
    assert api_for("approver").post(line + "versions/1/approve/").status_code == 200
    assert (
        api_for("operator").put(line, {"document": _escalating(policy_doc)}, format="json").status_code == 200
    )
    body = {"candidate_version": 2, "generate": {"n": 3000, "distribution": TRAFFIC, "seed": 7}}
    response = api_for("viewer").post(line + "simulate/", body, format="json")
    assert response.status_code == 200, response.json()
    result = response.json()
    assert result["baseline_version"] == 1  # the newest approved one: nothing runs on gateways yet
    assert result["route_mix_shift"]["public_cloud"] > 0.1
    assert (
        result["candidate"]["p95_ms_by_class"]["interactive"]
        > result["baseline"]["p95_ms_by_class"]["interactive"]
    )
    assert result["p95_shift_ms"]["all"] > 0
    assert result["cost_per_1000_shift_usd"] > 0
    assert result["candidate"]["budget_burn"] is not None and result["budget_burn_shift"] is not None
    assert result["slo"]["threshold_ms"] == 150
    # no telemetry in this database: every figure says it is assumed
    assert {v for entry in result["route_stats"].values() for v in entry["source"].values()} == {"assumed"}
    assert any("assumed" in line for line in result["assumptions"])
    again = api_for("viewer").post(line + "simulate/", body, format="json").json()
    assert again["candidate"] == result["candidate"]  # seeded: reproducible


def test_simulate_with_given_contexts_and_bad_input(api_for, policy, policy_doc):
    line = f"{URL}{policy['id']}/"
    client = api_for("viewer")
    no_baseline = client.post(line + "simulate/", {"candidate_version": 1, "contexts": [{}]}, format="json")
    assert no_baseline.status_code == 400 and no_baseline.json()["errors"][0]["path"] == "baseline_version"
    ok = client.post(
        line + "simulate/",
        {"candidate_version": 1, "baseline_version": 1, "contexts": [{"confidence": 0.9}, {"privacy": True}]},
        format="json",
    )
    assert ok.status_code == 200 and ok.json()["contexts"] == {"source": "given", "n": 2}
    assert ok.json()["route_mix_shift"] == {k: 0.0 for k in ok.json()["route_mix_shift"]}
    bad = client.post(
        line + "simulate/",
        {
            "candidate_version": 1,
            "baseline_version": 1,
            "generate": {"n": 10, "distribution": {"confidence": {"zipf": 2}}},
        },
        format="json",
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "generate.distribution"
    too_many = client.post(
        line + "simulate/",
        {"candidate_version": 1, "baseline_version": 1, "generate": {"n": 10**7}},
        format="json",
    )
    assert too_many.status_code == 400
    typed = client.post(
        line + "simulate/",
        {"candidate_version": 1, "baseline_version": 1, "contexts": [{"queue_depth": "lots"}]},
        format="json",
    )
    assert typed.status_code == 400 and typed.json()["errors"][0]["path"] == "contexts[0].queue_depth"


def _gateway(service, name, bundle_policy, applied=True):
    from routing.models.fleet import Gateway, GatewayRevision

    gateway = Gateway.objects.create(
        name=name,
        service=service,
        tier="edge",
        signing_secret_encrypted="x",
        token_hash=name.ljust(64, "0"),
        token_hint=name[:8],
        desired_revision=1,
        applied_revision=1 if applied else None,
    )
    GatewayRevision.objects.create(
        gateway=gateway,
        revision=1,
        bundle={
            "revision": 1,
            "service": service.name,
            "routing_policy": bundle_policy,
            "cache_config": {},
            "model_version": None,
        },
    )
    return gateway


def test_a_version_is_active_on_the_gateways_that_applied_it(api_for, policy, policy_doc, service):
    line = f"{URL}{policy['id']}/"
    api_for("operator").put(line, {"document": edited(policy_doc, description="v2")}, format="json")
    # key order differs from what was stored: matching is on the canonical form
    reordered = dict(reversed(list(policy_doc.items())))
    _gateway(service, "edge-a", reordered)
    _gateway(service, "edge-b", reordered)
    _gateway(service, "edge-c", reordered, applied=False)  # desired, not applied: not running it
    versions = {v["version"]: v for v in api_for("viewer").get(line + "versions/").json()["results"]}
    assert versions[1]["effective_state"] == "active" and versions[1]["active_gateways"] == 2
    assert versions[2]["effective_state"] == "draft" and versions[2]["active_gateways"] == 0
    assert api_for("viewer").get(line).json()["active_versions"] == {"1": 2}
    refused = api_for("operator").post(line + "versions/1/retire/")
    assert refused.status_code == 409 and "2 gateway" in refused.json()["detail"]
    # the baseline of a simulation defaults to what runs
    result = api_for("viewer").post(
        line + "simulate/", {"candidate_version": 2, "contexts": [{}]}, format="json"
    )
    assert result.json()["baseline_version"] == 1


def test_lists_have_no_n_plus_1(api_for, users, service_doc, django_assert_max_num_queries):
    from routing.documents.services import cache_config_create, routing_policy_create
    from routing.policy import default_cache_config, default_policy
    from slo.services import service_create

    for index in range(8):
        name = f"svc-{index}"
        svc = service_create(actor=users["operator"], data={**service_doc, "name": name})
        routing_policy_create(
            actor=users["operator"], service=svc, document=default_policy(name, "interactive", None)
        )
        cache_config_create(actor=users["operator"], service=svc, document=default_cache_config(name))
        _gateway(svc, f"gw-{index}", default_policy(name, "interactive", None))
    client = api_for("viewer")
    client.get(URL)  # warm the token and role lookups
    with django_assert_max_num_queries(9):
        body = client.get(URL).json()
    assert body["count"] == 8 and all(item["active_versions"] == {"1": 1} for item in body["results"])
    with django_assert_max_num_queries(9):
        assert client.get("/api/v1/cache-configs/", {"service": "svc-3"}).json()["count"] == 1


def test_histogram_quantile_interpolates_like_prometheus():
    buckets = {0.05: 50.0, 0.1: 90.0, 0.25: 100.0, float("inf"): 100.0}
    assert histogram_quantile(0.5, buckets) == 50.0
    assert abs(histogram_quantile(0.95, buckets) - 175.0) < 1e-9
    assert histogram_quantile(0.5, {0.1: 0.0}) is None


def test_measured_route_figures_replace_assumptions_and_say_so(api_for, policy, service):
    from datetime import timedelta

    from django.utils import timezone

    from slo.models.budget import CostRollup
    from slo.models.telemetry import SeriesMinute

    minute = int((timezone.now() - timedelta(hours=1)).timestamp() // 60)
    rows = []
    # private cloud: 1,000 ok answers, 900 within 50 ms, all within 250 ms; 10 errors and 10 timeouts
    for le, count in (("0.025", 100), ("0.05", 900), ("0.1", 950), ("0.25", 1000), ("+Inf", 1000)):
        rows.append(
            ("inference_request_duration_seconds_bucket", f"le={le},outcome=ok,route=private_cloud", count)
        )
    for outcome, count in (("ok", 1000), ("error", 10), ("timeout", 10), ("shed", 500)):
        rows.append(("inference_requests_total", f"outcome={outcome},route=private_cloud", count))
    SeriesMinute.objects.bulk_create(
        [
            SeriesMinute(
                minute=minute,
                source="gateway:1",
                name=name,
                service="shelf-vision",
                tier="edge",
                labels=labels,
                value=value,
            )
            for name, labels, value in rows
        ]
    )
    CostRollup.objects.create(
        service=service,
        route="private_cloud",
        resolution="hour",
        bucket_start=timezone.now() - timedelta(hours=2),
        cost_model_version=1,
        requests=1020,
        cost_usd=0.51,
        cost_per_request_usd=0.0005,
    )
    result = (
        api_for("viewer")
        .post(
            f"{URL}{policy['id']}/simulate/",
            {
                "candidate_version": 1,
                "baseline_version": 1,
                "contexts": [{"confidence": 0.3}] * 50,
            },
            format="json",
        )
        .json()
    )
    private = result["route_stats"]["private_cloud"]
    assert private["source"] == {
        "latency": "measured",
        "error_ratio": "measured",
        "cost_per_request_usd": "measured",
    }
    assert abs(private["stats"]["p50_ms"] - 37.5) < 1e-6  # rank 500: halfway through the 25-50 ms bucket
    assert abs(private["stats"]["error_ratio"] - 20 / 1020) < 1e-9  # shed requests are not valid
    assert abs(private["stats"]["cost_per_request_usd"] - 0.0005) < 1e-12
    assert result["route_stats"]["public_cloud"]["source"]["latency"] == "assumed"
