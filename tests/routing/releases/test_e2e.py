"""End to end with real pieces: reference gateway processes push telemetry to a live control plane
(PostgreSQL) and take signed config pushes; the real ingest, budget evaluation, release tick and
delivery dispatcher run with explicit `now` values on a shared simulated clock (warp_gateway.py:
one simulated minute every 3 s of real time), so an hour of the loop runs in well under a minute.

1. A deliberately bad routing policy (everything escalated to a slow public cloud route that
   breaks the latency SLO) goes to a canary wave, the evaluation sees page-level burn (or the
   canary analysis fails first), the release rolls back automatically, and every canary gateway
   ACKs its previous config again. The time from the first evaluation that sees the page condition
   to the last rollback ACK is written to benchmarks/results/rollback_latency_simulated.json
   (the real-clock figure, with Celery beat and workers: benchmarks/bench_rollback.py).
2. A good release completes every wave.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.launch import REPO_ROOT, stop_gateways, wait_ready
from routing.policy import default_cache_config, default_policy
from tests.gateway.support import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SERVICE = "shelf-vision"
THRESHOLD_MS = 500
SPEED = 20.0  # simulated seconds per real second: a minute every 3 s
GATEWAYS = 3
# the simulated-clock figure; the real-clock one is benchmarks/bench_rollback.py (rollback_latency.json)
RESULTS = REPO_ROOT / "benchmarks" / "results" / "rollback_latency_simulated.json"
BAD_POLICY = {
    "service": SERVICE,
    "description": "BAD: everything escalated to the public cloud",
    "rules": [{"name": "everything-to-cloud", "chain": [{"route": "public_cloud", "timeout_ms": 480}]}],
}


@pytest.fixture
def users(transactional_db: Any) -> dict[str, Any]:
    """The shared users, after making sure the role groups exist: a transactional test's flush
    removes the groups the roles migration created, so the second test would find none."""
    from django.contrib.auth.models import Group

    from controlplane.roles import ROLE_ORDER
    from tests.conftest import make_user

    for role in ROLE_ORDER:
        Group.objects.get_or_create(name=role)
    return {
        "operator": make_user("otto", "operator"),
        "approver": make_user("anna", "approver"),
        "admin": make_user("ada", "admin"),
    }


@dataclass
class World:
    gateways: list[Any]
    processes: list[subprocess.Popen]
    urls: dict[int, str]
    start_s: float
    real0: float
    slo_ids: list[int]

    def sim_now(self) -> float:
        return self.start_s + (time.time() - self.real0) * SPEED

    def status(self, gateway_id: int) -> dict[str, Any]:
        return requests.get(self.urls[gateway_id] + "/status", timeout=5).json()


@pytest.fixture
def world(live_server: Any, users: dict[str, Any], service: Any, tmp_path: Path) -> Iterator[World]:
    from django.utils import timezone

    from controlplane.services import api_token_create  # noqa: F401 - users' tokens are not needed here
    from routing.documents.services import cache_config_create, routing_policy_create, routing_policy_update
    from routing.fleet.delivery import delivery_dispatch_due
    from routing.fleet.demo import gateway_toml
    from routing.fleet.services import gateway_register, gateway_set_desired
    from routing.releases.service_settings import release_settings_save
    from tests.support.releases import release_slos_create

    slos = release_slos_create(actor=users["operator"], service=SERVICE, threshold_ms=THRESHOLD_MS)
    good = default_policy(SERVICE, "interactive", THRESHOLD_MS)
    line = routing_policy_create(actor=users["operator"], service=service, document=good)
    routing_policy_update(actor=users["operator"], line_id=line.pk, document=BAD_POLICY, note="v2: bad")
    routing_policy_update(
        actor=users["operator"],
        line_id=line.pk,
        document={**good, "description": "v3: good, reworded"},
        note="v3: good",
    )
    cache_config_create(actor=users["operator"], service=service, document=default_cache_config(SERVICE))
    release_settings_save(
        actor=users["admin"],
        service_name=SERVICE,
        data={"required_approvals": 1, "canary": {"lag_minutes": 0, "window_minutes": 2}},
    )

    now = timezone.now()
    # Simulated time starts two hours back, so every pushed minute has ended on the real clock.
    start_s = (int(now.timestamp()) // 60) * 60 - 2 * 3600
    real0 = time.time()
    env = {
        **os.environ,
        "WARP_START": str(start_s),
        "WARP_REAL0": str(real0),
        "WARP_SPEED": str(SPEED),
        "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    gateways, processes, urls = [], [], {}
    try:
        for index in range(GATEWAYS):
            port = free_port()
            folder = tmp_path / f"gw{index}"
            folder.mkdir()
            credentials = gateway_register(
                actor=users["operator"],
                data={
                    "name": f"edge-{index:02d}",
                    "service": SERVICE,
                    "tier": "edge",
                    "region": ("eu-west", "eu-central")[index % 2],
                    "push_url": f"http://127.0.0.1:{port}/config",
                },
            )
            gateway = credentials.gateway
            config = folder / "gateway.toml"
            config.write_text(
                gateway_toml(
                    {
                        "gateway": {
                            "name": gateway.name,
                            "id": gateway.pk,
                            "service": SERVICE,
                            "tier": "edge",
                            "region": gateway.region,
                            "listen": f"127.0.0.1:{port}",
                            "state_dir": str(folder / "state"),
                            "seed": 11 + index,
                            "signing_secret": credentials.signing_secret,
                            "latency_slo_ms": THRESHOLD_MS,
                        },
                        "control_plane": {
                            "url": live_server.url,
                            "token": credentials.token,
                            "poll_interval_s": 0,
                            "heartbeat_interval_s": 0,
                            "push_telemetry": True,
                            "telemetry_interval_s": 0.5,
                        },
                        # ~400 requests per simulated minute: 12 ticks of 33 requests
                        "traffic": {"rps": 133, "tick_s": 0.25},
                        # the public cloud route of this site is slow: 700 ms median, 1.5 s p95
                        "routes.public_cloud": {"p50_ms": 700, "p95_ms": 1500},
                    }
                )
            )
            with open(folder / "gateway.log", "ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "tests.routing.releases.warp_gateway", "--config", str(config)],
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            processes.append(process)
            if not wait_ready("127.0.0.1", port, timeout_s=30, process=process):
                raise RuntimeError((folder / "gateway.log").read_text()[-3000:])
            gateways.append(gateway)
            urls[gateway.pk] = f"http://127.0.0.1:{port}"
        bundle = {
            "routing_policy": good,
            "cache_config": default_cache_config(SERVICE),
            "model_version": None,
        }
        sim = datetime.fromtimestamp(start_s + (time.time() - real0) * SPEED, tz=UTC)
        gateway_set_desired(
            actor=users["operator"],
            gateway_ids=[g.pk for g in gateways],
            bundle_for=bundle,
            reason="initial",
            now=sim,
        )
        report = delivery_dispatch_due(now=sim)
        assert report.outcomes.get("ack") == GATEWAYS, report.as_dict()
        yield World(gateways, processes, urls, start_s, real0, [s.pk for s in slos])
    finally:
        stop_gateways(processes)


def wait_for_minute(world: World, minute: int, timeout_s: float = 20.0) -> None:
    """Until every gateway has pushed `minute` (epoch minutes) and the ingest stored it."""
    from slo.models.telemetry import SliMinute

    sources = [f"gateway:{g.pk}" for g in world.gateways]
    while world.sim_now() < (minute + 1) * 60:
        time.sleep(0.05)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = SliMinute.objects.filter(slo_id=world.slo_ids[0], minute=minute, source__in=sources).count()
        if seen == len(sources):
            return
        time.sleep(0.05)
    raise AssertionError(f"minute {minute} not pushed by every gateway within {timeout_s} s")


def cycle(world: World, minute: int, *, extra: Callable[[datetime], None] | None = None) -> dict[str, Any]:
    """One evaluation interval at the end of `minute`: evaluate, tick, deliver, tick again."""
    from routing.fleet.delivery import delivery_dispatch_due
    from routing.releases.rollout import release_tick
    from slo.budget.evaluation import slo_evaluate_all
    from slo.budget.feed import budget_sync

    wait_for_minute(world, minute)
    now = datetime.fromtimestamp((minute + 1) * 60, tz=UTC)
    budget_sync(now=now, minutes=15)
    slo_evaluate_all(now=now)
    if extra is not None:
        extra(now)
    first = release_tick(now=now)
    real_before_dispatch = time.monotonic()
    delivered = delivery_dispatch_due(now=now)
    second = release_tick(now=now)
    return {
        "now": now,
        "first": first,
        "delivered": delivered.as_dict(),
        "second": second,
        "dispatch_s": time.monotonic() - real_before_dispatch,
    }


def current_minute(world: World) -> int:
    return int(world.sim_now() // 60)


def release_through_api(
    world: World, users: dict[str, Any], version: int, waves: list[dict[str, Any]], now: datetime
) -> int:
    from routing.documents.services import routing_policy_approve
    from routing.models.documents import RoutingPolicyVersion
    from routing.releases.lifecycle import release_approve, release_create, release_submit

    written = RoutingPolicyVersion.objects.get(line__service__name=SERVICE, version=version)
    if written.state == "draft":  # a release ships only approved versions; never approved by their author
        routing_policy_approve(actor=users["admin"], line_id=written.line_id, version=version, now=now)
    release = release_create(
        actor=users["operator"],
        data={
            "service": SERVICE,
            "reason": f"policy v{version}",
            "routing_policy_version": version,
            "waves": waves,
        },
        now=now,
    )
    release_submit(actor=users["operator"], release_id=release.pk, now=now)
    release_approve(actor=users["approver"], release_id=release.pk, comment="approved for the test", now=now)
    return release.pk


def test_a_bad_policy_is_rolled_back_automatically_from_the_canary_wave(world, users):
    from controlplane.models import AuditEvent
    from routing.models.releases import Release, ReleaseRollback
    from slo.models.budget import AlertEvent

    started = time.monotonic()
    minute = current_minute(world) + 1  # the first whole minute with the initial config everywhere
    for _ in range(5):  # warm-up: good traffic, healthy budget
        cycle(world, minute)
        minute += 1
    release_id = {}

    def submit(now: datetime) -> None:
        release_id["id"] = release_through_api(
            world, users, 2, [{"percent": 66, "bake_s": 600}, {"percent": 100, "bake_s": 0}], now
        )

    result = cycle(world, minute, extra=submit)
    minute += 1
    release = Release.objects.get(pk=release_id["id"])
    assert release.state == "rolling_out" and release.wave_phase == "baking", result
    canary_ids = release.waves[0]["gateway_ids"]
    assert len(canary_ids) == 2
    for gateway_id in canary_ids:
        status = world.status(gateway_id)
        assert status["routing_policy_description"].startswith("BAD"), status
    release_revision = {g: release.targets.get(gateway_id=g).release_revision for g in canary_ids}

    rollback_cycle = None
    for _ in range(8):
        result = cycle(world, minute)
        minute += 1
        release.refresh_from_db()
        if release.state == "rolled_back":
            rollback_cycle = result
            break
    assert rollback_cycle is not None, f"no rollback; last cycle {result}"
    rollback = ReleaseRollback.objects.get(release=release)
    assert rollback.trigger in ("burn", "canary"), rollback.trigger
    # every canary gateway ACKed the rollback revision (a newer revision with the old bundle)
    assert rollback.acknowledged_at is not None, rollback_cycle
    for gateway_id in canary_ids:
        status = world.status(gateway_id)
        assert (
            status["applied_revision"]
            == rollback.gateway_revisions[str(gateway_id)]
            > release_revision[gateway_id]
        )
        assert status["routing_policy_description"].startswith("default policy"), status
    untouched = [g.pk for g in world.gateways if g.pk not in canary_ids]
    assert all(world.status(g)["applied_revision"] == 1 for g in untouched)

    page = AlertEvent.objects.filter(severity="page", state="firing").order_by("at").first()
    page_at = page.at if page is not None else None
    evaluation_interval_s = 60.0
    ack_sim = rollback_cycle["now"].timestamp() + rollback_cycle["dispatch_s"] * SPEED
    figure = {
        "trigger": rollback.trigger,
        "page_condition_first_seen_at": page_at.isoformat() if page_at else None,
        "rollback_issued_at": rollback.at.isoformat(),
        "rollback_acknowledged_at": rollback.acknowledged_at.isoformat(),
        "dispatch_to_all_acks_real_s": round(rollback_cycle["dispatch_s"], 4),
        "page_to_ack_evaluation_intervals": (
            round((ack_sim - page_at.timestamp()) / evaluation_interval_s, 3) if page_at else None
        ),
        "first_bad_minute_to_ack_evaluation_intervals": round(
            (ack_sim - release.rollout_started_at.timestamp()) / evaluation_interval_s, 3
        ),
        "target_evaluation_intervals": 2,
        "evaluation_interval_s": evaluation_interval_s,
        "simulated_speed": SPEED,
        "test_wall_s": round(time.monotonic() - started, 1),
        "notes": "simulated clock: the control plane ran evaluate + tick + dispatch once per simulated minute; "
        "2 shared cores, figures may be pessimistic",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figure, indent=2) + "\n")
    print("rollback latency:", json.dumps(figure))
    if page_at is not None and rollback.trigger == "burn":
        assert figure["page_to_ack_evaluation_intervals"] <= 2
    # the audit trail: transitions, desired revisions (with rollback priority) and the rollback itself
    actions = set(
        AuditEvent.objects.filter(object_type="routing.release", object_id=str(release.pk)).values_list(
            "action", flat=True
        )
    )
    assert {
        "release_submit",
        "release_approve",
        "release_start",
        "release_rollback",
        "release_rollback_issued",
        "release_rollback_acknowledged",
    } <= actions
    rollbacks = AuditEvent.objects.filter(action="set_desired", after__priority="rollback")
    assert rollbacks.count() == len(canary_ids)


def test_a_good_release_completes_every_wave(world, users):
    from routing.models.releases import Release

    minute = current_minute(world) + 1
    for _ in range(4):
        cycle(world, minute)
        minute += 1
    release_id = {}

    def submit(now: datetime) -> None:
        release_id["id"] = release_through_api(
            world, users, 3, [{"percent": 33, "bake_s": 120}, {"percent": 100, "bake_s": 60}], now
        )

    cycle(world, minute, extra=submit)
    minute += 1
    release = Release.objects.get(pk=release_id["id"])
    for _ in range(8):
        if release.state != "rolling_out":
            break
        cycle(world, minute)
        minute += 1
        release.refresh_from_db()
    assert release.state == "completed", list(release.transitions.values_list("event", "reason"))
    assert [t.event for t in release.transitions.all()] == [
        "submit",
        "approve",
        "start",
        "advance",
        "complete",
    ]
    canary_results = list(release.gate_results.filter(gate="canary").values_list("outcome", flat=True))
    assert canary_results and set(canary_results) == {"pass"}, canary_results
    for gateway in world.gateways:
        status = world.status(gateway.pk)
        assert status["routing_policy_description"] == "v3: good, reworded", status
