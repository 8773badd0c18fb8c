"""The LiteLLM telemetry callback on a fast simulated clock, for tests that run an hour of
per-minute telemetry in minutes (same variables as tests/routing/releases/warp_gateway.py):

    WARP_START=<epoch s> WARP_REAL0=<epoch s> WARP_SPEED=10

Loaded by the proxy as `tests.gateway.litellm_warp_callback.handler`. Only the minute a request is
counted in uses the simulated clock; the callback is otherwise the product's, unchanged."""

from __future__ import annotations

import os
import time

from gateway.litellm_callback import SloTelemetryCallback

START = float(os.environ.get("WARP_START", "0"))
REAL0 = float(os.environ.get("WARP_REAL0", "0"))
SPEED = float(os.environ.get("WARP_SPEED", "1"))


class WarpedCallback(SloTelemetryCallback):
    def now(self) -> float:
        if not REAL0:
            return time.time()
        return START + (time.time() - REAL0) * SPEED


handler = WarpedCallback()
