"""Gateway settings from a TOML file and/or CLI flags (flags win). Secrets may come from the
environment (GATEWAY_TOKEN, GATEWAY_SIGNING_SECRET) so they stay out of process listings."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slo.contract import STAGES
from slo.spec import SERVICE_CLASSES, TIERS

# Per-route behaviour of the simulated backends. Public cloud is slow and dear, the edge model is
# fast and cheap but less capable; numbers are plausible, not measured.
DEFAULT_ROUTES: dict[str, dict[str, float]] = {
    "local": {"p50_ms": 18, "p95_ms": 40, "error_ratio": 0.002, "cost_usd": 0.00002, "compute_s": 0.015},
    "cache": {"p50_ms": 2, "p95_ms": 5, "error_ratio": 0.0, "cost_usd": 0.000001, "compute_s": 0.0005},
    "private_cloud": {
        "p50_ms": 60,
        "p95_ms": 110,
        "error_ratio": 0.005,
        "cost_usd": 0.0004,
        "compute_s": 0.03,
    },
    "public_cloud": {
        "p50_ms": 140,
        "p95_ms": 320,
        "error_ratio": 0.01,
        "cost_usd": 0.0015,
        "compute_s": 0.04,
    },
}
DEFAULT_CONTEXT: dict[str, Any] = {
    "confidence": {"normal": {"mean": 0.82, "sd": 0.14, "min": 0.0, "max": 1.0}},
    "priority": {"choices": {"critical": 0.02, "high": 0.18, "normal": 0.7, "low": 0.1}},
    "network_quality": {"choices": {"good": 0.92, "fair": 0.06, "poor": 0.015, "offline": 0.005}},
    "privacy": {"bernoulli": 0.05},
    "payload_bytes": {"int_uniform": [2_000, 60_000]},
}


class ConfigError(Exception):
    pass


@dataclass
class GatewayConfig:
    name: str
    service: str
    service_class: str = "interactive"
    tier: str = "edge"
    region: str = ""
    gateway_id: int | None = None
    listen_host: str = "127.0.0.1"
    listen_port: int = 9100
    state_dir: Path = Path("var/gateway")
    signing_secret: str | None = None
    latency_slo_ms: float | None = None
    seed: int = 0
    control_plane_url: str | None = None
    token: str | None = None
    poll_interval_s: float = 10.0
    heartbeat_interval_s: float = 15.0
    push_telemetry: bool = False
    telemetry_interval_s: float = 60.0
    # With a whole-minute interval, telemetry is pushed right after each minute ends, at a fixed
    # offset of 1 s plus up to this spread (from the gateway's name), so a fleet's pushes of a minute
    # arrive within seconds of its end but not all at once (docs/gateway.md). The control plane's
    # evaluation waits BUDGET_EVALUATION_GRACE_S (15 s) after the minute for them.
    telemetry_spread_s: float = 10.0
    # requests sampled per telemetry interval as decision records (reservoir); 0 sends none
    decision_sample: int = 20
    rps: float = 20.0
    tick_s: float = 1.0
    cache_hit_ratio: float = 0.3
    # requests/s the device serves at 100% load (`load_pct` in routing contexts: gateway.load)
    capacity_rps: float = 200.0
    # workers of the local model; 0: one for every request, nothing queues (gateway.batching)
    local_workers: int = 0
    # distinct request contents (identical ones in flight can be collapsed); 0: all distinct
    distinct_requests: int = 0
    # per-stage latency budget (ms) checked against each stage's p95 in /status ([stage_budget_ms])
    stage_budget_ms: dict[str, float] = field(default_factory=dict)
    # report an overloaded device (hot, short of memory, deep queue): gateway.health
    overload: bool = False
    routes: dict[str, dict[str, float]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_ROUTES.items()}
    )
    context: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_CONTEXT))
    # request classes and their shares of the traffic ([traffic] classes = {interactive = 0.7, ...}):
    # each request is drawn a class, its routing context says so, and every series carries the
    # `service_class` label. Empty: one class (service_class), and no class label.
    classes: dict[str, float] = field(default_factory=dict)
    # an LLM behind the routes ([llm] provider, model): time to first token, time per output token
    # and tokens are exposed and pushed too
    llm_provider: str = ""
    llm_model: str = ""

    def validate(self) -> None:
        if self.service_class not in SERVICE_CLASSES:
            raise ConfigError(f"service_class: one of {', '.join(SERVICE_CLASSES)}")
        if self.tier not in TIERS:
            raise ConfigError(f"tier: one of {', '.join(TIERS)}")
        if self.control_plane_url and (self.gateway_id is None or not self.token):
            raise ConfigError(
                "control_plane.url needs gateway.id and a token (control_plane.token or GATEWAY_TOKEN)"
            )
        for route, profile in self.routes.items():
            if not 0 < profile.get("p50_ms", 0) <= profile.get("p95_ms", 0):
                raise ConfigError(f"routes.{route}: needs 0 < p50_ms <= p95_ms")
            if not 0 <= profile.get("error_ratio", 0) <= 1:
                raise ConfigError(f"routes.{route}.error_ratio: within [0, 1]")
        if not 0 <= self.telemetry_spread_s <= 50:
            raise ConfigError("control_plane.telemetry_spread_s: within [0, 50]")
        if not 0 <= self.decision_sample <= 1000:
            raise ConfigError("control_plane.decision_sample: within [0, 1000]")
        for name, share in self.classes.items():
            if name not in SERVICE_CLASSES:
                raise ConfigError(f"traffic.classes.{name}: one of {', '.join(SERVICE_CLASSES)}")
            if not 0 < share <= 1:
                raise ConfigError(f"traffic.classes.{name}: a share within (0, 1]")
        if self.classes and abs(sum(self.classes.values()) - 1) > 1e-9:
            raise ConfigError("traffic.classes: the shares must add up to 1")
        if bool(self.llm_provider) != bool(self.llm_model):
            raise ConfigError("llm: needs both provider and model")
        if self.capacity_rps <= 0:
            raise ConfigError("traffic.capacity_rps must be > 0")
        if not 0 <= self.local_workers <= 1024:
            raise ConfigError("traffic.local_workers: within [0, 1024]")
        if not 0 <= self.distinct_requests <= 1_000_000:
            raise ConfigError("traffic.distinct_requests: within [0, 1000000]")
        for stage, budget in self.stage_budget_ms.items():
            if stage not in STAGES:
                raise ConfigError(f"stage_budget_ms.{stage}: one of {', '.join(STAGES)}")
            if not budget > 0:
                raise ConfigError(f"stage_budget_ms.{stage}: must be > 0")
        if self.rps < 0 or self.tick_s <= 0:
            raise ConfigError("traffic.rps must be >= 0 and traffic.tick_s > 0")


def _merge_routes(base: dict[str, dict[str, float]], extra: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {k: dict(v) for k, v in base.items()}
    for route, profile in extra.items():
        out.setdefault(route, {}).update({k: float(v) for k, v in profile.items()})
    return out


def load_config(path: str | None, overrides: dict[str, Any]) -> GatewayConfig:
    """Read TOML (sections gateway, control_plane, traffic, routes), then apply non-None overrides."""
    data: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    gw, cp, traffic = data.get("gateway", {}), data.get("control_plane", {}), data.get("traffic", {})
    values: dict[str, Any] = {
        "name": gw.get("name"),
        "service": gw.get("service"),
        "service_class": gw.get("service_class", "interactive"),
        "tier": gw.get("tier", "edge"),
        "region": gw.get("region", ""),
        "gateway_id": gw.get("id"),
        "signing_secret": gw.get("signing_secret") or os.environ.get("GATEWAY_SIGNING_SECRET"),
        "latency_slo_ms": gw.get("latency_slo_ms"),
        "seed": gw.get("seed", 0),
        "state_dir": gw.get("state_dir"),
        "control_plane_url": cp.get("url"),
        "token": cp.get("token") or os.environ.get("GATEWAY_TOKEN"),
        "poll_interval_s": cp.get("poll_interval_s"),
        "heartbeat_interval_s": cp.get("heartbeat_interval_s"),
        "push_telemetry": cp.get("push_telemetry"),
        "telemetry_interval_s": cp.get("telemetry_interval_s"),
        "telemetry_spread_s": cp.get("telemetry_spread_s"),
        "decision_sample": cp.get("decision_sample"),
        "rps": traffic.get("rps"),
        "tick_s": traffic.get("tick_s"),
        "cache_hit_ratio": traffic.get("cache_hit_ratio"),
        "capacity_rps": traffic.get("capacity_rps"),
        "local_workers": traffic.get("local_workers"),
        "distinct_requests": traffic.get("distinct_requests"),
        "overload": traffic.get("overload", os.environ.get("GATEWAY_OVERLOAD", "") in ("1", "true", "yes")),
    }
    listen = gw.get("listen")
    if listen:
        host, _, port = str(listen).rpartition(":")
        values["listen_host"], values["listen_port"] = host or "127.0.0.1", int(port)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if not values.get("name") or not values.get("service"):
        raise ConfigError("gateway.name and gateway.service are required")
    routes = _merge_routes(DEFAULT_ROUTES, data.get("routes", {}))
    context = dict(DEFAULT_CONTEXT)
    context.update(traffic.get("context", {}))
    kwargs = {k: v for k, v in values.items() if v is not None}
    if "state_dir" in kwargs:
        kwargs["state_dir"] = Path(kwargs["state_dir"])
    llm = data.get("llm", {})
    kwargs.setdefault("classes", {str(k): float(v) for k, v in traffic.get("classes", {}).items()})
    kwargs.setdefault(
        "stage_budget_ms", {str(k): float(v) for k, v in data.get("stage_budget_ms", {}).items()}
    )
    kwargs.setdefault("llm_provider", str(llm.get("provider", "")))
    kwargs.setdefault("llm_model", str(llm.get("model", "")))
    config = GatewayConfig(**kwargs, routes=routes, context=context)
    config.validate()
    return config
