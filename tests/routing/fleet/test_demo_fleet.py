"""The demo fleet (`routing.fleet.demo`): the gateways `./scripts/run.sh` starts run the demo's own
default policy against simulated backends that fit it, so the live demo shows a healthy service
(a little budget burned), not one that pages from the start and rolls back every release."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_gateways(tmp_path: Path) -> list[dict[str, Any]]:
    from routing.fleet.demo import fleet_demo_seed
    from slo.demo import seed_demo_catalog

    seed_demo_catalog()
    return fleet_demo_seed(state_dir=tmp_path / "gateways", actor="demo")


def play(config_path: str, bundle: dict[str, Any], requests: int = 20_000) -> dict[str, float]:
    """Play requests through what the gateway would run: its config file, the desired bundle."""
    from gateway.config import load_config
    from gateway.traffic import TrafficModel, cache_model
    from routing.policy import generate_contexts
    from routing.policy.cache import parse_cache_config
    from routing.policy.engine import compile_policy

    config = load_config(config_path, {})
    compiled = compile_policy(bundle["routing_policy"], service_class=config.service_class)
    cache_config, problems = parse_cache_config(bundle["cache_config"])
    assert problems == []
    traffic = TrafficModel(config.routes, seed=config.seed)
    cache = cache_model(cache_config, config.cache_hit_ratio)
    outcomes = []
    for context in generate_contexts(config.context, requests, seed=config.seed):
        context = {
            **context,
            "service_class": config.service_class,
            "temperature_c": 60,
            "memory_headroom_pct": 40,
            "queue_depth": 2,
            "active_workers": 4,
        }
        outcomes.append(traffic.play(compiled, cache, context))
    served = [o for o in outcomes if o.outcome != "shed"]
    ok = [o for o in served if o.outcome == "ok"]
    fallbacks = [f for o in outcomes for f in o.fallbacks]
    return {
        "availability": len(ok) / len(served),
        "latency_sli": sum(o.elapsed_ms <= config.latency_slo_ms for o in ok)
        / len([o for o in served if o.outcome in ("ok", "timeout")]),
        "fallback_success": sum(f[2] == "ok" for f in fallbacks) / len(fallbacks),
        "fallback_share": len(fallbacks) / len(outcomes),
    }


def test_the_demo_gateways_meet_the_demo_slos_with_the_demo_policy(
    demo_gateways: list[dict[str, Any]],
) -> None:
    from routing.models.fleet import Gateway
    from slo.models import Slo

    objectives = {slo.name: slo.objective / 100 for slo in Slo.objects.filter(service__name="shelf-vision")}
    assert len(demo_gateways) == 3
    for seeded in demo_gateways:
        gateway = Gateway.objects.get(pk=seeded["id"])
        bundle = gateway.revisions.get(revision=gateway.desired_revision).bundle
        figures = play(seeded["config_path"], bundle)
        assert figures["availability"] >= objectives["edge-availability"], (seeded["name"], figures)
        assert figures["latency_sli"] >= objectives["edge-latency"], (seeded["name"], figures)
        assert figures["fallback_success"] >= objectives["fallback-success"], (seeded["name"], figures)
        # healthy is not perfect: some requests do fall back, so the fallback SLO has events
        assert 0.01 < figures["fallback_share"] < 0.2, (seeded["name"], figures)


def test_every_tier_scoped_demo_slo_has_a_live_demo_gateway_on_its_tier(
    demo_gateways: list[dict[str, Any]],
) -> None:
    """Gateways label their telemetry with their own tier: an SLO on a tier no demo gateway runs
    would go `telemetry_missing` once the seeded history ends, and pause the demo release."""
    from routing.models.fleet import Gateway
    from slo.models import Slo

    tiers = set(
        Gateway.objects.filter(pk__in=[g["id"] for g in demo_gateways]).values_list("tier", flat=True)
    )
    scoped = dict(
        Slo.objects.filter(service__name="shelf-vision").exclude(tier="").values_list("name", "tier")
    )
    assert scoped and {name: tier for name, tier in scoped.items() if tier not in tiers} == {}


def test_every_demo_latency_threshold_is_a_bucket_boundary_of_the_contract() -> None:
    """A latency (or time-to-first-token, time-per-output-token) SLI is read from the bucket at its
    threshold: any other threshold never has data from the gateways (docs/telemetry.md)."""
    from slo.contract import HISTOGRAM_BUCKETS_S, LATENCY_HISTOGRAMS
    from slo.demo import DEMO_SLOS

    thresholds = {
        (d["service"], d["name"]): (d["sli"]["threshold_ms"], LATENCY_HISTOGRAMS[d["sli"]["kind"]])
        for d in DEMO_SLOS
        if d["sli"]["kind"] in LATENCY_HISTOGRAMS
    }
    assert {kind for _, kind in thresholds.values()} >= set(LATENCY_HISTOGRAMS.values()) - {
        "inference_time_per_output_token_seconds"
    }
    assert {k: v for k, v in thresholds.items() if v[0] / 1000 not in HISTOGRAM_BUCKETS_S[v[1]]} == {}


def test_the_demo_gateways_draw_both_classes_of_the_demo_class_slos(
    demo_gateways: list[dict[str, Any]], tmp_path: Any
) -> None:
    """One service, two classes: every demo gateway labels its series with both classes the
    class-scoped demo SLOs read, and the cloud one reports time to first token."""
    from gateway.app import Gateway
    from gateway.config import load_config
    from slo.demo import DEMO_SLOS

    wanted = {d["service_class"] for d in DEMO_SLOS if d.get("service_class")}
    assert len(wanted) == 2
    for seeded in demo_gateways:
        gateway = Gateway(load_config(seeded["config_path"], {"state_dir": str(tmp_path / seeded["name"])}))
        for second in range(0, 70, 5):
            gateway.tick(now=1_700_000_040 + second, requests_count=40)
        _, batch = gateway.telemetry_batch(now=1_700_000_040 + 125)
        series = [item for minute in batch["minutes"] for item in minute["counters"]]
        classes = {item["labels"].get("service_class") for item in series}
        assert classes == wanted, seeded["name"]
        ttft = {item["name"] for item in series if item["name"].startswith("inference_time_to_first")}
        assert bool(ttft) == (seeded["name"] == "cloud-1"), seeded["name"]
