from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.support import GatewayProcess, free_port


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """gateway_factory(name=..., secret=..., **settings) -> a started GatewayProcess; all stopped after."""
    started: list[GatewayProcess] = []

    def make(name: str = "gw-test", *, secret: str | None = "whsec_test-secret", start: bool = True,
             **settings: Any) -> GatewayProcess:
        gateway = GatewayProcess(tmp_path / name, free_port(), secret, {"name": name, **settings})
        started.append(gateway)
        return gateway.start() if start else gateway

    yield make
    for gateway in started:
        gateway.stop()


@pytest.fixture
def register(users: Any, service: Any) -> Callable[..., Any]:
    """register(name, push_url=...) -> GatewayCredentials (gateway, token, signing_secret)."""
    from routing.fleet.services import gateway_register

    def make(name: str = "edge-1", **data: Any) -> Any:
        return gateway_register(actor=users["operator"], data={"name": name, "service": "shelf-vision",
                                                               "tier": "edge", "region": "eu-west", **data})

    return make
