"""Credential guessing is limited everywhere, and nobody can lock others out.

Passwords (`/login/`, `/admin/login/`) are limited per address and per account, or per device for a
browser that signed in before; bearer credentials (user tokens, `gw_`, `amw_`) per address, and a
valid one is always accepted. THROTTLE_LOGIN is lowered to 3 per minute here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from controlplane.throttling import client_ip

pytestmark = pytest.mark.django_db
LIMIT = 3


@pytest.fixture(autouse=True)
def low_rates() -> Iterator[None]:
    rates = SimpleRateThrottle.THROTTLE_RATES
    saved = dict(rates)
    rates["login"] = f"{LIMIT}/min"
    cache.clear()
    yield
    rates.clear()
    rates.update(saved)
    cache.clear()


def password(username: str) -> str:
    return f"pw-{username}-123456"  # tests/conftest.make_user


def login(
    client: Client, username: str, secret: str, *, path: str = "/login/", addr: str = "127.0.0.1"
) -> int:
    return client.post(path, {"username": username, "password": secret}, REMOTE_ADDR=addr).status_code


def bearer(raw: str, addr: str = "127.0.0.1", **headers: str) -> APIClient:
    client = APIClient(REMOTE_ADDR=addr, **headers)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


# ------------------------------------------------------------------------------------ passwords


def test_the_admin_login_is_limited_like_the_login_page(users: Any) -> None:
    from django.contrib.auth.models import User

    User.objects.create_user("stan", password=password("stan"), is_staff=True, is_superuser=True)
    client = Client()
    statuses = [login(client, "stan", f"guess-{i}", path="/admin/login/") for i in range(25)]
    assert statuses[:LIMIT] == [200] * LIMIT and set(statuses[LIMIT:]) == {429}, statuses
    # the right password after 25 wrong ones: refused before it is checked, no session
    response = client.post("/admin/login/", {"username": "stan", "password": password("stan")})
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert "_auth_user_id" not in client.session
    assert b"Too many failed attempts" in response.content


def test_the_admin_login_still_signs_in_below_the_limit(users: Any) -> None:
    from django.contrib.auth.models import User

    User.objects.create_user("stan", password=password("stan"), is_staff=True, is_superuser=True)
    client = Client()
    assert login(client, "stan", "wrong", path="/admin/login/") == 200
    assert login(client, "stan", password("stan"), path="/admin/login/") == 302
    assert client.get("/admin/").status_code == 200


def test_a_guesser_does_not_lock_the_owner_out_of_a_browser_they_used_before(users: Any) -> None:
    owner = Client()
    assert login(owner, "vera", password("vera")) == 302  # leaves the device cookie
    owner.post("/logout/")
    guesser = Client()  # same address: behind the same proxy, say
    statuses = [login(guesser, "vera", f"guess-{i}") for i in range(10)]
    assert set(statuses[LIMIT:]) == {429}, statuses
    assert login(guesser, "vera", password("vera")) == 429  # the guesser learns nothing
    assert login(owner, "vera", password("vera")) == 302


def test_a_known_browser_is_limited_on_its_own_failures(users: Any) -> None:
    owner = Client()
    assert login(owner, "vera", password("vera")) == 302
    owner.post("/logout/")
    statuses = [login(owner, "vera", f"typo-{i}") for i in range(LIMIT + 1)]
    assert statuses == [200] * LIMIT + [429]
    # the device's failures are its own: a new browser elsewhere is not refused
    assert login(Client(), "vera", password("vera"), addr="10.0.0.9") == 302


def test_the_device_cookie_speaks_only_for_its_own_account(users: Any) -> None:
    browser = Client()
    assert login(browser, "vera", password("vera")) == 302
    browser.post("/logout/")
    for i in range(LIMIT):
        login(Client(), "otto", f"guess-{i}", addr="10.0.0.7")
    # vera's cookie does not lift the limit on otto's account
    assert login(browser, "otto", password("otto")) == 429
    browser.cookies["cp_device"] = "forged"
    assert login(browser, "otto", password("otto")) == 429


def test_failures_are_counted_per_address_and_per_account(users: Any) -> None:
    for i in range(LIMIT):
        assert login(Client(), "vera", f"guess-{i}", addr="10.0.0.1") == 200
    assert login(Client(), "otto", password("otto"), addr="10.0.0.1") == 429  # this address is spent
    assert login(Client(), "otto", password("otto"), addr="10.0.0.2") == 302  # others are not
    assert (
        login(Client(), "vera", password("vera"), addr="10.0.0.3") == 429
    )  # nor is vera, from a new browser


def test_bad_tokens_do_not_use_up_the_password_budget(users: Any) -> None:
    for i in range(10):
        bearer(f"slo_guess{i}").get("/api/v1/me/")
    assert login(Client(), "otto", password("otto")) == 302


# ------------------------------------------------------------------------------- bearer credentials


def test_a_burst_of_bad_credentials_does_not_stop_a_user_with_a_valid_token(api_for: Any) -> None:
    statuses = [bearer(f"slo_guess{i:040d}").get("/api/v1/me/").status_code for i in range(10)]
    assert statuses == [401] * LIMIT + [429] * (10 - LIMIT), statuses
    for i in range(5):
        login(Client(), "vera", f"guess-{i}")
    # a different user from the same address, with a valid token: never refused for others' failures
    response = api_for("operator").get("/api/v1/me/")
    assert response.status_code == 200 and response.json()["username"] == "otto"
    assert api_for("viewer").get("/api/v1/services/").status_code == 200


def test_the_limited_answer_says_when_to_retry(api_for: Any) -> None:
    for i in range(LIMIT):
        bearer(f"slo_guess{i}").get("/api/v1/me/")
    response = bearer("slo_guess-more").get("/api/v1/me/")
    assert response.status_code == 429 and 1 <= int(response["Retry-After"]) <= 60


def test_gateway_tokens_are_limited_and_a_valid_one_still_works(users: Any, service: Any) -> None:
    from routing.fleet.services import gateway_register

    credentials = gateway_register(
        actor=users["operator"], data={"name": "edge-1", "service": "shelf-vision", "tier": "edge"}
    )
    path = f"/api/v1/gateways/{credentials.gateway.pk}/heartbeat/"
    statuses = [
        bearer(f"gw_guess{i}").post(path, {"applied_revision": None}, format="json").status_code
        for i in range(6)
    ]
    assert statuses == [401] * LIMIT + [429] * (6 - LIMIT), statuses
    assert bearer(credentials.token).post(path, {"applied_revision": None}, format="json").status_code == 200


def test_alertmanager_secrets_are_limited_and_a_valid_one_still_works(users: Any, service: Any) -> None:
    from routing.releases.alertmanager import webhook_secret_create

    _secret, raw = webhook_secret_create(actor=users["admin"], name="am")
    payload = {"version": "4", "status": "resolved", "receiver": "cp", "groupKey": "{}:{}", "alerts": []}
    path = "/api/v1/alertmanager/webhook/"
    statuses = [bearer(f"amw_guess{i}").post(path, payload, format="json").status_code for i in range(6)]
    assert statuses == [401] * LIMIT + [429] * (6 - LIMIT), statuses
    assert bearer(raw).post(path, payload, format="json").status_code == 200


# ------------------------------------------------------------------------------- client address


def test_a_forged_forwarded_for_header_does_not_reset_the_count() -> None:
    statuses = [
        bearer(f"slo_guess{i}", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").get("/api/v1/me/").status_code
        for i in range(6)
    ]
    assert statuses == [401] * LIMIT + [429] * (6 - LIMIT), statuses


def test_behind_a_trusted_proxy_each_client_has_its_own_count(settings: Any) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.1.1.1"
    for i in range(LIMIT):
        bearer(f"slo_guess{i}", proxy, HTTP_X_FORWARDED_FOR="198.51.100.7").get("/api/v1/me/")
    # what the client put left of the proxy's entry is ignored
    forged = bearer("slo_more", proxy, HTTP_X_FORWARDED_FOR="203.0.113.1, 198.51.100.7")
    assert forged.get("/api/v1/me/").status_code == 429
    neighbour = bearer("slo_typo", proxy, HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert neighbour.get("/api/v1/me/").status_code == 401


@pytest.mark.parametrize(
    ("count", "header", "forwarded", "expected"),
    [
        (0, "X-Forwarded-For", "198.51.100.7", "10.1.1.1"),  # default: the header is not trusted
        (1, "X-Forwarded-For", "203.0.113.1, 198.51.100.7", "198.51.100.7"),
        (2, "X-Forwarded-For", "203.0.113.1, 198.51.100.7, 10.2.2.2", "198.51.100.7"),
        (2, "X-Forwarded-For", "198.51.100.7", "198.51.100.7"),  # fewer entries: all were written by proxies
        (1, "X-Forwarded-For", "not-an-address", "10.1.1.1"),
        (1, "X-Forwarded-For", "", "10.1.1.1"),
        (1, "X-Real-IP", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address_comes_from_the_configured_header_only(
    settings: Any, count: int, header: str, forwarded: str, expected: str
) -> None:
    settings.TRUSTED_PROXY_COUNT = count
    settings.TRUSTED_PROXY_HEADER = header
    meta = {"REMOTE_ADDR": "10.1.1.1", "HTTP_" + header.upper().replace("-", "_"): forwarded}
    assert client_ip(RequestFactory().get("/", **meta)) == expected


def test_metrics_token_guesses_are_limited_and_the_right_token_still_scrapes(monkeypatch: Any) -> None:
    monkeypatch.setenv("METRICS_TOKEN", "metrics-" + "m" * 32)
    statuses = [
        Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer guess-{i}").status_code for i in range(5)
    ]
    assert statuses == [401] * LIMIT + [429] * (5 - LIMIT), statuses
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-" + "m" * 32).status_code == 200
