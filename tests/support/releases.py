"""The two SLOs a release's rollback is measured against (latency under a threshold, and
availability, both 99% over 28 days), shared by the release tests and `benchmarks/bench_rollback.py`."""

from __future__ import annotations

from typing import Any


def release_slos_create(*, actor: Any, service: str, threshold_ms: int) -> list[Any]:
    from slo.services import slo_create

    window = {"type": "rolling", "days": 28}
    return [
        slo_create(
            actor=actor,
            data={
                "name": "latency",
                "service": service,
                "sli": {"kind": "latency", "threshold_ms": threshold_ms},
                "objective": 99.0,
                "window": window,
            },
        ),
        slo_create(
            actor=actor,
            data={
                "name": "availability",
                "service": service,
                "sli": {"kind": "availability"},
                "objective": 99.0,
                "window": dict(window),
            },
        ),
    ]
