"""Property-based API tests with schemathesis against the OpenAPI schema the API serves.

Every operation is called through the WSGI app (the whole middleware stack) with a real bearer token
for each role. Checks: no 5xx, the response conforms to the schema (body, status code, content type
and headers). Examples are bounded so the module stays within a few minutes on 2 cores; raise
SCHEMA_MAX_EXAMPLES to dig deeper.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = int(os.environ.get("SCHEMA_MAX_EXAMPLES", "3"))
ROLES = ("viewer", "operator", "approver", "admin")
# Every status an operation answers must be documented on it, errors included (the shared `Error`
# envelope, added to every operation by controlplane.api.schema.document_error_responses), and
# every body, error bodies included, must match its documented schema.
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]


def _spec() -> dict[str, Any]:
    """The schema exactly as /api/v1/schema/ serves it (test_it_serves_the_schema_it_is_tested_with)."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _load() -> Any:
    from controlplane.wsgi import application

    loaded = schemathesis.openapi.from_dict(_spec())
    loaded.app = application
    return loaded


schema = _load()


@pytest.fixture
def wsgi_in_test_transaction() -> Any:
    """The real WSGI handler closes "old" connections around each request (CONN_MAX_AGE); inside the
    test's transaction that would poison it (as Django's own test client knows, it disconnects the
    same signal). The schema run is not a database-outage test (tests/faults covers that)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(users: dict[str, Any]) -> dict[str, str]:
    from controlplane.services import api_token_create

    return {role: api_token_create(actor=None, user=users[role], name=f"schema-{role}")[1] for role in ROLES}


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_it_never_answers_5xx_and_always_matches_its_schema(
    case: Any, role: str, tokens: dict[str, str], wsgi_in_test_transaction: None,
) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {tokens[role]}"}
    response = case.call()
    case.validate_response(response, checks=CHECKS)
    if 200 <= response.status_code < 300 and case.method.upper() == case.operation.method.upper():
        documented = sorted(case.operation.definition.raw.get("responses", {}))
        assert str(response.status_code) in documented, (
            f"{case.method} {case.formatted_path}: undocumented success status {response.status_code}; "
            f"documented {documented}")


@pytest.mark.django_db
def test_it_serves_the_schema_it_is_tested_with(api_for: Any) -> None:
    import yaml

    response = api_for("viewer").get("/api/v1/schema/")
    assert response.status_code == 200
    served = yaml.safe_load(response.content)
    assert sorted(served["paths"]) == sorted(_spec()["paths"])
    assert api_for(None).get("/api/v1/schema/").status_code in (401, 403)
