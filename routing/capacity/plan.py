"""From a device pool's telemetry windows to one piece of advice (pure: no Django).

A pool is the gateways of one service in one tier, region and `pool` label. Its windows
(oldest first) are the per-window aggregates of its gateways' heartbeats: queue depth and workers
summed, the hottest temperature, the smallest memory headroom, the slowest p95, backhaul healthy
only if every gateway's is. `evaluate_autoscale` (the policy's rules) decides whether the pool
needs more or less capacity; this module says what to do about it, in the seed's order:

* a pool that needs capacity and can grow (below max_workers, device not stressed): scale out;
* an edge pool whose devices are stressed (hot, short of memory, ...): move load, since more
  workers on a hot device make it hotter: offload to cloud while the backhaul is healthy, else
  shift to a nearby pool of the same service and tier that has headroom;
* an edge pool at max_workers: wake its dormant devices (gateways reporting 0 workers) if it has
  any, else shift to a nearby pool with headroom, else offload to cloud;
* a long-calm pool above min_workers: scale in by one (the rules' calm period and cooldowns apply).

`desired_workers` is what an autoscaler of the pool should run; `offload_workers` the load (in
workers) to move elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from routing.policy.autoscale import (
    TelemetryWindow,
    device_stress_reason,
    evaluate_autoscale,
    scale_out_reason,
)
from routing.policy.schema import Autoscaling

HOLD = "hold"
SCALE_OUT = "scale_out"
SCALE_IN = "scale_in"
OFFLOAD_TO_CLOUD = "offload_to_cloud"
SHIFT_TO_NEARBY = "shift_to_nearby"
WAKE_DORMANT = "wake_dormant"
EDGE = "edge"
EVIDENCE_WINDOWS = 15


@dataclass(frozen=True, slots=True)
class PoolKey:
    service: str
    tier: str
    region: str
    pool: str

    @property
    def label(self) -> str:
        return "/".join((self.tier, self.region or "-", self.pool or "-"))


@dataclass(frozen=True, slots=True)
class PoolTelemetry:
    key: PoolKey
    windows: Sequence[TelemetryWindow]  # oldest first
    window_starts: Sequence[float]  # epoch seconds of each window's start
    latest_by_gateway: Mapping[int, TelemetryWindow]  # each gateway's newest window


@dataclass(frozen=True, slots=True)
class Advice:
    action: str
    amount: int
    current_workers: int
    desired_workers: int
    reason: str
    offload_workers: int = 0
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cooldowns:
    seconds_since_scale_out: float | None = None
    seconds_since_scale_in: float | None = None
    # actions with an active recommendation for the pool: a cooldown does not retract them
    active_actions: frozenset[str] = frozenset()


def _target_workers(rules: Autoscaling, latest: TelemetryWindow) -> int:
    """Workers that bring the queue ratio half-way between the scale-in and scale-out ratios."""
    ratio = (rules.scale_in_queue_ratio + rules.scale_out_queue_ratio) / 2 or rules.scale_out_queue_ratio
    by_queue = math.ceil(latest.queue_depth / ratio) if latest.queue_depth > 0 else 0
    return max(by_queue, latest.active_workers + 1)


def _has_headroom(rules: Autoscaling, telemetry: PoolTelemetry) -> bool:
    if not telemetry.windows:
        return False
    latest = telemetry.windows[-1]
    return (
        device_stress_reason(rules, latest) is None
        and latest.active_workers > 0
        and latest.queue_ratio < rules.scale_out_queue_ratio / 2
    )


def _evidence(
    rules: Autoscaling,
    telemetry: PoolTelemetry,
    decision_reason: str,
    latency_slo_ms: float | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    windows = list(zip(telemetry.window_starts, telemetry.windows, strict=True))[-EVIDENCE_WINDOWS:]
    return {
        "pool": telemetry.key.label,
        "decision": decision_reason,
        "latency_slo_ms": latency_slo_ms,
        "gateways": len(telemetry.latest_by_gateway),
        "rules": rules.model_dump(
            include={
                "min_workers",
                "max_workers",
                "scale_out_queue_ratio",
                "scale_out_queue_for_s",
                "scale_out_p95_pct_of_slo",
                "scale_out_p95_windows",
                "scale_in_queue_ratio",
                "scale_in_for_s",
                "scale_out_cooldown_s",
                "scale_in_cooldown_s",
                "edge",
            }
        ),
        "windows": [
            {
                "start": start,
                "seconds": w.duration_s,
                "queue_depth": w.queue_depth,
                "active_workers": w.active_workers,
                "p95_ms": w.p95_ms,
                "temperature_c": w.temperature_c,
                "memory_headroom_pct": w.memory_headroom_pct,
                "backhaul_healthy": w.backhaul_healthy,
                "request_age_ms": w.request_age_ms,
                "accelerator_util_pct": w.accelerator_util_pct,
            }
            for start, w in windows
        ],
        **extra,
    }


def plan_pools(
    pools: Sequence[PoolTelemetry],
    *,
    rules_for: Callable[[PoolKey], Autoscaling],
    latency_slo_ms_for: Callable[[PoolKey], float | None],
    cooldowns_for: Callable[[PoolKey], Cooldowns],
) -> dict[PoolKey, Advice]:
    """Advice for every pool; `hold` advice carries no evidence (it is the common case)."""
    rules_by_key = {p.key: rules_for(p.key) for p in pools}
    headroom: dict[tuple[str, str], list[str]] = {}
    for telemetry in pools:
        if _has_headroom(rules_by_key[telemetry.key], telemetry):
            headroom.setdefault((telemetry.key.service, telemetry.key.tier), []).append(telemetry.key.label)
    out: dict[PoolKey, Advice] = {}
    for telemetry in pools:
        key = telemetry.key
        out[key] = _advise(
            rules_by_key[key],
            telemetry,
            latency_slo_ms=latency_slo_ms_for(key),
            cooldowns=cooldowns_for(key),
            nearby=[label for label in headroom.get((key.service, key.tier), ()) if label != key.label],
        )
    return out


def _advise(
    rules: Autoscaling,
    telemetry: PoolTelemetry,
    *,
    latency_slo_ms: float | None,
    cooldowns: Cooldowns,
    nearby: list[str],
) -> Advice:
    windows = telemetry.windows
    if not windows:
        return Advice(HOLD, 0, 0, 0, "no telemetry: not scaling on missing data")
    latest = windows[-1]
    workers = latest.active_workers
    decision = evaluate_autoscale(
        rules,
        windows,
        latency_slo_ms=latency_slo_ms,
        seconds_since_scale_out=cooldowns.seconds_since_scale_out,
        seconds_since_scale_in=cooldowns.seconds_since_scale_in,
    )
    if decision.action == "in":
        amount = 1
        return Advice(
            SCALE_IN,
            amount,
            workers,
            workers - amount,
            decision.reason,
            evidence=_evidence(rules, telemetry, decision.reason, latency_slo_ms, {}),
        )
    needs = scale_out_reason(rules, windows, latency_slo_ms) if rules.enabled else None
    if needs is None:
        return Advice(HOLD, 0, workers, workers, decision.reason)
    edge = telemetry.key.tier == EDGE
    stressed = sorted(
        gateway for gateway, w in telemetry.latest_by_gateway.items() if device_stress_reason(rules, w)
    )
    dormant = sorted(gateway for gateway, w in telemetry.latest_by_gateway.items() if w.active_workers == 0)
    target = min(_target_workers(rules, latest), max(rules.max_workers, workers))
    extra: dict[str, Any] = {"stressed_gateways": stressed, "dormant_gateways": dormant, "nearby": nearby}
    backhaul_ok = latest.backhaul_healthy is not False

    def move(reason: str, load: int) -> Advice:
        if backhaul_ok or not nearby:
            action = OFFLOAD_TO_CLOUD
            why = reason if backhaul_ok else f"{reason}; backhaul unhealthy and no nearby pool has headroom"
        else:
            action, why = SHIFT_TO_NEARBY, f"{reason}; backhaul unhealthy: shift to {', '.join(nearby)}"
        load = max(1, load)
        return Advice(
            action,
            load,
            workers,
            workers,
            why,
            offload_workers=load,
            evidence=_evidence(rules, telemetry, decision.reason, latency_slo_ms, extra),
        )

    if edge and device_stress_reason(rules, latest) is not None:
        # the pool's hottest device decides: its share of the workers moves
        share = max(1, round(workers * len(stressed) / max(1, len(telemetry.latest_by_gateway))))
        return move(needs, share)
    if decision.action == "out":
        return Advice(
            SCALE_OUT,
            target - workers,
            workers,
            target,
            decision.reason,
            evidence=_evidence(rules, telemetry, decision.reason, latency_slo_ms, extra),
        )
    if workers < rules.max_workers:
        # needs capacity but within the scale-out cooldown: an open scale-out stands (it is what
        # the cooldown waits for); no new one is opened until the cooldown ends
        if SCALE_OUT in cooldowns.active_actions:
            return Advice(
                SCALE_OUT,
                target - workers,
                workers,
                target,
                needs,
                evidence=_evidence(rules, telemetry, decision.reason, latency_slo_ms, extra),
            )
        return Advice(HOLD, 0, workers, workers, decision.reason)
    excess = max(1, _target_workers(rules, latest) - workers)
    if edge and dormant:
        amount = min(len(dormant), excess)
        return Advice(
            WAKE_DORMANT,
            amount,
            workers,
            workers,
            f"{needs}; at max_workers {rules.max_workers}: wake {amount} dormant device(s)",
            evidence=_evidence(rules, telemetry, decision.reason, latency_slo_ms, extra),
        )
    if edge and nearby:
        return Advice(
            SHIFT_TO_NEARBY,
            excess,
            workers,
            workers,
            f"{needs}; at max_workers {rules.max_workers}: shift to {', '.join(nearby)}",
            offload_workers=excess,
            evidence=_evidence(rules, telemetry, decision.reason, latency_slo_ms, extra),
        )
    if edge:
        return move(f"{needs}; at max_workers {rules.max_workers}", excess)
    return Advice(HOLD, 0, workers, workers, decision.reason)
