"""Telemetry pushes land right after each minute ends (at a per-gateway offset), not at whatever
phase the gateway started in: the control plane evaluates a minute BUDGET_EVALUATION_GRACE_S after
it ends, and a push up to a minute late would delay every alert (and burn rollback) by a minute."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import ConfigError, GatewayConfig
from gateway.reporting import aligned_delay, telemetry_offset_s


@pytest.mark.parametrize(
    ("now", "interval", "offset", "delay"),
    [
        (120.0, 60.0, 3.0, 3.0),  # a minute boundary: 3 s to go
        (122.5, 60.0, 3.0, 0.5),
        (123.0, 60.0, 3.0, 60.0),  # exactly at the offset: the next one, never 0
        (150.0, 60.0, 3.0, 33.0),
        (125.0, 120.0, 1.5, 116.5),  # two-minute interval: k * 120 + 1.5
    ],
)
def test_the_next_push_is_at_the_offset_past_the_next_multiple_of_the_interval(now, interval, offset, delay):
    assert aligned_delay(now, interval, offset) == pytest.approx(delay)


def test_whole_minute_intervals_push_one_to_eleven_seconds_after_the_minute_spread_by_name():
    offsets = [telemetry_offset_s(GatewayConfig(name=f"edge-{k:03d}", service="s")) for k in range(200)]
    assert all(o is not None and 1.0 <= o < 11.0 for o in offsets)
    assert max(offsets) - min(offsets) > 8  # spread, not all in one second
    named = GatewayConfig(name="edge-007", service="s")
    assert telemetry_offset_s(named) == telemetry_offset_s(GatewayConfig(name="edge-007", service="s"))
    assert telemetry_offset_s(GatewayConfig(name="x", service="s", telemetry_spread_s=0)) == 1.0
    # sub-minute intervals (tests, demos on a fast clock) keep pushing every interval from start
    assert telemetry_offset_s(GatewayConfig(name="x", service="s", telemetry_interval_s=0.5)) is None
    assert telemetry_offset_s(GatewayConfig(name="x", service="s", telemetry_interval_s=90)) is None
    with pytest.raises(ConfigError, match="telemetry_spread_s"):
        GatewayConfig(name="x", service="s", telemetry_spread_s=-1).validate()


def test_an_aligned_loop_runs_at_its_offset_on_the_wall_clock(tmp_path: Path):
    """The loop itself, on the real clock: every run lands at 0.3 s past a whole 0.5 s."""
    gateway = Gateway(GatewayConfig(name="edge-1", service="s", state_dir=tmp_path))
    runs: list[float] = []
    done = threading.Event()

    def work() -> None:
        runs.append(time.time())
        if len(runs) == 4:
            done.set()

    try:
        gateway._every(0.5, work, "aligned", offset_s=0.3)
        assert done.wait(5)
    finally:
        gateway.stop.set()
    for at in runs:
        phase = (at - 0.3) % 0.5
        assert min(phase, 0.5 - phase) < 0.1, runs
