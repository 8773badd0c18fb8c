"""Demo routing documents: for each demo service (slo/demo.py), a routing policy and a cache config
with an approved version 1 and a draft version 2. Idempotent: what exists is kept."""

from __future__ import annotations

import copy
from typing import Any

from routing.documents import selectors, services
from routing.documents.validation import TIER_OF_ROUTE
from routing.models.documents import DRAFT, CacheConfigDocument, RoutingPolicyDocument
from routing.policy import default_cache_config, default_policy
from slo.demo import DEMO_SERVICES
from slo.models import Service

AUTHOR = "demo-seed"
APPROVER = "demo-approver"


def _fit_to_tiers(document: dict[str, Any], tiers: list[str]) -> dict[str, Any]:
    """Drop hops to tiers the service does not run on (they could only time out)."""
    doc = copy.deepcopy(document)
    rules = []
    for rule in doc.get("rules", []):
        rule["chain"] = [
            hop
            for hop in rule["chain"]
            if TIER_OF_ROUTE.get(hop["route"], "edge") in tiers or hop["route"] == "cache"
        ]
        if rule["chain"]:
            rules.append(rule)
    doc["rules"] = rules
    if "public_cloud" not in tiers:
        doc.setdefault("admission", {})["best_effort_offload"] = False
    return doc


def _second_policy(document: dict[str, Any]) -> dict[str, Any]:
    """Version 2: escalate fewer requests to the cloud (a lower confidence bar)."""
    doc = copy.deepcopy(document)
    for rule in doc["rules"]:
        if rule["name"] == "low-confidence":
            rule["when"]["confidence_max"] = 0.5
    doc["description"] = f"{doc.get('description', '')}; escalate below 0.5 confidence".lstrip("; ")
    return doc


def _second_cache(document: dict[str, Any]) -> dict[str, Any]:
    """Version 2: a slightly stricter semantic threshold."""
    doc = copy.deepcopy(document)
    for layer in doc["layers"]:
        if layer["kind"] == "semantic":
            layer["semantic"]["user_facing"] = 0.96
    return doc


def _seed_line(kind: str, service: Service, first: dict[str, Any], second: dict[str, Any]) -> int:
    """Create the line (v1, approved) and v2 (draft) when missing; returns versions created."""
    if kind == "policy":
        model, create, update, approve = (
            RoutingPolicyDocument,
            services.routing_policy_create,
            services.routing_policy_update,
            services.routing_policy_approve,
        )
    else:
        model, create, update, approve = (
            CacheConfigDocument,
            services.cache_config_create,
            services.cache_config_update,
            services.cache_config_approve,
        )
    created = 0
    line = model.objects.filter(service=service).first()
    if line is None:
        line = create(actor=AUTHOR, service=service, document=first, note="demo seed")
        created += 1
    v1 = line.versions.filter(version=1).first()
    if v1 is not None and v1.state == DRAFT:
        approve(actor=APPROVER, line_id=line.pk, version=1)
    if line.current_version == 1:
        _line, made = update(
            actor=AUTHOR, line_id=line.pk, document=second, note="demo: proposed change", parent_version=1
        )
        created += int(made)
    return created


def seed_demo(*, days: int, stdout: Any) -> None:
    """Routing policies and cache configs for the demo services (``days`` is unused here)."""
    del days
    created = 0
    for spec in DEMO_SERVICES:
        service = Service.objects.filter(name=spec["name"]).first()
        if service is None:
            continue
        context = selectors.validation_context_for(service=service)
        policy = _fit_to_tiers(
            default_policy(service.name, service.service_class, context.latency_slo_ms), list(service.tiers)
        )
        cache = default_cache_config(service.name, multi_tenant=service.multi_tenant)
        created += _seed_line("policy", service, policy, _second_policy(policy))
        created += _seed_line("cache", service, cache, _second_cache(cache))
    stdout.write(f"demo routing documents: {created} versions created")
