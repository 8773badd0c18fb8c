"""Rule conditions as plain tuples, shared by the compiler, the explainer and the validator.

One table maps each `When` field to a context field and an operator, so the fast matcher,
the explain trace and the shadowing analysis can never disagree about what a condition means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .schema import When

NUMERIC_FIELDS = (
    "confidence",
    "temperature_c",
    "memory_headroom_pct",
    "queue_ratio",
    "request_age_ms",
    "rtt_ms",
    "payload_bytes",
)
SET_CONDITIONS = {
    "service_class_in": "service_class",
    "priority_in": "priority",
    "network_quality_in": "network_quality",
    "region_in": "region",
}
# values a context may leave out; every other missing field makes its conditions fail
CONTEXT_DEFAULTS: dict[str, Any] = {"priority": "normal", "privacy": False}


@dataclass(frozen=True, slots=True)
class Condition:
    """`name` is the When field (`confidence_max`), `field` the context field (`confidence`)."""

    name: str
    field: str
    op: str  # ge | lt | in | not_in | eq
    value: Any

    def holds(self, actual: Any) -> bool:
        if actual is None:
            return False
        if self.op == "ge":
            return bool(actual >= self.value)
        if self.op == "lt":
            return bool(actual < self.value)
        if self.op == "in":
            return actual in self.value
        if self.op == "not_in":
            return actual not in self.value
        return bool(actual == self.value)

    def expected(self) -> str:
        if self.op == "ge":
            return f">= {self.value:g}"
        if self.op == "lt":
            return f"< {self.value:g}"
        if self.op in ("in", "not_in"):
            word = "in" if self.op == "in" else "not in"
            return f"{word} [{', '.join(sorted(self.value))}]"
        return f"== {self.value}"


def conditions_of(when: When) -> list[Condition]:
    out: list[Condition] = []
    for name in NUMERIC_FIELDS:
        low = getattr(when, f"{name}_min")
        high = getattr(when, f"{name}_max")
        if low is not None:
            out.append(Condition(f"{name}_min", name, "ge", float(low)))
        if high is not None:
            out.append(Condition(f"{name}_max", name, "lt", float(high)))
    for name, field in SET_CONDITIONS.items():
        values = getattr(when, name)
        if values is not None:
            out.append(Condition(name, field, "in", frozenset(values)))
    if when.region_not_in is not None:
        out.append(Condition("region_not_in", "region", "not_in", frozenset(when.region_not_in)))
    if when.privacy is not None:
        out.append(Condition("privacy", "privacy", "eq", when.privacy))
    return out


def queue_ratio_of(context: Mapping[str, Any]) -> float | None:
    """`queue_ratio` as given, else queue_depth / active_workers (a queue with no workers is inf)."""
    ratio = context.get("queue_ratio")
    if ratio is not None:
        return float(ratio)
    depth = context.get("queue_depth")
    workers = context.get("active_workers")
    if depth is None or workers is None:
        return None
    if workers <= 0:
        return math.inf if depth > 0 else 0.0
    return depth / workers


def context_value(
    context: Mapping[str, Any], field: str, defaults: Mapping[str, Any] = CONTEXT_DEFAULTS
) -> Any:
    if field == "queue_ratio":
        return queue_ratio_of(context)
    return context.get(field, defaults.get(field))


# --- set algebra for the validator: does one rule's condition set cover another's? ---

Constraint = tuple[Any, ...]  # ("range", low, high) | ("in", set) | ("not_in", set)


def constraints_of(conditions: list[Condition]) -> dict[str, Constraint]:
    """Per context field, the set of values the conditions accept."""
    ranges: dict[str, list[float]] = {}
    included: dict[str, frozenset[Any]] = {}
    excluded: dict[str, frozenset[Any]] = {}
    for cond in conditions:
        if cond.op in ("ge", "lt"):
            bounds = ranges.setdefault(cond.field, [-math.inf, math.inf])
            if cond.op == "ge":
                bounds[0] = max(bounds[0], cond.value)
            else:
                bounds[1] = min(bounds[1], cond.value)
        elif cond.op == "in":
            included[cond.field] = included.get(cond.field, cond.value) & cond.value
        elif cond.op == "eq":
            included[cond.field] = frozenset({cond.value})
        else:
            excluded[cond.field] = excluded.get(cond.field, frozenset()) | cond.value
    out: dict[str, Constraint] = {field: ("range", low, high) for field, (low, high) in ranges.items()}
    for field, values in included.items():
        out[field] = ("in", values - excluded.get(field, frozenset()))
    for field, values in excluded.items():
        if field not in included:
            out[field] = ("not_in", values)
    return out


def empty_reason(constraints: dict[str, Constraint]) -> str | None:
    """Why no context can satisfy these constraints, or None when some can."""
    for field, constraint in constraints.items():
        if constraint[0] == "range" and constraint[1] >= constraint[2]:
            return f"{field} must be >= {constraint[1]:g} and < {constraint[2]:g}"
        if constraint[0] == "in" and not constraint[1]:
            return f"no value of {field} is allowed"
    return None


def covers(outer: dict[str, Constraint], inner: dict[str, Constraint]) -> bool:
    """True when every context that satisfies `inner` also satisfies `outer`."""
    if not outer.keys() <= inner.keys():
        # outer constrains a field inner leaves free (or missing): some context escapes it
        return False
    for field, (kind, *args) in outer.items():
        inner_kind, *inner_args = inner[field]
        if kind == "range":
            if inner_kind != "range" or not (args[0] <= inner_args[0] and inner_args[1] <= args[1]):
                return False
        elif kind == "in":
            if inner_kind != "in" or not inner_args[0] <= args[0]:
                return False
        elif inner_kind == "in":
            if inner_args[0] & args[0]:
                return False
        elif inner_kind != "not_in" or not args[0] <= inner_args[0]:
            return False
    return True
