from __future__ import annotations

from tests.gateway.support import GatewayProcess, free_port, gateway_factory, register  # noqa: F401 - fixtures
