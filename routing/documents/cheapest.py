"""Cheapest compliant policy for a stored routing policy line (glue over routing.policy.cheapest).

Reads what the simulator reads (the recorded request contexts by default, the measured route figures
and the whole-chain SLO), searches chain orders and rule thresholds for the cheapest policy whose
predicted burn stays at or below 1x, and, when one is cheaper than the baseline, writes it as a draft
version (audited, by the caller) with the simulation of its effect against the baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from django.utils import timezone

from controlplane.errors import ValidationFailed
from routing.documents import selectors
from routing.documents.kinds import ROUTING_POLICY
from routing.documents.services import routing_policy_update
from routing.documents.simulation import _contexts, _version_number, route_stats_for, routing_policy_simulate
from routing.documents.validation import split
from routing.policy.cheapest import DEFAULT_FACTORS, cheapest_compliant
from slo.spec import Problem


def _int_in(body: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed("invalid input", problems=[Problem(key, f"an integer from {low} to {high}")])
    return value


def _factors(body: Mapping[str, Any]) -> tuple[float, ...]:
    value = body.get("threshold_factors", list(DEFAULT_FACTORS))
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= 10
        or any(isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v <= 10 for v in value)
    ):
        raise ValidationFailed(
            "invalid input", problems=[Problem("threshold_factors", "1 to 10 numbers in (0, 10]")]
        )
    return tuple(float(v) for v in value)


def routing_policy_cheapest(
    *, actor: Any, line: Any, body: Mapping[str, Any], now: datetime | None = None
) -> dict[str, Any]:
    """Search, and write the cheapest compliant policy as a draft version when it is cheaper."""
    now = now or timezone.now()
    max_chain_routes = _int_in(body, "max_chain_routes", 4, 2, 6)
    max_candidates = _int_in(body, "max_candidates", 300, 1, 2000)
    factors = _factors(body)
    keep = body.get("keep_rules", [])
    baseline_number = _version_number(body, "baseline_version")
    if baseline_number is not None:
        baseline = selectors.version_get(kind=ROUTING_POLICY, line=line, version=baseline_number)
    else:
        baseline = selectors.baseline_version(kind=ROUTING_POLICY, line=line)
        if baseline is None:
            raise ValidationFailed(
                "invalid input",
                problems=[
                    Problem("baseline_version", "no version is active or approved: give baseline_version")
                ],
            )
    names = {r.get("name") for r in baseline.document.get("rules", [])} | {"default_chain"}
    if not isinstance(keep, list):
        raise ValidationFailed("invalid input", problems=[Problem("keep_rules", "a list of rule names")])
    unknown = [
        Problem(f"keep_rules[{i}]", "no rule of this name") for i, k in enumerate(keep) if k not in names
    ]
    if unknown:
        raise ValidationFailed("invalid input", problems=unknown[:20])
    service = line.service
    context = selectors.validation_context_for(service=service)
    slo = context.whole_chain_slo
    if slo is None:
        raise ValidationFailed(
            "invalid input",
            problems=[
                Problem("service", f"{service.name} has no whole-chain SLO: there is no burn to judge")
            ],
        )
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationFailed("invalid input", problems=[Problem("seed", "an integer")])
    contexts, contexts_info = _contexts(body, service, now)
    for item in contexts:
        item.setdefault("service_class", service.service_class)
    figures = route_stats_for(service=service, now=now)

    def validate(document: dict[str, Any]) -> list[str]:
        errors, _ = split(ROUTING_POLICY.problems(document, context))
        return [f"{p.path}: {p.message}" for p in errors]

    result = cheapest_compliant(
        baseline.document,
        contexts,
        {route: entry["stats"] for route, entry in figures.items()},
        objective=slo.objective,
        latency_threshold_ms=slo.threshold_ms,
        service_class=service.service_class,
        seed=seed,
        max_chain_routes=max_chain_routes,
        threshold_factors=factors,
        max_candidates=max_candidates,
        validate=validate,
        keep_rules=frozenset(keep),
    )
    version = simulation = None
    if result.status == "cheaper" and result.document is not None:
        note = "cheapest compliant policy: " + "; ".join(result.changes)
        line, created = routing_policy_update(
            actor=actor, line_id=line.pk, document=result.document, note=note[:2000], now=now
        )
        version = line.current_version
        simulation = routing_policy_simulate(
            line=line,
            body={**body, "candidate_version": version, "baseline_version": baseline.version, "seed": seed},
            now=now,
        )
    return {
        "service": service.name,
        "status": result.status,
        "baseline_version": baseline.version,
        "version": version,
        "changes": result.changes,
        "current": asdict(result.current),
        "best": asdict(result.best) if result.best else None,
        "max_burn": 1.0,
        "slo": {"name": slo.name, "threshold_ms": slo.threshold_ms, "objective": slo.objective},
        "contexts": contexts_info,
        "route_sources": {route: entry["source"] for route, entry in figures.items()},
        "search": {
            "max_chain_routes": max_chain_routes,
            "threshold_factors": list(factors),
            "max_candidates": max_candidates,
            "keep_rules": keep,
            "evaluated": result.evaluated,
        },
        "rejected_counts": result.rejected_counts,
        "rejected": [asdict(c) for c in result.rejected],
        "simulation": simulation,
    }
