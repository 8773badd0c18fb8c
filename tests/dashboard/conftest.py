"""Fixtures for dashboard page tests: logged-in clients per role, and real data written through the
services (SLOs evaluated by the budget engine, telemetry ingested as gateways push it, gateways
registered and heartbeating)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from slo.contract import (
    CACHE_LOOKUPS_TOTAL,
    FALLBACKS_TOTAL,
    REQUEST_DURATION,
    REQUESTS_TOTAL,
    STAGE_DURATION,
)


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


@pytest.fixture
def now() -> datetime:
    """Pages read the wall clock, so data is written relative to it (floored to the minute)."""
    from django.utils import timezone

    return floor_minute(timezone.now())


@pytest.fixture
def page_for(users: dict[str, Any]) -> Callable[[str | None], Any]:
    """page_for("viewer") -> a Django test Client with that user's session; None -> anonymous."""
    from django.test import Client

    def build(role: str | None) -> Any:
        client = Client()
        if role is not None:
            client.force_login(users[role])
        return client

    return build


@pytest.fixture
def make_slo(users: dict[str, Any], service: Any) -> Callable[..., Any]:
    from slo.services import slo_create

    def build(name: str, **overrides: Any) -> Any:
        doc = {
            "name": name,
            "service": service.name,
            "sli": {"kind": "availability"},
            "objective": 99.0,
            "window": {"type": "rolling", "days": 28},
        }
        doc.update(overrides)
        return slo_create(actor=users["operator"], data=doc)

    return build


def record_and_evaluate(
    slos_bad: dict[Any, Callable[[int], float]], now: datetime, minutes: int = 120
) -> None:
    """Record `minutes` of traffic (100 events a minute; bad share from the callable of the minute
    index, 0 = oldest) for each SLO, then evaluate every 5 minutes of the last hour in order, so
    the status history has points."""
    from slo.budget.buckets import MinuteCount
    from slo.budget.evaluation import budget_minutes_record, slo_evaluate

    start = now - timedelta(minutes=minutes)
    rows = []
    for slo, bad_share in slos_bad.items():
        for i in range(minutes):
            bad = 100 * bad_share(i)
            rows.append(MinuteCount(slo.pk, start + timedelta(minutes=i), 100 - bad, 100.0))
    budget_minutes_record(rows=rows)
    ids = [slo.pk for slo in slos_bad]
    first = now - timedelta(minutes=60)
    first = first - timedelta(minutes=first.minute % 5)
    moment = first
    while moment <= now:
        slo_evaluate(slo_ids=ids, now=moment)
        moment += timedelta(minutes=5)
    if (now - first).total_seconds() % 300:
        slo_evaluate(slo_ids=ids, now=now)


@pytest.fixture
def evaluated(make_slo: Callable[..., Any], now: datetime) -> dict[str, Any]:
    """Three SLOs of shelf-vision: `burning` (30% bad for the last 40 minutes: a page alert),
    `healthy` (all good), `silent` (created, never had traffic or evaluation)."""
    burning = make_slo("burning-availability")
    healthy = make_slo(
        "healthy-latency", sli={"kind": "latency", "threshold_ms": 150}, tier="edge", objective=99.5
    )
    silent = make_slo("silent-freshness", sli={"kind": "freshness", "max_age_s": 60})
    record_and_evaluate({burning: lambda i: 0.3 if i >= 80 else 0.0, healthy: lambda i: 0.0}, now)
    return {"burning": burning, "healthy": healthy, "silent": silent}


def _labels(**extra: str) -> dict[str, str]:
    return {"service": "shelf-vision", **extra}


def telemetry_minute(k: int) -> list[dict[str, Any]]:
    """One gateway minute: requests by route, latency histograms, cache lookups, fallbacks, stages."""
    counters: list[dict[str, Any]] = [
        {
            "name": REQUESTS_TOTAL,
            "labels": _labels(tier="edge", route="local", outcome="ok"),
            "increase": 100 + k,
        },
        {"name": REQUESTS_TOTAL, "labels": _labels(tier="edge", route="cache", outcome="ok"), "increase": 40},
        {
            "name": REQUESTS_TOTAL,
            "labels": _labels(tier="public_cloud", route="public_cloud", outcome="ok"),
            "increase": 10,
        },
        {
            "name": CACHE_LOOKUPS_TOTAL,
            "labels": _labels(tier="edge", layer="result", result="hit"),
            "increase": 30,
        },
        {
            "name": CACHE_LOOKUPS_TOTAL,
            "labels": _labels(tier="edge", layer="result", result="stale_hit"),
            "increase": 4,
        },
        {
            "name": CACHE_LOOKUPS_TOTAL,
            "labels": _labels(tier="edge", layer="result", result="miss"),
            "increase": 6,
        },
        {
            "name": FALLBACKS_TOTAL,
            "labels": _labels(tier="edge", from_route="local", to_route="public_cloud", outcome="ok"),
            "increase": 10,
        },
    ]
    for tier, route, buckets, count in (
        ("edge", "local", {"0.1": 60, "0.15": 90, "0.3": 100 + k, "0.5": 100 + k, "+Inf": 100 + k}, 100 + k),
        ("public_cloud", "public_cloud", {"0.1": 0, "0.15": 2, "0.3": 10, "0.5": 10, "+Inf": 10}, 10),
    ):
        for le, n in buckets.items():
            counters.append(
                {
                    "name": f"{REQUEST_DURATION}_bucket",
                    "labels": _labels(tier=tier, route=route, outcome="ok", le=le),
                    "increase": n,
                }
            )
        counters.append(
            {
                "name": f"{REQUEST_DURATION}_count",
                "labels": _labels(tier=tier, route=route, outcome="ok"),
                "increase": count,
            }
        )
    for stage, mean_s in (("queue", 0.005), ("model", 0.06), ("network", 0.01)):
        for le, n in (("0.01", 50 if stage != "model" else 0), ("0.1", 100), ("+Inf", 100)):
            counters.append(
                {
                    "name": f"{STAGE_DURATION}_bucket",
                    "labels": _labels(tier="edge", stage=stage, le=le),
                    "increase": n,
                }
            )
        counters.append(
            {"name": f"{STAGE_DURATION}_count", "labels": _labels(tier="edge", stage=stage), "increase": 100}
        )
        counters.append(
            {
                "name": f"{STAGE_DURATION}_sum",
                "labels": _labels(tier="edge", stage=stage),
                "increase": mean_s * 100,
            }
        )
    return counters


@pytest.fixture
def telemetry(service: Any, now: datetime) -> int:
    """Ten minutes of pushed telemetry from one gateway, ending two minutes ago."""
    from slo.telemetry.ingest import telemetry_batch_ingest

    minutes = [now - timedelta(minutes=12 - i) for i in range(10)]
    payload = {
        "contract_version": 1,
        "gateway": "edge-berlin-01",
        "minutes": [
            {"minute": m.isoformat().replace("+00:00", "Z"), "counters": telemetry_minute(k)}
            for k, m in enumerate(minutes)
        ],
    }
    telemetry_batch_ingest(source="gateway:test-1", payload=payload, now=now)
    return len(minutes)


@pytest.fixture
def gateways(users: dict[str, Any], service: Any, now: datetime) -> dict[str, Any]:
    """Four gateways in two regions: healthy, drifted, nacked and never seen (pending)."""
    from routing.fleet.services import gateway_register, gateway_set_desired, heartbeat_record
    from routing.policy import default_cache_config, default_policy

    made = {}
    for name, tier, region in (
        ("edge-ok", "edge", "eu-west"),
        ("edge-drift", "edge", "eu-west"),
        ("edge-nack", "edge", "us-east"),
        ("cloud-new", "public_cloud", "us-east"),
    ):
        made[name] = gateway_register(
            actor=users["operator"],
            data={"name": name, "service": service.name, "tier": tier, "region": region},
        ).gateway
    ids = [made[n].pk for n in ("edge-ok", "edge-drift", "edge-nack")]
    bundle = {
        "routing_policy": default_policy(service.name, service.service_class, 150),
        "cache_config": default_cache_config(service.name),
    }
    gateway_set_desired(actor=users["operator"], gateway_ids=ids, bundle_for=bundle, reason="test", now=now)
    heartbeat_record(gateway_id=made["edge-ok"].pk, data={"applied_revision": 1}, now=now)
    gateway_set_desired(
        actor=users["operator"], gateway_ids=ids[1:], bundle_for=bundle, reason="test 2", now=now
    )
    heartbeat_record(gateway_id=made["edge-drift"].pk, data={"applied_revision": 1}, now=now)
    heartbeat_record(
        gateway_id=made["edge-nack"].pk,
        data={"applied_revision": 1, "nack": {"revision": 2, "error": "unknown route 'gpu'"}},
        now=now,
    )
    for gateway in made.values():
        gateway.refresh_from_db()
    return made


@pytest.fixture
def documents(users: dict[str, Any], service: Any, make_slo: Callable[..., Any]) -> dict[str, Any]:
    """A 500 ms latency SLO (a bucket boundary of the pushed histograms); routing policy v1 and v2
    (a described edit); cache config v1."""
    import copy

    from routing.documents.services import cache_config_create, routing_policy_create, routing_policy_update
    from routing.policy import default_cache_config, default_policy

    make_slo("latency", sli={"kind": "latency", "threshold_ms": 500})
    doc = default_policy(service.name, service.service_class, 500)
    policy = routing_policy_create(actor=users["operator"], service=service, document=doc, note="first")
    edited = copy.deepcopy(doc)
    edited["description"] = "v2: same routes, new description"
    routing_policy_update(actor=users["operator"], line_id=policy.pk, document=edited, note="describe")
    cache = cache_config_create(
        actor=users["operator"], service=service, document=default_cache_config(service.name)
    )
    return {
        "policy_v1": policy.versions.get(version=1),
        "policy_v2": policy.versions.get(version=2),
        "cache_v1": cache.versions.get(version=1),
    }


def release_of_policy_v2(
    users: dict[str, Any],
    service: Any,
    documents: dict[str, Any],
    now: datetime,
    *,
    title: str,
    gateway_prefix: str,
    telemetry_minutes: int,
) -> Any:
    """A release of policy v2, written by the operator (`otto`) and approved by the admin, to two
    gateways running v1, with `telemetry_minutes` of good pushed telemetry each, submitted through
    the real gates."""
    from routing.fleet.services import gateway_register, gateway_set_desired, heartbeat_record
    from routing.releases.lifecycle import release_create, release_submit
    from routing.releases.service_settings import release_settings_save
    from slo.budget.evaluation import slo_evaluate_all
    from slo.budget.feed import budget_sync
    from slo.telemetry.context_services import context_samples_ingest
    from slo.telemetry.ingest import telemetry_batch_ingest

    gateways = [
        gateway_register(
            actor=users["operator"],
            data={
                "name": f"{gateway_prefix}-{i}",
                "service": service.name,
                "tier": "edge",
                "region": "eu-west",
            },
        ).gateway
        for i in range(2)
    ]
    bundle = {
        "routing_policy": documents["policy_v1"].document,
        "cache_config": documents["cache_v1"].document,
        "model_version": None,
    }
    start = now - timedelta(minutes=telemetry_minutes + 2)
    gateway_set_desired(
        actor=users["operator"],
        gateway_ids=[g.pk for g in gateways],
        bundle_for=bundle,
        reason="initial",
        now=start,
    )
    for gateway in gateways:
        heartbeat_record(gateway_id=gateway.pk, data={"applied_revision": 1}, now=now)
        if telemetry_minutes:
            minutes = [
                {
                    "minute": (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "counters": telemetry_minute(0),
                }
                for i in range(telemetry_minutes)
            ]
            telemetry_batch_ingest(
                source=f"gateway:{gateway.pk}",
                payload={"contract_version": 1, "gateway": gateway.name, "minutes": minutes},
                now=now,
            )
            # what the gateway's traffic looked like: the simulation gate replays it
            context_samples_ingest(
                source=f"gateway:{gateway.pk}",
                service=service.name,
                tier="edge",
                region="eu-west",
                now=now,
                payload={
                    "contract_version": 1,
                    "gateway": gateway.name,
                    "minutes": [
                        {
                            "minute": m["minute"],
                            "requests": 100,
                            "contexts": [
                                {"confidence": 0.5 + 0.05 * k, "priority": "normal"} for k in range(10)
                            ],
                        }
                        for m in minutes
                    ],
                },
            )
    budget_sync(now=now, minutes=180)
    slo_evaluate_all(now=now)
    release_settings_save(actor=users["admin"], service_name=service.name, data={"required_approvals": 1})
    if documents["policy_v2"].state == "draft":  # a release ships only approved versions
        from routing.documents.services import routing_policy_approve

        routing_policy_approve(
            actor=users["admin"], line_id=documents["policy_v2"].line_id, version=2, now=now
        )
        documents["policy_v2"].refresh_from_db()
    release = release_create(
        actor=users["operator"],
        data={
            "service": service.name,
            "title": title,
            "reason": "ship v2",
            "routing_policy_version": documents["policy_v2"].version,
            "waves": [{"percent": 50, "bake_s": 180}, {"percent": 100, "bake_s": 120}],
        },
        now=now,
    )
    return release_submit(actor=users["operator"], release_id=release.pk, now=now)


@pytest.fixture
def pending_release(users: dict[str, Any], service: Any, documents: dict[str, Any], now: datetime) -> Any:
    """After an hour of good telemetry: pending approval."""
    return release_of_policy_v2(
        users, service, documents, now, title="Describe v2", gateway_prefix="rel-edge", telemetry_minutes=60
    )


@pytest.fixture
def paused_release(users: dict[str, Any], service: Any, documents: dict[str, Any], now: datetime) -> Any:
    """To gateways that never pushed telemetry: the data-quality gate is inconclusive at
    submission, so it pauses for a person."""
    release = release_of_policy_v2(
        users,
        service,
        documents,
        now,
        title="Describe v2 (no data)",
        gateway_prefix="quiet-edge",
        telemetry_minutes=0,
    )
    assert release.state == "paused", release.state
    return release
