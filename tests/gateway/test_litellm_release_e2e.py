"""End to end with two real LiteLLM proxies, each behind our agent, and a live control plane
(PostgreSQL): the telemetry callback inside each proxy pushes per-minute telemetry that feeds the
service's SLOs; a release of a bad routing policy rolls out in waves to both proxies, burns budget,
is rolled back automatically, and both proxies run the previous config afterwards, confirmed by
reading them back.

Time: the callback counts requests on a simulated clock (tests/gateway/litellm_warp_callback.py,
one simulated minute every 6 s of real time) and the control plane's evaluation, release tick and
delivery run with matching `now` values, as in tests/routing/releases/test_e2e.py.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.litellm_agent import read_back
from gateway.litellm_config import readback_mismatches
from routing.policy import default_cache_config, default_policy
from tests.gateway.litellm_support import MASTER_KEY, SERVICE, AgentProcess, deployments, litellm_binary

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

THRESHOLD_MS = 500
SPEED = 10.0
GOOD = default_policy(SERVICE, "interactive", THRESHOLD_MS)
BAD = {
    "service": SERVICE,
    "description": "BAD: everything to the public cloud",
    "rules": [{"name": "everything-to-cloud", "chain": [{"route": "public_cloud", "timeout_ms": 480}]}],
}


@pytest.fixture
def users(transactional_db: Any) -> dict[str, Any]:
    from django.contrib.auth.models import Group

    from controlplane.roles import ROLE_ORDER
    from tests.conftest import make_user

    for role in ROLE_ORDER:
        Group.objects.get_or_create(name=role)
    return {
        "viewer": make_user("vera", "viewer"),
        "operator": make_user("otto", "operator"),
        "approver": make_user("anna", "approver"),
        "admin": make_user("ada", "admin"),
    }


class Traffic:
    """One client thread per proxy sending chat requests until stopped (bounded: 20 per second)."""

    def __init__(self, agents: list[AgentProcess]) -> None:
        self.stop_event = threading.Event()
        self.answers: dict[int, list[int]] = {i: [] for i in range(len(agents))}
        self.threads = [
            threading.Thread(target=self._run, args=(i, agent), daemon=True) for i, agent in enumerate(agents)
        ]

    def _run(self, index: int, agent: AgentProcess) -> None:
        session = requests.Session()
        while not self.stop_event.is_set():
            try:
                status = session.post(
                    agent.proxy_url + "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {MASTER_KEY}"},
                    json={"model": SERVICE, "messages": [{"role": "user", "content": "count"}]},
                    timeout=10,
                ).status_code
            except requests.RequestException:
                status = 0  # the proxy is restarting on a new config
            self.answers[index].append(status)
            self.stop_event.wait(0.05)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=15)


@dataclass
class World:
    gateways: list[Any]
    agents: list[AgentProcess]
    start_s: float
    real0: float
    slo_ids: list[int]
    traffic: Traffic | None = None
    log: list[dict[str, Any]] = field(default_factory=list)

    def sim_now(self) -> float:
        return self.start_s + (time.time() - self.real0) * SPEED


@pytest.fixture
def world(live_server: Any, users: dict[str, Any], service: Any, tmp_path: Path) -> Iterator[World]:
    from django.utils import timezone

    from routing.documents.services import cache_config_create, routing_policy_create, routing_policy_update
    from routing.fleet.delivery import delivery_dispatch_due
    from routing.fleet.services import gateway_register, gateway_set_desired
    from routing.releases.service_settings import release_settings_save
    from slo.services import slo_create

    litellm_binary()
    slos = [
        slo_create(
            actor=users["operator"],
            data={
                "name": name,
                "service": SERVICE,
                "sli": sli,
                "objective": 99.0,
                "window": {"type": "rolling", "days": 28},
            },
        )
        for name, sli in (
            ("availability", {"kind": "availability"}),
            ("latency", {"kind": "latency", "threshold_ms": THRESHOLD_MS}),
        )
    ]
    line = routing_policy_create(actor=users["operator"], service=service, document=GOOD)
    routing_policy_update(actor=users["operator"], line_id=line.pk, document=BAD, note="v2: bad")
    cache_config_create(actor=users["operator"], service=service, document=default_cache_config(SERVICE))
    release_settings_save(
        actor=users["admin"],
        service_name=SERVICE,
        data={"required_approvals": 1, "canary": {"lag_minutes": 0, "window_minutes": 2}},
    )
    now = timezone.now()
    start_s = (int(now.timestamp()) // 60) * 60 - 2 * 3600
    real0 = time.time()
    env = {
        "WARP_START": str(start_s),
        "WARP_REAL0": str(real0),
        "WARP_SPEED": str(SPEED),
        "SLO_TELEMETRY_INTERVAL_S": "0.5",
    }
    gateways, agents = [], []
    try:
        for index in range(2):
            agent = AgentProcess(tmp_path / f"proxy{index}", signing_secret="", env=env)
            credentials = gateway_register(
                actor=users["operator"],
                data={
                    "name": f"litellm-{index}",
                    "kind": "litellm-proxy",
                    "service": SERVICE,
                    "tier": "private_cloud",
                    "region": "eu-west",
                    "push_url": f"{agent.url}/config",
                    "adapter": {
                        "proxy_url": agent.proxy_url,
                        "deployments": deployments(),
                        "callback": "tests.gateway.litellm_warp_callback.handler",
                    },
                    "adapter_secret": MASTER_KEY,
                },
            )
            agent.signing_secret = credentials.signing_secret
            agent.gateway_id = credentials.gateway.pk
            agent.control_plane_url = live_server.url
            agent.token = credentials.token
            agent.heartbeat_s = 1.0
            agents.append(agent)
            agent.start()
            gateways.append(credentials.gateway)
        sim = datetime.fromtimestamp(start_s + (time.time() - real0) * SPEED, tz=UTC)
        gateway_set_desired(
            actor=users["operator"],
            gateway_ids=[g.pk for g in gateways],
            bundle_for={"routing_policy": GOOD, "cache_config": default_cache_config(SERVICE)},
            reason="initial",
            now=sim,
        )
        report = delivery_dispatch_due(now=sim)
        assert report.outcomes == {"ack": 2}, [a.log() for a in agents]
        world = World(gateways, agents, start_s, real0, [s.pk for s in slos])
        world.traffic = Traffic(agents)
        world.traffic.start()
        yield world
    finally:
        for agent in agents:
            if os.environ.get("LITELLM_TEST_LOGS"):
                print(agent.log())
        traffic = locals().get("world")
        if traffic is not None and traffic.traffic is not None:
            traffic.traffic.stop()
        for agent in agents:
            agent.stop()


def wait_for_minute(world: World, minute: int, timeout_s: float = 8.0) -> int:
    """Until the simulated clock has passed `minute` and the proxies that are up have pushed it;
    returns how many gateways pushed it (a proxy restarting on a new config pushes nothing)."""
    from slo.models.telemetry import SliMinute

    sources = [f"gateway:{g.pk}" for g in world.gateways]
    while world.sim_now() < (minute + 1) * 60 + 5:
        time.sleep(0.05)
    deadline = time.monotonic() + timeout_s
    seen = 0
    while time.monotonic() < deadline:
        seen = (
            SliMinute.objects.filter(slo_id=world.slo_ids[0], minute=minute, source__in=sources)
            .values("source")
            .distinct()
            .count()
        )
        if seen == len(sources):
            break
        time.sleep(0.1)
    return seen


def cycle(world: World, minute: int, *, extra: Callable[[datetime], None] | None = None) -> dict[str, Any]:
    from routing.fleet.delivery import delivery_dispatch_due
    from routing.releases.rollout import release_tick
    from slo.budget.evaluation import slo_evaluate_all
    from slo.budget.feed import budget_sync

    pushed = wait_for_minute(world, minute)
    now = datetime.fromtimestamp((minute + 1) * 60, tz=UTC)
    budget_sync(now=now, minutes=15)
    slo_evaluate_all(now=now)
    if extra is not None:
        extra(now)
    first = release_tick(now=now)
    delivered = delivery_dispatch_due(now=now)
    second = release_tick(now=now)
    entry = {
        "minute": minute,
        "pushed": pushed,
        "first": first,
        "delivered": delivered.as_dict(),
        "second": second,
    }
    world.log.append(entry)
    return entry


def test_a_bad_release_to_two_proxies_is_rolled_back_and_both_run_the_previous_config(world, users, api_for):
    from django.db.models import F

    from routing.documents.services import routing_policy_approve
    from routing.fleet.adapters import compile_for
    from routing.models.documents import RoutingPolicyVersion
    from routing.models.releases import Release, ReleaseRollback
    from routing.releases.lifecycle import release_approve, release_create, release_resume, release_submit
    from slo.models.telemetry import SliMinute

    minute = int(world.sim_now() // 60) + 1
    for _ in range(4):  # good traffic through both proxies, pushed by the callback
        cycle(world, minute)
        minute += 1
    # the callback's telemetry feeds the SLOs: every warm-up minute of both proxies, all good
    for gateway in world.gateways:
        rows = SliMinute.objects.filter(slo_id=world.slo_ids[0], source=f"gateway:{gateway.pk}")
        assert rows.count() >= 3, world.log
        assert sum(r.valid for r in rows) > 30 and sum(r.good for r in rows) == sum(r.valid for r in rows)
    initial = {g.pk: g.revisions.get(revision=1).bundle for g in world.gateways}

    release_id: dict[str, int] = {}

    def submit(now: datetime) -> None:
        written = RoutingPolicyVersion.objects.get(line__service__name=SERVICE, version=2)
        routing_policy_approve(actor=users["admin"], line_id=written.line_id, version=2, now=now)
        release = release_create(
            actor=users["operator"],
            data={
                "service": SERVICE,
                "reason": "policy v2",
                "routing_policy_version": 2,
                # two waves, one proxy each; the second bakes long enough for the burn to show
                "waves": [{"percent": 50, "bake_s": 0}, {"percent": 100, "bake_s": 1800}],
            },
            now=now,
        )
        release = release_submit(actor=users["operator"], release_id=release.pk, now=now)
        # LiteLLM proxies record no request contexts: the simulation gate has nothing to replay and
        # is inconclusive (never a pass by default), so a person decides to go on
        release.refresh_from_db()
        assert release.state == "paused" and release.paused_stage == "submission", release.paused_reason
        held = {r.gate: r.outcome for r in release.gate_results.all() if r.outcome != "pass"}
        assert held == {"simulation": "inconclusive"}, held
        release_resume(
            actor=users["approver"],
            release_id=release.pk,
            reason="LiteLLM proxies record no request contexts to simulate on",
            now=now,
        )
        release_approve(actor=users["approver"], release_id=release.pk, comment="ok", now=now)
        release_id["id"] = release.pk

    cycle(world, minute, extra=submit)
    minute += 1
    release = Release.objects.get(pk=release_id["id"])
    # the documents gate says what the proxies will not enforce of the candidate policy's bundle
    documents = release.gate_results.filter(gate="documents").order_by("at").first()
    assert documents is not None and documents.outcome == "pass"
    waves_seen: set[int] = set()
    for _ in range(14):
        release.refresh_from_db()
        if release.state == "rolling_out":
            waves_seen.add(release.current_wave)
        if (
            release.state == "rolled_back"
            and release.rollbacks.filter(acknowledged_at__isnull=False).exists()
        ):
            break
        cycle(world, minute)
        minute += 1
    release.refresh_from_db()
    assert release.state == "rolled_back", (release.state, world.log[-4:])
    # wave 1 (one proxy, no bake) was delivered and ACKed, then wave 2 (the other proxy)
    events = [t.event for t in release.transitions.all()]
    assert events[events.index("start") :][:2] == ["start", "advance"], events
    assert 1 in waves_seen
    # both proxies ran the bad policy (one wave each) before the rollback
    targets = list(release.targets.all())
    assert len(targets) == 2 and all(t.release_revision for t in targets)
    assert sorted(t.wave for t in targets) == [0, 1]
    rollback = ReleaseRollback.objects.get(release=release)
    assert rollback.trigger in ("burn", "canary"), rollback.trigger
    assert rollback.acknowledged_at is not None
    bad_minutes = SliMinute.objects.filter(slo_id=world.slo_ids[0], good__lt=F("valid"))
    assert bad_minutes.exists(), "the bad policy's errors never reached the SLO"

    # both proxies run the previous config: read back and compared with the previous bundle compiled
    for gateway, agent in zip(world.gateways, world.agents, strict=True):
        gateway.refresh_from_db()
        revision = rollback.gateway_revisions[str(gateway.pk)]
        assert gateway.applied_revision == gateway.desired_revision == revision
        running = read_back(agent.proxy_url, MASTER_KEY)
        expected = compile_for(gateway, {**initial[gateway.pk], "revision": revision}).config
        assert readback_mismatches(expected, running) == [], running
        assert {e["model_info"]["slo_route"] for e in running["model_list"]} >= {"local"}
        answer = agent.chat()
        assert (
            answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "ok from local"
        )
    # the fleet view: desired = applied for both, and healthy (the agents heartbeat what they run)
    fleet = {g["name"]: g for g in api_for("viewer").get("/api/v1/fleet/").json()["results"]}
    for gateway in world.gateways:
        row = fleet[gateway.name]
        assert row["desired_revision"] == row["applied_revision"] and row["health"] == "healthy", row
