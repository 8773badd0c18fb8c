"""A release gate says when a status correction changed the budget it judged, and by whom: an
accepted incident's hour, corrected after the fact, turns an exhausted budget back into a pass."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controlplane.errors import Conflict
from routing.models.releases import GateResult
from routing.releases import lifecycle
from slo.budget.feed import budget_sync_pending
from slo.corrections.services import correction_create
from slo.models.telemetry import SliSpan
from tests.routing.releases.conftest import T0

pytestmark = pytest.mark.django_db

WAVES = [{"percent": 50, "bake_s": 180}, {"percent": 100, "bake_s": 120}]


def test_an_accepted_incident_corrected_afterwards_passes_the_budget_gate_with_its_evidence(
    fleet: Any, push: Any, evaluate: Any, make_release: Any, users: dict[str, Any], slos: Any
) -> None:
    gateways = fleet(2)
    for gateway in gateways:
        push(gateway, T0 - timedelta(minutes=240), 120, ok_fast=300)
        push(gateway, T0 - timedelta(minutes=120), 60, ok_fast=100, timeouts=100)  # the incident: half bad
        push(gateway, T0 - timedelta(minutes=60), 60, ok_fast=300)
    evaluate(T0)
    refused = make_release(waves=WAVES)
    with pytest.raises(Conflict):
        lifecycle.release_submit(actor=users["operator"], release_id=refused.pk, now=T0)
    before = GateResult.objects.get(release=refused, gate="error_budget")
    assert before.outcome == "fail" and before.evidence["state"] == "exhausted"
    assert before.evidence["corrections"] == []

    correction = correction_create(
        actor=users["operator"],
        data={
            "reason": "accepted incident: the upstream provider's outage",
            "scope": {"service": "shelf-vision"},
            "start": (T0 - timedelta(minutes=120)).isoformat(),
            "end": (T0 - timedelta(minutes=60)).isoformat(),
        },
        now=T0,
    )
    assert correction.state == "active"  # no page is firing: nothing to approve
    assert SliSpan.objects.exists()
    budget_sync_pending(now=T0)
    later = T0 + timedelta(minutes=1)
    evaluate(later)

    release = make_release(waves=WAVES)
    lifecycle.release_submit(actor=users["operator"], release_id=release.pk, now=later)
    gate = GateResult.objects.get(release=release, gate="error_budget")
    assert gate.outcome == "pass" and gate.evidence["state"] == "ok"
    assert gate.evidence["slos"][0]["remaining"] == 1.0  # every bad minute was in the incident
    [shown] = gate.evidence["corrections"]
    assert shown["id"] == correction.pk and shown["author"] == "otto" and shown["approved_by"] is None
    assert shown["applied_at"] == T0.isoformat() and shown["excluded_minutes"] == 60
    assert shown["reason"].startswith("accepted incident")
