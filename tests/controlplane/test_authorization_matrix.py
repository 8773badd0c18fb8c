"""Every API endpoint, every role: anonymous gets 401, a wrong role 403, the right
roles get past authorization. A new endpoint fails this test until it is declared
below, so nothing ships without a decision about who may call it."""

from __future__ import annotations

import re

import pytest
from drf_spectacular.generators import SchemaGenerator

READ = frozenset({"viewer", "operator", "approver", "admin"})
WRITE = frozenset({"operator", "admin"})
APPROVE = frozenset({"approver", "admin"})
ADMIN = frozenset({"admin"})
GATEWAY = frozenset({"<gateway credentials only>"})  # every user token is refused
ANY_ROLE = READ

# (method, path template) -> roles allowed through authorization.
EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/me/"): ANY_ROLE,
    ("GET", "/api/v1/tokens/"): READ,
    ("POST", "/api/v1/tokens/"): READ,
    ("GET", "/api/v1/tokens/{id}/"): READ,
    ("DELETE", "/api/v1/tokens/{id}/"): READ,
    ("GET", "/api/v1/audit-events/"): READ,
    ("GET", "/api/v1/audit-events/{id}/"): READ,
    ("GET", "/api/v1/services/"): READ,
    ("POST", "/api/v1/services/"): WRITE,
    ("POST", "/api/v1/services/from-template/"): WRITE,
    ("GET", "/api/v1/service-templates/"): READ,
    ("GET", "/api/v1/services/{id}/"): READ,
    ("PUT", "/api/v1/services/{id}/"): WRITE,
    ("PATCH", "/api/v1/services/{id}/"): WRITE,
    ("DELETE", "/api/v1/services/{id}/"): WRITE,
    ("GET", "/api/v1/slos/"): READ,
    ("POST", "/api/v1/slos/"): WRITE,
    ("GET", "/api/v1/slos/schema/"): READ,
    ("GET", "/api/v1/slos/{id}/"): READ,
    ("PUT", "/api/v1/slos/{id}/"): WRITE,
    ("PATCH", "/api/v1/slos/{id}/"): WRITE,
    ("DELETE", "/api/v1/slos/{id}/"): WRITE,
    ("GET", "/api/v1/slos/{id}/versions/"): READ,
    ("GET", "/api/v1/slos/{id}/diff/"): READ,
    ("POST", "/api/v1/slos/{id}/restore/"): WRITE,
    ("GET", "/api/v1/slos/{id}/openslo/"): READ,
    ("GET", "/api/v1/composites/"): READ,
    ("POST", "/api/v1/composites/"): WRITE,
    ("GET", "/api/v1/composites/schema/"): READ,
    ("GET", "/api/v1/composites/{id}/"): READ,
    ("PUT", "/api/v1/composites/{id}/"): WRITE,
    ("PATCH", "/api/v1/composites/{id}/"): WRITE,
    ("DELETE", "/api/v1/composites/{id}/"): WRITE,
    ("GET", "/api/v1/composites/{id}/versions/"): READ,
    ("POST", "/api/v1/composites/{id}/restore/"): WRITE,
    ("GET", "/api/v1/composites/{id}/status/"): READ,
    ("GET", "/api/v1/composites/{id}/openslo/"): READ,
    ("GET", "/api/v1/corrections/"): READ,
    ("POST", "/api/v1/corrections/"): WRITE,
    ("GET", "/api/v1/corrections/{id}/"): READ,
    ("PUT", "/api/v1/corrections/{id}/"): WRITE,
    ("PATCH", "/api/v1/corrections/{id}/"): WRITE,
    ("DELETE", "/api/v1/corrections/{id}/"): WRITE,
    ("GET", "/api/v1/corrections/{id}/versions/"): READ,
    ("POST", "/api/v1/corrections/{id}/approve/"): APPROVE,
    ("POST", "/api/v1/corrections/{id}/reject/"): APPROVE,
    ("POST", "/api/v1/openslo/import/"): WRITE,
    ("GET", "/api/v1/openslo/export/"): READ,
    ("POST", "/api/v1/openslo/apply/"): WRITE,
    ("POST", "/api/v1/openslo/plan/"): READ,
    ("GET", "/api/v1/cache-configs/"): READ,
    ("POST", "/api/v1/cache-configs/"): WRITE,
    ("GET", "/api/v1/cache-configs/schema/"): READ,
    ("POST", "/api/v1/cache-configs/validate/"): READ,
    ("GET", "/api/v1/cache-configs/{id}/"): READ,
    ("PUT", "/api/v1/cache-configs/{id}/"): WRITE,
    ("GET", "/api/v1/cache-configs/{id}/versions/"): READ,
    ("GET", "/api/v1/cache-configs/{id}/versions/{version}/"): READ,
    ("GET", "/api/v1/cache-configs/{id}/diff/"): READ,
    ("POST", "/api/v1/cache-configs/{id}/restore/"): WRITE,
    ("POST", "/api/v1/cache-configs/{id}/versions/{version}/approve/"): APPROVE,
    ("POST", "/api/v1/cache-configs/{id}/versions/{version}/retire/"): WRITE,
    ("GET", "/api/v1/routing-policies/"): READ,
    ("POST", "/api/v1/routing-policies/"): WRITE,
    ("GET", "/api/v1/routing-policies/schema/"): READ,
    ("POST", "/api/v1/routing-policies/validate/"): READ,
    ("GET", "/api/v1/routing-policies/{id}/"): READ,
    ("PUT", "/api/v1/routing-policies/{id}/"): WRITE,
    ("GET", "/api/v1/routing-policies/{id}/versions/"): READ,
    ("GET", "/api/v1/routing-policies/{id}/versions/{version}/"): READ,
    ("GET", "/api/v1/routing-policies/{id}/diff/"): READ,
    ("POST", "/api/v1/routing-policies/{id}/restore/"): WRITE,
    ("POST", "/api/v1/routing-policies/{id}/cheapest/"): WRITE,
    ("POST", "/api/v1/routing-policies/{id}/versions/{version}/approve/"): APPROVE,
    ("POST", "/api/v1/routing-policies/{id}/versions/{version}/retire/"): WRITE,
    # telemetry
    ("GET", "/api/v1/telemetry-sources/"): READ,
    ("POST", "/api/v1/telemetry-sources/"): WRITE,
    ("GET", "/api/v1/telemetry-sources/{id}/"): READ,
    ("PUT", "/api/v1/telemetry-sources/{id}/"): WRITE,
    ("PATCH", "/api/v1/telemetry-sources/{id}/"): WRITE,
    ("DELETE", "/api/v1/telemetry-sources/{id}/"): WRITE,
    ("GET", "/api/v1/telemetry-sources/{source_id}/discovery/"): READ,
    ("GET", "/api/v1/slos/{slo_id}/minutes/"): READ,
    # budget, alerts, cost
    ("GET", "/api/v1/slos/{id}/status/"): READ,
    ("GET", "/api/v1/slos/{id}/timeseries/"): READ,
    ("GET", "/api/v1/slos/{id}/prometheus-rules/"): READ,
    ("GET", "/api/v1/prometheus-rules/"): READ,
    ("GET", "/api/v1/alerts/"): READ,
    ("GET", "/api/v1/alerts/{id}/"): READ,
    ("GET", "/api/v1/services/{name}/budget-status/"): READ,
    ("GET", "/api/v1/budget-policies/"): READ,
    ("POST", "/api/v1/budget-policies/"): ADMIN,
    ("GET", "/api/v1/budget-policies/{id}/"): READ,
    ("PUT", "/api/v1/budget-policies/{id}/"): ADMIN,
    ("PATCH", "/api/v1/budget-policies/{id}/"): ADMIN,
    ("DELETE", "/api/v1/budget-policies/{id}/"): ADMIN,
    ("GET", "/api/v1/notification-channels/"): READ,
    ("POST", "/api/v1/notification-channels/"): ADMIN,
    ("GET", "/api/v1/notification-channels/{id}/"): READ,
    ("PUT", "/api/v1/notification-channels/{id}/"): ADMIN,
    ("PATCH", "/api/v1/notification-channels/{id}/"): ADMIN,
    ("DELETE", "/api/v1/notification-channels/{id}/"): ADMIN,
    ("GET", "/api/v1/cost-models/"): READ,
    ("POST", "/api/v1/cost-models/"): ADMIN,
    ("GET", "/api/v1/cost-models/{id}/"): READ,
    ("GET", "/api/v1/costs/"): READ,
    ("GET", "/api/v1/costs/{id}/"): READ,
    # releases, model registry, provenance
    ("GET", "/api/v1/releases/"): READ,
    ("POST", "/api/v1/releases/"): WRITE,
    ("POST", "/api/v1/releases/preview/"): READ,
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
    ("POST", "/api/v1/alertmanager/webhook/"): WRITE,
    ("GET", "/api/v1/alertmanager/alerts/"): READ,
    ("GET", "/api/v1/provenance/"): READ,
    ("POST", "/api/v1/provenance/route/"): READ,
    # reports
    ("GET", "/api/v1/reports/"): READ,
    ("GET", "/api/v1/reports/{id}/"): READ,
    ("GET", "/api/v1/reports/{id}/csv/"): READ,
    ("POST", "/api/v1/reports/generate/"): WRITE,
    ("GET", "/api/v1/report-schedules/"): READ,
    ("GET", "/api/v1/report-schedules/{id}/"): READ,
    ("POST", "/api/v1/report-schedules/"): ADMIN,
    ("PUT", "/api/v1/report-schedules/{id}/"): ADMIN,
    ("PATCH", "/api/v1/report-schedules/{id}/"): ADMIN,
    ("DELETE", "/api/v1/report-schedules/{id}/"): ADMIN,
    # fleet (people); the gateway endpoints are below
    ("GET", "/api/v1/fleet/"): READ,
    ("GET", "/api/v1/gateways/"): READ,
    ("POST", "/api/v1/gateways/"): WRITE,
    ("GET", "/api/v1/gateways/{id}/"): READ,
    ("PATCH", "/api/v1/gateways/{id}/"): WRITE,
    ("GET", "/api/v1/gateways/{id}/compiled/"): READ,
    ("GET", "/api/v1/gateways/{id}/deliveries/"): READ,
    ("GET", "/api/v1/gateways/{id}/revisions/"): READ,
    ("POST", "/api/v1/gateways/{id}/rotate/"): WRITE,
    ("GET", "/api/v1/gateways/{id}/config/"): GATEWAY,
    ("POST", "/api/v1/gateways/{id}/heartbeat/"): GATEWAY,
    ("POST", "/api/v1/gateways/{id}/telemetry/"): GATEWAY,
    ("POST", "/api/v1/gateways/{id}/contexts/"): GATEWAY,
    ("POST", "/api/v1/gateways/{id}/decisions/"): GATEWAY,
    ("GET", "/api/v1/decisions/"): READ,
    ("GET", "/api/v1/gateways/{id}/health/"): READ,
    ("GET", "/api/v1/capacity/recommendations/"): READ,
    ("GET", "/api/v1/capacity/scaler/"): READ,
    ("GET", "/api/v1/budget-responses/"): READ,
    ("POST", "/api/v1/budget-responses/{id}/approve/"): APPROVE,
    ("POST", "/api/v1/budget-responses/{id}/dismiss/"): APPROVE,
    ("POST", "/api/v1/routing-policies/{id}/explain/"): READ,
    ("POST", "/api/v1/routing-policies/{id}/simulate/"): READ,
    ("POST", "/api/v1/cache-configs/{id}/explain-key/"): READ,
    ("POST", "/api/v1/cache-configs/{id}/recommend-threshold/"): READ,
}

ROLES = ("outsider", "viewer", "operator", "approver", "admin")


def _operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    )


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "999999", path)


def test_every_endpoint_is_declared(db):
    operations = _operations()
    undeclared = [op for op in operations if op not in EXPECTED]
    assert not undeclared, f"declare who may call: {undeclared}"
    stale = [op for op in EXPECTED if op not in operations]
    assert not stale, f"declared but gone: {stale}"


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_each_role_gets_what_it_should(api_for, method, path):
    url = _concrete(path)
    anonymous = api_for(None).generic(method, url, "{}", content_type="application/json")
    assert anonymous.status_code == 401, (method, url, anonymous.status_code)
    for role in ROLES:
        response = api_for(role).generic(method, url, "{}", content_type="application/json")
        assert response.status_code < 500, (role, method, url, response.status_code)
        if EXPECTED[(method, path)] is GATEWAY:
            # Gateway credentials only: a user token is not a gateway credential.
            assert response.status_code in (401, 403), (role, method, url, response.status_code)
        elif role in EXPECTED[(method, path)]:
            assert response.status_code not in (401, 403), (role, method, url, response.status_code)
        else:
            assert response.status_code == 403, (role, method, url, response.status_code)


@pytest.mark.parametrize("url", ["/api/v1/schema/", "/api/v1/docs/"])
def test_the_schema_and_docs_need_a_role(api_for, url):
    anonymous = api_for(None).get(url)
    if url == "/api/v1/schema/":
        assert anonymous.status_code == 401
    else:  # the reference pages are for people: to the login page and back
        assert anonymous.status_code == 302 and anonymous["Location"] == f"/login/?next={url}", anonymous
    assert api_for("outsider").get(url).status_code == 403
    assert api_for("viewer").get(url).status_code == 200
