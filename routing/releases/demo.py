"""Demo hook: a release of `shelf-vision` waiting for one approval, so a person who logs in after
`./scripts/run.sh` has something to approve.

The release is written by `demo-operator` (an operator nobody logs in as: its password is
unusable), never by `admin`: the author of a release may not approve it. It ships a new routing
policy version (the current one with hot edge devices shedding load at 80 °C instead of 85 °C),
written by `demo-operator` and approved by `demo-reviewer` (an approver nobody logs in as: a
release ships only approved versions, and a version's author never approves it), with the
approved cache config, to the demo gateways (label `demo=true`) in two waves, and goes through
the real submission gates.

Idempotent: a release whose title starts with `DEMO_MARKER` is the demo release; when one exists
nothing is written (a draft left by a refused submission is submitted again).
"""

from __future__ import annotations

import copy
import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import NotFound, ValidationFailed
from controlplane.roles import APPROVER, OPERATOR
from routing.documents import selectors as document_selectors
from routing.documents import services as document_services
from routing.documents.kinds import CACHE_CONFIG, ROUTING_POLICY
from routing.documents.simulation import MIN_RECORDED_CONTEXTS, RECORDED_WINDOW_MINUTES, route_stats_for
from routing.fleet.demo import DEMO_ROUTES
from routing.models.documents import DRAFT as DOCUMENT_DRAFT
from routing.models.documents import CacheConfigDocument, RoutingPolicyDocument
from routing.models.releases import Release
from routing.policy import generate_contexts
from routing.releases import lifecycle
from routing.releases.machine import DRAFT, PENDING_APPROVAL
from slo import contract as c
from slo.models import Service
from slo.spec import Problem
from slo.telemetry.batch_format import le_label
from slo.telemetry.context_selectors import recorded_contexts
from slo.telemetry.context_services import context_minutes_store
from slo.telemetry.contexts import ContextMinute
from slo.telemetry.ingest import telemetry_batch_ingest, telemetry_source_retire
from slo.telemetry.selectors import epoch_minute_floor, minute_datetime

DEMO_OPERATOR = "demo-operator"
DEMO_REVIEWER = "demo-reviewer"
DEMO_MARKER = "[demo]"
HOT_DEVICE_RULE = "edge-hot"
HOT_DEVICE_C = 80
# Wave 1 is one gateway of the three (33%, which is 1 gateway; 34% of 3 rounds up to 2 and would
# need a confirmation). Five minutes of bake is the
# shortest that always sees a complete canary minute after the default 2-minute telemetry lag.
DEMO_WAVES = [{"percent": 33, "bake_s": 300}, {"percent": 100, "bake_s": 300}]
ROUTE_HISTORY_SOURCE = "demo:route-history"
ROUTE_HISTORY_MINUTES = 60


def release_demo_seed(
    *, service_name: str = "shelf-vision", actor: Any = "demo", now: datetime | None = None
) -> Release:
    """The demo release, created and submitted when missing. Run it after the demo data
    (`seed_demo`) and the demo gateways (`fleet_demo_seed`). A refused submission raises the
    gates' Conflict and leaves a draft with the evidence; the next call submits it again."""
    now = now or timezone.now()
    service = Service.objects.filter(name=service_name).first()
    if service is None:
        raise NotFound(f"no such service: {service_name}")
    operator = demo_operator(actor=actor)
    reviewer = demo_user(
        DEMO_REVIEWER, APPROVER, actor=actor, note="demo seed: reviewer of the demo policy change"
    )
    release = Release.objects.filter(service=service, title__startswith=DEMO_MARKER).order_by("pk").first()
    if release is not None:
        if release.state == DRAFT:
            return lifecycle.release_submit(actor=operator, release_id=release.pk, now=now)
        return release
    _seed_route_history(service, now)
    _seed_context_samples(service, now)
    policy_version = _policy_change(service, operator, reviewer, now)
    cache_line = CacheConfigDocument.objects.filter(service=service).first()
    if cache_line is None:
        raise NotFound(f"{service_name} has no cache config: run seed_demo first")
    cache_version = document_selectors.baseline_version(kind=CACHE_CONFIG, line=cache_line)
    release = lifecycle.release_create(
        actor=operator,
        now=now,
        data={
            "service": service.name,
            "title": f"{DEMO_MARKER} Shed load from hot edge devices at {HOT_DEVICE_C} °C",
            "reason": (
                f"Edge devices throttle above {HOT_DEVICE_C} °C: move their traffic to the cache and the "
                "cloud before they slow down. The approved cache config rides along unchanged, so a "
                "gateway that has not applied a config yet still gets a whole bundle."
            ),
            "routing_policy_version": policy_version,
            # The demo gateways may not have applied their first revision yet (they start after this
            # runs): a bundle swapped into nothing needs both documents, or the documents gate refuses.
            "cache_config_version": getattr(cache_version, "version", None),
            "target": {"labels": {"demo": "true"}},
            "waves": DEMO_WAVES,
        },
    )
    return lifecycle.release_submit(actor=operator, release_id=release.pk, now=now)


def demo_operator(*, actor: Any = "demo") -> Any:
    """The `demo-operator` user (operator role, unusable password), created when missing."""
    return demo_user(DEMO_OPERATOR, OPERATOR, actor=actor, note="demo seed: author of the demo release")


def demo_user(username: str, role: str, *, actor: Any = "demo", note: str) -> Any:
    """A demo user with one role and an unusable password (nobody logs in as it), created when missing."""
    users = get_user_model().objects
    with transaction.atomic():
        user = users.filter(username=username).first()
        if user is None:
            user = users.create_user(username=username, password=None)  # None: unusable password
            audit_record(
                actor=actor,
                action="create",
                obj=user,
                after={"username": username, "roles": [role], "password": "unusable"},
                note=note,
            )
        if not user.groups.filter(name=role).exists():
            user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def _policy_change(service: Service, operator: Any, reviewer: Any, now: datetime) -> int:
    """A new routing policy version, approved by the reviewer: the current one with hot devices
    shedding load earlier."""
    line = RoutingPolicyDocument.objects.filter(service=service).first()
    if line is None:
        raise NotFound(f"{service.name} has no routing policy: run seed_demo first")
    current = document_selectors.version_get(kind=ROUTING_POLICY, line=line, version=line.current_version)
    document = copy.deepcopy(current.document)
    rule = next((r for r in document.get("rules", []) if r.get("name") == HOT_DEVICE_RULE), None)
    if rule is None:
        raise ValidationFailed(
            "no demo change to make",
            problems=[Problem("rules", f"version {current.version} has no {HOT_DEVICE_RULE!r} rule")],
        )
    was = rule["when"].get("temperature_c_min")
    rule["when"]["temperature_c_min"] = HOT_DEVICE_C
    # An unchanged document makes no version (a rerun after the release failed): current_version
    # is then the version this wrote before.
    line, _created = document_services.routing_policy_update(
        actor=operator,
        line_id=line.pk,
        document=document,
        parent_version=line.current_version,
        now=now,
        note=f"demo change: shed load from hot edge devices at {HOT_DEVICE_C} °C (was {was} °C); "
        "written by the demo seed",
    )
    written = document_selectors.version_get(kind=ROUTING_POLICY, line=line, version=line.current_version)
    if written.state == DOCUMENT_DRAFT:
        document_services.routing_policy_approve(
            actor=reviewer, line_id=line.pk, version=written.version, now=now
        )
    return line.current_version


# -- route history ------------------------------------------------------------------------------------
#
# The simulation gate predicts the candidate policy's burn from *measured* route figures when the
# service has telemetry, else from documented assumptions (routing/documents/simulation.py). The
# demo history is SLI minutes only, so it would run on the assumptions, whose edge error ratio (1%)
# is exactly shelf-vision's edge-latency budget (99%): the predicted burn is then 1.0 plus sampling
# noise, and the release id (the simulation seed) decides whether the gate refuses. An hour of
# per-route telemetry, in line with the demo's SLO history, lets the gate judge the change on
# measurements, as it would for a service that has been running.

# Per route: tier, requests per minute, error share, latency p50 and p95 (ms). Error shares and
# latencies are those of the demo gateways' simulated backends (routing.fleet.demo.DEMO_ROUTES), so
# this hour says what the live gateways will go on to measure.
ROUTE_TRAFFIC = {
    "local": ("edge", 300),
    "cache": ("edge", 45),
    "private_cloud": ("private_cloud", 6),
    "public_cloud": ("public_cloud", 3),
}
ROUTE_PROFILES = {
    route: (
        tier,
        rpm,
        DEMO_ROUTES[route]["error_ratio"],
        DEMO_ROUTES[route]["p50_ms"],
        DEMO_ROUTES[route]["p95_ms"],
    )
    for route, (tier, rpm) in ROUTE_TRAFFIC.items()
}
CACHE_HIT_SHARE = 0.4  # of result-cache lookups
Z95 = 1.6448536269514722  # the standard normal's 95th percentile


def _seed_route_history(service: Service, now: datetime) -> int:
    """Ingest the last hour of per-route telemetry through the push service when the simulator
    has no measured edge figures; the source is retired at once so it never makes later minutes
    missing. Returns the minutes stored."""
    local = route_stats_for(service=service, now=now)["local"]["source"]
    if local["latency"] == "measured" and local["error_ratio"] == "measured":
        return 0
    stop = epoch_minute_floor(now) - 1  # the newest minute that has ended
    minutes = range(stop - ROUTE_HISTORY_MINUTES, stop)
    rng = np.random.default_rng(20261127)
    payload = {
        "contract_version": c.CONTRACT_VERSION,
        "gateway": "demo",
        "minutes": [_route_minute(service.name, minute, rng) for minute in minutes],
    }
    telemetry_batch_ingest(source=ROUTE_HISTORY_SOURCE, payload=payload, now=now)
    telemetry_source_retire(actor="demo", source=ROUTE_HISTORY_SOURCE)
    return len(minutes)


def _route_minute(service: str, minute: int, rng: np.random.Generator) -> dict[str, Any]:
    """One pushed minute: requests by route and outcome, latency histograms, result-cache lookups."""
    counters: list[dict[str, Any]] = []
    answered: dict[str, int] = {}
    for route, (tier, rpm, error_share, p50_ms, p95_ms) in ROUTE_PROFILES.items():
        labels = {"service": service, "tier": tier, "route": route, "outcome": "ok"}
        total = int(rng.poisson(rpm))
        errors = int(rng.binomial(total, error_share))
        ok = answered[route] = total - errors
        counters.append({"name": c.REQUESTS_TOTAL, "labels": labels, "increase": ok})
        counters.append(
            {"name": c.REQUESTS_TOTAL, "labels": {**labels, "outcome": "error"}, "increase": errors}
        )
        sigma = math.log(p95_ms / p50_ms) / Z95
        latencies_s = np.exp(rng.normal(math.log(p50_ms / 1000), sigma, ok))
        for le in (*c.LATENCY_BUCKETS_S, math.inf):
            counters.append(
                {
                    "name": f"{c.REQUEST_DURATION}_bucket",
                    "labels": {**labels, "le": le_label(float(le))},
                    "increase": int((latencies_s <= le).sum()),
                }
            )
        counters.append({"name": f"{c.REQUEST_DURATION}_count", "labels": labels, "increase": ok})
        counters.append(
            {
                "name": f"{c.REQUEST_DURATION}_sum",
                "labels": labels,
                "increase": round(float(latencies_s.sum()), 6),
            }
        )
    hits = answered["cache"]
    misses = round(hits * (1 - CACHE_HIT_SHARE) / CACHE_HIT_SHARE)
    layer = {"service": service, "tier": "edge", "layer": "result"}
    counters.append({"name": c.CACHE_LOOKUPS_TOTAL, "labels": {**layer, "result": "hit"}, "increase": hits})
    counters.append(
        {"name": c.CACHE_LOOKUPS_TOTAL, "labels": {**layer, "result": "miss"}, "increase": misses}
    )
    return {
        "minute": minute_datetime(minute).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "counters": counters,
        "gauges": [],
    }


# -- request contexts ---------------------------------------------------------------------------------
#
# The simulation gate replays the request contexts the service's gateways recorded over the last
# hour, and without them it waits for a person. The demo gateways start after this hook, so the
# hook stores an hour of synthetic samples under a source that says so, drawn like the demo
# gateways draw their traffic (the reference gateway's default context distribution, gateway/config.py,
# plus the device health it simulates: edge devices at 48-72 °C, below either hot-device threshold).

CONTEXT_SOURCE = "demo:synthetic-contexts"
CONTEXTS_PER_MINUTE = 30
CONTEXT_REQUESTS_PER_MINUTE = 3600  # three gateways at 20 requests/s
DEMO_CONTEXT: dict[str, Any] = {
    "confidence": {"normal": {"mean": 0.82, "sd": 0.14, "min": 0.0, "max": 1.0}},
    "priority": {"choices": {"critical": 0.02, "high": 0.18, "normal": 0.7, "low": 0.1}},
    "network_quality": {"choices": {"good": 0.92, "fair": 0.06, "poor": 0.015, "offline": 0.005}},
    "privacy": {"bernoulli": 0.05},
    "payload_bytes": {"int_uniform": [2_000, 60_000]},
    "temperature_c": {"uniform": [48.0, 72.0]},
    "memory_headroom_pct": {"uniform": [25.0, 45.0]},
    "queue_depth": {"int_uniform": [1, 3]},
    "active_workers": 2,
    "region": {"choices": {"eu-west": 2, "eu-central": 1}},
}


def _seed_context_samples(service: Service, now: datetime) -> int:
    """Store the last hour of synthetic request-context samples (source `demo:synthetic-contexts`)
    when the gateways recorded too few for the simulation gate. Returns the minutes stored."""
    start = now - timedelta(minutes=RECORDED_WINDOW_MINUTES)
    if recorded_contexts(service=service.name, start=start, end=now).contexts >= MIN_RECORDED_CONTEXTS:
        return 0
    stop = epoch_minute_floor(now)
    distribution = {**DEMO_CONTEXT, "service_class": service.service_class}
    minutes = [
        ContextMinute(
            minute,
            CONTEXT_REQUESTS_PER_MINUTE,
            generate_contexts(distribution, CONTEXTS_PER_MINUTE, seed=20261206 + minute),
        )
        for minute in range(stop - RECORDED_WINDOW_MINUTES, stop)
    ]
    context_minutes_store(source=CONTEXT_SOURCE, service=service.name, tier="", region="", minutes=minutes)
    return len(minutes)


def demo_release_line(release: Release, *, base_url: str = "") -> str:
    """One line for the `serve` output: where the demo release waits, or why it does not."""
    url = f"{base_url.rstrip('/')}/releases/{release.pk}/"
    if release.state == PENDING_APPROVAL:
        needed = release.required_approvals
        return (
            f"demo release {release.pk} is waiting for approval at {url} "
            f"({needed} approval{'s' if needed != 1 else ''}; author {release.author_name})"
        )
    detail = f": {release.paused_reason}" if release.paused_reason else ""
    return f"demo release {release.pk} is {release.state} at {url}{detail}"
