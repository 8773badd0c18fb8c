"""Region health from probes: the rendezvous of a live gateway moves off a region that stops
answering, and back once it answers again."""

from __future__ import annotations

import time

import pytest

from gateway.regions import FAIL_AFTER, RECOVER_AFTER, RegionHealth
from tests.gateway.support import good_bundle


def test_a_region_turns_unhealthy_after_failures_in_a_row_and_recovers_after_successes():
    health = RegionHealth()
    health.observe(True, 30.0)
    health.observe(False)
    assert health.healthy  # one lost probe moves nothing
    health.observe(True, 30.0)
    for _ in range(FAIL_AFTER):
        assert health.healthy
        health.observe(False)
    assert not health.healthy
    for _ in range(RECOVER_AFTER - 1):
        health.observe(True, 30.0)
        assert not health.healthy
    health.observe(False)  # a failure restarts the count
    for _ in range(RECOVER_AFTER):
        assert not health.healthy
        health.observe(True, 30.0)
    assert health.healthy


def test_the_round_trip_is_a_moving_average_of_successful_probes():
    health = RegionHealth()
    health.observe(True, 10.0)
    health.observe(False)
    health.observe(True, 20.0)
    assert health.rtt_ms == pytest.approx(0.7 * 10.0 + 0.3 * 20.0)


def _regional(revision: int) -> dict:
    bundle = good_bundle(revision)
    policy = bundle["routing_policy"]
    policy["regions"] = {
        "candidates": [
            {"name": "eu-west-1", "rtt_ms": {"eu-west": 8}},
            {"name": "eu-central-1", "rtt_ms": {"eu-west": 25}},
        ]
    }
    policy["rules"] = [{"name": "private", "chain": [{"route": "private_cloud", "timeout_ms": 300}]}]
    return bundle


def _hops(gateway) -> dict[str, int]:
    return dict(gateway.status()["load"].get("region_hops", {}))


def _shift(gateway, seconds: float) -> dict[str, int]:
    before = _hops(gateway)
    time.sleep(seconds)
    after = _hops(gateway)
    return {name: after.get(name, 0) - before.get(name, 0) for name in ("eu-west-1", "eu-central-1")}


def test_rendezvous_moves_off_a_region_whose_probes_fail_and_back_when_it_recovers(gateway_factory):
    gateway = gateway_factory("gw-regions", region="eu-west")
    assert gateway.push(_regional(2)).json()["status"] == "ack"
    time.sleep(1)
    assert _shift(gateway, 2) == {"eu-west-1": pytest.approx(40, abs=20), "eu-central-1": 0}  # the nearest

    down = gateway.folder / "state" / "region-down-eu-west-1"
    down.touch()
    status = gateway.wait_for(lambda s: not s["load"]["regions"]["eu-west-1"]["healthy"], timeout_s=10)
    assert status["load"]["regions"]["eu-central-1"]["healthy"]
    moved = _shift(gateway, 2)
    assert moved["eu-west-1"] == 0 and moved["eu-central-1"] > 20, moved

    down.unlink()
    gateway.wait_for(lambda s: s["load"]["regions"]["eu-west-1"]["healthy"], timeout_s=10)
    back = _shift(gateway, 2)
    assert back["eu-central-1"] == 0 and back["eu-west-1"] > 20, back
