from __future__ import annotations

import copy

import pytest

from controlplane.models import AuditEvent
from slo.models import Slo, SloVersion


@pytest.fixture
def created(api_for, service, slo_doc):
    response = api_for("operator").post("/api/v1/slos/", slo_doc, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_an_operator_creates_an_slo_with_version_1(created, slo_doc):
    assert created["version"] == 1
    assert created["service"] == "shelf-vision"
    assert created["spec"]["sli"] == {"kind": "latency", "threshold_ms": 150.0}
    assert SloVersion.objects.filter(slo_id=created["id"]).count() == 1


def test_a_viewer_cannot_create_and_anonymous_gets_401(api_for, service, slo_doc):
    assert api_for("viewer").post("/api/v1/slos/", slo_doc, format="json").status_code == 403
    assert api_for(None).post("/api/v1/slos/", slo_doc, format="json").status_code == 401
    assert api_for("outsider").get("/api/v1/slos/").status_code == 403
    assert not Slo.objects.exists()


@pytest.mark.parametrize(
    ("change", "path", "fragment"),
    [
        ({"objective": 100}, "objective", "less than 100"),
        ({"objective": 0}, "objective", "greater than 0"),
        ({"sli": {"kind": "latency"}}, "sli", "threshold_ms"),
        ({"window": {"type": "rolling", "days": 0}}, "window.days", "greater than 0"),
        ({"window": {"type": "rolling", "days": -3}}, "window.days", "greater than 0"),
        ({"service": "no-such-service"}, "service", "unknown service"),
        ({"tier": "mars"}, "tier", "Input should be"),
        ({"sli": {"kind": "latency", "threshold_ms": 100, "extra": 1}}, "sli.extra", "Extra inputs"),
    ],
)
def test_invalid_slos_get_400_naming_the_field(api_for, service, slo_doc, change, path, fragment):
    doc = {**copy.deepcopy(slo_doc), **change}
    response = api_for("operator").post("/api/v1/slos/", doc, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(e["path"] == path and fragment in e["message"] for e in errors), errors
    assert not Slo.objects.exists()
    assert not AuditEvent.objects.filter(object_type="slo.slo").exists()


def test_a_duplicate_name_within_a_service_is_refused(api_for, created, slo_doc):
    response = api_for("operator").post("/api/v1/slos/", slo_doc, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "name"


def test_a_non_object_body_gets_400(api_for, service):
    response = api_for("operator").post("/api/v1/slos/", [1, 2], format="json")
    assert response.status_code == 400


def test_editing_makes_version_2_with_a_diff_and_an_audit_event(api_for, created, slo_doc, users):
    client = api_for("operator")
    edited = {**slo_doc, "objective": 99.9, "note": "tighten", "parent_version": 1}
    response = client.put(
        f"/api/v1/slos/{created['id']}/", edited, format="json", HTTP_X_REQUEST_ID="req-edit-1"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 2
    versions = client.get(f"/api/v1/slos/{created['id']}/versions/").json()["results"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["note"] == "tighten" and versions[0]["author_name"] == users["operator"].username
    diff = client.get(f"/api/v1/slos/{created['id']}/diff/", {"from": 1, "to": 2}).json()
    assert {"path": "objective", "kind": "changed", "before": 99.5, "after": 99.9} in diff["changes"]
    event = AuditEvent.objects.get(object_type="slo.slo", object_id=str(created["id"]), action="update")
    assert event.request_id == "req-edit-1"
    assert event.before["objective"] == 99.5 and event.after["objective"] == 99.9
    audit = api_for("viewer").get("/api/v1/audit-events/", {"request_id": "req-edit-1"}).json()["results"]
    assert len(audit) == 1


def test_an_edit_from_a_stale_version_gets_409(api_for, created, slo_doc):
    client = api_for("operator")
    url = f"/api/v1/slos/{created['id']}/"
    assert (
        client.put(url, {**slo_doc, "objective": 99.9, "parent_version": 1}, format="json").status_code == 200
    )
    stale = client.put(url, {**slo_doc, "objective": 99.0, "parent_version": 1}, format="json")
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2
    assert Slo.objects.get(pk=created["id"]).objective == 99.9


def test_restoring_an_old_version_adds_a_new_one(api_for, created, slo_doc):
    client = api_for("operator")
    url = f"/api/v1/slos/{created['id']}/"
    client.patch(url, {"objective": 99.0}, format="json")
    response = client.post(url + "restore/", {"version": 1}, format="json")
    assert response.status_code == 200
    assert response.json()["version"] == 3 and response.json()["objective"] == 99.5
    restored = SloVersion.objects.get(slo_id=created["id"], version=3)
    assert restored.restored_from == 1
    assert client.post(url + "restore/", {"version": 42}, format="json").status_code == 404


def test_an_unchanged_edit_makes_no_new_version(api_for, created, slo_doc):
    response = api_for("operator").put(f"/api/v1/slos/{created['id']}/", slo_doc, format="json")
    assert response.json()["version"] == 1


def test_archiving_hides_the_slo_but_keeps_history(api_for, created):
    client = api_for("operator")
    assert client.delete(f"/api/v1/slos/{created['id']}/").status_code == 204
    assert client.get(f"/api/v1/slos/{created['id']}/").status_code == 404
    assert SloVersion.objects.filter(slo_id=created["id"]).exists()


def test_slos_filter_by_service_and_tier(api_for, created, slo_doc):
    client = api_for("operator")
    client.post(
        "/api/v1/slos/",
        {**slo_doc, "name": "cloud-availability", "tier": "public_cloud", "sli": {"kind": "availability"}},
        format="json",
    )
    names = [s["name"] for s in client.get("/api/v1/slos/", {"tier": "edge"}).json()["results"]]
    assert names == ["edge-latency"]
    assert client.get("/api/v1/slos/", {"service": "nope"}).json()["count"] == 0


def test_services_are_validated_and_cannot_drop_a_tier_in_use(api_for, created, service_doc):
    client = api_for("operator")
    bad = client.post("/api/v1/services/", {**service_doc, "name": "x2", "tiers": []}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "tiers"
    bad_class = client.post(
        "/api/v1/services/", {**service_doc, "name": "x3", "service_class": "fast"}, format="json"
    )
    assert bad_class.status_code == 400 and bad_class.json()["errors"][0]["path"] == "service_class"
    drop = client.put(
        "/api/v1/services/shelf-vision/", {**service_doc, "tiers": ["public_cloud"]}, format="json"
    )
    assert drop.status_code == 400 and "edge" in drop.json()["errors"][0]["message"]


def test_the_slo_json_schema_is_served(api_for, db):
    schema = api_for("viewer").get("/api/v1/slos/schema/").json()
    assert "objective" in schema["properties"]
