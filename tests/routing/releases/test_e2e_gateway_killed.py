"""Fault: a gateway is killed during a rollout (real gateway processes, live control plane).

The release must not pass a wave it could not deliver: it waits for the ACK, then pauses for a
person with the missing gateway named. When the gateway comes back and a person resumes, the
gateway converges to the release's revision and the release completes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.launch import REPO_ROOT, wait_ready
from tests.routing.releases.test_e2e import (  # noqa: F401 - fixtures are used by name
    SPEED,
    World,
    current_minute,
    release_through_api,
    users,
    world,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _wait_for_live_minute(w: World, minute: int, live: set[int], timeout_s: float = 20.0) -> None:
    from slo.models.telemetry import SliMinute

    sources = [f"gateway:{g}" for g in live]
    while w.sim_now() < (minute + 1) * 60:
        time.sleep(0.05)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if SliMinute.objects.filter(slo_id=w.slo_ids[0], minute=minute, source__in=sources).count() == len(
            sources
        ):
            return
        time.sleep(0.05)
    raise AssertionError(f"minute {minute} not pushed by the live gateways")


def _cycle(w: World, minute: int, live: set[int]) -> str:
    """One evaluation interval, with the production order: evaluate, tick, reconcile, deliver, tick."""
    from routing.fleet.delivery import delivery_dispatch_due, fleet_reconcile
    from routing.releases.rollout import release_tick
    from slo.budget.evaluation import slo_evaluate_all
    from slo.budget.feed import budget_sync

    _wait_for_live_minute(w, minute, live)
    now = datetime.fromtimestamp((minute + 1) * 60, tz=UTC)
    budget_sync(now=now, minutes=15)
    slo_evaluate_all(now=now)
    release_tick(now=now)
    fleet_reconcile(now=now)
    delivery_dispatch_due(now=now)
    return str(release_tick(now=now))


def _restart(w: World, gateway_index: int, tmp_path: Path) -> subprocess.Popen:
    folder = tmp_path / f"gw{gateway_index}"
    env = {
        **os.environ,
        "WARP_START": str(w.start_s),
        "WARP_REAL0": str(w.real0),
        "WARP_SPEED": str(SPEED),
        "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    with open(folder / "gateway.log", "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.routing.releases.warp_gateway",
                "--config",
                str(folder / "gateway.toml"),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    port = int(w.urls[w.gateways[gateway_index].pk].rsplit(":", 1)[1])
    assert wait_ready("127.0.0.1", port, timeout_s=30, process=process), (folder / "gateway.log").read_text()[
        -2000:
    ]
    return process


def test_a_gateway_killed_during_a_rollout_pauses_the_wave_and_converges_after_it_returns(
    world: World,  # noqa: F811 - the imported fixture
    users: dict[str, Any],  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    from routing.models.fleet import Gateway
    from routing.models.releases import Release
    from routing.releases.lifecycle import release_resume

    live = {g.pk for g in world.gateways}
    minute = current_minute(world) + 1
    for _ in range(3):
        _cycle(world, minute, live)
        minute += 1
    now = datetime.fromtimestamp((minute + 1) * 60, tz=UTC)
    _wait_for_live_minute(world, minute, live)
    release_id = release_through_api(
        world, users, 3, [{"percent": 33, "bake_s": 60}, {"percent": 100, "bake_s": 0}], now
    )
    release = Release.objects.get(pk=release_id)
    wave_two = [g for g in release.waves[1]["gateway_ids"] if g not in release.waves[0]["gateway_ids"]]
    victim_id = wave_two[0]
    victim_index = next(i for i, g in enumerate(world.gateways) if g.pk == victim_id)

    # Kill it before its wave is delivered.
    world.processes[victim_index].kill()
    world.processes[victim_index].wait(timeout=10)
    live.discard(victim_id)

    paused_at_minute = None
    for _ in range(16):
        _cycle(world, minute, live)
        minute += 1
        release.refresh_from_db()
        if release.state == "paused":
            paused_at_minute = minute
            break
        assert release.state == "rolling_out", (
            release.state,
            list(release.transitions.values_list("event", "reason")),
        )
    assert paused_at_minute is not None, "the release never paused for the unreachable gateway"
    assert str(victim_id) in release.paused_reason or "did not acknowledge" in release.paused_reason
    victim = Gateway.objects.get(pk=victim_id)
    assert victim.applied_revision != victim.desired_revision  # drifted while down

    # It comes back; a person decides to go on.
    world.processes[victim_index] = _restart(world, victim_index, tmp_path)
    live.add(victim_id)
    release_resume(
        actor=users["approver"],
        release_id=release_id,
        reason="edge-site power restored",
        now=datetime.fromtimestamp((minute + 1) * 60, tz=UTC),
    )
    for _ in range(12):
        _cycle(world, minute, live)
        minute += 1
        release.refresh_from_db()
        if release.state == "completed":
            break
    assert release.state == "completed", list(release.transitions.values_list("event", "reason"))
    victim.refresh_from_db()
    assert victim.applied_revision == victim.desired_revision
    assert world.status(victim_id)["routing_policy_description"] == "v3: good, reworded"
