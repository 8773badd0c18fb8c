from __future__ import annotations

from pathlib import Path

from gateway.app import Gateway
from gateway.config import load_config
from gateway.traffic import summarize
from tests.gateway.support import SERVICE, good_bundle


def _gateway(tmp_path: Path, seed: int = 3) -> Gateway:
    config = load_config(
        None,
        {
            "name": "sim",
            "service": SERVICE,
            "state_dir": str(tmp_path),
            "seed": seed,
            "latency_slo_ms": 150.0,
        },
    )
    return Gateway(config)


def _all_public_cloud(revision: int) -> dict:
    bundle = good_bundle(revision)
    bundle["routing_policy"]["rules"] = [
        {"name": "everything-to-public-cloud", "chain": [{"route": "public_cloud", "timeout_ms": 400}]}
    ]
    return bundle


def _run(gateway: Gateway, ticks: int = 40) -> dict:
    outcomes = []
    for tick in range(ticks):
        outcomes += gateway.tick(now=1_700_000_000 + tick, requests_count=100)
    return summarize(outcomes, latency_threshold_ms=150.0)


def test_a_policy_escalating_everything_to_public_cloud_burns_latency_and_cost(tmp_path):
    good = _gateway(tmp_path / "a")
    assert good.apply(good_bundle(1), source="push")[0]
    bad = _gateway(tmp_path / "b")
    assert bad.apply(_all_public_cloud(1), source="push")[0]

    good_report, bad_report = _run(good), _run(bad)

    assert bad_report["routes"].get("public_cloud", 0) > 0.9 * bad_report["requests"]
    assert good_report["latency_sli"] > 0.98
    assert bad_report["latency_sli"] < 0.9
    assert bad_report["cost_per_1000_usd"] > 5 * good_report["cost_per_1000_usd"]
    assert bad_report["availability"] < good_report["availability"]


def test_the_same_seed_gives_the_same_traffic(tmp_path):
    first, second = _gateway(tmp_path / "a", seed=9), _gateway(tmp_path / "b", seed=9)
    assert _run(first, ticks=5) == _run(second, ticks=5)


def test_disabling_the_result_cache_removes_cache_hits(tmp_path):
    gateway = _gateway(tmp_path)
    bundle = good_bundle(1)
    for layer in bundle["cache_config"]["layers"]:
        layer["enabled"] = False
    assert gateway.apply(bundle, source="push")[0]
    assert _run(gateway, ticks=10)["routes"].get("cache", 0) == 0


def test_a_telemetry_batch_lists_complete_minutes_in_the_push_format(tmp_path):
    from slo.telemetry.batch import parse_push_batch

    gateway = _gateway(tmp_path)
    for second in range(0, 120, 10):
        gateway.tick(now=1_700_000_040 + second, requests_count=20)
    minutes, batch = gateway.telemetry_batch(now=1_700_000_040 + 125)
    assert len(minutes) == 2  # the current minute is still open
    assert batch["gateway"] == "sim" and batch["contract_version"] == 1
    names = {item["name"] for item in batch["minutes"][0]["counters"]}
    assert "inference_requests_total" in names and "inference_request_duration_seconds_bucket" in names
    parsed, problems = parse_push_batch(batch, known_services={SERVICE}, now_s=1_700_000_040 + 125)
    assert problems == [] and parsed is not None


def test_it_samples_the_request_contexts_its_policy_decided_in_the_push_format(tmp_path, monkeypatch):
    import gateway.app as gateway_app
    from slo.telemetry.contexts import parse_context_batch

    gateway = _gateway(tmp_path)
    outcomes = [
        o for second in range(0, 120, 10) for o in gateway.tick(now=1_700_000_070 + second, requests_count=20)
    ]
    monkeypatch.setattr(gateway_app, "CONTEXTS_PER_MINUTE", 1)  # samples draw far more random numbers
    other = _gateway(tmp_path / "b")
    again = [
        o for second in range(0, 120, 10) for o in other.tick(now=1_700_000_070 + second, requests_count=20)
    ]
    assert [o.elapsed_ms for o in outcomes] == [
        o.elapsed_ms for o in again
    ]  # sampling does not move the traffic
    monkeypatch.undo()
    minutes, batch = gateway.context_batch()
    assert len(minutes) == 3  # from 30 s into a minute: three minutes, the last one in progress
    counts = [(m["requests"], len(m["contexts"])) for m in batch["minutes"]]
    assert counts == [(60, 30), (120, 30), (60, 30)]  # at most 30 per minute, each a uniform sample
    context = batch["minutes"][1]["contexts"][0]
    # what decide() saw: the drawn request plus the device's health and the service's class
    assert {"confidence", "priority", "temperature_c", "queue_depth", "service_class"} <= set(context)
    assert "region" not in context  # no region configured: left out, not null
    parsed, problems = parse_context_batch(batch, now_s=1_700_000_070 + 125)
    assert problems == [] and parsed.dropped_fields == []
