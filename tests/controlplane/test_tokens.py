from __future__ import annotations

from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from controlplane.models import ApiToken, AuditEvent
from controlplane.models.tokens import hash_token


def test_it_rejects_anonymous_requests_with_401(db):
    response = APIClient().get("/api/v1/slos/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_creates_a_token_shown_once_and_stored_hashed(api_for, users):
    response = api_for("viewer").post("/api/v1/tokens/", {"name": "laptop"}, format="json")
    assert response.status_code == 201
    raw = response.json()["token"]
    assert raw.startswith("slo_")
    token = ApiToken.objects.get(pk=response.json()["id"])
    assert token.key_hash == hash_token(raw)
    assert raw not in token.key_hash and raw not in token.hint
    listed = api_for("viewer").get("/api/v1/tokens/").json()["results"]
    assert all("token" not in item for item in listed)
    # The new token works on its own.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/me/").json()["username"] == users["viewer"].username
    # The audit event never carries the raw value.
    event = AuditEvent.objects.get(
        object_type="controlplane.apitoken", object_id=str(token.pk), action="create"
    )
    assert raw not in str(event.after)


def test_a_revoked_token_is_refused(api_for, users):
    response = api_for("operator").post("/api/v1/tokens/", {"name": "ci"}, format="json")
    raw, token_id = response.json()["token"], response.json()["id"]
    assert api_for("operator").delete(f"/api/v1/tokens/{token_id}/").status_code == 204
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/me/").status_code == 401


def test_an_expired_token_is_refused(db, users):
    from controlplane.services import api_token_create

    token, raw = api_token_create(
        actor=None, user=users["viewer"], name="short", expires_at=timezone.now() + timedelta(seconds=30)
    )
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/me/").status_code == 401


def test_a_garbage_token_is_refused(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer slo_not-a-real-token")
    assert client.get("/api/v1/me/").status_code == 401


def test_users_cannot_revoke_each_others_tokens(api_for, users):
    token_id = api_for("operator").post("/api/v1/tokens/", {"name": "mine"}, format="json").json()["id"]
    assert api_for("viewer").delete(f"/api/v1/tokens/{token_id}/").status_code == 404
    assert ApiToken.objects.get(pk=token_id).revoked_at is None


def test_the_command_prints_a_working_token(db, users, capsys):
    call_command("create_token", users["approver"].username, "--name", "bot", "--expires-days", "7")
    raw = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/me/").json()["roles"] == ["approver", "viewer"]


def test_session_writes_need_csrf(users):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(users["operator"])
    response = client.post("/api/v1/tokens/", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
