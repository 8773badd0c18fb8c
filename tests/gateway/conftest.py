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
