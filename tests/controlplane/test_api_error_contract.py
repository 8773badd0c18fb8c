"""The error envelope is part of the API contract: RFC 9457 problem details with our field paths,
documented on every operation, and answered (as JSON, never HTML) even where no route matches."""

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
    assert error["required"] == ["type", "title", "status", "detail", "errors"]
    assert error["properties"]["errors"]["items"]["required"] == ["path", "message"]
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        for code in ("401", "403", "404", "429", "503"):
            assert code in responses, f"{method.upper()} {path} does not document {code}"
            assert responses[code]["content"]["application/problem+json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }
        if method in ("post", "put", "patch", "delete"):
            assert {"400", "409"} <= set(responses), f"{method.upper()} {path}"


def test_documented_successes_are_kept_and_specific_errors_get_the_error_body(spec):
    telemetry = spec["paths"]["/api/v1/gateways/{id}/telemetry/"]["post"]["responses"]
    assert "202" in telemetry and telemetry["413"]["description"] == "batch too large"
    assert telemetry["413"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_an_unmatched_api_path_answers_the_json_envelope_without_a_csrf_page(method, users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["viewer"])
    response = getattr(client, method)("/api/v1/tokens/not-a-number/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["type"], body["title"], body["status"], body["detail"]) == (
        "about:blank",
        "Not Found",
        404,
        "not found",
    )
    assert body["errors"] == [{"path": "", "message": "no API endpoint at /api/v1/tokens/not-a-number/"}]
    assert "X-Request-ID" in response


@pytest.mark.django_db
def test_a_path_with_control_characters_gets_the_json_envelope_too(users):
    client = Client()
    client.force_login(users["viewer"])
    response = client.get("/api/v1/cache-configs/%0A%C2%A7jU/versions/%C3%B8/")
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"


@pytest.mark.django_db
def test_pages_outside_the_api_still_get_html_404s(users):
    client = Client()
    client.force_login(users["viewer"])
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "application/json" not in response["Content-Type"]


@pytest.mark.django_db
def test_a_validation_error_is_a_problem_document_with_field_paths(api_for):
    response = api_for("operator").post(
        "/api/v1/services/", {"name": "", "service_class": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["type"], body["title"], body["status"]) == ("about:blank", "Bad Request", 400)
    assert {problem["path"] for problem in body["errors"]} >= {"name", "service_class"}


@pytest.mark.django_db
def test_an_authentication_failure_is_a_problem_document(client):
    response = client.get("/api/v1/services/", HTTP_AUTHORIZATION="Bearer slo_not-a-token")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 401


@pytest.mark.django_db
def test_an_slo_write_with_a_stale_if_match_answers_412_and_changes_nothing(api_for, service, slo_doc):
    client = api_for("operator")
    created = client.post("/api/v1/slos/", slo_doc, format="json")
    assert created.status_code == 201 and created["ETag"] == '"v1"'
    url = f"/api/v1/slos/{created.json()['id']}/"
    first = client.put(url, {**slo_doc, "objective": 99.0}, format="json", HTTP_IF_MATCH='"v1"')
    assert first.status_code == 200 and first["ETag"] == '"v2"'

    stale = client.put(url, {**slo_doc, "objective": 98.0}, format="json", HTTP_IF_MATCH='"v1"')
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    current = client.get(url)
    assert current["ETag"] == '"v2"' and current.json()["objective"] == 99.0


@pytest.mark.django_db
@pytest.mark.parametrize("header", ['W/"v1"', "v1", '"something"'])
def test_an_if_match_that_is_not_our_strong_etag_is_refused(api_for, service, slo_doc, header):
    client = api_for("operator")
    created = client.post("/api/v1/slos/", slo_doc, format="json").json()
    response = client.put(
        f"/api/v1/slos/{created['id']}/", {**slo_doc, "objective": 99.0}, format="json", HTTP_IF_MATCH=header
    )
    assert response.status_code == 412 and response.json()["errors"][0]["path"] == "If-Match"
    assert client.get(f"/api/v1/slos/{created['id']}/").json()["objective"] == slo_doc["objective"]
