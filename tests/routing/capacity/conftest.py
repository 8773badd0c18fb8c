from __future__ import annotations

from tests.gateway.support import register  # noqa: F401 - fixture
