"""The error envelope is part of the API contract: documented on every operation, and answered
(as JSON, never HTML) even where no route matches."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def operations(spec: dict[str, Any]):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_operation_documents_auth_role_rate_limit_and_outage_errors_with_the_error_body(spec):
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["detail", "errors"]
    assert error["properties"]["errors"]["items"]["required"] == ["path", "message"]
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        for code in ("401", "403", "404", "429", "503"):
            assert code in responses, f"{method.upper()} {path} does not document {code}"
            assert responses[code]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        if method in ("post", "put", "patch", "delete"):
            assert {"400", "409"} <= set(responses), f"{method.upper()} {path}"


def test_documented_successes_are_kept_and_specific_errors_get_the_error_body(spec):
    telemetry = spec["paths"]["/api/v1/gateways/{id}/telemetry/"]["post"]["responses"]
    assert "202" in telemetry and telemetry["413"]["description"] == "batch too large"
    assert telemetry["413"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_an_unmatched_api_path_answers_the_json_envelope_without_a_csrf_page(method, users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["viewer"])
    response = getattr(client, method)("/api/v1/tokens/not-a-number/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["detail"] == "not found"
    assert body["errors"] == [{"path": "", "message": "no API endpoint at /api/v1/tokens/not-a-number/"}]
    assert "X-Request-ID" in response


@pytest.mark.django_db
def test_a_path_with_control_characters_gets_the_json_envelope_too(users):
    client = Client()
    client.force_login(users["viewer"])
    response = client.get("/api/v1/cache-configs/%0A%C2%A7jU/versions/%C3%B8/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_pages_outside_the_api_still_get_html_404s(users):
    client = Client()
    client.force_login(users["viewer"])
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "application/json" not in response["Content-Type"]
