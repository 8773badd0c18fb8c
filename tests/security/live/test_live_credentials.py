"""Credential guessing is limited everywhere, and nobody can lock others out.

Passwords (`/login/`, `/admin/login/`) and bearer secrets (user tokens, `gw_` gateway tokens, `amw_`
Alertmanager secrets) are guessed from one address; the guesser is refused (429) within the limit,
the right password does not get through once the limit is reached, and other people keep working:
a valid token from any address (the guesser's own included, as behind a shared proxy) and a browser
that signed in before. The client address comes from the trusted proxy's header only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.live.conftest import assert_still_working
from tests.security.live.support import Client, LiveServer, signed_in

ATTEMPTS = 30  # well past THROTTLE_LOGIN (10/min by default)
ATTACKER = "203.0.113.7"
OTHER = "198.51.100.20"
PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def root(users: dict[str, Any]) -> Any:
    """A staff superuser for the admin site, whose password the production hasher can check."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.contrib.auth.models import User

    user = User.objects.create(username="root", is_staff=True, is_superuser=True)
    # the production hasher (the test process runs with a fast one the server does not know)
    hashed = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt(), iterations=1000)
    User.objects.filter(pk=user.pk).update(password=hashed)
    User.objects.filter(username="otto").update(password=hashed)
    return user


def sessions() -> int:
    from django.contrib.sessions.models import Session

    return Session.objects.count()


@pytest.mark.parametrize("path", ["/admin/login/", "/login/"])
def test_password_guessing_is_limited_and_the_owners_browser_still_signs_in(
    live: LiveServer,
    root: Any,
    as_role: Any,
    path: str,
) -> None:
    owner_browser: dict[str, str] = {}
    assert signed_in(Client(live, ip=OTHER).login(path, "root", PASSWORD, cookies=owner_browser))
    owner_browser.pop("sessionid")  # the owner signed out (or the session expired) since
    before = sessions()

    attacker = Client(live, ip=ATTACKER)
    statuses = [attacker.login(path, "root", f"guess-{i}").status_code for i in range(ATTEMPTS)]
    assert 429 in statuses, f"{ATTEMPTS} wrong passwords on {path} were never refused: {statuses}"
    assert statuses.index(429) <= 12, statuses
    # the guesser's next, right, guess does not sign in
    right = attacker.login(path, "root", PASSWORD)
    assert right.status_code == 429 and not signed_in(right), right.status_code
    # ... nor from a fresh address: the account is limited, not only the address
    fresh = Client(live, ip="192.0.2.99").login(path, "root", PASSWORD)
    assert not signed_in(fresh), fresh.status_code
    assert sessions() == before

    # the owner's browser (which signed in before) is not locked out by the guesser
    assert signed_in(Client(live, ip=OTHER).login(path, "root", PASSWORD, cookies=owner_browser))
    # nor is another person on the guesser's own address (a shared proxy)
    if path == "/login/":
        assert signed_in(Client(live, ip=OTHER).login(path, "otto", PASSWORD))
    assert_still_working(live, as_role("viewer", ip=ATTACKER))


def _bearer_cases(
    catalog: dict[str, Any], secret: str
) -> dict[str, tuple[str, str, dict[str, Any] | None, str]]:
    """kind -> (method, path, json body, valid credential)."""
    gateway = catalog["gateway"].pk
    return {
        "user": ("GET", "/api/v1/me/", None, ""),
        "gateway": (
            "POST",
            f"/api/v1/gateways/{gateway}/heartbeat/",
            {"applied_revision": None},
            catalog["gateway_token"],
        ),
        "alertmanager": (
            "POST",
            "/api/v1/alertmanager/webhook/",
            {"version": "4", "status": "firing", "receiver": "cp", "alerts": []},
            secret,
        ),
    }


@pytest.fixture
def am_secret(users: dict[str, Any]) -> str:
    from routing.releases.alertmanager import webhook_secret_create

    return webhook_secret_create(actor=users["admin"], name="am")[1]


BAD = {"user": "slo_", "gateway": "gw_", "alertmanager": "amw_"}


@pytest.mark.parametrize("kind", ["user", "gateway", "alertmanager"])
def test_bearer_guessing_is_limited_and_valid_credentials_keep_working(
    live: LiveServer,
    catalog: dict[str, Any],
    am_secret: str,
    tokens: dict[str, str],
    kind: str,
) -> None:
    method, path, body, valid = _bearer_cases(catalog, am_secret)[kind]
    valid = valid or tokens["viewer"]
    statuses = []
    for i in range(ATTEMPTS):
        guess = Client(live, token=f"{BAD[kind]}guess{i:040d}", ip=ATTACKER)
        statuses.append(guess.request(method, path, json=body).status_code)
    assert set(statuses) <= {401, 429}, statuses
    assert 429 in statuses, f"{ATTEMPTS} bad {kind} credentials were never refused with 429: {statuses}"
    assert statuses.index(429) <= 12, statuses
    # a valid credential works from the guesser's own address (a shared proxy) and from another
    for ip in (ATTACKER, OTHER):
        response = Client(live, token=valid, ip=ip).request(method, path, json=body)
        assert response.status_code == 200, (kind, ip, response.status_code, response.text[:300])
    assert_still_working(live, Client(live, token=tokens["operator"], ip=ATTACKER))


def test_only_the_trusted_proxy_header_names_the_client(live: LiveServer, tokens: dict[str, str]) -> None:
    """One trusted proxy appends the address it saw: what a client writes left of it, and any other
    header, is its own invention and does not spread its guesses over many addresses."""
    statuses = []
    for i in range(ATTEMPTS):
        forged = f"10.{i}.0.1"
        guess = Client(live, token=f"slo_guess{i:040d}")
        statuses.append(
            guess.get(
                "/api/v1/me/",
                headers={
                    "X-Forwarded-For": f"{forged}, {ATTACKER}",
                    "X-Real-IP": forged,
                    "Forwarded": f"for={forged}",
                    "Client-IP": forged,
                },
            ).status_code
        )
    assert 429 in statuses, f"guesses spread over forged addresses were never refused: {statuses}"
    assert statuses.index(429) <= 12, statuses
    assert Client(live, token=tokens["viewer"], ip=ATTACKER).get("/api/v1/me/").status_code == 200
