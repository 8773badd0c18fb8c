"""Batching windows on the local model: the adaptive batch size (pure), and on live gateways a
batching window raises the throughput of a saturated local model and the latency of a quiet one."""

from __future__ import annotations

import re
import time

import pytest
import requests

from gateway.batching import BATCH_COST, LocalQueue, batch_ms, flush_size, flush_wait_ms
from tests.gateway.support import good_bundle


@pytest.mark.parametrize(
    ("queued", "maximum", "size", "wait"),
    [(0, 8, 1, 20.0), (1, 8, 1, 20.0), (5, 8, 5, 20.0), (8, 8, 8, 0.0), (50, 8, 8, 0.0), (3, 1, 1, 0.0)],
)
def test_the_batch_size_follows_the_queue_and_a_full_queue_does_not_wait(queued, maximum, size, wait):
    assert flush_size(queued, maximum) == size
    assert flush_wait_ms(queued, maximum, 20.0) == wait


def test_a_batch_costs_less_than_its_requests_one_by_one():
    assert batch_ms(10.0, 1) == 10.0
    assert batch_ms(10.0, 8) == pytest.approx(10.0 * (1 + 7 * BATCH_COST))


def test_a_quiet_queue_waits_for_the_window_and_a_deep_one_flushes_full_batches():
    quiet = LocalQueue(1)
    slots = quiet.run([0.0, 1.0], [100.0, 100.0], lambda: 10.0, max_batch_size=4, max_wait_ms=20.0)
    # alone in the window: each waits the whole 20 ms, then is served alone
    assert [(round(s.queue_ms, 6), s.inference_ms, s.batch) for s in slots] == [(20.0, 10.0, 1)] * 2

    deep = LocalQueue(1)
    arrivals = [0.0] * 8
    slots = deep.run(arrivals, [1000.0] * 8, lambda: 10.0, max_batch_size=4, max_wait_ms=20.0)
    first_batch = batch_ms(10.0, 4)
    assert deep.batches == [4, 4]
    assert [s.queue_ms for s in slots] == [0.0] * 4 + [pytest.approx(first_batch)] * 4  # no window wait


def test_a_batch_fills_before_the_window_closes_and_late_requests_leave_at_their_timeout():
    queue = LocalQueue(1)
    slots = queue.run([0.0, 0.005, 0.010], [100.0] * 3, lambda: 10.0, max_batch_size=3, max_wait_ms=50.0)
    assert queue.batches == [3]  # full at 10 ms: flushed then, not at 50 ms
    assert [round(s.queue_ms, 6) for s in slots] == [10.0, 5.0, 0.0]

    busy = LocalQueue(1)
    slots = busy.run([0.0, 0.0, 0.0], [30.0, 30.0, 30.0], lambda: 20.0)
    # one at a time: the second starts after 20 ms, the third would wait 40 ms > its 30 ms timeout
    assert [(round(s.queue_ms, 6), s.batch) for s in slots] == [(0.0, 1), (20.0, 1), (30.0, 0)]
    assert busy.batches == [1, 1]


def _local_only(revision: int, batching: dict | None) -> dict:
    bundle = good_bundle(revision)
    policy = bundle["routing_policy"]
    policy["rules"] = [{"name": "local-only", "chain": [{"route": "local", "timeout_ms": 150}]}]
    policy["admission"]["enabled"] = False
    if batching:
        policy["batching"] = batching
    return bundle


def _local_ok(url: str) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    match = re.search(r'inference_requests_total\{outcome="ok",route="local",[^}]*\} ([0-9.e+]+)', text)
    return float(match.group(1)) if match else 0.0


def test_a_batching_window_raises_throughput_under_load_and_latency_when_quiet(gateway_factory):
    window = {"max_wait_ms": 20, "max_batch_size": 16}
    gateways = {}
    for load, rps in (("busy", 250), ("quiet", 20)):
        for mode, batching in (("plain", None), ("batched", window)):
            gw = gateway_factory(f"gw-{load}-{mode}", traffic={"rps": rps, "tick_s": 0.2, "local_workers": 2})
            assert gw.push(_local_only(2, batching)).json()["status"] == "ack"
            gateways[load, mode] = gw
    time.sleep(1.5)
    before = {key: _local_ok(gw.url) for key, gw in gateways.items()}
    started = time.monotonic()
    time.sleep(4)
    elapsed = time.monotonic() - started
    rate = {key: (_local_ok(gw.url) - before[key]) / elapsed for key, gw in gateways.items()}

    # two workers answer ~100 req/s one at a time; batches of up to 16 answer all ~250 offered
    assert rate["busy", "batched"] > 150, rate
    assert rate["busy", "batched"] > 3 * rate["busy", "plain"], rate
    assert gateways["busy", "batched"].status()["load"]["mean_batch_size"] > 2
    # quiet: nothing to batch, so each request waits out the 20 ms window
    quiet = {mode: gateways["quiet", mode].status() for mode in ("plain", "batched")}
    assert quiet["batched"]["traffic"]["p50_ms"] >= quiet["plain"]["traffic"]["p50_ms"] + 12, quiet
    assert quiet["batched"]["load"]["mean_batch_size"] < 1.5
