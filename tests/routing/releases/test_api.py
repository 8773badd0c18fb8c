"""The release API: roles, four eyes, 409s, the Alertmanager webhook, provenance and the registry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controlplane.models import AuditEvent
from routing.fleet.services import heartbeat_record
from routing.models.fleet import Gateway
from routing.models.releases import ModelVersion, Release, WebhookSecret
from routing.releases import lifecycle, rollout
from tests.routing.releases.conftest import T0

pytestmark = pytest.mark.django_db
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def live(healthy: dict[str, Any], push: Any, evaluate: Any) -> dict[str, Any]:
    """`healthy`, plus good telemetry for the hour before the real clock: the API uses now."""
    from django.utils import timezone

    now = timezone.now().replace(second=0, microsecond=0)
    for gateway in healthy["gateways"]:
        push(gateway, now - timedelta(minutes=60), 60, ok_fast=300)
    evaluate(now)
    return healthy


def create(api_for: Any, **data: Any) -> dict[str, Any]:
    body = {
        "service": "shelf-vision",
        "reason": "ship v2",
        "routing_policy_version": 2,
        "waves": [{"percent": 50, "bake_s": 60}, {"percent": 100, "bake_s": 0}],
        **data,
    }
    response = api_for("operator").post("/api/v1/releases/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_an_operator_creates_and_submits_and_an_approver_approves(live, api_for):
    release = create(api_for)
    assert release["state"] == "draft" and release["author_name"] == "otto"
    submitted = api_for("operator").post(f"/api/v1/releases/{release['id']}/submit/")
    assert submitted.status_code == 200, submitted.json()
    body = submitted.json()
    assert body["state"] == "pending_approval"
    assert {g["gate"] for g in body["gate_results"]} == {
        "documents",
        "error_budget",
        "paging",
        "data_quality",
        "simulation",
    }
    assert len(body["targets"]) == 4
    assert (
        api_for("operator").post(f"/api/v1/releases/{release['id']}/approve/", {"comment": "x"}).status_code
        == 403
    )
    missing = api_for("approver").post(f"/api/v1/releases/{release['id']}/approve/", {})
    assert missing.status_code == 400 and missing.json()["errors"][0]["path"] == "comment"
    approved = api_for("approver").post(f"/api/v1/releases/{release['id']}/approve/", {"comment": "ok"})
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    assert approved.json()["approvals"][0]["approver_name"] == "anna"


def test_the_author_gets_403_on_their_own_release(healthy, api_for):
    response = api_for("admin").post(
        "/api/v1/releases/",
        {"service": "shelf-vision", "routing_policy_version": 2, "waves": [{"percent": 100, "bake_s": 0}]},
        format="json",
    )
    release_id = response.json()["id"]
    api_for("admin").post(f"/api/v1/releases/{release_id}/submit/")
    refused = api_for("admin").post(f"/api/v1/releases/{release_id}/approve/", {"comment": "mine"})
    assert refused.status_code == 403 and "author" in refused.json()["detail"]


def test_illegal_transitions_answer_409_with_the_allowed_events(healthy, api_for):
    release = create(api_for)
    response = api_for("approver").post(f"/api/v1/releases/{release['id']}/approve/", {"comment": "early"})
    assert response.status_code == 409 and response.json()["state"] == "draft"
    api_for("operator").post(f"/api/v1/releases/{release['id']}/cancel/", {"reason": "no"})
    again = api_for("operator").post(f"/api/v1/releases/{release['id']}/submit/")
    assert again.status_code == 409
    rollback = api_for("operator").post(f"/api/v1/releases/{release['id']}/rollback/", {"reason": "x"})
    assert rollback.status_code == 409 and rollback.json()["allowed_events"] == []


def test_invalid_releases_get_400_with_paths(healthy, api_for):
    response = api_for("operator").post(
        "/api/v1/releases/",
        {
            "service": "shelf-vision",
            "kind": "yolo",
            "routing_policy_version": 99,
            "waves": [{"percent": 0}],
            "target": {"tier": 3},
            "extra": 1,
        },
        format="json",
    )
    assert response.status_code == 400
    paths = {e["path"] for e in response.json()["errors"]}
    assert {"kind", "routing_policy_version", "waves[0].percent", "target.tier", "extra"} <= paths
    assert api_for("operator").post("/api/v1/releases/", [1], format="json").status_code == 400
    nothing = api_for("operator").post(
        "/api/v1/releases/",
        {"service": "shelf-vision", "target": {"region": "mars"}, "routing_policy_version": 2},
        format="json",
    )
    empty = api_for("operator").post(f"/api/v1/releases/{nothing.json()['id']}/submit/")
    assert empty.status_code == 400 and empty.json()["errors"][0]["path"] == "target"


def test_roles_on_release_endpoints(healthy, api_for):
    assert api_for(None).get("/api/v1/releases/").status_code == 401
    assert api_for("outsider").get("/api/v1/releases/").status_code == 403
    assert api_for("viewer").get("/api/v1/releases/").status_code == 200
    assert (
        api_for("viewer").post("/api/v1/releases/", {"service": "shelf-vision"}, format="json").status_code
        == 403
    )
    release = create(api_for)
    assert api_for("viewer").post(f"/api/v1/releases/{release['id']}/submit/").status_code == 403
    assert api_for("viewer").get(f"/api/v1/releases/{release['id']}/").status_code == 200
    assert api_for("viewer").get("/api/v1/releases/?state=draft&service=shelf-vision").json()["count"] == 1
    assert api_for("viewer").get("/api/v1/releases/abc/").status_code == 404


def test_the_release_list_has_no_n_plus_one(healthy, api_for, django_assert_max_num_queries):
    for _ in range(5):
        create(api_for)
    client = api_for("viewer")
    client.get("/api/v1/releases/")  # warm the token and role caches
    with django_assert_max_num_queries(8):
        assert client.get("/api/v1/releases/").json()["count"] == 5


def test_alertmanager_webhook_rolls_back_with_a_dedicated_secret(healthy, api_for, users):
    release = Release.objects.get(pk=create(api_for)["id"])
    lifecycle.release_submit(actor=users["operator"], release_id=release.pk, now=T0)
    lifecycle.release_approve(actor=users["approver"], release_id=release.pk, comment="ok", now=T0)
    rollout.release_step(release_id=release.pk, now=T0)
    assert api_for("operator").post("/api/v1/alertmanager/secrets/", {"name": "am"}).status_code == 403
    created = api_for("admin").post("/api/v1/alertmanager/secrets/", {"name": "am"})
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("amw_") and secret not in str(list(WebhookSecret.objects.values()))
    assert "secret" not in api_for("admin").get("/api/v1/alertmanager/secrets/").json()["results"][0]

    from rest_framework.test import APIClient

    payload = {
        "version": "4",
        "status": "firing",
        "receiver": "control-plane",
        "groupKey": "{}:{}",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "LatencyBurn", "slo_service": "shelf-vision", "severity": "page"},
                "annotations": {"summary": "burning"},
                "startsAt": "2026-03-11T10:01:00.123456789Z",
                "fingerprint": "abc",
            },
            {"status": "resolved", "labels": {"alertname": "Old", "service": "shelf-vision"}},
        ],
    }
    anonymous = APIClient()
    assert anonymous.post("/api/v1/alertmanager/webhook/", payload, format="json").status_code == 401
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer amw_wrong")
    assert wrong.post("/api/v1/alertmanager/webhook/", payload, format="json").status_code == 401
    assert api_for("viewer").post("/api/v1/alertmanager/webhook/", payload, format="json").status_code == 403
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    bad = client.post("/api/v1/alertmanager/webhook/", {"version": "4", "alerts": "nope"}, format="json")
    assert bad.status_code == 400
    response = client.post("/api/v1/alertmanager/webhook/", payload, format="json")
    assert response.status_code == 200 and response.json()["rolled_back"] == [release.pk]
    release.refresh_from_db()
    assert release.state == "rolled_back"
    rollback = release.rollbacks.get()
    assert rollback.trigger == "alertmanager" and rollback.actor_name == "alertmanager:am"
    assert rollback.evidence["alerts"][0]["labels"]["alertname"] == "LatencyBurn"
    # an operator token works too; nothing left to roll back
    again = api_for("operator").post("/api/v1/alertmanager/webhook/", payload, format="json")
    assert again.status_code == 200 and again.json()["rolled_back"] == []


def test_provenance_names_versions_and_the_release_that_put_them_there(healthy, api_for, users):
    release = Release.objects.get(pk=create(api_for)["id"])
    lifecycle.release_submit(actor=users["operator"], release_id=release.pk, now=T0)
    lifecycle.release_approve(actor=users["approver"], release_id=release.pk, comment="ok", now=T0)
    rollout.release_step(release_id=release.pk, now=T0)
    release.refresh_from_db()
    gateway = Gateway.objects.get(pk=release.waves[0]["gateway_ids"][0])
    heartbeat_record(gateway_id=gateway.pk, data={"applied_revision": 2}, now=T0 + timedelta(seconds=30))
    before = api_for("viewer").get(
        f"/api/v1/provenance/?gateway={gateway.pk}&at={(T0 - timedelta(hours=1)).isoformat()}".replace(
            "+", "%2B"
        )
    )
    assert before.status_code == 200, before.json()
    assert before.json()["routing_policy"]["version"] == 1 and before.json()["release"] is None
    after = (
        api_for("viewer")
        .get(
            f"/api/v1/provenance/?gateway={gateway.pk}&at={(T0 + timedelta(minutes=1)).isoformat()}".replace(
                "+", "%2B"
            )
        )
        .json()
    )
    assert after["revision"] == 2 and after["routing_policy"]["version"] == 2
    assert after["release"]["id"] == release.pk and after["cache_config"]["version"] == 1
    route = api_for("viewer").post(
        "/api/v1/provenance/route/",
        {
            "gateway": gateway.pk,
            "at": (T0 + timedelta(minutes=1)).isoformat(),
            "context": {"confidence": 0.3, "network_quality": "good"},
        },
        format="json",
    )
    assert route.status_code == 200, route.json()
    assert route.json()["decision"]["rule"] == "low-confidence" or "low-confidence" in str(
        route.json()["explanation"]
    )
    assert (
        api_for("viewer")
        .post(
            "/api/v1/provenance/route/",
            {"gateway": gateway.pk, "at": "yesterday", "context": {}},
            format="json",
        )
        .status_code
        == 400
    )
    assert api_for("viewer").get("/api/v1/provenance/?gateway=999999").status_code == 404
    assert api_for("viewer").get("/api/v1/provenance/?gateway=x").status_code == 400


def test_the_model_registry_keeps_provenance_fixed(service, api_for):
    body = {
        "service": "shelf-vision",
        "name": "shelf-detector",
        "version": "2.1.0",
        "training_data_snapshot": "s3://data/shelves@2026-02-01",
        "fine_tuning_source": "yolo-v9-base",
        "quantization": {"method": "int8"},
        "artifact_digest": DIGEST,
    }
    assert api_for("viewer").post("/api/v1/models/", body, format="json").status_code == 403
    created = api_for("operator").post("/api/v1/models/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["label"] == "shelf-detector:2.1.0"
    duplicate = api_for("operator").post("/api/v1/models/", body, format="json")
    assert duplicate.status_code == 400
    bad = api_for("operator").post(
        "/api/v1/models/", {**body, "version": "3", "artifact_digest": "md5:1"}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "artifact_digest"
    second = api_for("operator").post("/api/v1/models/", {**body, "version": "2.2.0"}, format="json").json()
    model_id = second["id"]
    fixed = api_for("operator").patch(
        f"/api/v1/models/{model_id}/", {"artifact_digest": DIGEST}, format="json"
    )
    assert fixed.status_code == 400 and "fixed" in fixed.json()["errors"][0]["message"]
    updated = api_for("operator").patch(
        f"/api/v1/models/{model_id}/", {"rollback_target": created.json()["id"]}, format="json"
    )
    assert updated.status_code == 200 and updated.json()["rollback_target"] == created.json()["id"]
    assert api_for("viewer").get("/api/v1/models/?service=shelf-vision").json()["count"] == 2
    assert api_for("operator").delete(f"/api/v1/models/{model_id}/").status_code == 204
    assert not ModelVersion.objects.filter(pk=model_id).exists()
    assert list(
        AuditEvent.objects.filter(object_type="routing.modelversion")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["create", "create", "update", "delete"]


def test_a_model_release_marks_the_model_deployed(healthy, api_for, users):
    model = (
        api_for("operator")
        .post(
            "/api/v1/models/",
            {
                "service": "shelf-vision",
                "name": "det",
                "version": "1",
                "training_data_snapshot": "d@1",
                "artifact_digest": DIGEST,
            },
            format="json",
        )
        .json()
    )
    release = Release.objects.get(
        pk=create(
            api_for,
            routing_policy_version=None,
            model_version=model["id"],
            waves=[{"percent": 100, "bake_s": 0}],
        )["id"]
    )
    lifecycle.release_submit(actor=users["operator"], release_id=release.pk, now=T0)
    lifecycle.release_approve(actor=users["approver"], release_id=release.pk, comment="ok", now=T0)
    rollout.release_step(release_id=release.pk, now=T0)
    for gateway in Gateway.objects.all():
        heartbeat_record(gateway_id=gateway.pk, data={"applied_revision": gateway.desired_revision}, now=T0)
        assert Gateway.objects.get(pk=gateway.pk).desired_revision == 2
    assert rollout.release_step(release_id=release.pk, now=T0 + timedelta(seconds=5)) == "completed"
    assert ModelVersion.objects.get(pk=model["id"]).deployed_at is not None
    assert api_for("operator").delete(f"/api/v1/models/{model['id']}/").status_code == 409


def test_release_settings_are_admin_only(service, api_for):
    assert api_for("viewer").get("/api/v1/release-settings/shelf-vision/").json()["required_approvals"] == 1
    assert (
        api_for("operator")
        .put("/api/v1/release-settings/shelf-vision/", {"required_approvals": 2}, format="json")
        .status_code
        == 403
    )
    response = api_for("admin").put(
        "/api/v1/release-settings/shelf-vision/", {"required_approvals": 0}, format="json"
    )
    assert response.status_code == 400
    response = api_for("admin").put(
        "/api/v1/release-settings/shelf-vision/",
        {"required_approvals": 3, "canary": {"max_burn_rate": 6}},
        format="json",
    )
    assert response.status_code == 200 and response.json()["required_approvals"] == 3
    assert api_for("viewer").get("/api/v1/release-settings/nope/").status_code == 404


def test_the_openapi_schema_describes_the_release_endpoints(api_for, users):
    response = api_for("viewer").get("/api/v1/schema/?format=json")
    if response.status_code == 404:
        pytest.skip("schema served elsewhere")
    paths = response.json()["paths"] if response["Content-Type"].startswith("application/json") else {}
    if paths:
        for path in (
            "/api/v1/releases/",
            "/api/v1/releases/{id}/approve/",
            "/api/v1/alertmanager/webhook/",
            "/api/v1/provenance/",
            "/api/v1/provenance/route/",
            "/api/v1/models/",
        ):
            assert path in paths
