"""The reference gateway's device health: simulated, slowly varying and deterministic per tick.

A real gateway reads these from its device (thermal zones, free memory, its queue); the reference
one simulates them, and can be told it is overloaded so the control plane's capacity loop can be
tried (docs/capacity.md): `[traffic] overload = true`, `--overload`, `GATEWAY_OVERLOAD=1`, or at
run time a file named `overload` in the gateway's state folder (`touch` it to overload the
gateway, remove it to stop). Overloaded, the device runs hot (92 C), short of memory (6%), with a
queue of four requests per worker, the oldest queued for over a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OVERLOAD_FILE = "overload"
WORKERS = 2


def overloaded(configured: bool, state_dir: Path) -> bool:
    return configured or (state_dir / OVERLOAD_FILE).exists()


def p95_ms(latencies: Sequence[float]) -> float | None:
    """Nearest-rank p95 of the recent answers' latency (None without any)."""
    if not latencies:
        return None
    ordered = sorted(latencies)
    return round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)], 3)


def device_health(*, ticks: int, tier: str, overload: bool, latencies: Sequence[float]) -> dict[str, Any]:
    phase = ticks / 60.0
    health: dict[str, Any] = {
        "temperature_c": round(55 + 12 * math.sin(phase) + (5 if tier == "edge" else 0), 1),
        "memory_headroom_pct": round(35 + 10 * math.cos(phase / 3), 1),
        "queue_depth": 1 + ticks % 3,
        "active_workers": WORKERS,
        "backhaul_rtt_ms": 35.0,
        "backhaul_healthy": True,
        "request_age_ms": round(20.0 + 10 * (ticks % 3), 1),
        "accelerator_util_pct": round(45 + 15 * math.sin(phase / 2), 1),
        "uptime_ticks": ticks,
    }
    if overload:
        health.update(
            temperature_c=92.0,
            memory_headroom_pct=6.0,
            queue_depth=4 * WORKERS + ticks % 3,
            request_age_ms=1200.0,
            accelerator_util_pct=99.0,
        )
    recent = p95_ms(latencies)
    if recent is not None:
        health["p95_ms"] = recent
    return health
