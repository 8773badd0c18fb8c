"""Production HTTP settings with DEBUG off: plain http is redirected to https (except the liveness
probe), HTTPS answers carry HSTS, and only a configured TLS-terminating proxy may say a request
was HTTPS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.security.live.conftest import BEHIND_PROXY
from tests.security.live.support import Client, LiveServer

ONE_YEAR_S = 365 * 86400


def hsts_max_age(response: Any) -> int:
    value = response.headers.get("Strict-Transport-Security", "")
    parts = dict(part.strip().partition("=")[::2] for part in value.split(";") if part.strip())
    return int(parts.get("max-age") or 0)


@pytest.fixture
def defaults(server_factory: Callable[..., LiveServer], users: dict[str, Any]) -> LiveServer:
    """A server with nothing but the required settings (no proxy configured)."""
    return server_factory("defaults")


def plain(server: LiveServer, token: str | None = None) -> Client:
    """A client speaking plain http to the server, with no proxy in between."""
    return Client(server, token=token, https=False)


@pytest.mark.parametrize("path", ["/login/", "/", "/api/v1/me/", "/api/v1/schema/", "/admin/login/"])
def test_plain_http_is_redirected_to_https(defaults: LiveServer, tokens: dict[str, str], path: str) -> None:
    response = plain(defaults, tokens["viewer"]).get(path)
    assert response.status_code == 301, (response.status_code, response.text[:200])
    assert response.headers["Location"] == f"https://127.0.0.1:{defaults.port}{path}"
    assert "vera" not in response.text


def test_a_write_over_plain_http_is_redirected_and_stores_nothing(
    defaults: LiveServer, tokens: dict[str, str], service_doc: dict[str, Any]
) -> None:
    from slo.models import Service

    response = plain(defaults, tokens["operator"]).post("/api/v1/services/", json=service_doc)
    assert response.status_code == 301
    assert not Service.objects.exists()


def test_a_client_cannot_claim_https_without_a_configured_proxy(
    defaults: LiveServer, tokens: dict[str, str]
) -> None:
    forged = plain(defaults, tokens["viewer"]).get(
        "/api/v1/me/",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on", "Forwarded": "proto=https"},
    )
    assert forged.status_code == 301


def test_the_liveness_probe_answers_over_plain_http(defaults: LiveServer) -> None:
    response = plain(defaults).get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_https_answers_carry_hsts(server_factory: Callable[..., LiveServer], tokens: dict[str, str]) -> None:
    proxied = server_factory("proxied", **BEHIND_PROXY)
    response = Client(proxied, token=tokens["viewer"]).get("/api/v1/me/")
    assert response.status_code == 200
    assert hsts_max_age(response) >= ONE_YEAR_S, response.headers.get("Strict-Transport-Security")
    login = Client(proxied).get("/login/")
    assert login.status_code == 200 and hsts_max_age(login) >= ONE_YEAR_S
    assert "Secure" in login.headers.get("Set-Cookie", ""), "the CSRF cookie is not Secure"
    # the same server still redirects what did not come through the proxy over TLS
    redirected = plain(proxied, tokens["viewer"]).get("/api/v1/me/")
    assert redirected.status_code == 301 and redirected.headers["Location"].startswith("https://")
