"""The seed's two other budget responses: raising the semantic cache threshold (a draft cache-config
version whose effect the threshold tuning estimates from recorded labelled lookups) and freezing
model churn (a hold on model-version releases the error-budget gate enforces), both proposed while a
page-level burn alert fires and approved or dismissed by a person, audited."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from controlplane.errors import Conflict
from controlplane.models import AuditEvent
from routing.capacity.responses import budget_responses_propose
from routing.models.documents import CacheConfigVersion
from routing.models.releases import GateResult, ModelVersion, Release, ReleaseSettings
from routing.models.responses import BudgetResponse, CacheThresholdSamples
from routing.releases import gates, lifecycle, model_versions
from slo.models.budget import AlertState
from tests.routing.releases.conftest import SERVICE, T0

pytestmark = pytest.mark.django_db
WAVES = [{"percent": 25, "bake_s": 60}, {"percent": 100, "bake_s": 0}]

# 40 lookups at 0.955 (10 wrong), 40 at 0.965 (2 wrong), 20 far below: at the current 0.95 the
# false-hit rate is 12/80 with 80% hits; one grid step up (0.96) it is 2/40 with 40% hits.
SAMPLES = (
    [{"similarity": 0.955, "correct": i >= 10} for i in range(40)]
    + [{"similarity": 0.965, "correct": i >= 2} for i in range(40)]
    + [{"similarity": 0.5, "correct": False} for _ in range(20)]
)


@pytest.fixture
def burning(fleet: Any, push: Any, evaluate: Any) -> list[Any]:
    gateways = fleet(4)
    for gateway in gateways[:2]:
        push(gateway, T0 - timedelta(minutes=60), 60, ok_fast=150, errors=150, route="local")
    for gateway in gateways[2:]:
        push(gateway, T0 - timedelta(minutes=60), 60, ok_fast=300, route="private_cloud")
    evaluate(T0)
    assert AlertState.objects.filter(kind="burn_rate", severity="page", firing=True).exists()
    return gateways


def _model(users: dict[str, Any], version: str = "1") -> ModelVersion:
    return model_versions.model_version_create(
        actor=users["operator"],
        data={
            "service": SERVICE,
            "name": "det",
            "version": version,
            "training_data_snapshot": "d@1",
            "artifact_digest": "sha256:" + "ab" * 32,
        },
    )


def test_a_viewer_tuning_stores_nothing_an_operator_tuning_keeps_the_samples(documents, api_for):
    url = f"/api/v1/cache-configs/{documents['cache_v1'].line_id}/recommend-threshold/"
    body = {"max_false_hit_rate": 0.05, "samples": SAMPLES}
    assert api_for("viewer").post(url, body, format="json").status_code == 200
    assert not CacheThresholdSamples.objects.exists()
    assert api_for("operator").post(url, body, format="json").status_code == 200
    (stored,) = CacheThresholdSamples.objects.all()
    assert stored.samples == [[s["similarity"], s["correct"]] for s in SAMPLES]


def test_a_fast_burn_proposes_a_higher_cache_threshold_with_its_estimated_effect(burning, documents, api_for):
    url = f"/api/v1/cache-configs/{documents['cache_v1'].line_id}/recommend-threshold/"
    tuned = api_for("operator").post(url, {"max_false_hit_rate": 0.05, "samples": SAMPLES}, format="json")
    per_hit = tuned.json()["cost_saved_per_hit"]["usd"]
    responses = {r.kind: r for r in budget_responses_propose(now=T0)}
    assert set(responses) == {"safer_chain", "cache_threshold"}  # no model churn: no freeze
    response = responses["cache_threshold"]
    assert response.summary.startswith("raise the semantic user-facing similarity threshold 0.95 -> 0.96")
    draft = CacheConfigVersion.objects.get(line_id=response.line_id, version=response.version)
    assert (response.baseline_version, response.version, draft.state) == (1, 2, "draft")
    semantic = next(x for x in draft.document["layers"] if x["kind"] == "semantic")
    assert semantic["semantic"] == {"user_facing": 0.96, "prefetch": 0.85}
    effect = response.simulation
    assert effect["current"] == {"threshold": 0.95, "hit_rate": 0.8, "false_hit_rate": 12 / 80}
    assert effect["proposed"] == {"threshold": 0.96, "hit_rate": 0.4, "false_hit_rate": 2 / 40}
    assert effect["cost_per_1000_lookups_shift_usd"] == pytest.approx(1000 * 0.4 * per_hit)
    assert AuditEvent.objects.filter(
        action="propose", object_type="routing.budgetresponse", object_id=str(response.pk)
    ).exists()
    assert budget_responses_propose(now=T0 + timedelta(minutes=5)) == []

    approved = api_for("approver").post(f"/api/v1/budget-responses/{response.pk}/approve/")
    assert approved.status_code == 200, approved.json()
    release = Release.objects.get(pk=approved.json()["release"])
    assert (release.kind, release.state, release.cache_config_version_id) == ("hotfix", "draft", draft.pk)
    draft.refresh_from_db()
    assert draft.state == "approved"


def test_a_dismissed_cache_threshold_retires_its_draft(burning, documents, api_for):
    url = f"/api/v1/cache-configs/{documents['cache_v1'].line_id}/recommend-threshold/"
    api_for("operator").post(url, {"max_false_hit_rate": 0.05, "samples": SAMPLES}, format="json")
    response = next(r for r in budget_responses_propose(now=T0) if r.kind == "cache_threshold")
    dismissed = api_for("approver").post(f"/api/v1/budget-responses/{response.pk}/dismiss/")
    assert dismissed.status_code == 200 and dismissed.json()["state"] == "dismissed"
    assert CacheConfigVersion.objects.get(line_id=response.line_id, version=2).state == "retired"
    assert AuditEvent.objects.filter(
        action="dismiss", object_type="routing.budgetresponse", object_id=str(response.pk)
    ).exists()


def test_model_churn_during_a_fast_burn_proposes_a_freeze_an_approver_holds_model_releases(
    burning, users, api_for
):
    deployed = _model(users, "1")
    ModelVersion.objects.filter(pk=deployed.pk).update(deployed_at=T0 - timedelta(days=2))
    pending = _model(users, "2")
    waiting = lifecycle.release_create(
        actor=users["operator"],
        data={"service": SERVICE, "reason": "new detector", "model_version": pending.pk, "waves": WAVES},
        now=T0,
    )
    response = next(r for r in budget_responses_propose(now=T0) if r.kind == "model_freeze")
    assert response.hold_hours == 24 and response.version is None
    evidence = response.simulation
    assert [d["model_version"] for d in evidence["deployed"]] == ["det:1"]
    assert evidence["releases_held"] == [
        {"release": waiting.pk, "state": "draft", "kind": "normal", "model_version": "det:2"}
    ]
    assert evidence["freeze_allowed_change_kinds"] == ["rollback", "hotfix"]
    assert api_for("operator").post(f"/api/v1/budget-responses/{response.pk}/approve/").status_code == 403
    approved = api_for("approver").post(f"/api/v1/budget-responses/{response.pk}/approve/")
    assert approved.status_code == 200 and approved.json()["release"] is None
    settings = ReleaseSettings.objects.get(service__name=SERVICE)
    decided = datetime.fromisoformat(approved.json()["decided_at"].replace("Z", "+00:00"))
    assert settings.model_freeze_until == decided + timedelta(hours=24)
    assert settings.model_freeze_reason.startswith(f"budget response #{response.pk}: freeze model churn")
    from django.test import Client

    page = Client()
    page.force_login(users["approver"])
    html = page.get(f"/services/{SERVICE}/").content.decode()
    assert f"#{response.pk} freeze model churn for 24 h" in html
    assert "Holds model-version releases for 24 h once approved" in html
    event = AuditEvent.objects.get(
        action="approve", object_type="routing.budgetresponse", object_id=str(response.pk)
    )
    assert event.after["model_freeze_until"]


def test_an_approved_freeze_refuses_normal_model_releases_until_it_ends(healthy, users):
    response = BudgetResponse.objects.create(
        service_id=ReleaseSettings.objects.get(service__name=SERVICE).service_id,
        kind="model_freeze",
        summary="freeze model churn",
        trigger_key="k",
        trigger_since=T0,
        hold_hours=24,
    )
    from routing.capacity.responses import budget_response_approve

    budget_response_approve(actor=users["approver"], response_id=response.pk, now=T0)
    model = _model(users)
    normal = lifecycle.release_create(
        actor=users["approver2"],
        data={"service": SERVICE, "reason": "ship", "model_version": model.pk, "waves": WAVES},
        now=T0,
    )
    with pytest.raises(Conflict) as refused:
        lifecycle.release_submit(actor=users["approver2"], release_id=normal.pk, now=T0 + timedelta(hours=1))
    assert "gates.error_budget" in {p["path"] for p in refused.value.problems}
    gate = GateResult.objects.filter(release=normal, gate="error_budget").latest("pk")
    assert gate.outcome == "fail"
    assert gate.evidence["model_freeze"]["until"] == (T0 + timedelta(hours=24)).isoformat()
    # a hotfix of the same model and a release without a model pass the same gate
    for data in ({"kind": "hotfix", "model_version": model.pk}, {"routing_policy_version": 2}):
        other = lifecycle.release_create(
            actor=users["approver2"],
            data={"service": SERVICE, "reason": "fix", "waves": WAVES, **data},
            now=T0,
        )
        lifecycle.release_submit(actor=users["approver2"], release_id=other.pk, now=T0 + timedelta(hours=1))
        assert GateResult.objects.filter(release=other, gate="error_budget").latest("pk").outcome == "pass"
        lifecycle.release_cancel(actor=users["approver2"], release_id=other.pk, reason="test done", now=T0)
    # the hold ends after its 24 hours
    later = gates.gate_budget(release=Release.objects.get(pk=normal.pk), now=T0 + timedelta(hours=25))
    assert later.outcome == "pass" and "model_freeze" not in later.evidence
