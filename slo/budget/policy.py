"""Error-budget policy, pure: what a service's budget state means for a release.

A service's state is its worst SLO's: `exhausted` when any SLO's remaining budget is at or below
the freeze threshold, else `low` below the low threshold, else `unknown` when any SLO has no
verdict (no data, insufficient traffic, never or not recently evaluated), else `ok`. A service
without SLOs is `unknown`. No data is not good data: `unknown` asks for the same extra approvals as
`low`, or freezes like `exhausted` when the policy says `unknown_blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

STATES = ("ok", "low", "unknown", "exhausted")
CHANGE_KINDS = ("normal", "rollback", "hotfix")


@dataclass(frozen=True)
class PolicyRules:
    """The thresholds of one policy. Ratios are of the remaining budget (1 = untouched)."""

    low_remaining_ratio: float = 0.25
    low_extra_approvals: int = 1
    exhausted_remaining_ratio: float = 0.0
    freeze_allowed_change_kinds: tuple[str, ...] = ("rollback", "hotfix")
    unknown_blocks: bool = False

    def problems(self) -> list[dict[str, str]]:
        out = []
        if not -10 <= self.exhausted_remaining_ratio < self.low_remaining_ratio <= 1:
            out.append(
                {
                    "path": "low_remaining_ratio",
                    "message": "need exhausted_remaining_ratio < low_remaining_ratio <= 1",
                }
            )
        if not 0 <= self.low_extra_approvals <= 10:
            out.append({"path": "low_extra_approvals", "message": "must be between 0 and 10"})
        unknown = sorted(set(self.freeze_allowed_change_kinds) - set(CHANGE_KINDS))
        if unknown:
            out.append(
                {
                    "path": "freeze_allowed_change_kinds",
                    "message": f"unknown change kinds {unknown}; use {list(CHANGE_KINDS)}",
                }
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["freeze_allowed_change_kinds"] = list(self.freeze_allowed_change_kinds)
        return out


@dataclass(frozen=True)
class SloBudget:
    """One SLO's budget as the policy sees it; `remaining` None when there is no verdict."""

    name: str
    remaining: float | None
    data_quality: str
    paging: bool = False


@dataclass(frozen=True)
class Verdict:
    state: str
    required_extra_approvals: int
    frozen: bool
    allowed_change_kinds: tuple[str, ...]
    reasons: list[str] = field(default_factory=list)


def service_state(slos: Sequence[SloBudget], rules: PolicyRules) -> Verdict:
    """The service's budget state and what it requires of a release."""
    reasons: list[str] = []
    exhausted = [
        s for s in slos if s.remaining is not None and s.remaining <= rules.exhausted_remaining_ratio
    ]
    low = [
        s
        for s in slos
        if s.remaining is not None and s not in exhausted and s.remaining < rules.low_remaining_ratio
    ]
    unknown = [s for s in slos if s.remaining is None or s.data_quality != "ok"]
    if exhausted:
        state = "exhausted"
        reasons += [f"{s.name}: budget spent ({s.remaining:.1%} left)" for s in exhausted]
    elif low:
        state = "low"
        reasons += [f"{s.name}: {s.remaining:.1%} of the budget left" for s in low]
    elif not slos or unknown:
        state = "unknown"
        reasons += (
            ["the service has no SLOs"] if not slos else [f"{s.name}: {s.data_quality}" for s in unknown]
        )
    else:
        state = "ok"
    frozen = state == "exhausted" or (state == "unknown" and rules.unknown_blocks)
    extra = rules.low_extra_approvals if state in ("low", "unknown") and not frozen else 0
    allowed = rules.freeze_allowed_change_kinds if frozen else CHANGE_KINDS
    return Verdict(state, extra, frozen, tuple(allowed), reasons)


def change_allowed(verdict: Verdict, change_kind: str) -> tuple[bool, str]:
    """May a change of this kind proceed (with `required_extra_approvals` more approvals)?"""
    if change_kind not in CHANGE_KINDS:
        return False, f"unknown change kind {change_kind!r}"
    if verdict.frozen and change_kind not in verdict.allowed_change_kinds:
        return (
            False,
            f"changes are frozen ({verdict.state}); allowed: {', '.join(verdict.allowed_change_kinds) or 'none'}",
        )
    return True, "allowed" if not verdict.required_extra_approvals else (
        f"allowed with {verdict.required_extra_approvals} extra approval(s) ({verdict.state})"
    )
