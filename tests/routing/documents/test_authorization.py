"""Who may call each routing-document endpoint (mirrors the lead's authorization matrix, which
must list the same role sets): anonymous 401, wrong role 403, never a 500 for an empty body."""

from __future__ import annotations

import pytest

READ = frozenset({"viewer", "operator", "approver", "admin"})
WRITE = frozenset({"operator", "admin"})
APPROVE = frozenset({"approver", "admin"})

EXPECTED = {}
for prefix in ("/api/v1/routing-policies", "/api/v1/cache-configs"):
    EXPECTED.update({
        ("GET", f"{prefix}/"): READ,
        ("POST", f"{prefix}/"): WRITE,
        ("GET", f"{prefix}/schema/"): READ,
        ("POST", f"{prefix}/validate/"): READ,
        ("GET", f"{prefix}/{{id}}/"): READ,
        ("PUT", f"{prefix}/{{id}}/"): WRITE,
        ("GET", f"{prefix}/{{id}}/versions/"): READ,
        ("GET", f"{prefix}/{{id}}/versions/{{version}}/"): READ,
        ("GET", f"{prefix}/{{id}}/diff/"): READ,
        ("POST", f"{prefix}/{{id}}/restore/"): WRITE,
        ("POST", f"{prefix}/{{id}}/versions/{{version}}/approve/"): APPROVE,
        ("POST", f"{prefix}/{{id}}/versions/{{version}}/retire/"): WRITE,
    })
EXPECTED[("POST", "/api/v1/routing-policies/{id}/explain/")] = READ
EXPECTED[("POST", "/api/v1/routing-policies/{id}/simulate/")] = READ
EXPECTED[("POST", "/api/v1/cache-configs/{id}/explain-key/")] = READ
EXPECTED[("POST", "/api/v1/cache-configs/{id}/recommend-threshold/")] = READ


def test_the_schema_lists_exactly_these_endpoints(db):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    ours = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        if path.startswith(("/api/v1/routing-policies", "/api/v1/cache-configs"))
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert ours == set(EXPECTED)


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_each_role_gets_what_it_should(api_for, method, path):
    url = path.replace("{id}", "999999").replace("{version}", "999999")
    assert api_for(None).generic(method, url, "{}", content_type="application/json").status_code == 401
    for role in ("outsider", "viewer", "operator", "approver", "admin"):
        response = api_for(role).generic(method, url, "{}", content_type="application/json")
        assert response.status_code < 500, (role, method, url, response.status_code)
        if role in EXPECTED[(method, path)]:
            assert response.status_code not in (401, 403), (role, method, url, response.status_code)
        else:
            assert response.status_code == 403, (role, method, url, response.status_code)
