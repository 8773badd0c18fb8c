"""Security headers on every kind of response, and CSRF on session writes (dashboard forms and API)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def assert_security_headers(response: Any) -> None:
    csp = response.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    assert "script-src" in csp and "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
    assert response.get("X-Frame-Options") == "DENY"
    assert response.get("X-Content-Type-Options") == "nosniff"
    assert response.get("Referrer-Policy") == "same-origin"


@pytest.mark.parametrize("path", ["/login/", "/healthz", "/api/v1/services/", "/api/v1/does-not-exist/", "/"])
def test_anonymous_responses_carry_the_security_headers(client: Client, path: str) -> None:
    assert_security_headers(client.get(path))


def test_dashboard_and_api_responses_carry_the_security_headers(client: Client, users: Any, api_for: Any) -> None:
    client.force_login(users["viewer"])
    for path in ("/", "/audit/", "/fleet/", "/releases/", "/policies/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_security_headers(response)
    api = api_for("viewer").get("/api/v1/services/")
    assert_security_headers(api)
    assert api["Cache-Control"] == "no-store"


def test_session_cookies_are_http_only(client: Client, users: Any) -> None:
    response = client.post("/login/", {"username": "vera", "password": "pw-vera-123456"})
    assert response.status_code == 302
    assert response.cookies["sessionid"]["httponly"]
    assert response.cookies["sessionid"]["samesite"].lower() == "lax"


@pytest.fixture
def csrf_client(users: Any) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["operator"])
    return client


def test_api_writes_with_a_session_need_the_csrf_token(csrf_client: Client, service_doc: dict[str, Any]) -> None:
    from slo.models import Service

    refused = csrf_client.post("/api/v1/services/", service_doc, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert not Service.objects.exists()
    csrf_client.get("/")  # the dashboard sets the csrftoken cookie
    token = csrf_client.cookies["csrftoken"].value
    accepted = csrf_client.post("/api/v1/services/", service_doc, content_type="application/json",
                                HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201, accepted.content


def test_bearer_token_writes_need_no_csrf_token(api_for: Any, service_doc: dict[str, Any]) -> None:
    # a bearer token is not ambient authority: a cross-site page cannot attach it
    assert api_for("operator").post("/api/v1/services/", service_doc, format="json").status_code == 201


def test_dashboard_forms_need_the_csrf_token(users: Any, service: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["approver"])
    for path in ("/releases/1/approve/", "/releases/1/reject/", "/releases/1/rollback/", "/logout/"):
        response = client.post(path, {"comment": "lgtm", "reason": "x"})
        assert response.status_code == 403, (path, response.status_code)


def test_the_login_form_needs_the_csrf_token(users: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "vera", "password": "pw-vera-123456"})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
