"""The simulation gate replays recorded traffic (PostgreSQL, real HTTP).

Reference gateways (gateway/app.py) play their traffic and push their sampled request contexts
through the real gateway endpoint of a live control plane. A release whose only bad rule is
conditional (low-confidence requests to an 8 ms local hop that fails them) is refused by the gate
with the predicted burn, and the policy page's Simulate shows the same figure. Without recorded
contexts the gate is inconclusive and the release waits for a person.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from gateway.app import Gateway as ReferenceGateway
from gateway.config import load_config
from routing.policy import default_cache_config, default_policy
from tests.routing.releases.conftest import LATENCY_THRESHOLD_MS, SERVICE

# transactional: the reference gateways push to a live server in another thread
pytestmark = pytest.mark.django_db(transaction=True)

# After the default policy's own `low-confidence` rule (below 0.6): the fairly confident requests,
# answered from an 8 ms local budget that the edge model (about 15 ms) rarely meets.
FAST_PATH_RULE = {
    "name": "mid-confidence-fast-path",
    "description": "fairly confident requests on a tight local budget",
    "when": {"confidence_min": 0.6, "confidence_max": 0.9},
    "chain": [{"route": "local", "timeout_ms": 8, "on_exhausted": "fail"}],
}


@pytest.fixture
def world(users: dict[str, Any], service: Any, slos: list[Any]) -> dict[str, Any]:
    """Two registered edge gateways running policy v1; v2 adds only the conditional bad rule and
    v3 only rewords the description. Both candidates are approved."""
    from routing.documents.services import (
        cache_config_create,
        routing_policy_approve,
        routing_policy_create,
        routing_policy_update,
    )
    from routing.fleet.services import gateway_register, gateway_set_desired, heartbeat_record

    good = default_policy(SERVICE, "interactive", LATENCY_THRESHOLD_MS)
    line = routing_policy_create(actor=users["operator"], service=service, document=good)
    bad = copy.deepcopy(good)
    position = [rule["name"] for rule in bad["rules"]].index("low-confidence") + 1
    bad["rules"].insert(position, FAST_PATH_RULE)
    routing_policy_update(
        actor=users["operator"], line_id=line.pk, document=bad, note="v2: conditional fast path"
    )
    routing_policy_update(
        actor=users["operator"], line_id=line.pk, document={**good, "description": "v3: reworded"}
    )
    for version in (1, 2, 3):
        routing_policy_approve(actor=users["admin"], line_id=line.pk, version=version)
    cache = cache_config_create(
        actor=users["operator"], service=service, document=default_cache_config(SERVICE)
    )
    credentials = [
        gateway_register(
            actor=users["operator"],
            data={"name": f"edge-{i}", "service": SERVICE, "tier": "edge", "region": "eu-west"},
        )
        for i in range(2)
    ]
    bundle = {
        "routing_policy": good,
        "cache_config": cache.versions.get(version=1).document,
        "model_version": None,
    }
    gateway_set_desired(
        actor=users["operator"],
        gateway_ids=[c.gateway.pk for c in credentials],
        bundle_for=bundle,
        reason="initial",
    )
    for c in credentials:
        heartbeat_record(gateway_id=c.gateway.pk, data={"applied_revision": 1})
    return {"line": line, "credentials": credentials}


def play_and_push(world: dict[str, Any], live_server: Any, tmp_path: Path, minutes: int = 10) -> list[Any]:
    """Each gateway plays `minutes` minutes of traffic ending 5 minutes ago and pushes its request
    contexts to the control plane over HTTP."""
    gateways = []
    first = (int(time.time()) // 60 - 5 - minutes) * 60
    for index, credentials in enumerate(world["credentials"]):
        config = load_config(
            None,
            {
                "name": credentials.gateway.name,
                "service": SERVICE,
                "gateway_id": credentials.gateway.pk,
                "token": credentials.token,
                "control_plane_url": live_server.url,
                "seed": 5 + index,
                "state_dir": str(tmp_path / f"gw{index}"),
                "latency_slo_ms": LATENCY_THRESHOLD_MS,
            },
        )
        gateway = ReferenceGateway(config)
        for minute in range(minutes):
            for second in (0, 20, 40):
                gateway.tick(now=first + minute * 60 + second, requests_count=40)
        assert gateway.push_contexts_once() == "accepted"
        gateways.append(gateway)
    return gateways


def make_release(api_for: Any, version: int) -> Any:
    """A draft release of policy `version` to both gateways, created through the API."""
    from routing.models.releases import Release

    response = api_for("operator").post(
        "/api/v1/releases/",
        {
            "service": SERVICE,
            "reason": f"ship v{version}",
            "routing_policy_version": version,
            "waves": [{"percent": 50, "bake_s": 180}, {"percent": 100, "bake_s": 120}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return Release.objects.get(pk=response.json()["id"])


def test_a_release_whose_only_bad_rule_is_conditional_is_refused_with_the_burn_the_page_shows(
    users, api_for, world, live_server, tmp_path
):
    from routing.models.releases import GateResult
    from routing.releases.gates import FAIL, gate_simulation
    from slo.models.contexts import ContextSample

    play_and_push(world, live_server, tmp_path)
    stored = ContextSample.objects.filter(service=SERVICE)
    assert stored.count() == 20  # 10 minutes of 2 gateways
    assert all(row.requests == 120 and len(row.contexts) == 30 and row.tier == "edge" for row in stored)

    release = make_release(api_for, 2)
    outcome = gate_simulation(release=release, now=timezone.now())
    evidence = outcome.evidence
    assert outcome.outcome == FAIL, evidence
    burn = evidence["candidate_budget_burn"]
    # about 60% of the recorded requests have a confidence in [0.6, 0.9) and most fail in the 8 ms hop
    assert burn > 30 and evidence["baseline_budget_burn"] < 1
    assert 0.5 < evidence["candidate_rule_mix"]["mid-confidence-fast-path"] < 0.75
    # the verdict names the signal it used: recorded traffic from both gateways
    assert evidence["contexts"]["source"] == "recorded" and evidence["contexts"]["recorded_contexts"] == 600
    assert evidence["contexts"]["sources"] == sorted(f"gateway:{c.gateway.pk}" for c in world["credentials"])
    assert "600 recorded contexts (2,400 requests) from 2 gateways" in evidence["traffic"]
    assert f"predicted budget burn {burn:.2f}x" in evidence["reason"]

    # the policy page's Simulate, with its defaults, runs the same computation on the same data
    client = Client()
    client.force_login(users["viewer"])
    page = client.get(f"/policies/routing-policies/{world['line'].pk}/", {"simulate": "1", "candidate": "2"})
    assert page.context["simulate_errors"] == []
    assert page.context["simulation"]["candidate"]["budget_burn"] == burn
    assert f"{burn:.2f}" in page.content.decode()
    assert "600 recorded contexts" in page.content.decode()

    # submitting runs the same gate: refused (409), with the burn in the problem
    refused = api_for("operator").post(f"/api/v1/releases/{release.pk}/submit/", {}, format="json")
    assert refused.status_code == 409, refused.json()
    [problem] = [p for p in refused.json()["errors"] if p["path"] == "gates.simulation"]
    assert f"predicted budget burn {burn:.2f}x" in problem["message"]
    release.refresh_from_db()
    assert release.state == "draft"
    stored_gate = GateResult.objects.get(release=release, gate="simulation")
    assert stored_gate.outcome == "fail" and stored_gate.evidence["candidate_budget_burn"] == burn


def test_a_harmless_change_passes_on_the_same_traffic(api_for, world, live_server, tmp_path):
    from routing.releases.gates import PASS, gate_simulation

    play_and_push(world, live_server, tmp_path, minutes=3)
    outcome = gate_simulation(release=make_release(api_for, 3), now=timezone.now())
    assert outcome.outcome == PASS, outcome.evidence
    assert outcome.evidence["candidate_budget_burn"] == outcome.evidence["baseline_budget_burn"] < 1
    assert outcome.evidence["contexts"]["recorded_contexts"] == 180


def test_without_recorded_contexts_the_gate_is_unknown_and_the_release_waits(api_for, world):
    from routing.releases.gates import INCONCLUSIVE, gate_simulation

    release = make_release(api_for, 2)
    outcome = gate_simulation(release=release, now=timezone.now())
    assert outcome.outcome == INCONCLUSIVE
    assert outcome.evidence["reason"].startswith("no recorded traffic to simulate: 0 request contexts")
    submitted = api_for("operator").post(f"/api/v1/releases/{release.pk}/submit/", {}, format="json")
    assert submitted.status_code == 200, submitted.json()
    release.refresh_from_db()
    assert release.state == "paused"
    assert "simulation inconclusive (no recorded traffic" in release.paused_reason
