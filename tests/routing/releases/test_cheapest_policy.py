"""POST /api/v1/routing-policies/{id}/cheapest/: the cheapest compliant policy from measured route
figures, written as a draft version with its simulation (real PostgreSQL, real telemetry ingest)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controlplane.models import AuditEvent
from routing.models.documents import RoutingPolicyVersion
from tests.routing.releases.conftest import T0

pytestmark = pytest.mark.django_db
GENERATE = {
    "n": 400,
    "seed": 3,
    "distribution": {
        "network_quality": {"choices": {"good": 0.9, "offline": 0.1}},
        "temperature_c": {"uniform": [40, 95]},
        "confidence": {"uniform": [0.3, 1.0]},
    },
}


@pytest.fixture
def measured(fleet: Any, push: Any, evaluate: Any) -> list[Any]:
    """local answers cleanly and fast on two gateways, private_cloud on two: both measured."""
    gateways = fleet(4)
    for gateway in gateways[:2]:
        push(gateway, T0 - timedelta(minutes=60), 60, ok_fast=300, route="local")
    for gateway in gateways[2:]:
        push(gateway, T0 - timedelta(minutes=60), 60, ok_fast=300, route="private_cloud")
    evaluate(T0)
    return gateways


def test_the_cheapest_compliant_policy_is_a_draft_with_its_simulation(measured, documents, api_for, users):
    line = documents["policy_v1"].line_id
    url = f"/api/v1/routing-policies/{line}/cheapest/"
    answer = api_for("operator").post(url, {"generate": GENERATE, "max_candidates": 150}, format="json")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    print(body["status"], body["changes"], body["current"], body["best"], body["rejected_counts"])
    assert body["status"] == "cheaper" and body["baseline_version"] == 1
    version = RoutingPolicyVersion.objects.get(line_id=line, version=body["version"])
    assert version.state == "draft" and version.author_name == users["operator"].username
    simulation = body["simulation"]
    # the simulation (a separate replay of the stored draft against the baseline) agrees with the search
    assert simulation["candidate"]["cost_per_1000_usd"] == pytest.approx(body["best"]["cost_per_1000_usd"])
    assert simulation["candidate"]["budget_burn"] == pytest.approx(body["best"]["budget_burn"])
    assert simulation["baseline"]["cost_per_1000_usd"] == pytest.approx(body["current"]["cost_per_1000_usd"])
    assert simulation["candidate"]["budget_burn"] <= 1.0
    assert simulation["cost_per_1000_shift_usd"] < 0
    assert body["rejected"] and all(r["reason"] for r in body["rejected"])
    assert AuditEvent.objects.filter(object_type__icontains="routingpolicy").exists()


def test_bad_input_is_a_400_with_the_field_and_writes_nothing(measured, documents, api_for):
    line = documents["policy_v1"].line_id
    url = f"/api/v1/routing-policies/{line}/cheapest/"
    for body, path in (
        ({"max_chain_routes": 9}, "max_chain_routes"),
        ({"threshold_factors": [0, 2]}, "threshold_factors"),
        ({"max_candidates": "many"}, "max_candidates"),
        ({"keep_rules": ["default", "nope"]}, "keep_rules[1]"),
    ):
        answer = api_for("operator").post(url, {"generate": GENERATE, **body}, format="json")
        assert answer.status_code == 400 and answer.json()["errors"][0]["path"] == path
    assert api_for("viewer").post(url, {"generate": GENERATE}, format="json").status_code == 403
    assert RoutingPolicyVersion.objects.filter(line_id=line).count() == 2


def test_kept_rules_keep_their_thresholds_and_chains(measured, documents, api_for):
    line = documents["policy_v1"].line_id
    keep = ["low-confidence", "edge-hot", "privacy-stays-private"]
    answer = api_for("operator").post(
        f"/api/v1/routing-policies/{line}/cheapest/",
        {"generate": GENERATE, "max_candidates": 150, "keep_rules": keep},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["status"] == "cheaper" and body["search"]["keep_rules"] == keep
    assert not any(
        c.startswith(("rule low-confidence", "rule edge-hot", "rule privacy")) for c in body["changes"]
    )
    draft = RoutingPolicyVersion.objects.get(line_id=line, version=body["version"]).document
    before = {r["name"]: r for r in documents["policy_v1"].document["rules"]}
    for rule in draft["rules"]:
        if rule["name"] in keep:
            assert rule == before[rule["name"]]
