"""Tokens and secrets are shown once, at creation, and never again: not in any later API response, not
in the dashboard, not in the audit log, not in a log line (captured at DEBUG)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

pytestmark = pytest.mark.django_db

CHANNEL_SECRET = "chan-secret-0123456789abcdef"
SOURCE_SECRET = "prom-bearer-0123456789abcdef"
SOURCE_PASSWORD = "prom-basic-pw-0123456789abcdef"


def _created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.content[:500]
    return response.json()


@pytest.fixture
def secrets(api_for: Any, users: Any, service: Any, caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """Create one of everything that holds a credential, through the API; return the secrets."""
    caplog.set_level(logging.DEBUG)
    operator, admin = api_for("operator"), api_for("admin")
    found: dict[str, str] = {}
    token = _created(operator.post("/api/v1/tokens/", {"name": "ci"}, format="json"))
    found["api token"] = token["token"]
    gateway = _created(
        operator.post(
            "/api/v1/gateways/", {"name": "edge-1", "service": "shelf-vision", "tier": "edge"}, format="json"
        )
    )
    found["gateway token"] = gateway["token"]
    found["gateway signing secret"] = gateway["signing_secret"]
    # a rotation with a grace window keeps the old ones usable (hashed / encrypted) next to the new
    rotated = operator.post(
        f"/api/v1/gateways/{gateway['id']}/rotate/", {"grace_seconds": 600}, format="json"
    )
    assert rotated.status_code == 200, rotated.content[:500]
    found["rotated gateway token"] = rotated.json()["token"]
    found["rotated gateway signing secret"] = rotated.json()["signing_secret"]
    _created(
        admin.post(
            "/api/v1/notification-channels/",
            {
                "name": "ops-hook",
                "kind": "generic_webhook",
                "url": "http://127.0.0.1:9/hook",
                "secret": CHANNEL_SECRET,
            },
            format="json",
        )
    )
    found["channel secret"] = CHANNEL_SECRET
    _created(
        admin.post(
            "/api/v1/telemetry-sources/",
            {
                "name": "edge-prom",
                "url": "http://127.0.0.1:9",
                "tier": "edge",
                "auth_kind": "bearer",
                "secret": SOURCE_SECRET,
            },
            format="json",
        )
    )
    found["telemetry source bearer"] = SOURCE_SECRET
    _created(
        admin.post(
            "/api/v1/telemetry-sources/",
            {
                "name": "cloud-prom",
                "url": "http://127.0.0.1:9",
                "tier": "public_cloud",
                "auth_kind": "basic",
                "username": "reader",
                "secret": SOURCE_PASSWORD,
            },
            format="json",
        )
    )
    found["telemetry source password"] = SOURCE_PASSWORD
    webhook = _created(admin.post("/api/v1/alertmanager/secrets/", {"name": "am"}, format="json"))
    found["alertmanager secret"] = next(v for k, v in webhook.items() if k in ("secret", "token", "value"))
    # use the credentials, so code paths that handle them run (and could log them)
    from rest_framework.test import APIClient

    for name in ("gateway token", "rotated gateway token"):  # the old one is inside its grace window
        gw = APIClient()
        gw.credentials(HTTP_AUTHORIZATION=f"Bearer {found[name]}")
        gw.get(f"/api/v1/gateways/{gateway['id']}/config")
        gw.post(f"/api/v1/gateways/{gateway['id']}/heartbeat", {"applied_revision": None}, format="json")
    user_client = APIClient()
    user_client.credentials(HTTP_AUTHORIZATION=f"Bearer {found['api token']}")
    assert user_client.get("/api/v1/me/").status_code == 200
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION=f"Bearer {found['api token']}x")
    assert wrong.get("/api/v1/me/").status_code == 401
    return found


READ_PATHS = [
    "/api/v1/tokens/",
    "/api/v1/gateways/",
    "/api/v1/fleet/",
    "/api/v1/notification-channels/",
    "/api/v1/telemetry-sources/",
    "/api/v1/alertmanager/secrets/",
    "/api/v1/audit-events/?limit=500",
    "/api/v1/me/",
    "/api/v1/schema/",
]
DASHBOARD_PATHS = ["/", "/audit/", "/fleet/"]


def _assert_absent(text: str, secrets: dict[str, str], where: str) -> None:
    for name, value in secrets.items():
        assert value not in text, f"{name} appears in {where}"


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_no_later_api_response_contains_a_secret(api_for: Any, secrets: dict[str, str], role: str) -> None:
    client = api_for(role)
    for path in READ_PATHS:
        response = client.get(path)
        _assert_absent(response.content.decode(errors="replace"), secrets, f"GET {path} as {role}")
        if response.status_code == 200 and path.endswith("s/") and "results" in response.json():
            for item in response.json()["results"]:
                if "id" in item:
                    detail = client.get(f"{path.split('?')[0]}{item['id']}/")
                    _assert_absent(detail.content.decode(errors="replace"), secrets, f"GET detail of {path}")


def test_the_dashboard_shows_no_secret(client: Any, users: Any, secrets: dict[str, str]) -> None:
    client.force_login(users["admin"])
    for path in DASHBOARD_PATHS:
        response = client.get(path)
        _assert_absent(response.content.decode(errors="replace"), secrets, f"dashboard {path}")


def test_the_audit_log_and_the_database_hold_no_plain_secret(secrets: dict[str, str]) -> None:
    from django.db import connection

    from controlplane.models import AuditEvent

    for event in AuditEvent.objects.all():
        _assert_absent(
            f"{event.before} {event.after} {event.note} {event.object_repr}",
            secrets,
            f"audit event {event.action} {event.object_type}",
        )
    # a full dump of every text column of every table: stored hashed or encrypted, never plain
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND data_type IN ('text', 'character varying', 'jsonb')"
        )
        columns = cursor.fetchall()
        for table, column in columns:
            for name, value in secrets.items():
                cursor.execute(
                    f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s', [f"%{value}%"]
                )
                assert cursor.fetchone()[0] == 0, f"{name} stored in plain text in {table}.{column}"


def test_no_log_line_contains_a_secret(secrets: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert records, "logging was captured"
    for record in records:
        _assert_absent(record.getMessage() + str(record.args or ""), secrets, f"log line from {record.name}")
