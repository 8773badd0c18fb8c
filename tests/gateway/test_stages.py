"""Per-stage latency: every ok answer's serving attempt split into queue, network, model and
post-processing, on /metrics and in the pushed minutes, with a per-stage budget checked in /status."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from gateway.app import Gateway
from gateway.config import ConfigError, load_config
from slo import contract as c
from tests.gateway.support import SERVICE, good_bundle

START = 1_700_000_040  # a minute boundary


def _batched_local(revision: int, batching: dict | None) -> dict:
    bundle = good_bundle(revision)
    policy = bundle["routing_policy"]
    policy["rules"] = [
        {
            "name": "low-confidence",
            "when": {"confidence_max": 0.5},
            "chain": [{"route": "private_cloud", "timeout_ms": 400}],
        },
        {"name": "local", "chain": [{"route": "local", "timeout_ms": 150}]},
    ]
    if batching:
        policy["batching"] = batching
    return bundle


def test_the_stages_of_each_answer_add_up_and_are_pushed_with_the_minute(tmp_path: Path):
    config = load_config(
        None,
        {"name": "stages", "service": SERVICE, "state_dir": str(tmp_path), "seed": 2, "local_workers": 2},
    )
    gateway = Gateway(config)
    assert gateway.apply(_batched_local(1, {"max_wait_ms": 10, "max_batch_size": 8}), source="push")[0]
    outcomes = []
    for second in range(60):
        outcomes += gateway.tick(now=START + second, requests_count=40)
    gateway.tick(now=START + 61, requests_count=1)

    ok = [o for o in outcomes if o.outcome == "ok"]
    assert {o.route for o in ok} >= {"local", "private_cloud"}
    for o in ok:
        assert set(o.stages) == {"queue", "network", "model", "postprocessing"}
        if not o.fallbacks:
            assert sum(o.stages.values()) == pytest.approx(o.elapsed_ms)
        if o.route == "private_cloud":
            assert o.stages["network"] == 15.0 and o.stages["queue"] == 0.0
    assert max(o.stages["queue"] for o in ok if o.route == "local") > 5  # the batching window

    _minutes, batch = gateway.telemetry_batch(now=START + 62)
    pushed = {
        (entry["name"], entry["labels"]["stage"], entry["labels"].get("le")): entry["increase"]
        for entry in batch["minutes"][0]["counters"]
        if entry["name"].startswith(c.STAGE_DURATION)
    }
    for stage in ("queue", "network", "model", "postprocessing"):
        assert pushed[(f"{c.STAGE_DURATION}_count", stage, None)] == len(ok)
        total = sum(o.stages[stage] for o in ok) / 1000
        assert pushed[(f"{c.STAGE_DURATION}_sum", stage, None)] == pytest.approx(total, abs=1e-5)
        assert pushed[(f"{c.STAGE_DURATION}_bucket", stage, "+Inf")] == len(ok)
        within_10ms = sum(1 for o in ok if o.stages[stage] / 1000 <= 0.01)
        assert pushed.get((f"{c.STAGE_DURATION}_bucket", stage, "0.01"), 0) == within_10ms


def test_a_budget_for_an_unknown_stage_is_refused(tmp_path: Path):
    toml = tmp_path / "gateway.toml"
    toml.write_text("[stage_budget_ms]\ninference = 20\n")
    with pytest.raises(ConfigError, match="stage_budget_ms.inference"):
        load_config(str(toml), {"name": "x", "service": SERVICE})
    toml.write_text("[stage_budget_ms]\nqueue = 0\n")
    with pytest.raises(ConfigError, match="stage_budget_ms.queue"):
        load_config(str(toml), {"name": "x", "service": SERVICE})


def test_a_live_gateway_checks_each_stage_against_its_budget(gateway_factory):
    gateway = gateway_factory(
        "gw-stages",
        traffic={"rps": 20, "tick_s": 0.2, "local_workers": 2},
        stage_budget_ms={"queue": 5, "model": 80},
    )
    assert gateway.push(_batched_local(2, None)).json()["status"] == "ack"
    time.sleep(3)
    stages = gateway.status()["stages"]
    assert stages["queue"]["within"] and stages["model"]["within"], stages
    assert stages["queue"]["budget_ms"] == 5

    # a 20 ms batching window: a quiet queue waits it out, so the queue stage breaks its budget
    gateway.stop()  # a fresh /status window (the restart runs revision 2 from last-known-good)
    gateway.start()
    assert gateway.push(_batched_local(3, {"max_wait_ms": 20, "max_batch_size": 8})).json()["status"] == "ack"
    time.sleep(3)
    stages = gateway.status()["stages"]
    assert not stages["queue"]["within"] and stages["queue"]["p95_ms"] >= 15, stages
    assert stages["model"]["within"], stages
    text = requests.get(gateway.url + "/metrics", timeout=5).text
    assert f'{c.STAGE_DURATION}_count{{service="{SERVICE}",stage="queue",tier="edge"}}' in text
