"""Usage per service from the contract series (`slo.telemetry.selectors.contract_series`): plain
pandas in, `slo.budget.cost.Usage` out. Values are per-minute increases.

Edge device hours are counted as (edge sources reporting in a minute) / 60: each pushing edge
gateway is one device.
"""

from __future__ import annotations

import math

import pandas as pd

from slo.budget.cost import Usage
from slo.contract import (
    CACHE_LOOKUPS_TOTAL,
    COMPUTE_SECONDS_TOTAL,
    EGRESS_BYTES_TOTAL,
    FALLBACKS_TOTAL,
    REQUEST_DURATION,
    REQUESTS_TOTAL,
    TOKENS_TOTAL,
)

NAMES = (
    REQUESTS_TOTAL,
    FALLBACKS_TOTAL,
    CACHE_LOOKUPS_TOTAL,
    COMPUTE_SECONDS_TOTAL,
    EGRESS_BYTES_TOTAL,
    f"{REQUEST_DURATION}_bucket",
    TOKENS_TOTAL,
)


def _labels(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part) if text else {}


def usage_by_service(frame: pd.DataFrame, *, hours: float) -> dict[str, Usage]:
    """One `Usage` per service from contract series rows (columns minute, source, name, service,
    tier, labels, value)."""
    out: dict[str, Usage] = {}
    if frame.empty:
        return out
    sums = frame.groupby(["service", "tier", "name", "labels"], as_index=False)["value"].sum()
    for row in sums.itertuples(index=False):
        if not row.service:
            continue
        usage = out.setdefault(row.service, Usage(hours=hours))
        labels = _labels(row.labels)
        value = float(row.value)
        if row.name == REQUESTS_TOTAL:
            route, outcome = labels.get("route", ""), labels.get("outcome", "")
            usage.requests[route] = usage.requests.get(route, 0.0) + value
            if outcome in ("ok", "error", "timeout"):
                good, valid = usage.availability.get(row.tier, (0.0, 0.0))
                usage.availability[row.tier] = (good + (value if outcome == "ok" else 0.0), valid + value)
                if outcome != "ok":
                    usage.bad_events += value
        elif row.name == FALLBACKS_TOTAL:
            source = labels.get("from_route", "")
            usage.fallbacks_from[source] = usage.fallbacks_from.get(source, 0.0) + value
        elif row.name == CACHE_LOOKUPS_TOTAL:
            result = labels.get("result", "")
            if result == "stale_hit":
                usage.cache_stale_hits += value
            elif result == "miss":
                usage.cache_misses += value
            else:
                usage.cache_hits += value
        elif row.name == COMPUTE_SECONDS_TOTAL:
            key = (row.tier, labels.get("accelerator", ""))
            usage.compute_seconds[key] = usage.compute_seconds.get(key, 0.0) + value
        elif row.name == EGRESS_BYTES_TOTAL:
            route = labels.get("route", "")
            usage.egress_bytes[route] = usage.egress_bytes.get(route, 0.0) + value
        elif row.name == TOKENS_TOTAL:
            key = (
                labels.get("route", ""),
                labels.get("provider", ""),
                labels.get("model", ""),
                labels.get("direction", ""),
            )
            usage.tokens[key] = usage.tokens.get(key, 0.0) + value
        elif row.name == f"{REQUEST_DURATION}_bucket" and labels.get("outcome") == "ok":
            le = labels.get("le", "")
            bound = math.inf if le in ("+Inf", "inf", "Inf") else float(le)
            merged = dict(usage.latency_buckets.get(row.tier, []))
            merged[bound] = merged.get(bound, 0.0) + value
            usage.latency_buckets[row.tier] = sorted(merged.items())
    edge = (
        frame[frame["tier"] == "edge"]
        .groupby("service")[["source", "minute"]]
        .apply(lambda g: len(g.drop_duplicates()) / 60.0)
    )
    for service, device_hours in edge.items():
        if service in out:
            out[service].edge_device_hours = float(device_hours)
    return out
