"""Validation of stored documents against their service (pure: no Django).

The pure core checks a document given a latency threshold and a service class. Which threshold is
the service's decision, made here from its latency SLOs:

* **Whole chain.** Client requests enter the service at its *entry tier* (edge when the service runs
  on the edge, else private cloud, else public cloud), and that gateway measures the whole chain.
  So every chain's worst case must fit the tightest threshold among latency SLOs with no tier or on
  the entry tier. This is the check the pure core runs (`validate_policy(latency_slo_ms=...)`).
* **Cloud tiers.** A latency SLO on another tier is measured by that tier's gateways, which see
  only the hop sent to them. So every hop to that tier (its timeouts times attempts, plus backoffs)
  must fit that SLO's threshold; the problem is reported at the hop, `rules[i].chain[k]`.
* A hop to a tier the service does not run on is a warning (it can only time out and fall through).

Archived SLOs do not count. A service without latency SLOs gets no latency checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from routing.policy import (
    parse_cache_config,
    parse_policy,
    validate_cache_config,
    validate_policy,
)
from routing.policy.conditions import NUMERIC_FIELDS
from routing.policy.schema import Hop, RoutingPolicy, implicit_default_chain
from slo.spec import Problem

TIER_OF_ROUTE = {"local": "edge", "private_cloud": "private_cloud", "public_cloud": "public_cloud"}
ENTRY_ORDER = ("edge", "private_cloud", "public_cloud")


@dataclass(frozen=True)
class LatencySlo:
    name: str
    tier: str  # "" = every tier
    threshold_ms: float
    objective: float


@dataclass(frozen=True)
class ValidationContext:
    """What a document is checked against: the service and its latency SLOs."""

    service: str
    service_class: str
    multi_tenant: bool
    tiers: tuple[str, ...]
    entry_tier: str
    whole_chain_slo: LatencySlo | None
    tier_slos: tuple[LatencySlo, ...] = field(default_factory=tuple)

    @property
    def latency_slo_ms(self) -> float | None:
        return self.whole_chain_slo.threshold_ms if self.whole_chain_slo else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "service_class": self.service_class,
            "multi_tenant": self.multi_tenant,
            "tiers": list(self.tiers),
            "entry_tier": self.entry_tier,
            "latency_slo_ms": self.latency_slo_ms,
            "whole_chain_slo": asdict(self.whole_chain_slo) if self.whole_chain_slo else None,
            "tier_slos": [asdict(slo) for slo in self.tier_slos],
        }


def build_context(
    *,
    service: str,
    service_class: str,
    tiers: Iterable[str],
    multi_tenant: bool,
    latency_slos: Iterable[LatencySlo],
) -> ValidationContext:
    """Pick the whole-chain SLO and the per-tier SLOs (tightest per tier) by the rule above."""
    tiers = tuple(tiers)
    entry = next((tier for tier in ENTRY_ORDER if tier in tiers), "edge")
    whole: LatencySlo | None = None
    per_tier: dict[str, LatencySlo] = {}
    for slo in latency_slos:
        if slo.tier in ("", entry):
            if whole is None or slo.threshold_ms < whole.threshold_ms:
                whole = slo
        elif slo.tier not in per_tier or slo.threshold_ms < per_tier[slo.tier].threshold_ms:
            per_tier[slo.tier] = slo
    return ValidationContext(
        service,
        service_class,
        multi_tenant,
        tiers,
        entry,
        whole,
        tuple(per_tier[tier] for tier in sorted(per_tier)),
    )


def _chains(policy: RoutingPolicy) -> list[tuple[str, list[Hop]]]:
    """The chains the core validates, with their paths."""
    out = [(f"rules[{i}].chain", rule.chain) for i, rule in enumerate(policy.rules)]
    if not (policy.rules and policy.rules[-1].when.is_unconditional()):
        out.append(("default_chain", policy.default_chain or implicit_default_chain()))
    return out


def _tier_problems(policy: RoutingPolicy, context: ValidationContext) -> list[Problem]:
    problems: list[Problem] = []
    slo_by_tier = {slo.tier: slo for slo in context.tier_slos}
    for path, hops in _chains(policy):
        for position, hop in enumerate(hops):
            tier = TIER_OF_ROUTE.get(hop.route)
            hop_path = f"{path}[{position}]"
            if tier is not None and context.tiers and tier not in context.tiers:
                problems.append(
                    Problem(
                        f"{hop_path}.route",
                        f"service {context.service!r} does not run on {tier} "
                        f"(its tiers: {', '.join(context.tiers)}): this hop can only time out",
                        "warning",
                    )
                )
            slo = slo_by_tier.get(tier or "")
            if slo is not None and hop.worst_case_ms() > slo.threshold_ms:
                attempts = 1 + hop.retries
                problems.append(
                    Problem(
                        hop_path,
                        f"this {tier} hop may take {hop.worst_case_ms():g} ms ({hop.timeout_ms:g} ms x "
                        f"{attempts} attempt{'s' if attempts > 1 else ''} plus backoffs), above the {tier} latency "
                        f"SLO {slo.name!r} threshold of {slo.threshold_ms:g} ms",
                    )
                )
            if hop.on_exhausted.action != "next":
                break  # later hops are unreachable (the core warns about them)
    return problems


def _service_problem(document: Any, context: ValidationContext) -> list[Problem]:
    named = document.get("service") if isinstance(document, dict) else None
    if isinstance(named, str) and named != context.service:
        return [
            Problem("service", f"the document names service {named!r}, but it belongs to {context.service!r}")
        ]
    return []


def policy_problems(document: Any, context: ValidationContext) -> list[Problem]:
    """Every problem of a routing policy for this service: errors and warnings."""
    problems = validate_policy(
        document,
        latency_slo_ms=context.latency_slo_ms,
        service_class=context.service_class,
        multi_tenant=context.multi_tenant,
    )
    policy, _ = parse_policy(document)
    if policy is None:
        return problems
    return [*_service_problem(document, context), *problems, *_tier_problems(policy, context)]


def cache_problems(document: Any, context: ValidationContext) -> list[Problem]:
    """Every problem of a cache config for this service: errors and warnings."""
    problems = validate_cache_config(document, multi_tenant=context.multi_tenant)
    config, _ = parse_cache_config(document)
    if config is None:
        return problems
    return [*_service_problem(document, context), *problems]


def split(problems: Iterable[Problem]) -> tuple[list[Problem], list[Problem]]:
    errors, warnings = [], []
    for problem in problems:
        (errors if problem.severity == "error" else warnings).append(problem)
    return errors, warnings


# --- request contexts for explain and simulate ---

_NUMBERS = (*NUMERIC_FIELDS, "queue_depth", "active_workers", "observed_rps", "load_pct")
_STRINGS = ("service_class", "priority", "network_quality", "region", "model")


def context_problems(context: Any, path: str = "context") -> list[Problem]:
    """Type errors in a request context that would make a comparison meaningless (or raise).

    Unknown fields are allowed (a gateway may send more than the policy reads).
    """
    if not isinstance(context, Mapping):
        return [Problem(path, "must be an object")]
    problems = []
    for name in _NUMBERS:
        value = context.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value)
        ):
            problems.append(Problem(f"{path}.{name}", "must be a number"))
    for name in _STRINGS:
        value = context.get(name)
        if value is not None and not isinstance(value, str):
            problems.append(Problem(f"{path}.{name}", "must be a string"))
    if context.get("privacy") is not None and not isinstance(context.get("privacy"), bool):
        problems.append(Problem(f"{path}.privacy", "must be true or false"))
    unhealthy = context.get("unhealthy_regions")
    if unhealthy is not None and not (
        isinstance(unhealthy, list) and all(isinstance(r, str) for r in unhealthy)
    ):
        problems.append(Problem(f"{path}.unhealthy_regions", "must be a list of region names"))
    rtts = context.get("region_rtt_ms")
    if rtts is not None and not (
        isinstance(rtts, Mapping)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in rtts.values())
    ):
        problems.append(Problem(f"{path}.region_rtt_ms", "must map region names to numbers"))
    return problems
