"""Fixtures for telemetry tests: SLOs of shelf-vision and a builder of push batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slo.contract import CACHE_LOOKUPS_TOTAL, REQUEST_DURATION, REQUESTS_TOTAL

NOW = datetime(2025, 3, 1, 12, 0, 30, tzinfo=UTC)
BASE_MINUTE = datetime(2025, 3, 1, 11, 0, tzinfo=UTC)  # an hour before NOW


def at(i: int) -> datetime:
    return BASE_MINUTE + timedelta(minutes=i)


def iso(i: int) -> str:
    return at(i).isoformat().replace("+00:00", "Z")


def labels(**extra: str) -> dict[str, str]:
    return {"service": "shelf-vision", "tier": "edge", **extra}


def requests(route: str, outcome: str, n: int, **over: str) -> dict[str, Any]:
    return {"name": REQUESTS_TOTAL, "labels": labels(route=route, outcome=outcome, **over), "increase": n}


def histogram(
    route: str, outcome: str, buckets: dict[str, int], count: int, **over: str
) -> list[dict[str, Any]]:
    """`_bucket` entries for each `le` spelling given, plus `_count`."""
    out = [
        {
            "name": f"{REQUEST_DURATION}_bucket",
            "labels": labels(route=route, outcome=outcome, le=le, **over),
            "increase": n,
        }
        for le, n in buckets.items()
    ]
    out.append(
        {
            "name": f"{REQUEST_DURATION}_count",
            "labels": labels(route=route, outcome=outcome, **over),
            "increase": count,
        }
    )
    return out


def cache(result: str, n: int, layer: str = "result") -> dict[str, Any]:
    return {"name": CACHE_LOOKUPS_TOTAL, "labels": labels(layer=layer, result=result), "increase": n}


def batch(minutes: dict[int, list[dict[str, Any]]], **extra: Any) -> dict[str, Any]:
    return {
        "contract_version": 1,
        "gateway": "edge-berlin-01",
        "minutes": [{"minute": iso(i), "counters": counters} for i, counters in minutes.items()],
        **extra,
    }


def standard_minute(k: int) -> list[dict[str, Any]]:
    """A realistic minute whose SLIs are known: see `expected_standard`."""
    return [
        requests("local", "ok", 100 + k),
        requests("local", "error", 3),
        requests("cache", "ok", 40),
        requests("local", "shed", 7),
        *histogram("local", "ok", {"0.1": 60, "0.15": 90 + k, "2": 100 + k, "+Inf": 100 + k}, 100 + k),
        *histogram("cache", "ok", {"0.1": 30, "0.150": 38, "2.0": 40, "+Inf": 40}, 40),
        *histogram("local", "timeout", {"0.15": 0, "2": 0, "+Inf": 2}, 2),
        cache("hit", 30),
        cache("stale_hit", 4),
        cache("miss", 9),
    ]


def expected_standard(k: int) -> dict[str, tuple[int, int]]:
    """(good, valid) per SLO name for `standard_minute(k)`."""
    return {
        # ok buckets at 0.15 (both spellings) / ok + timeout counts
        "edge-latency": ((90 + k) + 38, (100 + k) + 40 + 2),
        # ok / ok + error + timeout (shed is not valid; no timeouts in requests_total here)
        "edge-availability": ((100 + k) + 40, (100 + k) + 40 + 3),
        # hits - stale / hits of every kind
        "edge-correctness": (30, 34),
    }


@pytest.fixture
def shelf_service(db: Any, service_doc: dict[str, Any]) -> Any:
    """The shelf-vision service, created by the system (no users: password hashing is slow)."""
    from slo.services import service_create

    return service_create(actor=None, data=service_doc)


@pytest.fixture
def slos(shelf_service: Any, slo_doc: dict[str, Any]) -> dict[str, Any]:
    """Latency (150 ms), availability and correctness SLOs of shelf-vision on the edge tier."""
    from slo.services import slo_create

    created = {"edge-latency": slo_create(actor=None, data=slo_doc)}
    for name, sli in (
        ("edge-availability", {"kind": "availability"}),
        ("edge-correctness", {"kind": "correctness"}),
    ):
        created[name] = slo_create(actor=None, data={**slo_doc, "name": name, "sli": sli})
    return created
