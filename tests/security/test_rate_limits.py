"""Rate limits on login, on token use and on telemetry ingest (settings: THROTTLE_LOGIN,
THROTTLE_TOKEN, THROTTLE_INGEST; DRF scopes login, token and ingest).

Failed credentials (controlplane.throttling, controlplane.login) are the subject of
test_credential_limits.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.throttling import SimpleRateThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_rates() -> Iterator[dict[str, str]]:
    """Lower every scope's rate for the test (DRF copies the rates into the class at import)."""
    rates = SimpleRateThrottle.THROTTLE_RATES
    saved = dict(rates)
    rates.update({"login": "3/min", "token": "3/min", "ingest": "3/min"})
    cache.clear()
    yield rates
    rates.clear()
    rates.update(saved)
    cache.clear()


def test_login_attempts_are_rate_limited(users: Any, low_rates: dict[str, str]) -> None:
    """A password guesser gets 429 (and no further checks) after THROTTLE_LOGIN attempts."""
    client = Client()
    statuses = [
        client.post("/login/", {"username": "vera", "password": f"guess-{i}"}).status_code for i in range(6)
    ]
    assert 429 in statuses, f"six wrong passwords in a row were all answered normally: {statuses}"
    # and the right password is refused while throttled: the limit does not leak which guess was right
    assert client.post("/login/", {"username": "vera", "password": "pw-vera-123456"}).status_code == 429


def test_token_use_is_rate_limited(api_for: Any, low_rates: dict[str, str]) -> None:
    client = api_for("viewer")
    statuses = [client.get("/api/v1/me/").status_code for _ in range(6)]
    assert 429 in statuses, f"THROTTLE_TOKEN is declared but not applied: {statuses}"


def test_guessing_tokens_is_rate_limited(low_rates: dict[str, str]) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    statuses = []
    for i in range(6):
        client.credentials(HTTP_AUTHORIZATION=f"Bearer slo_guess{i:040d}")
        statuses.append(client.get("/api/v1/me/").status_code)
    assert 429 in statuses, f"six invalid tokens in a row were all answered 401: {statuses}"


def _telemetry_batch(gateway_name: str, minute: datetime) -> dict[str, Any]:
    from slo import contract as c

    return {
        "contract_version": c.CONTRACT_VERSION,
        "gateway": gateway_name,
        "minutes": [
            {
                "minute": minute.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "counters": [
                    {
                        "name": c.REQUESTS_TOTAL,
                        "labels": {
                            "service": "shelf-vision",
                            "tier": "edge",
                            "route": "local",
                            "outcome": "ok",
                        },
                        "increase": 5,
                    }
                ],
                "gauges": [],
            }
        ],
    }


def test_telemetry_ingest_is_rate_limited_per_gateway(
    users: Any, service: Any, low_rates: dict[str, str]
) -> None:
    from rest_framework.test import APIClient

    from routing.fleet.services import gateway_register

    one = gateway_register(
        actor=users["operator"], data={"name": "edge-1", "service": "shelf-vision", "tier": "edge"}
    )
    two = gateway_register(
        actor=users["operator"], data={"name": "edge-2", "service": "shelf-vision", "tier": "edge"}
    )
    minute = (timezone.now() - timedelta(minutes=5)).replace(second=0, microsecond=0)

    def post(credentials: Any) -> int:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {credentials.token}")
        response = client.post(
            f"/api/v1/gateways/{credentials.gateway.pk}/telemetry",
            _telemetry_batch(credentials.gateway.name, minute),
            format="json",
        )
        return response.status_code

    statuses = [post(one) for _ in range(5)]
    assert statuses[:3] == [statuses[0]] * 3 and statuses[0] < 400, statuses
    assert statuses[3:] == [429, 429]
    assert post(two) < 400  # another gateway has its own budget
