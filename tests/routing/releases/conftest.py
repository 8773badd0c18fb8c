"""Fixtures for releases: a service with latency and availability SLOs, routing documents, a fleet
of registered gateways running a known bundle, telemetry pushed per gateway through the real
ingest service, and the real budget evaluation."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from routing.policy import default_cache_config, default_policy
from slo import contract as c
from slo.telemetry.batch_format import le_label
from tests.support.releases import release_slos_create

SERVICE = "shelf-vision"
LATENCY_THRESHOLD_MS = 500
# Fixed instants: minutes are whole, and far enough in the past for the ingest's "minute ended" check.
T0 = datetime(2026, 3, 11, 10, 0, tzinfo=UTC)


def minute_batch(
    *,
    gateway: str,
    minute: datetime,
    ok_fast: int,
    ok_slow: int = 0,
    errors: int = 0,
    timeouts: int = 0,
    tier: str = "edge",
    route: str = "local",
) -> dict[str, Any]:
    """One minute in the push format: requests by outcome and the latency histogram (fast answers at
    40 ms, slow ones at 700 ms, timeouts at 480 ms)."""
    base = {"service": SERVICE, "tier": tier, "route": route}
    counters: list[dict[str, Any]] = []
    for outcome, count in (("ok", ok_fast + ok_slow), ("error", errors), ("timeout", timeouts)):
        counters.append({"name": c.REQUESTS_TOTAL, "labels": {**base, "outcome": outcome}, "increase": count})
    for outcome, samples in (("ok", [(0.04, ok_fast), (0.7, ok_slow)]), ("timeout", [(0.48, timeouts)])):
        total = sum(n for _, n in samples)
        if not total:
            continue
        labels = {**base, "outcome": outcome}
        counters.append({"name": f"{c.REQUEST_DURATION}_count", "labels": labels, "increase": total})
        counters.append(
            {
                "name": f"{c.REQUEST_DURATION}_sum",
                "labels": labels,
                "increase": round(sum(s * n for s, n in samples), 6),
            }
        )
        for le in (*c.LATENCY_BUCKETS_S, math.inf):
            count = sum(n for s, n in samples if s <= le)
            counters.append(
                {
                    "name": f"{c.REQUEST_DURATION}_bucket",
                    "labels": {**labels, "le": le_label(float(le))},
                    "increase": count,
                }
            )
    return {"minute": minute.strftime("%Y-%m-%dT%H:%M:%SZ"), "counters": counters, "gauges": []}


@pytest.fixture
def slos(service: Any, users: dict[str, Any]) -> list[Any]:
    return release_slos_create(actor=users["operator"], service=SERVICE, threshold_ms=LATENCY_THRESHOLD_MS)


@pytest.fixture
def policy_doc() -> dict[str, Any]:
    return default_policy(SERVICE, "interactive", LATENCY_THRESHOLD_MS)


@pytest.fixture
def documents(
    users: dict[str, Any], service: Any, slos: list[Any], policy_doc: dict[str, Any]
) -> dict[str, Any]:
    """Routing policy v1 (running) and v2 (a described edit), cache config v1: written by the
    operator, approved by the admin (a release ships only approved versions)."""
    from routing.documents.services import (
        cache_config_approve,
        cache_config_create,
        routing_policy_approve,
        routing_policy_create,
        routing_policy_update,
    )

    line = routing_policy_create(actor=users["operator"], service=service, document=policy_doc)
    edited = copy.deepcopy(policy_doc)
    edited["description"] = "v2: same routes, new description"
    routing_policy_update(actor=users["operator"], line_id=line.pk, document=edited)
    cache_line = cache_config_create(
        actor=users["operator"], service=service, document=default_cache_config(SERVICE)
    )
    for version in (1, 2):
        routing_policy_approve(actor=users["admin"], line_id=line.pk, version=version)
    cache_config_approve(actor=users["admin"], line_id=cache_line.pk, version=1)
    policy_v1, policy_v2 = line.versions.get(version=1), line.versions.get(version=2)
    cache_v1 = cache_line.versions.get(version=1)
    return {"policy_v1": policy_v1, "policy_v2": policy_v2, "cache_v1": cache_v1}


@pytest.fixture
def fleet(users: dict[str, Any], documents: dict[str, Any]) -> Callable[..., list[Any]]:
    """fleet(n) -> n poll-only gateways running policy v1 + cache v1 (revision 1, applied)."""
    from routing.fleet.services import gateway_register, gateway_set_desired, heartbeat_record

    def build(n: int = 4, *, regions: tuple[str, ...] = ("eu-west", "eu-central")) -> list[Any]:
        gateways = [
            gateway_register(
                actor=users["operator"],
                data={
                    "name": f"edge-{i:02d}",
                    "service": SERVICE,
                    "tier": "edge",
                    "region": regions[i % len(regions)],
                    "labels": {"site": f"s{i}"},
                },
            ).gateway
            for i in range(n)
        ]
        bundle = {
            "routing_policy": documents["policy_v1"].document,
            "cache_config": documents["cache_v1"].document,
            "model_version": None,
        }
        gateway_set_desired(
            actor=users["operator"],
            gateway_ids=[g.pk for g in gateways],
            bundle_for=bundle,
            reason="initial",
            now=T0 - timedelta(hours=2),
        )
        for gateway in gateways:
            heartbeat_record(gateway_id=gateway.pk, data={"applied_revision": 1}, now=T0 - timedelta(hours=2))
        return gateways

    return build


# The request contexts every pushed minute records (the simulation gate replays them): ordinary
# interactive traffic on a cool device.
CONTEXTS = [
    {
        "confidence": 0.5 + 0.05 * i,
        "priority": "normal",
        "network_quality": "good",
        "temperature_c": 60.0,
        "memory_headroom_pct": 35.0,
        "queue_depth": 1,
        "active_workers": 2,
        "service_class": "interactive",
    }
    for i in range(10)
]


@pytest.fixture
def push() -> Callable[..., None]:
    """push(gateway, start, minutes, **counts) -> ingest `minutes` minutes from the gateway's source,
    with a sample of their request contexts."""
    from slo.telemetry.context_services import context_samples_ingest
    from slo.telemetry.ingest import telemetry_batch_ingest

    def send(gateway: Any, start: datetime, minutes: int, **counts: Any) -> None:
        batch = {
            "contract_version": c.CONTRACT_VERSION,
            "gateway": gateway.name,
            "minutes": [
                minute_batch(gateway=gateway.name, minute=start + timedelta(minutes=i), **counts)
                for i in range(minutes)
            ],
        }
        now = start + timedelta(minutes=minutes + 1)
        telemetry_batch_ingest(source=f"gateway:{gateway.pk}", payload=batch, now=now)
        context_samples_ingest(
            source=f"gateway:{gateway.pk}",
            service=SERVICE,
            tier=gateway.tier,
            region=gateway.region,
            now=now,
            payload={
                "contract_version": c.CONTRACT_VERSION,
                "gateway": gateway.name,
                "minutes": [
                    {"minute": m["minute"], "requests": 300, "contexts": CONTEXTS} for m in batch["minutes"]
                ],
            },
        )

    return send


@pytest.fixture
def evaluate() -> Callable[[datetime], None]:
    """evaluate(now): the budget engine's real pipeline (sync stored minutes, evaluate every SLO)."""
    from slo.budget.evaluation import slo_evaluate_all
    from slo.budget.feed import budget_sync

    def run(now: datetime) -> None:
        budget_sync(now=now, minutes=180)
        slo_evaluate_all(now=now)

    return run


@pytest.fixture
def healthy(
    fleet: Callable[..., list[Any]],
    push: Callable[..., None],
    evaluate: Callable[[datetime], None],
    users: dict[str, Any],
) -> dict[str, Any]:
    """A 4-gateway fleet with an hour of good telemetry, evaluated at T0."""
    from routing.releases.service_settings import release_settings_save

    gateways = fleet(4)
    for gateway in gateways:
        push(gateway, T0 - timedelta(minutes=60), 60, ok_fast=300)
    evaluate(T0)
    # no lag: the tests push each minute before they tick
    release_settings_save(
        actor=users["admin"],
        service_name=SERVICE,
        data={"required_approvals": 1, "canary": {"lag_minutes": 0, "window_minutes": 3}},
    )
    return {"gateways": gateways, "now": T0}


@pytest.fixture
def make_release(users: dict[str, Any], documents: dict[str, Any]) -> Callable[..., Any]:
    from routing.releases.lifecycle import release_create

    def build(**data: Any) -> Any:
        body = {
            "service": SERVICE,
            "reason": "ship v2",
            "routing_policy_version": documents["policy_v2"].version,
            "waves": [{"percent": 25, "bake_s": 180}, {"percent": 100, "bake_s": 120}],
            **data,
        }
        return release_create(actor=users["operator"], data=body, now=T0)

    return build


@pytest.fixture
def rolling_edge_hotfix(
    healthy: dict[str, Any],
    push: Callable[..., None],
    evaluate: Callable[[datetime], None],
    make_release: Callable[..., Any],
    users: dict[str, Any],
) -> Any:
    """A hotfix on the edge tier (50% then 100%) rolling out since now on the wall clock, after an hour of
    good telemetry up to now: submitted, approved and delivering its first wave. For tests where a real
    Alertmanager stamps alerts with the wall clock."""
    from django.utils import timezone

    from routing.releases import lifecycle, rollout

    now = timezone.now()
    for gateway in healthy["gateways"]:
        push(gateway, now.replace(second=0, microsecond=0) - timedelta(minutes=60), 60, ok_fast=300)
    evaluate(now)
    hotfix = make_release(
        kind="hotfix",
        reason="fix the incident",
        target={"tier": "edge"},
        waves=[{"percent": 50, "bake_s": 600}, {"percent": 100, "bake_s": 0}],
    )
    lifecycle.release_submit(actor=users["operator"], release_id=hotfix.pk, now=now)
    lifecycle.release_approve(actor=users["approver"], release_id=hotfix.pk, comment="ship the fix", now=now)
    assert rollout.release_step(release_id=hotfix.pk, now=now) == "wave:0:delivering"
    hotfix.refresh_from_db()
    assert hotfix.state == "rolling_out" and hotfix.rollout_started_at == now
    return hotfix
