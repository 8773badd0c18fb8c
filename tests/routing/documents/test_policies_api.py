"""Routing policies over the API: versions, validation against the service's SLOs, explain,
diff, stale edits, approvals, audit."""

from __future__ import annotations

import pytest

from controlplane.models import AuditEvent
from routing.models.documents import RoutingPolicyDocument, RoutingPolicyVersion
from tests.routing.documents.conftest import edited

URL = "/api/v1/routing-policies/"

CONGESTION_POLICY = {
    "service": "shelf-vision",
    "rules": [
        {
            "name": "privacy-stays-private",
            "when": {"privacy": True},
            "chain": [{"route": "local", "timeout_ms": 40}, {"route": "private_cloud", "timeout_ms": 90}],
        },
        {
            "name": "edge-hot",
            "when": {"temperature_c_min": 85},
            "chain": [{"route": "cache", "timeout_ms": 5}, {"route": "private_cloud", "timeout_ms": 120}],
        },
        {
            "name": "low-confidence-congested",
            "when": {"confidence_max": 0.6, "queue_ratio_min": 2},
            "chain": [
                {"route": "cache", "timeout_ms": 5},
                {"route": "private_cloud", "timeout_ms": 60},
                {"route": "public_cloud", "timeout_ms": 70},
            ],
        },
        {
            "name": "default",
            "chain": [
                {"route": "local", "timeout_ms": 40},
                {"route": "cache", "timeout_ms": 5},
                {"route": "private_cloud", "timeout_ms": 90},
            ],
        },
    ],
}


def test_it_creates_version_1_as_a_draft(policy, users):
    assert policy["service"] == "shelf-vision" and policy["current_version"] == 1
    current = policy["current"]
    assert current["version"] == 1 and current["state"] == "draft" and current["effective_state"] == "draft"
    assert current["author_name"] == users["operator"].username and current["note"] == "v1"
    assert current["validation_context"]["latency_slo_ms"] == 150
    assert RoutingPolicyVersion.objects.count() == 1


def test_a_cloud_chain_that_cannot_meet_the_150ms_slo_is_rejected_with_its_worst_case(api_for, latency_slo):
    slow = edited(CONGESTION_POLICY)
    slow["rules"][2]["chain"] = [
        {"route": "cache", "timeout_ms": 10},
        {"route": "private_cloud", "timeout_ms": 120, "retries": 1, "backoff_ms": 10},
        {"route": "public_cloud", "timeout_ms": 250},
    ]
    response = api_for("operator").post(URL, {"document": slow}, format="json")
    assert response.status_code == 400, response.json()
    errors = response.json()["errors"]
    chain_errors = [e for e in errors if e["path"] == "rules[2].chain"]
    assert chain_errors, errors
    # 10 + (120 x 2 + 10) + 250 = 510
    assert "510 ms" in chain_errors[0]["message"] and "150 ms" in chain_errors[0]["message"]
    assert not RoutingPolicyDocument.objects.exists()
    assert not AuditEvent.objects.filter(object_type="routing.routingpolicydocument").exists()


def test_every_problem_is_listed_with_its_path(api_for, latency_slo):
    bad = edited(CONGESTION_POLICY)
    bad["rules"][0]["chain"][1]["route"] = "mars"
    bad["rules"][3]["chain"][0]["timeout_ms"] = -1
    response = api_for("operator").post(URL, {"document": bad}, format="json")
    assert response.status_code == 400
    paths = {e["path"] for e in response.json()["errors"]}
    assert {"rules[0].chain[1].route", "rules[3].chain[0].timeout_ms"} <= paths


def test_a_hop_slower_than_its_cloud_tier_slo_is_rejected_at_the_hop(api_for, latency_slo, users, slo_doc):
    from slo.services import slo_create

    slo_create(
        actor=users["operator"],
        data={
            **slo_doc,
            "name": "public-latency",
            "tier": "public_cloud",
            "sli": {"kind": "latency", "threshold_ms": 50},
        },
    )
    response = api_for("operator").post(URL + "validate/", {"document": CONGESTION_POLICY}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert not body["valid"]
    (error,) = [e for e in body["errors"] if e["path"] == "rules[2].chain[2]"]
    assert "public-latency" in error["message"] and "70 ms" in error["message"]
    assert body["context"]["whole_chain_slo"]["name"] == "edge-latency"
    assert not RoutingPolicyDocument.objects.exists()


def test_validate_is_a_dry_run_with_warnings(api_for, latency_slo, policy_doc):
    noisy = edited(policy_doc, default_chain=[{"route": "local", "timeout_ms": 40}])
    body = api_for("viewer").post(URL + "validate/", {"document": noisy}, format="json").json()
    assert body["valid"] and [w["path"] for w in body["warnings"]] == ["default_chain"]
    assert not RoutingPolicyDocument.objects.exists()


def test_warnings_are_stored_with_the_version_and_returned(api_for, latency_slo, policy_doc):
    noisy = edited(policy_doc, default_chain=[{"route": "local", "timeout_ms": 40}])
    response = api_for("operator").post(URL, {"document": noisy}, format="json")
    assert response.status_code == 201
    assert response.json()["current"]["warnings"][0]["path"] == "default_chain"
    assert RoutingPolicyVersion.objects.get().validation["warnings"][0]["severity"] == "warning"


def test_explain_shows_the_matched_rule_and_why_earlier_rules_missed(api_for, latency_slo):
    created = api_for("operator").post(URL, {"document": CONGESTION_POLICY}, format="json").json()
    context = {"confidence": 0.41, "queue_depth": 9, "active_workers": 2, "temperature_c": 71}
    response = api_for("viewer").post(f"{URL}{created['id']}/explain/", {"context": context}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    decision = body["decision"]
    assert decision["rule"] == "low-confidence-congested" and decision["rule_index"] == 2
    assert body["routes"] == ["cache", "private_cloud", "public_cloud", "failed"]
    trace = decision["trace"]
    assert [step["matched"] for step in trace] == [False, False, True]
    assert trace[0]["misses"][0]["field"] == "privacy"
    assert trace[1]["misses"] == [
        {"condition": "temperature_c_min", "field": "temperature_c", "actual": 71, "expected": ">= 85"}
    ]
    assert any("low-confidence-congested: matched" in line for line in body["explanation"])


def test_explain_by_service_name_and_old_version_and_bad_context(api_for, policy, policy_doc):
    client = api_for("viewer")
    ok = client.post(
        URL + "shelf-vision/explain/", {"context": {"privacy": True}, "version": 1}, format="json"
    )
    assert ok.status_code == 200 and ok.json()["decision"]["rule"] == "privacy-stays-private"
    bad = client.post(URL + "shelf-vision/explain/", {"context": {"confidence": "high"}}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "context.confidence"
    missing = client.post(URL + "shelf-vision/explain/", {"context": {}, "version": 9}, format="json")
    assert missing.status_code == 404


def test_two_versions_diff_readably(api_for, policy, policy_doc):
    client = api_for("operator")
    second = edited(policy_doc)
    second["rules"][-1]["chain"][0]["timeout_ms"] = 30
    second["rules"].insert(
        0,
        {
            "name": "vip",
            "when": {"priority_in": ["critical"]},
            "chain": [{"route": "private_cloud", "timeout_ms": 100}],
        },
    )
    response = client.put(
        f"{URL}{policy['id']}/", {"document": second, "parent_version": 1, "note": "faster"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["current_version"] == 2
    diff = client.get(f"{URL}{policy['id']}/diff/", {"from": 1, "to": 2}).json()
    old_timeout = policy_doc["rules"][-1]["chain"][0]["timeout_ms"]
    assert {
        "path": "rules[name=default].chain[0].timeout_ms",
        "kind": "changed",
        "before": old_timeout,
        "after": 30,
    } in diff["changes"]
    added = [c for c in diff["changes"] if c["kind"] == "added"]
    assert added[0]["path"] == "rules[name=vip]"
    assert any(line.startswith("~ rules[name=default].chain[0].timeout_ms") for line in diff["summary"])
    assert client.get(f"{URL}{policy['id']}/diff/", {"from": 1, "to": 7}).status_code == 404
    assert client.get(f"{URL}{policy['id']}/diff/", {"from": "x"}).status_code == 400


def test_an_edit_from_a_stale_version_gets_409_with_the_current_version(api_for, policy, policy_doc):
    client = api_for("operator")
    first = edited(policy_doc, description="first edit")
    assert (
        client.put(
            f"{URL}{policy['id']}/", {"document": first, "parent_version": 1}, format="json"
        ).status_code
        == 200
    )
    stale = client.put(
        f"{URL}{policy['id']}/",
        {"document": edited(policy_doc, description="late"), "parent_version": 1},
        format="json",
    )
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2 and stale.json()["current"]["description"] == "first edit"
    assert RoutingPolicyVersion.objects.count() == 2


def test_an_unchanged_document_makes_no_new_version(api_for, policy, policy_doc):
    response = api_for("operator").put(f"{URL}{policy['id']}/", {"document": policy_doc}, format="json")
    assert response.json()["current_version"] == 1


def test_yaml_input_works_as_a_body_and_inside_json(api_for, latency_slo):
    import yaml

    text = yaml.safe_dump({k: v for k, v in CONGESTION_POLICY.items() if k != "service"})
    client = api_for("operator")
    response = client.generic(
        "POST", URL + "?service=shelf-vision&note=from+yaml", text, content_type="application/yaml"
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["current"]["document"]["service"] == "shelf-vision"
    assert created["current"]["note"] == "from yaml"
    changed = text.replace("timeout_ms: 70", "timeout_ms: 65")
    updated = client.put(f"{URL}{created['id']}/", {"yaml": changed, "parent_version": 1}, format="json")
    assert updated.status_code == 200 and updated.json()["current_version"] == 2
    raw = client.generic(
        "PUT", f"{URL}{created['id']}/?parent_version=1", changed, content_type="application/yaml"
    )
    assert raw.status_code == 409


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("rules: [", "invalid YAML"),
        ("a: &x [1]\nb: *x\n", "aliases"),
        ("- just\n- a list\n", "must be an object"),
        ("1: one\n", "not a string"),
    ],
)
def test_bad_yaml_gets_400_not_500(api_for, latency_slo, text, fragment):
    response = api_for("operator").generic(
        "POST", URL + "?service=shelf-vision", text, content_type="application/yaml"
    )
    assert response.status_code == 400
    assert fragment in str(response.json()["errors"])


def test_roles_viewer_reads_operator_writes_approver_approves_never_their_own(
    api_for, policy, policy_doc, users
):
    line = f"{URL}{policy['id']}/"
    assert api_for("viewer").get(URL).status_code == 200
    assert api_for("viewer").get(line).status_code == 200
    assert api_for("viewer").put(line, {"document": policy_doc}, format="json").status_code == 403
    assert api_for("outsider").get(URL).status_code == 403
    assert api_for(None).get(URL).status_code == 401
    assert api_for("operator").post(line + "versions/1/approve/").status_code == 403
    # the admin writes version 2 and may not approve it; an approver may
    v2 = api_for("admin").put(line, {"document": edited(policy_doc, description="admin's")}, format="json")
    assert v2.status_code == 200
    own = api_for("admin").post(line + "versions/2/approve/")
    assert own.status_code == 403 and "another approver" in own.json()["detail"]
    approved = api_for("approver").post(line + "versions/2/approve/")
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    assert approved.json()["approved_by_name"] == users["approver"].username
    again = api_for("approver2").post(line + "versions/2/approve/")
    assert again.status_code == 409
    retired = api_for("operator").post(line + "versions/1/retire/")
    assert retired.status_code == 200 and retired.json()["state"] == "retired"
    assert api_for("approver").post(line + "versions/1/approve/").status_code == 409


def test_every_write_is_audited_with_before_and_after(api_for, policy, policy_doc, users):
    client = api_for("operator")
    line = f"{URL}{policy['id']}/"
    client.put(
        line, {"document": edited(policy_doc, description="v2")}, format="json", HTTP_X_REQUEST_ID="rp-1"
    )
    client.post(line + "restore/", {"version": 1}, format="json")
    api_for("approver").post(line + "versions/3/approve/")
    events = list(
        AuditEvent.objects.filter(
            object_type="routing.routingpolicydocument", object_id=str(policy["id"])
        ).order_by("id")
    )
    assert [e.action for e in events] == ["create", "update", "restore", "approve"]
    update = events[1]
    assert update.request_id == "rp-1" and update.actor_name == users["operator"].username
    assert update.before["version"] == 1 and update.after["version"] == 2
    assert update.after["document"]["description"] == "v2"
    assert events[2].after["restored_from"] == 1 and events[2].after["document"] == policy_doc
    assert events[3].before == {"version": 3, "state": "draft"} and events[3].after["state"] == "approved"


def test_restore_writes_the_old_document_as_a_new_version(api_for, policy, policy_doc):
    client = api_for("operator")
    line = f"{URL}{policy['id']}/"
    client.put(line, {"document": edited(policy_doc, description="v2")}, format="json")
    restored = client.post(line + "restore/", {"version": 1, "note": "back"}, format="json")
    assert restored.status_code == 200 and restored.json()["current_version"] == 3
    v3 = client.get(line + "versions/3/").json()
    assert v3["restored_from"] == 1 and v3["parent_version"] == 2 and v3["document"] == policy_doc
    assert client.post(line + "restore/", {"version": 42}, format="json").status_code == 404
    versions = client.get(line + "versions/").json()["results"]
    assert [v["version"] for v in versions] == [3, 2, 1]


def test_one_line_per_service(api_for, policy, policy_doc):
    again = api_for("operator").post(URL, {"document": policy_doc}, format="json")
    assert again.status_code == 409 and again.json()["id"] == policy["id"]
    unknown = api_for("operator").post(URL, {"document": edited(policy_doc, service="nope")}, format="json")
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["path"] == "service"


def test_a_document_for_another_service_is_rejected(api_for, policy, policy_doc, service_doc):
    api_for("operator").post("/api/v1/services/", {**service_doc, "name": "other"}, format="json")
    response = api_for("operator").put(
        f"{URL}{policy['id']}/", {"document": edited(policy_doc, service="other")}, format="json"
    )
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "service"


def test_the_json_schemas_are_served(api_for, db):
    policy_schema = api_for("viewer").get(URL + "schema/").json()
    assert "rules" in policy_schema["properties"]
    cache_schema = api_for("viewer").get("/api/v1/cache-configs/schema/").json()
    assert "layers" in cache_schema["properties"]


def test_a_write_with_a_stale_if_match_answers_412_and_stores_nothing(api_for, policy, policy_doc):
    client = api_for("operator")
    url = f"{URL}{policy['id']}/"
    assert client.get(url)["ETag"] == '"v1"'
    second = edited(policy_doc)
    second["rules"][-1]["chain"][0]["timeout_ms"] = 35
    answer = client.put(url, {"document": second, "note": "v2"}, format="json", HTTP_IF_MATCH='"v1"')
    assert answer.status_code == 200 and answer["ETag"] == '"v2"'
    third = edited(policy_doc)
    third["rules"][-1]["chain"][0]["timeout_ms"] = 30
    stale = client.put(url, {"document": third, "note": "v3"}, format="json", HTTP_IF_MATCH='"v1"')
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    assert RoutingPolicyVersion.objects.count() == 2
