"""compile_policy and decide: the pure, deterministic routing decision.

`compile_policy` does the work once per policy version: it flattens each rule's conditions,
pre-builds each rule's decided chain (loops removed, explicit failure appended) and generates one
small matcher function, so the per-request `decide` is a handful of dict reads and comparisons.
`decide(..., explain=True)` walks the same conditions one by one and records, for each earlier
rule, which conditions failed with the actual and expected values. Both paths share the
condition table in `conditions.py`; a property test checks they always agree on the route.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .conditions import CONTEXT_DEFAULTS, Condition, conditions_of, context_value, queue_ratio_of
from .schema import FAILED, Batching, Hop, RoutingPolicy, implicit_default_chain, parse_policy

DEFAULT_RULE_NAME = "default"
Admission = Literal["admitted", "offloaded", "shed", "rejected"]


class PolicyError(ValueError):
    """A document that is not a valid routing policy; `problems` says why."""

    def __init__(self, problems: list[Any]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))


@dataclass(frozen=True, slots=True)
class DecidedHop:
    """One hop of a decided chain; `failed` is the explicit terminal (status or degraded answer)."""

    route: str
    timeout_ms: float = 0.0
    retries: int = 0
    backoff_ms: float = 0.0
    backoff_multiplier: float = 1.0
    region: str | None = None
    status: int | None = None
    degrade_to: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__ if getattr(self, name) is not None}


@dataclass(frozen=True, slots=True)
class ConditionMiss:
    """A condition that did not hold: `confidence_max: confidence is 0.82, expected < 0.6`."""

    condition: str
    field: str
    actual: Any
    expected: str

    def __str__(self) -> str:
        actual = "missing" if self.actual is None else repr(self.actual)
        return f"{self.condition}: {self.field} is {actual}, expected {self.expected}"


@dataclass(frozen=True, slots=True)
class RuleTrace:
    index: int
    rule: str
    matched: bool
    misses: tuple[ConditionMiss, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request. `trace` is empty unless decided with explain=True."""

    admission: Admission
    reason: str
    rule: str | None
    rule_index: int | None
    chain: tuple[DecidedHop, ...]
    collapse: bool = False
    batching: Batching | None = None
    trace: tuple[RuleTrace, ...] = ()

    @property
    def routes(self) -> tuple[str, ...]:
        return tuple(hop.route for hop in self.chain)

    @property
    def admitted(self) -> bool:
        return self.admission in ("admitted", "offloaded")

    def explain(self) -> str:
        """Readable lines: the outcome, every earlier rule with why it missed, the chain."""
        lines = [f"{self.admission}: {self.reason}"]
        for step in self.trace:
            if step.matched:
                lines.append(f"  rules[{step.index}] {step.rule}: matched")
            else:
                lines.append(f"  rules[{step.index}] {step.rule}: no match")
                lines.extend(f"    - {miss}" for miss in step.misses)
        hops = []
        for hop in self.chain:
            if hop.route == FAILED:
                hops.append(f"failed({hop.degrade_to or hop.status})")
            else:
                where = f"@{hop.region}" if hop.region else ""
                hops.append(f"{hop.route}{where}({hop.timeout_ms:g}ms x{1 + hop.retries})")
        lines.append("  chain: " + " -> ".join(hops))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "admission": self.admission,
            "reason": self.reason,
            "rule": self.rule,
            "rule_index": self.rule_index,
            "chain": [hop.as_dict() for hop in self.chain],
            "collapse": self.collapse,
            "batching": self.batching.model_dump() if self.batching else None,
            "trace": [
                {
                    "index": step.index,
                    "rule": step.rule,
                    "matched": step.matched,
                    "misses": [
                        {
                            "condition": m.condition,
                            "field": m.field,
                            "actual": m.actual,
                            "expected": m.expected,
                        }
                        for m in step.misses
                    ],
                }
                for step in self.trace
            ],
        }


def build_chain(hops: list[Hop], exhausted_status: int, *, regions: bool = False) -> tuple[DecidedHop, ...]:
    """Hops in order without repeats, cut at the first fail/degrade, ending in explicit failure.

    A repeated (route, region) is a fallback loop; validation reports it as an error, and the
    engine drops the repeat so a gateway running an unvalidated document still never loops.
    With `regions`, unpinned private_cloud hops are kept: each gets a different region per request.
    """
    seen: set[tuple[str, str | None]] = set()
    out: list[DecidedHop] = []
    for hop in hops:
        identity = (hop.route, hop.region)
        if identity in seen and not (regions and identity == ("private_cloud", None)):
            continue
        seen.add(identity)
        out.append(
            DecidedHop(
                route=hop.route,
                timeout_ms=hop.timeout_ms,
                retries=hop.retries,
                backoff_ms=hop.backoff_ms,
                backoff_multiplier=hop.backoff_multiplier,
                region=hop.region,
            )
        )
        if hop.on_exhausted.action == "fail":
            out.append(DecidedHop(route=FAILED, status=hop.on_exhausted.status))
            return tuple(out)
        if hop.on_exhausted.action == "degrade":
            out.append(DecidedHop(route=FAILED, degrade_to=hop.on_exhausted.degrade_to))
            return tuple(out)
    out.append(DecidedHop(route=FAILED, status=exhausted_status))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    index: int
    name: str
    conditions: tuple[Condition, ...]
    chain: tuple[DecidedHop, ...]
    # an unpinned private_cloud hop needs the context to pick a region
    needs_region: bool
    decision: Decision


def _generate_matcher(
    rules: list[_CompiledRule], defaults: Mapping[str, Any]
) -> tuple[Callable[[Mapping[str, Any]], int], str]:
    """One function with an `if` per rule; constants are bound by name, never formatted into code."""
    constants: dict[str, Any] = {"queue_ratio_of": queue_ratio_of}

    def const(value: Any) -> str:
        name = f"_c{len(constants)}"
        constants[name] = value
        return name

    fields: list[str] = []
    for rule in rules:
        for cond in rule.conditions:
            if cond.field not in fields:
                fields.append(cond.field)
    lines = ["def match(context):", "    get = context.get"]
    for name in fields:  # field names come from the fixed table in conditions.py
        if name == "queue_ratio":
            lines.append("    v_queue_ratio = queue_ratio_of(context)")
        elif name in defaults:
            lines.append(f"    v_{name} = get({name!r}, {const(defaults[name])})")
        else:
            lines.append(f"    v_{name} = get({name!r})")
    for rule in rules:
        if not rule.conditions:
            lines.append(f"    return {rule.index}")
            break
        terms = []
        for cond in rule.conditions:
            var, value = f"v_{cond.field}", const(cond.value)
            if cond.op == "ge":
                terms.append(f"({var} is not None and {var} >= {value})")
            elif cond.op == "lt":
                terms.append(f"({var} is not None and {var} < {value})")
            elif cond.op == "in":
                terms.append(f"({var} in {value})")
            elif cond.op == "not_in":
                terms.append(f"({var} is not None and {var} not in {value})")
            else:
                terms.append(f"({var} is not None and {var} == {value})")
        lines.append(f"    if {' and '.join(terms)}:")
        lines.append(f"        return {rule.index}")
    source = "\n".join(lines) + "\n"
    namespace = dict(constants)
    exec(compile(source, "<routing-policy-matcher>", "exec"), namespace)  # noqa: S102 - generated above
    return namespace["match"], source


@dataclass(eq=False)
class CompiledPolicy:
    """A policy prepared for fast decisions. Build once per policy version with compile_policy."""

    policy: RoutingPolicy
    service_class: str | None
    rules: tuple[_CompiledRule, ...]
    match: Callable[[Mapping[str, Any]], int]
    matcher_source: str
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def routes(self) -> frozenset[str]:
        """Every route a decision of this policy can contain (failed included)."""
        routes = {FAILED}
        for rule in self.rules:
            routes.update(hop.route for hop in rule.chain)
        if self.policy.admission.best_effort_offload:
            routes.add("public_cloud")
        return frozenset(routes)


def compile_policy(
    policy: RoutingPolicy | Mapping[str, Any], *, service_class: str | None = None
) -> CompiledPolicy:
    """Prepare a policy for `decide`. `service_class` is the default for contexts that omit it
    (a safety_critical service's requests are then always admitted). Raises PolicyError on a
    document that does not parse; run validate_policy for the semantic checks."""
    if not isinstance(policy, RoutingPolicy):
        parsed, problems = parse_policy(dict(policy))
        if parsed is None:
            raise PolicyError(problems)
        policy = parsed
    defaults = dict(CONTEXT_DEFAULTS)
    if service_class is not None:
        defaults["service_class"] = service_class
    entries: list[tuple[str, list[Condition], list[Hop]]] = [
        (rule.name, conditions_of(rule.when), rule.chain) for rule in policy.rules
    ]
    if not entries or entries[-1][1]:
        entries.append((DEFAULT_RULE_NAME, [], policy.default_chain or implicit_default_chain()))
    regions = policy.regions is not None
    rules = []
    for index, (name, conditions, hops) in enumerate(entries):
        chain = build_chain(hops, policy.exhausted_status, regions=regions)
        needs_region = regions and any(h.route == "private_cloud" and h.region is None for h in chain)
        decision = Decision(
            admission="admitted",
            reason=f"matched rule {name!r}",
            rule=name,
            rule_index=index,
            chain=chain,
            collapse=policy.admission.enabled and policy.admission.collapse_requests,
            batching=policy.batching if any(h.route == "local" for h in chain) else None,
        )
        rules.append(_CompiledRule(index, name, tuple(conditions), chain, needs_region, decision))
    match, source = _generate_matcher(rules, defaults)
    return CompiledPolicy(policy, service_class, tuple(rules), match, source, defaults)


def _admission(compiled: CompiledPolicy, context: Mapping[str, Any]) -> Decision | None:
    """None to admit; otherwise the shed, rejected or offloaded decision."""
    admission = compiled.policy.admission
    get = context.get
    if get("service_class", compiled.defaults.get("service_class")) == "safety_critical":
        return None  # never shed or rate-limit a safety-critical request
    priority = get("priority", "normal")
    if priority in admission.always_admit_priorities:
        return None
    collapse = admission.collapse_requests
    rps = get("observed_rps")
    if admission.rate_limit_rps is not None and rps is not None and rps > admission.rate_limit_rps:
        return Decision(
            admission="rejected",
            reason=f"rate limit: observed {rps:g} req/s > rate_limit_rps {admission.rate_limit_rps:g}",
            rule=None,
            rule_index=None,
            chain=(DecidedHop(route=FAILED, status=429),),
            collapse=collapse,
        )
    load = get("load_pct")
    if load is None or load < admission.shed_load_pct or priority not in admission.shed_priorities:
        return None
    overload = f"load {load:g}% >= shed_load_pct {admission.shed_load_pct:g}% for priority {priority!r}"
    if admission.best_effort_offload and not get("privacy", False):
        chain = (
            DecidedHop(route="public_cloud", timeout_ms=admission.offload_timeout_ms),
            DecidedHop(route=FAILED, status=503),
        )
        return Decision(
            "offloaded", f"{overload}: best-effort public cloud offload", None, None, chain, collapse
        )
    why = (
        "privacy-flagged requests are never offloaded" if admission.best_effort_offload else "offload is off"
    )
    return Decision(
        "shed", f"{overload}; {why}", None, None, (DecidedHop(route=FAILED, status=503),), collapse
    )


def _resolve_regions(compiled: CompiledPolicy, chain: tuple[DecidedHop, ...], context: Mapping[str, Any]):
    """Give each unpinned private_cloud hop the next-best healthy region; drop it if none is left."""
    regions = compiled.policy.regions
    assert regions is not None
    unhealthy = set(context.get("unhealthy_regions") or ())
    measured = context.get("region_rtt_ms") or {}
    client_region = context.get("region")
    model = context.get("model")
    candidates = [c for c in regions.candidates if c.name not in unhealthy]
    if model is not None and regions.model_affinity != "off":
        serving = [c for c in candidates if not c.models or model in c.models]
        if serving or regions.model_affinity == "require":
            candidates = serving

    def distance(position_and_candidate: tuple[int, Any]) -> tuple[float, int]:
        position, candidate = position_and_candidate
        rtt = measured.get(candidate.name, candidate.rtt_ms.get(client_region, float("inf")))
        return (rtt, position)

    ordered = [c.name for _, c in sorted(enumerate(candidates), key=distance)]
    pinned = {hop.region for hop in chain if hop.route == "private_cloud" and hop.region is not None}
    available = iter([name for name in ordered if name not in pinned])
    out = []
    for hop in chain:
        if hop.route == "private_cloud" and hop.region is None:
            region = next(available, None)
            if region is None:
                continue  # no healthy region left for this hop
            hop = DecidedHop(
                hop.route, hop.timeout_ms, hop.retries, hop.backoff_ms, hop.backoff_multiplier, region
            )
        out.append(hop)
    return tuple(out)


def _explain(compiled: CompiledPolicy, context: Mapping[str, Any]) -> tuple[int, tuple[RuleTrace, ...]]:
    trace = []
    defaults = compiled.defaults
    for rule in compiled.rules:
        misses = []
        for cond in rule.conditions:
            actual = context_value(context, cond.field, defaults)
            if not cond.holds(actual):
                misses.append(ConditionMiss(cond.name, cond.field, actual, cond.expected()))
        trace.append(RuleTrace(rule.index, rule.name, not misses, tuple(misses)))
        if not misses:
            return rule.index, tuple(trace)
    raise AssertionError("the last compiled rule is unconditional")  # pragma: no cover


def decide(
    policy: CompiledPolicy | RoutingPolicy | Mapping[str, Any],
    context: Mapping[str, Any],
    *,
    explain: bool = False,
) -> Decision:
    """Route one request: admission control first, then the first matching rule's chain.

    Pure and deterministic. Pass a CompiledPolicy (compile_policy) on a hot path; anything else
    is compiled on every call. With explain=True the decision carries the trace of every rule
    tried up to the matching one.
    """
    compiled = policy if isinstance(policy, CompiledPolicy) else compile_policy(policy)
    if compiled.policy.admission.enabled:
        refused = _admission(compiled, context)
        if refused is not None:
            return refused
    if explain:
        index, trace = _explain(compiled, context)
    else:
        index, trace = compiled.match(context), ()
    rule = compiled.rules[index]
    if not rule.needs_region and not trace:
        return rule.decision  # decisions are immutable, so one per rule is shared
    decision = rule.decision
    chain = _resolve_regions(compiled, rule.chain, context) if rule.needs_region else rule.chain
    return Decision(
        decision.admission,
        decision.reason,
        decision.rule,
        decision.rule_index,
        chain,
        decision.collapse,
        decision.batching,
        trace,
    )
