"""routing.capacity.plan: what to do about a pool's telemetry, in the seed's order (pure)."""

from __future__ import annotations

import math

from routing.capacity.plan import (
    HOLD,
    OFFLOAD_TO_CLOUD,
    SCALE_IN,
    SCALE_OUT,
    SHIFT_TO_NEARBY,
    WAKE_DORMANT,
    Cooldowns,
    PoolKey,
    PoolTelemetry,
    plan_pools,
)
from routing.policy import Autoscaling, TelemetryWindow

RULES = Autoscaling()


def _pool(
    tier: str, windows: list[TelemetryWindow], *, region: str = "eu-west", gateways=None
) -> PoolTelemetry:
    latest = gateways if gateways is not None else {1: windows[-1]} if windows else {}
    return PoolTelemetry(
        key=PoolKey("svc", tier, region, ""),
        windows=windows,
        window_starts=[60.0 * i for i in range(len(windows))],
        latest_by_gateway=latest,
    )


def _plan(*pools: PoolTelemetry, rules: Autoscaling = RULES, latency: float | None = 150, cooldowns=None):
    return plan_pools(
        list(pools),
        rules_for=lambda key: rules,
        latency_slo_ms_for=lambda key: latency,
        cooldowns_for=lambda key: cooldowns or Cooldowns(),
    )


def w(queue: float, workers: int = 2, **extra) -> TelemetryWindow:
    return TelemetryWindow(queue_depth=queue, active_workers=workers, **extra)


def test_a_cloud_pool_queueing_over_twice_its_workers_for_60_s_scales_out_to_the_mid_ratio():
    pool = _pool("private_cloud", [w(2), w(9, 3), w(11, 3)])
    (advice,) = _plan(pool).values()
    # independent: target ratio (0.5 + 2.0) / 2 = 1.25 -> ceil(11 / 1.25) = 9 workers
    assert advice.action == SCALE_OUT
    assert advice.desired_workers == math.ceil(11 / 1.25) == 9
    assert advice.amount == 6 and advice.current_workers == 3
    assert "queue depth above 2x" in advice.reason
    assert [x["queue_depth"] for x in advice.evidence["windows"]] == [2, 9, 11]


def test_one_hot_window_of_queueing_is_not_enough_and_the_scale_out_cooldown_holds():
    assert (
        _plan(_pool("private_cloud", [w(1), w(5, 2, duration_s=30)]))[
            PoolKey("svc", "private_cloud", "eu-west", "")
        ].action
        == HOLD
    )
    cooled = _plan(_pool("private_cloud", [w(9), w(9)]), cooldowns=Cooldowns(seconds_since_scale_out=20))
    assert next(iter(cooled.values())).action == HOLD


def test_a_hot_edge_device_offloads_to_cloud_instead_of_adding_workers():
    hot = w(3, 2, temperature_c=92.0, memory_headroom_pct=30.0, backhaul_healthy=True)
    (advice,) = _plan(_pool("edge", [w(1), hot])).values()
    assert advice.action == OFFLOAD_TO_CLOUD
    assert advice.amount == 2 and advice.offload_workers == 2 and advice.desired_workers == 2
    assert "92 C, above 85 C" in advice.reason
    assert advice.evidence["stressed_gateways"] == [1]


def test_with_the_backhaul_down_a_hot_edge_pool_shifts_to_a_nearby_pool_with_headroom():
    hot = w(3, 2, temperature_c=92.0, backhaul_healthy=False)
    calm = w(0.2, 2, temperature_c=60.0, backhaul_healthy=True)
    advice = _plan(_pool("edge", [hot]), _pool("edge", [calm], region="eu-central"))
    assert advice[PoolKey("svc", "edge", "eu-west", "")].action == SHIFT_TO_NEARBY
    assert "edge/eu-central/-" in advice[PoolKey("svc", "edge", "eu-west", "")].reason
    assert advice[PoolKey("svc", "edge", "eu-central", "")].action == HOLD


def test_an_edge_pool_at_max_workers_wakes_its_dormant_devices_first():
    rules = Autoscaling(max_workers=4)
    busy = w(12, 4)
    pool = _pool("edge", [busy, busy], gateways={1: w(12, 4), 2: w(0, 0)})
    (advice,) = _plan(pool, rules=rules).values()
    assert advice.action == WAKE_DORMANT and advice.amount == 1
    assert advice.evidence["dormant_gateways"] == [2]


def test_a_long_calm_pool_above_min_workers_scales_in_by_one():
    calm = [w(0.1, 3, p95_ms=20.0) for _ in range(11)]
    (advice,) = _plan(_pool("private_cloud", calm)).values()
    assert (advice.action, advice.amount, advice.desired_workers) == (SCALE_IN, 1, 2)
    assert _plan(_pool("private_cloud", calm[:5])).popitem()[1].action == HOLD  # 5 minutes is not long


def test_no_telemetry_holds():
    (advice,) = _plan(_pool("edge", [])).values()
    assert advice.action == HOLD and "no telemetry" in advice.reason


def test_within_the_cooldown_an_open_scale_out_stands_but_no_new_one_opens():
    pool = _pool("private_cloud", [w(9), w(9)])
    fresh = _plan(pool, cooldowns=Cooldowns(seconds_since_scale_out=20))
    standing = _plan(
        pool, cooldowns=Cooldowns(seconds_since_scale_out=20, active_actions=frozenset({SCALE_OUT}))
    )
    assert next(iter(fresh.values())).action == HOLD
    assert next(iter(standing.values())).action == SCALE_OUT
