from __future__ import annotations

from typing import Any

from routing.policy import Autoscaling, TelemetryWindow, evaluate_autoscale

RULES = Autoscaling()


def windows(count: int, **values: Any) -> list[TelemetryWindow]:
    base = {"queue_depth": 1, "active_workers": 4, "p95_ms": 50}
    return [TelemetryWindow(**{**base, **values}) for _ in range(count)]


def test_it_scales_out_on_a_queue_above_twice_the_workers_for_60s() -> None:
    decision = evaluate_autoscale(RULES, windows(1, queue_depth=9), latency_slo_ms=150)
    assert decision.action == "out" and "2x active workers" in decision.reason
    # 30-second windows: one is not enough, two are
    short = windows(1, queue_depth=9, duration_s=30)
    assert evaluate_autoscale(RULES, short).action == "hold"
    assert evaluate_autoscale(RULES, short * 2).action == "out"


def test_it_scales_out_on_p95_above_80pct_of_the_slo_for_3_windows() -> None:
    hot = windows(3, p95_ms=125)
    assert evaluate_autoscale(RULES, hot, latency_slo_ms=150).action == "out"
    assert evaluate_autoscale(RULES, windows(1) + hot[:2], latency_slo_ms=150).action == "hold"
    assert evaluate_autoscale(RULES, hot).action == "hold"  # no SLO threshold given: no p95 rule


def test_it_respects_cooldowns_and_max_workers() -> None:
    busy = windows(1, queue_depth=40)
    held = evaluate_autoscale(RULES, busy, seconds_since_scale_out=30)
    assert held.action == "hold" and "cooldown" in held.reason
    assert evaluate_autoscale(RULES, windows(1, queue_depth=100, active_workers=16)).action == "hold"


def test_it_scales_in_only_after_a_long_calm() -> None:
    calm = windows(10, queue_depth=0, p95_ms=20)
    assert evaluate_autoscale(RULES, calm, latency_slo_ms=150).action == "in"
    assert evaluate_autoscale(RULES, calm[:5], latency_slo_ms=150).action == "hold"
    assert evaluate_autoscale(RULES, calm, latency_slo_ms=150, seconds_since_scale_in=100).action == "hold"
    assert evaluate_autoscale(RULES, windows(10, queue_depth=0, active_workers=1)).action == "hold"


def test_edge_signals_move_load_and_block_scale_in() -> None:
    assert evaluate_autoscale(RULES, windows(1, temperature_c=91)).action == "out"
    assert evaluate_autoscale(RULES, windows(1, memory_headroom_pct=4)).reason.startswith("edge memory")
    calm_but_cut_off = windows(10, queue_depth=0, backhaul_healthy=False)
    decision = evaluate_autoscale(RULES, calm_but_cut_off)
    assert decision.action == "hold" and "backhaul" in decision.reason


def test_no_telemetry_is_not_a_reason_to_scale() -> None:
    assert evaluate_autoscale(RULES, []).reason.startswith("no telemetry")
    assert evaluate_autoscale({"enabled": False}, windows(1, queue_depth=99)).action == "hold"
    assert evaluate_autoscale({}, [{"queue_depth": 9, "active_workers": 1}]).action == "out"
