"""Request collapsing: identical requests in flight share one inference when the policy says so."""

from __future__ import annotations

import re
import time

import pytest
import requests

from gateway.collapse import Collapser
from gateway.traffic import Outcome
from tests.gateway.support import good_bundle


def test_a_follower_shares_the_leaders_answer_until_it_completes():
    collapser = Collapser(3, seed=1)
    leader = Outcome("public_cloud", "ok", 150.0, 0.0015, compute_s={"gpu-public": 0.04}, egress_bytes=900)
    collapser.lead(2, 10.0, leader)  # in flight until 10.15 s
    follower = collapser.follow(2, 10.1)
    assert follower is not None and follower.collapsed
    assert (follower.route, follower.outcome) == ("public_cloud", "ok")
    assert follower.elapsed_ms == pytest.approx(50.0)
    assert (follower.cost_usd, follower.compute_s, follower.egress_bytes) == (0.0, {}, 0)
    assert collapser.follow(2, 10.2) is None  # completed: the next one runs
    assert collapser.follow(1, 10.1) is None  # other content
    assert collapser.follow(None, 10.1) is None  # distinct request
    assert collapser.collapsed == 1
    collapser.lead(1, 11.0, Outcome("failed", "shed", 0.0, 0.0))
    assert collapser.follow(1, 11.0) is None  # a refused request leads nothing


def _compute_and_requests(url: str) -> tuple[float, float]:
    text = requests.get(url + "/metrics", timeout=5).text
    compute = sum(
        float(v)
        for v in re.findall(r'inference_compute_seconds_total\{accelerator="gpu-public"[^}]*\} (\S+)', text)
    )
    total = sum(float(v) for v in re.findall(r"inference_requests_total\{[^}]*\} (\S+)", text))
    return compute, total


def _compute_per_request(url: str, seconds: float) -> float:
    compute0, total0 = _compute_and_requests(url)
    time.sleep(seconds)
    compute1, total1 = _compute_and_requests(url)
    return (compute1 - compute0) / (total1 - total0)


def _public_cloud(revision: int, *, collapse: bool) -> dict:
    bundle = good_bundle(revision)
    policy = bundle["routing_policy"]
    policy["rules"] = [{"name": "cloud", "chain": [{"route": "public_cloud", "timeout_ms": 2000}]}]
    policy["admission"]["collapse_requests"] = collapse
    return bundle


def test_collapsing_on_a_live_gateway_answers_identical_requests_with_one_inference(gateway_factory):
    # three possible contents, ~140 ms in flight, 40 req/s: most requests find a twin in flight
    gateway = gateway_factory("gw-collapse", traffic={"rps": 40, "tick_s": 0.2, "distinct_requests": 3})
    assert gateway.push(_public_cloud(2, collapse=False)).json()["status"] == "ack"
    time.sleep(0.5)
    alone = _compute_per_request(gateway.url, 3)
    assert gateway.status()["load"]["collapsed"] == 0
    assert alone == pytest.approx(0.04, rel=0.05)  # one public-cloud inference per request

    assert gateway.push(_public_cloud(3, collapse=True)).json()["status"] == "ack"
    time.sleep(0.5)
    shared = _compute_per_request(gateway.url, 3)
    assert shared < 0.6 * alone, (shared, alone)
    assert gateway.status()["load"]["collapsed"] > 30
