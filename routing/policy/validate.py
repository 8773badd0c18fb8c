"""validate_policy: every problem in a routing policy, as values with dotted paths.

Errors block a release; warnings are shown to the author. Parse errors stop the semantic checks
(there is no model to check), so a document is either unparseable or fully checked.
"""

from __future__ import annotations

from typing import Any

from slo.spec import SERVICE_CLASSES, Problem

from .conditions import Constraint, conditions_of, constraints_of, covers, empty_reason
from .schema import MAX_CHAIN_HOPS, Hop, RoutingPolicy, implicit_default_chain, parse_policy


def _warning(path: str, message: str) -> Problem:
    return Problem(path, message, "warning")


def chain_worst_case_ms(hops: list[Hop]) -> float:
    """Worst case of a chain: every reachable hop times out on every attempt, plus backoffs."""
    total = 0.0
    for hop in hops:
        total += hop.worst_case_ms()
        if hop.on_exhausted.action != "next":
            break
    return total


def _check_chain(
    hops: list[Hop],
    path: str,
    policy: RoutingPolicy,
    *,
    latency_slo_ms: float | None,
    service_class: str | None,
    privacy_rule: bool,
    implicit: bool,
) -> list[Problem]:
    problems: list[Problem] = []
    label = "the implicit default chain (local, cache, private_cloud, public_cloud)" if implicit else "chain"
    if len(hops) > MAX_CHAIN_HOPS:
        problems.append(Problem(path, f"{label} has {len(hops)} hops; at most {MAX_CHAIN_HOPS} are allowed"))
    seen: dict[tuple[str, str | None], int] = {}
    region_names = {c.name for c in policy.regions.candidates} if policy.regions else set()
    ended_at: int | None = None
    for position, hop in enumerate(hops):
        hop_path = f"{path}[{position}]"
        if ended_at is not None:
            problems.append(
                _warning(
                    hop_path,
                    f"unreachable: {path}[{ended_at}] ends the chain with on_exhausted "
                    f"{hops[ended_at].on_exhausted.action}",
                )
            )
        identity = (hop.route, hop.region)
        # with regions, each unpinned private_cloud hop goes to the next-nearest region: no loop
        if identity in seen and not (policy.regions is not None and identity == ("private_cloud", None)):
            where = f"{hop.route}@{hop.region}" if hop.region else hop.route
            problems.append(
                Problem(
                    f"{hop_path}.route",
                    f"repeated hop {where!r}: already tried at {path}[{seen[identity]}] (a fallback loop)",
                )
            )
        seen.setdefault(identity, position)
        if hop.region is not None and hop.region not in region_names:
            problems.append(
                Problem(f"{hop_path}.region", f"unknown region {hop.region!r}; not among regions.candidates")
            )
        if hop.route == "public_cloud" and service_class == "privacy_sensitive":
            problems.append(
                Problem(f"{hop_path}.route", "a privacy_sensitive service must not route to public_cloud")
            )
        elif hop.route == "public_cloud" and privacy_rule:
            problems.append(
                Problem(
                    f"{hop_path}.route",
                    "this rule matches privacy-flagged requests; they must not route to public_cloud",
                )
            )
        if ended_at is None and hop.on_exhausted.action != "next":
            ended_at = position
    if latency_slo_ms is not None:
        worst = chain_worst_case_ms(hops)
        if worst > latency_slo_ms:
            reachable = hops if ended_at is None else hops[: ended_at + 1]
            breakdown = " + ".join(f"{h.route} {h.worst_case_ms():g}" for h in reachable)
            problems.append(
                Problem(
                    path,
                    f"worst case of {label} is {worst:g} ms ({breakdown}), above the latency SLO "
                    f"threshold of {latency_slo_ms:g} ms",
                )
            )
    return problems


def _check_rules(policy: RoutingPolicy, service_class: str | None) -> list[Problem]:
    problems: list[Problem] = []
    names: dict[str, int] = {}
    live: list[tuple[int, dict[str, Constraint]]] = []  # rules that can match, in order
    for index, rule in enumerate(policy.rules):
        path = f"rules[{index}]"
        if rule.name in names:
            problems.append(
                Problem(f"{path}.name", f"duplicate rule name {rule.name!r} (also rules[{names[rule.name]}])")
            )
        names.setdefault(rule.name, index)
        conditions = conditions_of(rule.when)
        constraints = constraints_of(conditions)
        reason = empty_reason(constraints)
        if reason is not None:
            problems.append(Problem(f"{path}.when", f"rule {rule.name!r} can never match: {reason}"))
            continue
        if service_class is not None and rule.when.service_class_in is not None:
            if service_class not in rule.when.service_class_in:
                problems.append(
                    _warning(
                        f"{path}.when.service_class_in",
                        f"never matches this service's requests (class {service_class})",
                    )
                )
        for earlier, earlier_constraints in live:
            # cheap pre-check inside covers(): the earlier rule's fields must be a subset
            if covers(earlier_constraints, constraints):
                other = policy.rules[earlier].name
                if earlier_constraints:
                    why = f"earlier rule {other!r} (rules[{earlier}]) matches every request this rule would"
                else:
                    why = f"earlier rule {other!r} (rules[{earlier}]) is unconditional"
                problems.append(Problem(path, f"rule {rule.name!r} is shadowed and can never match: {why}"))
                break
        else:
            live.append((index, constraints))
    return problems


def validate_policy(
    doc: Any,
    *,
    latency_slo_ms: float | None,
    service_class: str | None,
    multi_tenant: bool = False,
) -> list[Problem]:
    """All problems of a routing policy document (a dict from JSON/YAML, or a RoutingPolicy).

    `latency_slo_ms` is the service's latency SLO threshold (None: no latency SLO, so chain
    worst cases are not checked). `multi_tenant` is accepted for symmetry with
    validate_cache_config; routing has no per-tenant checks yet.
    """
    del multi_tenant
    policy, problems = parse_policy(doc)
    if policy is None:
        return problems
    if service_class is not None and service_class not in SERVICE_CLASSES:
        problems.append(Problem("service_class", f"unknown service class {service_class!r}"))
        service_class = None

    problems += _check_rules(policy, service_class)

    last_is_default = bool(policy.rules) and policy.rules[-1].when.is_unconditional()
    for index, rule in enumerate(policy.rules):
        problems += _check_chain(
            rule.chain,
            f"rules[{index}].chain",
            policy,
            latency_slo_ms=latency_slo_ms,
            service_class=service_class,
            privacy_rule=rule.when.privacy is True,
            implicit=False,
        )
    if policy.default_chain is not None and last_is_default:
        problems.append(
            _warning("default_chain", f"never used: the last rule {policy.rules[-1].name!r} is unconditional")
        )
    elif not last_is_default:
        problems += _check_chain(
            policy.default_chain or implicit_default_chain(),
            "default_chain",
            policy,
            latency_slo_ms=latency_slo_ms,
            service_class=service_class,
            privacy_rule=False,
            implicit=policy.default_chain is None,
        )

    problems += _check_admission(policy, service_class, latency_slo_ms)
    problems += _check_autoscaling(policy)
    if policy.regions is not None:
        seen: set[str] = set()
        for index, candidate in enumerate(policy.regions.candidates):
            if candidate.name in seen:
                problems.append(
                    Problem(f"regions.candidates[{index}].name", f"duplicate region {candidate.name!r}")
                )
            seen.add(candidate.name)
    return problems


def _check_admission(
    policy: RoutingPolicy, service_class: str | None, latency_slo_ms: float | None
) -> list[Problem]:
    problems: list[Problem] = []
    admission = policy.admission
    both = sorted(set(admission.shed_priorities) & set(admission.always_admit_priorities))
    if both:
        problems.append(
            _warning(
                "admission.shed_priorities", f"{', '.join(both)} is always admitted, so it is never shed"
            )
        )
    if admission.enabled and admission.best_effort_offload and service_class == "privacy_sensitive":
        problems.append(
            Problem(
                "admission.best_effort_offload",
                "a privacy_sensitive service must not offload "
                "to public cloud; set best_effort_offload: false",
            )
        )
    if service_class == "safety_critical" and admission.enabled and admission.rate_limit_rps is not None:
        problems.append(
            _warning(
                "admission.rate_limit_rps",
                "safety_critical requests are always admitted; the rate limit never applies to them",
            )
        )
    if (
        policy.batching is not None
        and latency_slo_ms is not None
        and policy.batching.max_wait_ms > latency_slo_ms / 2
    ):
        problems.append(
            _warning(
                "batching.max_wait_ms",
                f"batching may wait {policy.batching.max_wait_ms:g} ms, "
                f"more than half the latency SLO threshold of {latency_slo_ms:g} ms",
            )
        )
    return problems


def _check_autoscaling(policy: RoutingPolicy) -> list[Problem]:
    problems: list[Problem] = []
    scaling = policy.autoscaling
    if scaling.min_workers > scaling.max_workers:
        problems.append(
            Problem(
                "autoscaling.min_workers",
                f"min_workers {scaling.min_workers} is above max_workers {scaling.max_workers}",
            )
        )
    if scaling.scale_in_queue_ratio >= scaling.scale_out_queue_ratio:
        problems.append(
            Problem(
                "autoscaling.scale_in_queue_ratio",
                f"scale-in queue ratio "
                f"{scaling.scale_in_queue_ratio:g} is not below the scale-out ratio "
                f"{scaling.scale_out_queue_ratio:g}: capacity would flap",
            )
        )
    if scaling.scale_in_p95_pct_of_slo >= scaling.scale_out_p95_pct_of_slo:
        problems.append(
            Problem(
                "autoscaling.scale_in_p95_pct_of_slo",
                f"scale-in p95 threshold "
                f"{scaling.scale_in_p95_pct_of_slo:g}% is not below the scale-out threshold "
                f"{scaling.scale_out_p95_pct_of_slo:g}%: capacity would flap",
            )
        )
    if scaling.scale_in_cooldown_s <= scaling.scale_out_cooldown_s:
        problems.append(
            _warning(
                "autoscaling.scale_in_cooldown_s",
                f"scale-in cooldown "
                f"{scaling.scale_in_cooldown_s:g} s should be longer than the scale-out "
                f"cooldown {scaling.scale_out_cooldown_s:g} s",
            )
        )
    if scaling.scale_out_p95_pct_of_slo >= 100:
        problems.append(
            _warning(
                "autoscaling.scale_out_p95_pct_of_slo",
                "scaling out only once p95 is at or "
                "above the SLO threshold reacts after the budget is already burning",
            )
        )
    return problems
