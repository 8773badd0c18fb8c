"""Security headers on every kind of response, and CSRF on session writes (dashboard forms and API)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.gateway.support import register  # noqa: F401 - fixture

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


def test_dashboard_and_api_responses_carry_the_security_headers(
    client: Client, users: Any, api_for: Any
) -> None:
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


def test_api_writes_with_a_session_need_the_csrf_token(
    csrf_client: Client, service_doc: dict[str, Any]
) -> None:
    from slo.models import Service

    refused = csrf_client.post("/api/v1/services/", service_doc, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert not Service.objects.exists()
    csrf_client.get("/")  # the dashboard sets the csrftoken cookie
    token = csrf_client.cookies["csrftoken"].value
    accepted = csrf_client.post(
        "/api/v1/services/", service_doc, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
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


# -- HTTPS in production: SSL redirect, HSTS, a TLS-terminating proxy, exempt probes -----------------

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
from django.conf import settings
from django.test import Client

def probe(path, secure=False, **headers):
    response = Client().get(path, secure=secure, **headers)
    return {"status": response.status_code, "location": response.get("Location"),
            "hsts": response.get("Strict-Transport-Security"),
            "json": response.json() if response.get("Content-Type") == "application/json" else None}

names = ("DEBUG", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
         "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER", "SECURE_REDIRECT_EXEMPT")
print(json.dumps({
    "settings": {name: getattr(settings, name) for name in names},
    "healthz": probe("/healthz"),
    "metrics": probe("/metrics"),
    "api": probe("/api/v1/services/"),
    "login": probe("/login/"),
    "gateway_config": probe("/api/v1/gateways/1/config", HTTP_IF_NONE_MATCH='"rev-1"'),
    "api_https": probe("/api/v1/services/", secure=True),
    "api_forwarded_https": probe("/api/v1/services/", HTTP_X_FORWARDED_PROTO="https"),
    "api_forwarded_http": probe("/api/v1/services/", HTTP_X_FORWARDED_PROTO="http"),
}))
"""


def _manage(env_overrides: dict[str, str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """manage.py in a fresh process whose settings come only from these variables (and the test
    run's database/broker URLs)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL", "ALLOWED_HOSTS") and not k.startswith("SECURE_")
    }
    env.update({"DATA_DIR": str(tmp_path), "ALLOWED_HOSTS": "testserver"}, **env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


PRODUCTION = {"DEBUG": "false", "SECRET_KEY": "k" * 40}


def _probe(env_overrides: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    result = _manage(env_overrides, tmp_path, "shell", "-c", PROBE)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_with_debug_off_plain_http_is_redirected_and_https_carries_hsts(tmp_path: Path) -> None:
    seen = _probe(PRODUCTION, tmp_path)
    assert seen["settings"]["SECURE_SSL_REDIRECT"] is True
    assert seen["settings"]["SECURE_PROXY_SSL_HEADER"] is None  # no forwarded header is trusted by default
    for name in ("api", "login", "gateway_config"):
        path = {
            "api": "/api/v1/services/",
            "login": "/login/",
            "gateway_config": "/api/v1/gateways/1/config",
        }[name]
        assert (seen[name]["status"], seen[name]["location"]) == (301, f"https://testserver{path}"), name
    # A client claiming HTTPS in a header nobody configured is still plain HTTP.
    assert seen["api_forwarded_https"]["status"] == 301
    assert seen["api_https"]["status"] == 401
    assert seen["api_https"]["hsts"] == "max-age=31536000; includeSubDomains"
    assert seen["api"]["hsts"] is None  # HSTS is only meaningful (and only sent) over HTTPS


def test_the_health_check_and_metrics_answer_plain_http_probes(tmp_path: Path) -> None:
    seen = _probe(PRODUCTION, tmp_path)
    # A kube probe or an in-cluster scrape speaks plain HTTP to the pod: answered, not redirected.
    assert seen["healthz"]["status"] in (200, 503) and seen["healthz"]["location"] is None
    assert set(seen["healthz"]["json"]["checks"]) == {"database", "broker"}
    assert seen["metrics"]["status"] in (200, 401) and seen["metrics"]["location"] is None


def test_behind_a_tls_terminating_proxy_the_configured_header_counts_as_https(tmp_path: Path) -> None:
    seen = _probe(
        {
            **PRODUCTION,
            "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto=https",
            "SECURE_HSTS_SECONDS": "600",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "false",
        },
        tmp_path,
    )
    assert seen["settings"]["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert seen["api_forwarded_https"]["status"] == 401
    assert seen["api_forwarded_https"]["hsts"] == "max-age=600"
    assert seen["api_forwarded_http"]["status"] == 301


def test_the_redirect_can_be_turned_off_and_the_exempt_paths_replaced(tmp_path: Path) -> None:
    off = _probe({**PRODUCTION, "SECURE_SSL_REDIRECT": "false"}, tmp_path)
    assert (off["api"]["status"], off["api"]["location"]) == (401, None)
    exempt = _probe({**PRODUCTION, "SECURE_REDIRECT_EXEMPT": r"^healthz/?$"}, tmp_path)
    assert exempt["settings"]["SECURE_REDIRECT_EXEMPT"] == [r"^healthz/?$"]
    assert exempt["metrics"]["status"] == 301 and exempt["healthz"]["location"] is None


def test_the_development_default_serves_plain_http(tmp_path: Path) -> None:
    # What ./scripts/run.sh gets on a fresh machine (DEBUG unset): http://127.0.0.1:8000 works.
    seen = _probe({}, tmp_path)
    assert seen["settings"]["DEBUG"] is True and seen["settings"]["SECURE_SSL_REDIRECT"] is False
    assert seen["settings"]["SECURE_HSTS_SECONDS"] == 0
    assert (seen["api"]["status"], seen["login"]["status"]) == (401, 200)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SECURE_SSL_REDIRECT", "maybe", "SECURE_SSL_REDIRECT='maybe': expected a boolean (true/false)"),
        ("SECURE_HSTS_SECONDS", "-1", "SECURE_HSTS_SECONDS=-1: must be at least 0"),
        (
            "SECURE_PROXY_SSL_HEADER",
            "X-Forwarded-Proto",
            "SECURE_PROXY_SSL_HEADER='X-Forwarded-Proto': expected <header name>=<value>, e.g. X-Forwarded-Proto=https",
        ),
        (
            "SECURE_REDIRECT_EXEMPT",
            "^(healthz",
            "SECURE_REDIRECT_EXEMPT: '^(healthz' is not a regular expression",
        ),
    ],
)
def test_a_bad_https_setting_stops_start_up_with_one_line(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    result = _manage({**PRODUCTION, name: value}, tmp_path, "check")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"configuration error: {message}"), line


def test_the_deploy_checklist_finds_nothing_about_https(tmp_path: Path) -> None:
    result = _manage(PRODUCTION, tmp_path, "check", "--deploy")
    # Django's own checks: W004 HSTS, W005 subdomains, W008 redirect, W012/W016 secure cookies.
    for check_id in ("security.W004", "security.W005", "security.W008", "security.W012", "security.W016"):
        assert check_id not in result.stdout + result.stderr, check_id


def test_a_plain_http_config_poll_is_redirected_even_when_nothing_changed(
    users: Any,
    register: Any,  # noqa: F811 - the fixture
    settings: Any,
) -> None:
    """The 304 fast path sits after the HTTPS redirect, so a gateway configured with an http:// URL
    fails on every poll, not only when its config changes."""
    from rest_framework.test import APIClient

    from routing.fleet.services import gateway_set_desired
    from tests.gateway.support import good_bundle

    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    credentials = register("edge-1")
    gateway_set_desired(
        actor=users["operator"],
        gateway_ids=[credentials.gateway.pk],
        bundle_for=good_bundle(0),
        reason="test",
        validate=False,
    )
    path = f"/api/v1/gateways/{credentials.gateway.pk}/config"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {credentials.token}")
    plain = client.get(path, HTTP_IF_NONE_MATCH='"rev-1"')
    assert (plain.status_code, plain["Location"]) == (301, f"https://testserver{path}")
    secure = client.get(path, HTTP_IF_NONE_MATCH='"rev-1"', secure=True)
    assert secure.status_code == 304 and secure["Strict-Transport-Security"].startswith("max-age=3600")
