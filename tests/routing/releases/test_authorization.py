"""Who may call each release endpoint (mirrors the lead's authorization matrix, which must list the
same role sets): anonymous 401, wrong role 403, never a 500 for an empty body."""

from __future__ import annotations

import re

import pytest

READ = frozenset({"viewer", "operator", "approver", "admin"})
WRITE = frozenset({"operator", "admin"})
APPROVE = frozenset({"approver", "admin"})
ADMIN = frozenset({"admin"})

EXPECTED = {
    ("GET", "/api/v1/releases/"): READ,
    ("POST", "/api/v1/releases/"): WRITE,
    ("GET", "/api/v1/releases/{id}/"): READ,
    ("POST", "/api/v1/releases/{id}/submit/"): WRITE,
    ("POST", "/api/v1/releases/{id}/cancel/"): WRITE,
    ("POST", "/api/v1/releases/{id}/rollback/"): WRITE,
    ("POST", "/api/v1/releases/{id}/approve/"): APPROVE,
    ("POST", "/api/v1/releases/{id}/reject/"): APPROVE,
    ("POST", "/api/v1/releases/{id}/resume/"): APPROVE,
    ("GET", "/api/v1/models/"): READ,
    ("POST", "/api/v1/models/"): WRITE,
    ("GET", "/api/v1/models/{id}/"): READ,
    ("PATCH", "/api/v1/models/{id}/"): WRITE,
    ("DELETE", "/api/v1/models/{id}/"): WRITE,
    ("GET", "/api/v1/release-settings/{service}/"): READ,
    ("PUT", "/api/v1/release-settings/{service}/"): ADMIN,
    ("GET", "/api/v1/alertmanager/secrets/"): ADMIN,
    ("POST", "/api/v1/alertmanager/secrets/"): ADMIN,
    ("DELETE", "/api/v1/alertmanager/secrets/{id}/"): ADMIN,
    ("POST", "/api/v1/alertmanager/webhook/"): WRITE,  # or the dedicated webhook secret
    ("GET", "/api/v1/provenance/"): READ,
    ("POST", "/api/v1/provenance/route/"): READ,
}
PREFIXES = ("/api/v1/releases/", "/api/v1/models/", "/api/v1/release-settings/", "/api/v1/alertmanager/",
            "/api/v1/provenance/")
ROLES = ("outsider", "viewer", "operator", "approver", "admin")


def test_the_schema_lists_exactly_these_endpoints(db):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    ours = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete") and path.startswith(PREFIXES)
    }
    assert ours == set(EXPECTED)


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_each_role_gets_what_it_should(api_for, method, path):
    url = re.sub(r"\{[^}]+\}", "999999", path)
    assert api_for(None).generic(method, url, "{}", content_type="application/json").status_code == 401
    for role in ROLES:
        response = api_for(role).generic(method, url, "{}", content_type="application/json")
        assert response.status_code < 500, (role, method, url, response.status_code)
        if role in EXPECTED[(method, path)]:
            assert response.status_code not in (401, 403), (role, method, url, response.status_code)
        else:
            assert response.status_code == 403, (role, method, url, response.status_code)
