"""evaluate_autoscale: should this pool of workers grow, shrink or hold, and why.

Pure: the caller passes recent telemetry windows (oldest first) and how long ago it last scaled.
No telemetry means hold: no data is not good data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .schema import Autoscaling


@dataclass(frozen=True, slots=True)
class TelemetryWindow:
    """Measurements over one window (typically 60 s) of one worker pool or edge device."""

    queue_depth: float
    active_workers: int
    duration_s: float = 60.0
    p95_ms: float | None = None
    temperature_c: float | None = None
    memory_headroom_pct: float | None = None
    backhaul_healthy: bool | None = None
    request_age_ms: float | None = None
    accelerator_util_pct: float | None = None

    @property
    def queue_ratio(self) -> float:
        if self.active_workers <= 0:
            return float("inf") if self.queue_depth > 0 else 0.0
        return self.queue_depth / self.active_workers


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    action: Literal["out", "in", "hold"]
    reason: str


def _trailing(windows: Sequence[TelemetryWindow], seconds: float) -> list[TelemetryWindow] | None:
    """The newest windows covering at least `seconds`, or None if the telemetry is shorter."""
    covered = 0.0
    out = []
    for window in reversed(windows):
        out.append(window)
        covered += window.duration_s
        if covered >= seconds:
            return out
    return None


def evaluate_autoscale(
    rules: Autoscaling | Mapping[str, Any],
    telemetry_windows: Sequence[TelemetryWindow | Mapping[str, Any]],
    *,
    latency_slo_ms: float | None = None,
    seconds_since_scale_out: float | None = None,
    seconds_since_scale_in: float | None = None,
) -> ScaleDecision:
    """Scale out on sustained queueing, on p95 near the SLO threshold for consecutive windows, or
    on edge device stress; scale in only after a long calm and a long cooldown.

    `latency_slo_ms` enables the p95 rules; `seconds_since_*` (None: never) enforce cooldowns.
    """
    if not isinstance(rules, Autoscaling):
        rules = Autoscaling.model_validate(dict(rules))
    windows = [w if isinstance(w, TelemetryWindow) else TelemetryWindow(**w) for w in telemetry_windows]
    if not rules.enabled:
        return ScaleDecision("hold", "autoscaling is disabled")
    if not windows:
        return ScaleDecision("hold", "no telemetry: not scaling on missing data")
    latest = windows[-1]

    out_reason = _scale_out_reason(rules, windows, latency_slo_ms)
    if out_reason is not None:
        if latest.active_workers >= rules.max_workers:
            return ScaleDecision("hold", f"{out_reason}, but already at max_workers {rules.max_workers}")
        if seconds_since_scale_out is not None and seconds_since_scale_out < rules.scale_out_cooldown_s:
            return ScaleDecision(
                "hold",
                f"{out_reason}, but within the scale-out cooldown "
                f"({seconds_since_scale_out:g} s of {rules.scale_out_cooldown_s:g} s)",
            )
        return ScaleDecision("out", out_reason)

    if latest.active_workers <= rules.min_workers:
        return ScaleDecision("hold", f"within thresholds; at min_workers {rules.min_workers}")
    if rules.edge.require_backhaul_healthy and latest.backhaul_healthy is False:
        return ScaleDecision("hold", "backhaul unhealthy: cloud offload is unavailable, keep local capacity")
    since_last = [s for s in (seconds_since_scale_out, seconds_since_scale_in) if s is not None]
    if since_last and min(since_last) < rules.scale_in_cooldown_s:
        return ScaleDecision(
            "hold",
            f"within thresholds; scale-in cooldown ({min(since_last):g} s of "
            f"{rules.scale_in_cooldown_s:g} s)",
        )
    calm = _trailing(windows, rules.scale_in_for_s)
    if calm is None:
        return ScaleDecision(
            "hold",
            f"within thresholds; less than {rules.scale_in_for_s:g} s of telemetry to justify scaling in",
        )
    p95_limit = None if latency_slo_ms is None else latency_slo_ms * rules.scale_in_p95_pct_of_slo / 100
    quiet_queue = all(w.queue_ratio < rules.scale_in_queue_ratio for w in calm)
    quiet_latency = p95_limit is None or all(w.p95_ms is not None and w.p95_ms < p95_limit for w in calm)
    if quiet_queue and quiet_latency:
        latency = "" if p95_limit is None else f" and p95 < {p95_limit:g} ms"
        return ScaleDecision(
            "in", f"queue ratio < {rules.scale_in_queue_ratio:g}{latency} for {rules.scale_in_for_s:g} s"
        )
    return ScaleDecision("hold", "within thresholds")


def device_stress_reason(rules: Autoscaling, latest: TelemetryWindow) -> str | None:
    """Why an edge device is stressed (hot, short of memory, requests ageing in its queue, its
    accelerator saturated), or None. Adding workers on such a device does not help: move load."""
    edge = rules.edge
    if latest.temperature_c is not None and latest.temperature_c > edge.max_temperature_c:
        return f"edge device at {latest.temperature_c:g} C, above {edge.max_temperature_c:g} C"
    if latest.memory_headroom_pct is not None and latest.memory_headroom_pct < edge.min_memory_headroom_pct:
        return (
            f"edge memory headroom {latest.memory_headroom_pct:g}% is below {edge.min_memory_headroom_pct:g}%"
        )
    if (
        edge.max_request_age_ms is not None
        and latest.request_age_ms is not None
        and latest.request_age_ms > edge.max_request_age_ms
    ):
        return f"oldest queued request {latest.request_age_ms:g} ms old, above {edge.max_request_age_ms:g} ms"
    if (
        edge.max_accelerator_util_pct is not None
        and latest.accelerator_util_pct is not None
        and latest.accelerator_util_pct > edge.max_accelerator_util_pct
    ):
        return (
            f"accelerator at {latest.accelerator_util_pct:g}% utilisation, "
            f"above {edge.max_accelerator_util_pct:g}%"
        )
    return None


def scale_out_reason(
    rules: Autoscaling | Mapping[str, Any],
    windows: Sequence[TelemetryWindow],
    latency_slo_ms: float | None = None,
) -> str | None:
    """Why this pool needs more capacity (whatever its cooldowns and max_workers say), or None."""
    if not isinstance(rules, Autoscaling):
        rules = Autoscaling.model_validate(dict(rules))
    if not windows:
        return None
    return _scale_out_reason(rules, list(windows), latency_slo_ms)


def _scale_out_reason(
    rules: Autoscaling, windows: list[TelemetryWindow], latency_slo_ms: float | None
) -> str | None:
    latest = windows[-1]
    stress = device_stress_reason(rules, latest)
    if stress is not None:
        return stress
    queued = _trailing(windows, rules.scale_out_queue_for_s)
    if queued is not None and all(w.queue_ratio > rules.scale_out_queue_ratio for w in queued):
        return (
            f"queue depth above {rules.scale_out_queue_ratio:g}x active workers for "
            f"{rules.scale_out_queue_for_s:g} s (now {latest.queue_depth:g} for {latest.active_workers})"
        )
    if latency_slo_ms is not None and len(windows) >= rules.scale_out_p95_windows:
        limit = latency_slo_ms * rules.scale_out_p95_pct_of_slo / 100
        recent = windows[-rules.scale_out_p95_windows :]
        if all(w.p95_ms is not None and w.p95_ms > limit for w in recent):
            return (
                f"p95 above {rules.scale_out_p95_pct_of_slo:g}% of the {latency_slo_ms:g} ms SLO threshold "
                f"({limit:g} ms) for {rules.scale_out_p95_windows} consecutive windows"
            )
    return None
