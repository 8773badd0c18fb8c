from __future__ import annotations

from tests.gateway.support import GatewayProcess, free_port, gateway_factory  # noqa: F401 - fixture
