"""Telemetry API: sources (operators write, viewers read, secrets write-only, audited) and minutes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controlplane.crypto import decrypt_secret
from controlplane.models.audit import AuditEvent
from slo.models.telemetry import SliFeed, TelemetrySource
from slo.telemetry.ingest import telemetry_batch_ingest
from tests.slo.telemetry.conftest import NOW, at, batch, requests

pytestmark = pytest.mark.django_db
URL = "/api/v1/telemetry-sources/"
SOURCE = {
    "name": "edge-eu",
    "url": "https://prom.edge-eu.example:9090/",
    "tier": "edge",
    "region": "eu-central",
    "auth_kind": "bearer",
    "secret": "tok-s3cret",
}


def test_operators_create_sources_and_the_secret_is_never_returned(api_for: Any) -> None:
    response = api_for("operator").post(URL, SOURCE, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["has_secret"] is True and "secret" not in body and "secret_encrypted" not in body
    assert body["url"] == "https://prom.edge-eu.example:9090" and body["healthy"] is False
    stored = TelemetrySource.objects.get(name="edge-eu")
    assert stored.secret_encrypted != "tok-s3cret" and decrypt_secret(stored.secret_encrypted) == "tok-s3cret"
    event = AuditEvent.objects.get(action="create", object_type="slo.telemetrysource")
    assert "tok-s3cret" not in str(event.after) and event.actor_name == "otto"
    listed = api_for("viewer").get(URL).json()
    assert listed["results"][0]["name"] == "edge-eu"
    assert "tok-s3cret" not in str(listed)


def test_viewers_cannot_write_and_outsiders_cannot_read(api_for: Any) -> None:
    assert api_for("viewer").post(URL, SOURCE, format="json").status_code == 403
    assert api_for("outsider").get(URL).status_code == 403
    assert api_for(None).get(URL).status_code == 401


def test_update_keeps_the_secret_unless_sent_and_audits_the_change(api_for: Any) -> None:
    created = api_for("operator").post(URL, SOURCE, format="json").json()
    response = api_for("operator").patch(f"{URL}{created['id']}/", {"timeout_s": 10}, format="json")
    assert response.status_code == 200 and response.json()["timeout_s"] == 10
    source = TelemetrySource.objects.get(pk=created["id"])
    assert decrypt_secret(source.secret_encrypted) == "tok-s3cret"
    api_for("operator").patch(f"{URL}{created['id']}/", {"secret": "new-one"}, format="json")
    source.refresh_from_db()
    assert decrypt_secret(source.secret_encrypted) == "new-one"
    event = AuditEvent.objects.filter(action="update").order_by("-id").first()
    assert event is not None and event.after["secret_changed"] is True and "new-one" not in str(event.after)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"url": "ftp://x"}, "url"),
        ({"url": "https://user:pw@prom.example"}, "url"),
        ({"tier": "moon"}, "tier"),
        ({"auth_kind": "basic"}, "username"),
        ({"name": "Not A Slug"}, "name"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"services": ["nope"]}, "services"),
        ({"auth_kind": "bearer", "secret": ""}, "secret"),
    ],
)
def test_invalid_sources_get_a_400_with_the_path(api_for: Any, change: dict[str, Any], path: str) -> None:
    response = api_for("operator").post(URL, {**SOURCE, **change}, format="json")
    assert response.status_code == 400, response.content
    assert path in [e["path"] for e in response.json()["errors"]]
    assert not TelemetrySource.objects.exists()


def test_deleting_or_disabling_a_source_stops_expecting_its_minutes(api_for: Any) -> None:
    created = api_for("operator").post(URL, SOURCE, format="json").json()
    SliFeed.objects.create(
        slo_id=1, source=f"prometheus:{created['id']}", mode="pull", first_minute=0, last_minute=5
    )
    api_for("operator").patch(f"{URL}{created['id']}/", {"enabled": False}, format="json")
    assert SliFeed.objects.get().mode == "retired"
    assert api_for("operator").delete(f"{URL}{created['id']}/").status_code == 204
    assert not TelemetrySource.objects.exists() and AuditEvent.objects.filter(action="delete").exists()


def test_the_list_shows_health_and_statistics_without_n_plus_one(
    api_for: Any, django_assert_max_num_queries: Any
) -> None:
    for i in range(5):
        TelemetrySource.objects.create(
            name=f"s{i}",
            url="http://p",
            tier="edge",
            watermark=NOW,
            consecutive_failures=i,
            last_error="HTTP 503" if i else "",
        )
    client = api_for("viewer")
    client.get(URL)  # warm the role cache of the token's user
    with django_assert_max_num_queries(6):
        body = client.get(URL + "?ordering=name").json()
    first, second = body["results"][0], body["results"][1]
    assert first["healthy"] is False and first["lag_s"] > 0
    assert second["consecutive_failures"] == 1 and second["last_error"] == "HTTP 503"
    assert client.get(URL + "?tier=private_cloud").json()["count"] == 0


def test_the_minutes_endpoint_shows_present_and_missing_minutes(api_for: Any, slos: dict[str, Any]) -> None:
    avail = slos["edge-availability"].pk
    telemetry_batch_ingest(
        source="gateway:1", payload=batch({0: [requests("local", "ok", 10)], 2: []}), now=NOW
    )
    start, end = at(0).isoformat(), at(3).isoformat()
    response = api_for("viewer").get(f"/api/v1/slos/{avail}/minutes/", {"start": start, "end": end})
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(m["good"], m["valid"], m["present"]) for m in body["minutes"]] == [
        (10, 10, True),
        (None, None, False),
        (0, 0, True),
    ]
    assert body["present_minutes"] == 2


def test_the_minutes_endpoint_bounds_its_range_and_checks_input(api_for: Any, slos: dict[str, Any]) -> None:
    avail = slos["edge-availability"].pk
    client = api_for("viewer")
    url = f"/api/v1/slos/{avail}/minutes/"
    assert (
        client.get(url, {"start": (NOW - timedelta(days=4)).isoformat(), "end": NOW.isoformat()}).status_code
        == 400
    )
    assert client.get(url, {"start": "yesterday"}).status_code == 400
    assert client.get(url, {"start": NOW.isoformat(), "end": NOW.isoformat()}).status_code == 400
    assert client.get("/api/v1/slos/999999/minutes/").status_code == 404
    assert len(client.get(url).json()["minutes"]) == 60
    assert api_for("outsider").get(url).status_code == 403


def test_the_openapi_schema_documents_the_endpoints(api_for: Any) -> None:
    schema = api_for("viewer").get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/telemetry-sources/" in schema["paths"]
    assert "/api/v1/slos/{slo_id}/minutes/" in schema["paths"]
    write = schema["components"]["schemas"]["TelemetrySourceWriteRequest"]["properties"]
    assert write["secret"]["writeOnly"] is True
