"""cheapest_compliant: the cheapest routing policy whose predicted burn stays at or below 1x.

A bounded coordinate search over the two things a policy decides cost with: the order of each
rule's chain (every permutation of a chain of at most `max_chain_routes` hops, each hop keeping its
own timeout, retries and fallback settings) and the numeric thresholds of each rule's conditions
(`*_min` / `*_max`, each tried at `threshold_factors` times its current value). Every candidate is
replayed through the simulator (the same contexts, route figures and seed as the current policy) and
judged on two figures: predicted `budget_burn` and `cost_per_1000_usd`.

- A candidate is **accepted** when it is valid, its burn is <= `max_burn` and it costs strictly less
  than the best compliant policy found so far. The moves then restart from it (first improvement),
  so the answer is the current policy with the accepted `changes` applied in order.
- It is **rejected** as `invalid` (it does not compile or the `validate` callback objects),
  `non_compliant` (burn above `max_burn`) or `not_cheaper`.

So the answer never is a non-compliant policy and, when the current policy complies, never costs
more than it (it is the current policy when nothing cheaper complies). `max_candidates` bounds the
number of replays. `keep_rules` (rule names, or `default_chain`) are left alone: rules whose
thresholds guard quality or devices rather than latency, errors and cost.
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .engine import compile_policy
from .simulate import RouteStats, replay

DEFAULT_FACTORS = (0.5, 0.75, 1.25, 1.5)
MAX_REJECTED_LISTED = 50


@dataclass(frozen=True)
class Candidate:
    description: str
    cost_per_1000_usd: float | None
    budget_burn: float | None
    reason: str = ""


@dataclass
class SearchResult:
    status: str  # "cheaper" | "current_is_cheapest" | "none_compliant"
    document: dict[str, Any] | None
    current: Candidate
    best: Candidate | None
    changes: list[str] = field(default_factory=list)
    evaluated: int = 0
    rejected_counts: dict[str, int] = field(default_factory=dict)
    rejected: list[Candidate] = field(default_factory=list)


def _chains(document: Mapping[str, Any], keep: Collection[str] = ()) -> list[tuple[str, list[Any]]]:
    """(label, path) of every chain: rules' chains and the default chain (not those in `keep`)."""
    out: list[tuple[str, list[Any]]] = []
    for index, rule in enumerate(document.get("rules", [])):
        if rule.get("name") in keep:
            continue
        if isinstance(rule.get("chain"), list):
            out.append((f"rule {rule.get('name', index)}", ["rules", index, "chain"]))
    if isinstance(document.get("default_chain"), list) and "default_chain" not in keep:
        out.append(("default chain", ["default_chain"]))
    return out


def _thresholds(document: Mapping[str, Any], keep: Collection[str] = ()) -> list[tuple[str, int, str, float]]:
    """(rule name, rule index, condition key, value) of every numeric _min/_max condition."""
    out = []
    for index, rule in enumerate(document.get("rules", [])):
        if rule.get("name") in keep:
            continue
        when = rule.get("when") or {}
        for key, value in sorted(when.items()):
            if (key.endswith("_min") or key.endswith("_max")) and isinstance(value, int | float):
                if not isinstance(value, bool):
                    out.append((str(rule.get("name", index)), index, key, float(value)))
    return out


def _get(document: Any, path: Sequence[Any]) -> Any:
    for part in path:
        document = document[part]
    return document


def _moves(
    document: dict[str, Any], max_chain_routes: int, factors: Sequence[float], keep: Collection[str] = ()
):
    """(description, candidate document) of every single move from `document`."""
    for label, path in _chains(document, keep):
        chain = _get(document, path)
        if not 2 <= len(chain) <= max_chain_routes:
            continue
        for order in itertools.permutations(range(len(chain))):
            if list(order) == list(range(len(chain))):
                continue
            candidate = copy.deepcopy(document)
            _get(candidate, path[:-1])[path[-1]] = [copy.deepcopy(chain[i]) for i in order]
            routes = ">".join(str(chain[i].get("route")) for i in order)
            yield f"{label}: chain {routes}", candidate
    for name, index, key, value in _thresholds(document, keep):
        original = document["rules"][index]["when"][key]
        for factor in factors:
            raw = value * factor
            new: float | int = round(raw) if isinstance(original, int) else round(raw, 4)
            if new == original:
                continue
            candidate = copy.deepcopy(document)
            candidate["rules"][index]["when"][key] = new
            yield f"rule {name}: {key} {original:g} -> {new:g}", candidate


def cheapest_compliant(
    document: Mapping[str, Any],
    contexts: Sequence[Mapping[str, Any]],
    route_stats: Mapping[str, RouteStats | Mapping[str, Any]],
    *,
    objective: float,
    latency_threshold_ms: float | None = None,
    service_class: str | None = None,
    seed: int = 0,
    max_burn: float = 1.0,
    max_chain_routes: int = 4,
    threshold_factors: Sequence[float] = DEFAULT_FACTORS,
    max_candidates: int = 500,
    validate: Callable[[dict[str, Any]], list[str]] | None = None,
    keep_rules: Collection[str] = (),
) -> SearchResult:
    """The cheapest compliant policy reachable by a path of single moves, each cheaper than the last
    (first improvement; `max_candidates` replays at most)."""
    if not 0 < objective < 100:
        raise ValueError("objective is a percentage in (0, 100)")
    if not contexts:
        raise ValueError("at least one request context is needed")
    stats = {name: RouteStats.of(value) for name, value in route_stats.items()}
    evaluated = 0

    def judge(description: str, candidate: dict[str, Any]) -> Candidate:
        nonlocal evaluated
        problems = validate(candidate) if validate is not None else []
        if problems:
            return Candidate(description, None, None, "invalid: " + "; ".join(problems)[:300])
        try:
            compiled = compile_policy(candidate, service_class=service_class)
            evaluated += 1
            report = replay(
                compiled,
                contexts,
                stats,
                seed=seed,
                latency_threshold_ms=latency_threshold_ms,
                objective=objective,
            )
        except (ValueError, TypeError) as exc:
            return Candidate(description, None, None, f"invalid: {exc}"[:300])
        assert report.budget_burn is not None
        return Candidate(description, report.cost_per_1000_usd, report.budget_burn)

    base = copy.deepcopy(dict(document))
    current = judge("current policy", base)
    if current.cost_per_1000_usd is None:
        raise ValueError(f"the current policy cannot be replayed ({current.reason})")
    compliant = current.budget_burn is not None and current.budget_burn <= max_burn
    best: Candidate | None = current if compliant else None
    best_document: dict[str, Any] | None = base if compliant else None
    changes: list[str] = []
    rejected: list[Candidate] = []
    counts: Counter[str] = Counter()
    seen = {repr(base)}
    start = base
    improved = True
    while improved and evaluated < max_candidates:
        improved = False  # first improvement: every accepted move restarts the moves from it
        for description, candidate in _moves(start, max_chain_routes, threshold_factors, keep_rules):
            if evaluated >= max_candidates:
                break
            key = repr(candidate)
            if key in seen:
                continue
            seen.add(key)
            judged = judge(description, candidate)
            reason = judged.reason
            if not reason and judged.budget_burn is not None and judged.budget_burn > max_burn:
                reason = f"non_compliant: predicted burn {judged.budget_burn:.3g}x > {max_burn:g}x"
            if not reason and best is not None and judged.cost_per_1000_usd >= best.cost_per_1000_usd:  # type: ignore[operator]
                reason = (
                    f"not_cheaper: {judged.cost_per_1000_usd:.4g} USD per 1,000 >= "
                    f"{best.cost_per_1000_usd:.4g}"
                )
            if reason:
                counts[reason.split(":", 1)[0]] += 1
                if len(rejected) < MAX_REJECTED_LISTED:
                    rejected.append(
                        Candidate(description, judged.cost_per_1000_usd, judged.budget_burn, reason)
                    )
                continue
            best, best_document, start = judged, candidate, candidate
            changes.append(description)
            improved = True
            break
    if best is None:
        status = "none_compliant"
    elif best is current:
        status = "current_is_cheapest"
    else:
        status = "cheaper"
    return SearchResult(
        status=status,
        document=best_document,
        current=current,
        best=best,
        changes=changes,
        evaluated=evaluated,
        rejected_counts=dict(counts),
        rejected=rejected,
    )
