"""Demo hook: register two edge gateways and one cloud gateway for a service, write their config
files (with credentials, mode 0600) into a state folder, and give them a first desired revision.

Start them with `python -m gateway.launch <state_dir>` (or gateway.launch.start_gateways).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.db import transaction

from controlplane.errors import NotFound
from routing.fleet import services
from routing.models.fleet import Gateway
from routing.policy import default_cache_config, default_policy
from slo.models import Service

# The request classes the demo's gateways draw (one service, two classes: the demo's class SLOs),
# and the vision-language model behind the cloud gateway (its time-to-first-token SLO).
DEMO_CLASSES = {"interactive": 0.8, "batch": 0.2}
DEMO_LLM = {"provider": "private-vllm", "model": "llava-1.6-7b"}

DEMO_GATEWAYS = (
    {"name": "edge-1", "tier": "edge", "region": "eu-west", "offset": 0, "seed": 11},
    {"name": "edge-2", "tier": "edge", "region": "eu-central", "offset": 1, "seed": 12},
    {"name": "cloud-1", "tier": "private_cloud", "region": "eu-west", "offset": 2, "seed": 13},
)

# The simulated backends of the demo gateways: a store's edge model, its result cache, a private
# cloud in the same metro and a regional public cloud. The gateway's own defaults are a generic
# service's; these fit the demo's `shelf-vision` (150 ms edge latency SLO), so its default policy's
# hop timeouts are met most of the time and the demo shows a healthy service burning a little
# budget (the first version of the demo did not: its clouds timed out on two fallbacks in three).
DEMO_ROUTES: dict[str, dict[str, float]] = {
    "local": {"p50_ms": 16, "p95_ms": 32, "error_ratio": 0.002, "cost_usd": 0.00002, "compute_s": 0.015},
    "cache": {"p50_ms": 1.5, "p95_ms": 4, "error_ratio": 0.0, "cost_usd": 0.000001, "compute_s": 0.0005},
    "private_cloud": {
        "p50_ms": 28,
        "p95_ms": 44,
        "error_ratio": 0.003,
        "cost_usd": 0.0004,
        "compute_s": 0.03,
    },
    "public_cloud": {"p50_ms": 36, "p95_ms": 55, "error_ratio": 0.005, "cost_usd": 0.0015, "compute_s": 0.04},
}


def gateway_toml(config: dict[str, dict[str, Any]]) -> str:
    """A reference gateway's TOML config from its sections (`{"gateway": {...}, "traffic": {...}}`)."""
    lines: list[str] = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | float):
                text = repr(value)
            else:
                text = '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
            lines.append(f"{key} = {text}")
        lines.append("")
    return "\n".join(lines)


def _latency_slo_ms(service: Service) -> float | None:
    thresholds = [
        spec.get("sli", {}).get("threshold_ms")
        for spec in service.slos.filter(archived_at__isnull=True, sli_kind="latency").values_list(
            "spec", flat=True
        )
    ]
    thresholds = [t for t in thresholds if isinstance(t, int | float)]
    return float(min(thresholds)) if thresholds else None


def fleet_demo_seed(
    *,
    state_dir: Path | str,
    service_name: str = "shelf-vision",
    control_plane_url: str = "http://127.0.0.1:8000",
    base_port: int = 9101,
    actor: Any = None,
    push_telemetry: bool = False,
) -> list[dict[str, Any]]:
    """Idempotent: existing demo gateways get fresh credentials (the raw ones are not stored, so
    they cannot be written out again). Returns one dict per gateway: name, id, port, config_path."""
    service = Service.objects.filter(name=service_name).first()
    if service is None:
        raise NotFound(f"no such service: {service_name}")
    state_dir = Path(state_dir).resolve()
    latency_slo_ms = _latency_slo_ms(service)
    out = []
    for spec in DEMO_GATEWAYS:
        port = base_port + spec["offset"]
        data = {
            "name": spec["name"],
            "service": service.name,
            "tier": spec["tier"],
            "region": spec["region"],
            "push_url": f"http://127.0.0.1:{port}/config",
            "labels": {"demo": "true"},
        }
        with transaction.atomic():
            existing = Gateway.objects.filter(name=spec["name"]).first()
            if existing is None:
                credentials = services.gateway_register(actor=actor, data=data)
            else:
                services.gateway_update(
                    actor=actor, gateway_id=existing.pk, data={k: v for k, v in data.items() if k != "name"}
                )
                credentials = services.gateway_rotate(actor=actor, gateway_id=existing.pk)
        gateway = credentials.gateway
        folder = state_dir / spec["name"]
        # the state folder exists from the start: `touch <folder>/state/overload` overloads the
        # gateway (docs/capacity.md)
        (folder / "state").mkdir(parents=True, exist_ok=True)
        gw_section: dict[str, Any] = {
            "id": gateway.pk,
            "name": gateway.name,
            "service": service.name,
            "service_class": service.service_class,
            "tier": spec["tier"],
            "region": spec["region"],
            "listen": f"127.0.0.1:{port}",
            "state_dir": str(folder / "state"),
            "signing_secret": credentials.signing_secret,
            "seed": spec["seed"],
        }
        if latency_slo_ms is not None:
            gw_section["latency_slo_ms"] = latency_slo_ms
        config_path = folder / "gateway.toml"
        config_path.write_text(
            gateway_toml(
                {
                    "gateway": gw_section,
                    "control_plane": {
                        "url": control_plane_url,
                        "token": credentials.token,
                        "poll_interval_s": 10,
                        "heartbeat_interval_s": 15,
                        "push_telemetry": push_telemetry,
                        "telemetry_interval_s": 60,
                    },
                    "traffic": {"rps": 20 if spec["tier"] == "edge" else 40},
                    "traffic.classes": DEMO_CLASSES,
                    **({"llm": DEMO_LLM} if spec["tier"] != "edge" else {}),
                    **{f"routes.{route}": profile for route, profile in DEMO_ROUTES.items()},
                }
            )
        )
        os.chmod(config_path, 0o600)  # holds the gateway's credentials
        if gateway.desired_revision is None:
            bundle = {
                "routing_policy": default_policy(service.name, service.service_class, latency_slo_ms),
                "cache_config": default_cache_config(service.name, multi_tenant=service.multi_tenant),
                "model_version": "v1",
            }
            services.gateway_set_desired(
                actor=actor,
                gateway_ids=[gateway.pk],
                bundle_for=bundle,
                reason="demo seed: default policy and cache config",
            )
        out.append({"name": gateway.name, "id": gateway.pk, "port": port, "config_path": str(config_path)})
    return out
