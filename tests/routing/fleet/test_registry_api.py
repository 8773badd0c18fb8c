from __future__ import annotations

from controlplane.crypto import decrypt_secret
from controlplane.models import AuditEvent
from routing.fleet.credentials import hash_gateway_token
from routing.models.fleet import Gateway

DOC = {
    "name": "edge-berlin-01",
    "service": "shelf-vision",
    "tier": "edge",
    "region": "eu-central",
    "labels": {"site": "berlin"},
    "push_url": "http://127.0.0.1:9101/config",
}


def test_an_operator_registers_a_gateway_and_sees_its_credentials_once(api_for, service):
    response = api_for("operator").post("/api/v1/gateways/", DOC, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["token"].startswith("gw_") and body["signing_secret"].startswith("whsec_")
    gateway = Gateway.objects.get(pk=body["id"])
    # stored hashed / encrypted, never in plain text
    assert gateway.token_hash == hash_gateway_token(body["token"])
    assert body["signing_secret"] not in gateway.signing_secret_encrypted
    assert decrypt_secret(gateway.signing_secret_encrypted) == body["signing_secret"]
    shown = api_for("viewer").get(f"/api/v1/gateways/{body['id']}/").json()
    assert "token" not in shown and "signing_secret" not in shown
    assert shown["health"] == "pending" and shown["service"] == "shelf-vision"
    event = AuditEvent.objects.get(object_type="routing.gateway", action="create")
    assert body["token"] not in str(event.after) and body["signing_secret"] not in str(event.after)


def test_viewers_read_but_cannot_register_and_anonymous_gets_401(api_for, service):
    assert api_for("viewer").post("/api/v1/gateways/", DOC, format="json").status_code == 403
    assert api_for(None).get("/api/v1/gateways/").status_code == 401
    assert api_for("outsider").get("/api/v1/gateways/").status_code == 403
    assert api_for("viewer").get("/api/v1/gateways/").status_code == 200
    assert not Gateway.objects.exists()


def test_invalid_registrations_get_400_with_paths(api_for, service):
    bad = {**DOC, "name": "Not A Slug", "tier": "moon", "service": "nope", "push_url": "ftp://x", "extra": 1}
    response = api_for("operator").post("/api/v1/gateways/", bad, format="json")
    assert response.status_code == 400
    paths = {e["path"] for e in response.json()["errors"]}
    assert {"name", "tier", "service", "push_url", "extra"} <= paths
    assert api_for("operator").post("/api/v1/gateways/", [1], format="json").status_code == 400
    api_for("operator").post("/api/v1/gateways/", DOC, format="json")
    duplicate = api_for("operator").post("/api/v1/gateways/", DOC, format="json")
    assert duplicate.status_code == 400 and duplicate.json()["errors"][0]["path"] == "name"


def test_an_operator_edits_a_gateway_and_the_change_is_audited(api_for, register):
    gateway = register("edge-1").gateway
    response = api_for("operator").patch(
        f"/api/v1/gateways/{gateway.pk}/", {"region": "us-east", "labels": {"a": "b"}}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["region"] == "us-east"
    event = AuditEvent.objects.filter(object_type="routing.gateway", action="update").get()
    assert event.before["region"] == "eu-west" and event.after["region"] == "us-east"
    assert (
        api_for("operator").patch(f"/api/v1/gateways/{gateway.pk}/", {"name": "x"}, format="json").status_code
        == 400
    )
    assert (
        api_for("viewer").patch(f"/api/v1/gateways/{gateway.pk}/", {"region": "x"}, format="json").status_code
        == 403
    )
    assert (
        api_for("operator").patch("/api/v1/gateways/999999/", {"region": "x"}, format="json").status_code
        == 404
    )


def test_rotation_without_grace_returns_new_credentials_once_and_the_old_token_stops_working(
    api_for, register
):
    credentials = register("edge-1")
    gateway = credentials.gateway
    response = api_for("operator").post(
        f"/api/v1/gateways/{gateway.pk}/rotate/", {"signing_secret": False, "grace_seconds": 0}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token"].startswith("gw_") and body["token"] != credentials.token
    assert body["signing_secret"] is None
    gateway.refresh_from_db()
    assert gateway.token_hash == hash_gateway_token(body["token"])
    assert decrypt_secret(gateway.signing_secret_encrypted) == credentials.signing_secret
    from rest_framework.test import APIClient

    old = APIClient()
    old.credentials(HTTP_AUTHORIZATION=f"Bearer {credentials.token}")
    assert old.get(f"/api/v1/gateways/{gateway.pk}/config").status_code == 401
    assert AuditEvent.objects.filter(action="rotate_credentials", object_id=str(gateway.pk)).exists()
    assert (
        api_for("viewer").post(f"/api/v1/gateways/{gateway.pk}/rotate/", {}, format="json").status_code == 403
    )


def test_the_list_filters_and_does_not_query_per_gateway(api_for, register, django_assert_max_num_queries):
    for index in range(12):
        register(
            f"edge-{index}", tier="edge" if index % 2 else "public_cloud", labels={"site": f"s{index % 3}"}
        )
    client = api_for("viewer")
    client.get("/api/v1/gateways/")  # warm the role cache of this client's user
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/gateways/")
    assert response.json()["count"] == 12
    assert client.get("/api/v1/gateways/?tier=edge").json()["count"] == 6
    assert client.get("/api/v1/gateways/?label=site=s1").json()["count"] == 4
    assert client.get("/api/v1/gateways/?service=shelf-vision").json()["count"] == 12
