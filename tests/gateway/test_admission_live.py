"""The policy's admission control acts on a live reference gateway: it reports its load into every
request's routing context, so a rate limit refuses what exceeds it and load shedding drops the shed
priorities, and the refused requests show as `outcome="shed"` on /metrics and in its pushed telemetry."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import requests

from gateway.app import Gateway
from gateway.config import load_config
from slo import contract as c
from tests.gateway.support import SERVICE, good_bundle

REQUESTS = "inference_requests_total"


def _counts(url: str) -> Counter[str]:
    """Requests on /metrics by outcome (all routes), parsed from the exposition text."""
    text = requests.get(url + "/metrics", timeout=5).text
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        match = re.match(rf"{REQUESTS}\{{(.*)\}} ([0-9.e+]+)$", line)
        if match:
            outcome = re.search(r'outcome="([a-z]+)"', match.group(1)).group(1)  # type: ignore[union-attr]
            counts[outcome] += float(match.group(2))
    return counts


def _rates(url: str, seconds: float) -> tuple[float, float]:
    """(served, refused) requests per second over `seconds` of wall time."""
    before, started = _counts(url), time.monotonic()
    time.sleep(seconds)
    after, elapsed = _counts(url), time.monotonic() - started
    refused = after["shed"] - before["shed"]
    served = sum(after.values()) - sum(before.values()) - refused
    return served / elapsed, refused / elapsed


def _bundle(revision: int, **admission: object) -> dict:
    bundle = good_bundle(revision)
    bundle["routing_policy"]["admission"].update(admission)
    return bundle


def test_a_pushed_rate_limit_caps_what_the_live_gateway_admits(gateway_factory):
    gateway = gateway_factory("gw-limit", traffic={"rps": 40, "tick_s": 0.2})
    served, refused = _rates(gateway.url, 3)
    assert served > 25 and refused == 0  # no limit yet: everything offered is served

    assert gateway.push(_bundle(2, rate_limit_rps=10)).json()["status"] == "ack"
    time.sleep(1.5)  # a full one-second window under the new policy
    served, refused = _rates(gateway.url, 4)

    # about 11 a second pass (the limiter refuses once more than 10 passed in the last second)
    assert 6 <= served <= 16, served
    assert refused > 15, refused
    load = gateway.status()["load"]
    assert load["admissions"]["rejected"] > 0
    assert load["observed_rps"] <= 12


def test_load_shedding_drops_the_shed_priorities_only_when_the_load_crosses_the_threshold(gateway_factory):
    # 20 req/s on a device that serves 25: load 80%
    gateway = gateway_factory("gw-shed", traffic={"rps": 20, "tick_s": 0.2, "capacity_rps": 25})
    shedding = {"shed_priorities": ["low", "normal"], "best_effort_offload": False}
    assert gateway.push(_bundle(2, shed_load_pct=90, **shedding)).json()["status"] == "ack"
    time.sleep(1.5)
    served, refused = _rates(gateway.url, 3)
    assert refused == 0 and served > 12
    assert 55 <= gateway.status()["load"]["load_pct"] <= 85  # a tick takes a little over tick_s

    assert gateway.push(_bundle(3, shed_load_pct=50, **shedding)).json()["status"] == "ack"
    time.sleep(1.0)
    served, refused = _rates(gateway.url, 4)
    share = refused / (served + refused)
    # low and normal are 80% of the traffic (tests' default context), high and critical are served
    assert 0.65 <= share <= 0.92, share
    assert served > 1.5
    assert gateway.status()["load"]["admissions"]["shed"] > 0


def test_refused_requests_are_counted_in_the_pushed_telemetry(tmp_path: Path):
    config = load_config(
        None, {"name": "tele", "service": SERVICE, "state_dir": str(tmp_path), "seed": 4, "tick_s": 0.5}
    )
    gateway = Gateway(config)
    assert gateway.apply(_bundle(1, rate_limit_rps=5), source="push")[0]
    start = 1_700_000_040  # a minute boundary
    outcomes = []
    for tick in range(120):  # one minute at 20 req/s
        outcomes += gateway.tick(now=start + tick * 0.5, requests_count=10)
    gateway.tick(now=start + 61, requests_count=1)  # the next minute begins: the first is complete

    refused = [o for o in outcomes if o.outcome == "shed"]
    assert Counter(o.admission for o in refused) == {"rejected": len(refused)}
    assert 800 <= len(refused) <= 900  # 1,200 offered, about 6 a second pass
    _minutes, batch = gateway.telemetry_batch(now=start + 62)
    first = batch["minutes"][0]
    pushed = {
        (entry["labels"]["route"], entry["labels"]["outcome"]): entry["increase"]
        for entry in first["counters"]
        if entry["name"] == c.REQUESTS_TOTAL
    }
    assert pushed[("failed", "shed")] == len(refused)
    assert sum(pushed.values()) == 1200
