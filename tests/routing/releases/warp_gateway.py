"""Run the real reference gateway with a fast simulated clock for its traffic and telemetry.

    WARP_START=<epoch s> WARP_REAL0=<epoch s> WARP_SPEED=20 python -m tests.routing.releases.warp_gateway --config ...

Simulated time is `WARP_START + (time.time() - WARP_REAL0) * WARP_SPEED`, shared by every gateway
started with the same variables, so a test can run an hour of per-minute telemetry in minutes of
real time and drive the control plane with matching `now=` values. Only traffic ticks and telemetry
minutes use it: signed config pushes, heartbeats and polls keep the real clock (signatures are
checked against real time). Test support only; the gateway itself is unchanged.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from gateway import app

START = float(os.environ["WARP_START"])
REAL0 = float(os.environ["WARP_REAL0"])
SPEED = float(os.environ.get("WARP_SPEED", "1"))


def warped_now() -> float:
    return START + (time.time() - REAL0) * SPEED


_tick = app.Gateway.tick
_push = app.Gateway.push_telemetry_once


def _warped_tick(self: Any, *, now: float | None = None, requests_count: int | None = None) -> Any:
    return _tick(self, now=warped_now() if now is None else now, requests_count=requests_count)


def _warped_push(self: Any, *, now: float | None = None) -> str:
    return _push(self, now=warped_now() if now is None else now)


app.Gateway.tick = _warped_tick  # type: ignore[method-assign]
app.Gateway.push_telemetry_once = _warped_push  # type: ignore[method-assign]

if __name__ == "__main__":
    from gateway.cli import main

    sys.exit(main(sys.argv[1:]))
