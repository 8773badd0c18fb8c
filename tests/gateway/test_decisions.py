"""The reference gateway's decision records: a bounded sample per interval, logged, kept while the
control plane is unreachable, and what the policy really did."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from gateway.app import Gateway
from gateway.config import load_config
from routing.fleet.decision_format import parse_decision_batch
from tests.gateway.support import SERVICE, free_port, good_bundle


def _gateway(tmp_path: Path, sample: int) -> Gateway:
    # a control plane nobody listens on: every push is "unreachable"
    config = load_config(
        None,
        {
            "name": "sim",
            "service": SERVICE,
            "state_dir": str(tmp_path),
            "seed": 5,
            "gateway_id": 1,
            "token": "gw_x",
            "decision_sample": sample,
            "control_plane_url": f"http://127.0.0.1:{free_port()}",
        },
    )
    return Gateway(config)


def test_each_interval_samples_at_most_n_records_logs_them_and_keeps_them_until_sent(tmp_path, caplog):
    gateway = _gateway(tmp_path, sample=7)
    assert gateway.apply(good_bundle(3), source="push")[0]
    now = time.time()
    outcomes = [o for tick in range(5) for o in gateway.tick(now=now + tick, requests_count=50)]
    with caplog.at_level(logging.INFO, logger="gateway"):
        assert gateway.push_decisions_once() == "unreachable"
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("decision request_id=")]
    assert len(logged) == 7  # 250 requests decided, 7 sampled
    pending = gateway._decisions_pending
    assert all(
        f"decision request_id={r['request_id']} " in line for r, line in zip(pending, logged, strict=True)
    )
    routes = {o.route for o in outcomes}
    assert all(r["route"] in routes and r["revision"] == 3 and r["model_version"] == "v1" for r in pending)
    # every record is one the control plane accepts, and says what the policy decided
    records, problems = parse_decision_batch(
        {"contract_version": 1, "gateway": "sim", "records": pending}, now_s=now + 10, oldest_s=now - 60
    )
    assert problems == [] and len(records) == 7
    assert all(r.chain and (r.route in r.chain or r.route == "failed") for r in records)

    gateway.tick(now=now + 6, requests_count=50)
    assert gateway.push_decisions_once() == "unreachable"
    assert len(gateway._decisions_pending) == 14  # the unsent sample is kept, the new one added


def test_a_zero_sample_sends_nothing(tmp_path):
    gateway = _gateway(tmp_path, sample=0)
    gateway.tick(now=time.time(), requests_count=50)
    assert gateway.push_decisions_once() == "nothing"
