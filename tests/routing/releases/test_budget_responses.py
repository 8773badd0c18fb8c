"""Budget-driven responses: while a page-level burn-rate alert fires, the control plane proposes
moving traffic to the safer chain (a draft policy version with the simulation of its effect) and a
person approves it into a draft hotfix release, or dismisses it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from routing.capacity.responses import budget_responses_propose
from routing.models.documents import RoutingPolicyVersion
from routing.models.releases import Release
from routing.models.responses import BudgetResponse
from slo.models.budget import AlertState
from tests.routing.releases.conftest import T0

pytestmark = pytest.mark.django_db


@pytest.fixture
def burning(fleet: Any, push: Any, evaluate: Any) -> list[Any]:
    """Four gateways on policy v1: two answer from `local` failing half the time, two from
    `private_cloud` cleanly; an hour of it pages."""
    gateways = fleet(4)
    for gateway in gateways[:2]:
        push(gateway, T0 - timedelta(minutes=60), 60, ok_fast=150, errors=150, route="local")
    for gateway in gateways[2:]:
        push(gateway, T0 - timedelta(minutes=60), 60, ok_fast=300, route="private_cloud")
    evaluate(T0)
    assert AlertState.objects.filter(kind="burn_rate", severity="page", firing=True).exists()
    return gateways


def _chains(document: dict[str, Any]) -> list[list[str]]:
    chains = [[h["route"] for h in rule["chain"]] for rule in document.get("rules", []) if rule.get("chain")]
    if document.get("default_chain"):
        chains.append([h["route"] for h in document["default_chain"]])
    return chains


def test_a_fast_burn_proposes_the_safer_chain_with_its_simulation_and_an_approver_releases_it(
    burning, documents, api_for
):
    (response,) = budget_responses_propose(now=T0)
    assert response.kind == "safer_chain" and response.state == "proposed"
    assert response.summary.startswith("move local to the end of every chain")
    assert response.baseline_version == 1 and response.version == 3
    proposed = RoutingPolicyVersion.objects.get(line_id=response.line_id, version=3)
    assert proposed.state == "draft" and proposed.author_name == "system:budget-responses"
    before, after = _chains(documents["policy_v1"].document), _chains(proposed.document)
    # independent: each chain keeps its other hops in order and tries local last
    assert after == [
        [r for r in chain if r != "local"] + [r for r in chain if r == "local"] for chain in before
    ]
    assert any(chain[-1] == "local" and chain[0] != "local" for chain in after)
    simulation = response.simulation
    assert simulation["baseline_version"] == 1 and simulation["candidate_version"] == 3
    assert simulation["route_stats"]["local"]["source"]["error_ratio"] == "measured"
    # local fails half the time but its failures fall back: the simulated effect is fewer attempts,
    # no traffic tried on local first, and a lower p95 (at a cost the proposal shows)
    assert simulation["route_mix_shift"]["local"] == -simulation["baseline"]["route_mix"]["local"] < 0
    assert simulation["candidate"]["attempts_per_request"] < simulation["baseline"]["attempts_per_request"]
    assert simulation["candidate"]["p95_ms"] < simulation["baseline"]["p95_ms"]
    assert simulation["cost_per_1000_shift_usd"] > 0
    # one proposal per alert episode
    assert budget_responses_propose(now=T0 + timedelta(minutes=5)) == []

    listed = api_for("viewer").get("/api/v1/budget-responses/", {"service": "shelf-vision"}).json()
    assert [r["id"] for r in listed["results"]] == [response.pk]
    assert api_for("operator").post(f"/api/v1/budget-responses/{response.pk}/approve/").status_code == 403
    approved = api_for("approver").post(
        f"/api/v1/budget-responses/{response.pk}/approve/", {"comment": "go"}, format="json"
    )
    assert approved.status_code == 200, approved.json()
    release = Release.objects.get(pk=approved.json()["release"])
    assert (release.state, release.kind, release.routing_policy_version.version) == ("draft", "hotfix", 3)
    proposed.refresh_from_db()
    assert proposed.state == "approved" and proposed.approved_by_name == "anna"
    again = api_for("approver").post(f"/api/v1/budget-responses/{response.pk}/approve/")
    assert again.status_code == 409

    from django.test import Client

    page = Client()
    page.force_login(proposed.approved_by)
    body = page.get("/services/shelf-vision/").content.decode()
    assert f"#{response.pk} move local to the end of every chain" in body
    assert f'href="/releases/{release.pk}/"' in body


def test_a_dismissed_proposal_retires_its_draft_and_a_bad_body_is_a_400(burning, documents, api_for):
    (response,) = budget_responses_propose(now=T0)
    bad = api_for("approver").post(
        f"/api/v1/budget-responses/{response.pk}/dismiss/", {"comment": 5}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "comment"
    assert BudgetResponse.objects.get(pk=response.pk).state == "proposed"
    dismissed = api_for("admin").post(
        f"/api/v1/budget-responses/{response.pk}/dismiss/", {"comment": "no"}, format="json"
    )
    assert dismissed.status_code == 200 and dismissed.json()["state"] == "dismissed"
    assert RoutingPolicyVersion.objects.get(line_id=response.line_id, version=3).state == "retired"
    assert not Release.objects.exists()


def test_no_proposal_without_a_route_measured_worse(fleet, push, evaluate, documents):
    gateways = fleet(2)
    for gateway in gateways:
        push(gateway, T0 - timedelta(minutes=60), 60, ok_fast=100, errors=200, route="local")
    evaluate(T0)
    assert AlertState.objects.filter(kind="burn_rate", severity="page", firing=True).exists()
    assert budget_responses_propose(now=T0) == []  # only local is measured: nothing safer to move to
