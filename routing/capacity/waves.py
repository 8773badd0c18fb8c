"""Release waves skip devices that are hot or short of memory (the seed's thermal-throttling advice).

Before a wave delivers, each of its gateways' newest health report (at most HEALTH_FRESH_S old) is
checked against the edge thresholds of the policy the wave is about to deliver (`autoscaling.edge`:
`max_temperature_c`, `min_memory_headroom_pct`). A device over them is skipped, with the reason in
the wave's evidence; the next wave tries it again, and after the last wave it stays on what it runs.
A gateway with no recent report is not skipped: no report is not a verdict of heat.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from routing.models.capacity import GatewayHealthSample
from routing.policy.schema import Autoscaling

HEALTH_FRESH_S = 300


def _rules(bundle: Mapping[str, Any] | None) -> Autoscaling:
    raw = ((bundle or {}).get("routing_policy") or {}).get("autoscaling")
    if isinstance(raw, dict):
        try:
            return Autoscaling.model_validate(raw)
        except ValueError:
            pass
    return Autoscaling()


def device_skips(
    *, gateway_ids: Iterable[int], bundles: Mapping[int, Mapping[str, Any]], now: datetime
) -> dict[int, dict[str, Any]]:
    """gateway id -> why it is skipped (with the figures and thresholds), for hot or short-of-memory
    devices among `gateway_ids`."""
    ids = list(gateway_ids)
    newest: dict[int, tuple[datetime, float | None, float | None]] = {}
    rows = GatewayHealthSample.objects.filter(
        gateway_id__in=ids, at__gte=now - timedelta(seconds=HEALTH_FRESH_S), at__lte=now
    ).values_list("gateway_id", "at", "temperature_c", "memory_headroom_pct")
    for gateway_id, at, temperature, headroom in rows:
        if gateway_id not in newest or at > newest[gateway_id][0]:
            newest[gateway_id] = (at, temperature, headroom)
    out: dict[int, dict[str, Any]] = {}
    for gateway_id, (at, temperature, headroom) in newest.items():
        edge = _rules(bundles.get(gateway_id)).edge
        reasons = []
        if temperature is not None and temperature > edge.max_temperature_c:
            reasons.append(f"device at {temperature:g} C, above {edge.max_temperature_c:g} C")
        if headroom is not None and headroom < edge.min_memory_headroom_pct:
            reasons.append(f"memory headroom {headroom:g}%, below {edge.min_memory_headroom_pct:g}%")
        if reasons:
            out[gateway_id] = {
                "gateway": gateway_id,
                "reason": "; ".join(reasons),
                "temperature_c": temperature,
                "memory_headroom_pct": headroom,
                "max_temperature_c": edge.max_temperature_c,
                "min_memory_headroom_pct": edge.min_memory_headroom_pct,
                "reported_at": at.isoformat(),
            }
    return out
