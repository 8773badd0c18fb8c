"""Canary analysis over plain numbers (no Django): the wave's gateways against the rest of the fleet
over the same minutes.

One *measurement* compares the canary group with the baseline group:

* absolute, per SLO: the canary's burn rate `(bad / valid) / (1 - objective)` must stay at or below
  `max_burn_rate`;
* relative: canary p95 latency at most `max_p95_increase` (10%) above the baseline's, and the canary
  error ratio at most `max_error_ratio_factor` (2x) the baseline's (a floor keeps a baseline with no
  errors from turning one canary error into "infinitely worse");
* traffic: fewer than `min_valid_events` canary events in the window is *inconclusive*: the release
  pauses for a person. It never passes (flagger #1581, keptn #428) nor fails (argo-rollouts #1466)
  on no data. A baseline with too little traffic makes only the relative checks inconclusive.

A verdict over a series of measurements (`overall`) fails only after `failure_limit` consecutive
failing measurements, so one noisy minute does not roll back a healthy canary (argo-rollouts #4792).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from controlplane.lib.histograms import histogram_quantile

PASS = "pass"
FAIL = "fail"
INCONCLUSIVE = "inconclusive"
VERDICTS = (PASS, FAIL, INCONCLUSIVE)


@dataclass(frozen=True)
class Criteria:
    """Thresholds of one analysis. Defaults: see docs/releases.md."""

    max_burn_rate: float = 10.0
    max_p95_increase: float = 0.10  # canary p95 <= baseline p95 * 1.10
    max_error_ratio_factor: float = 2.0  # canary error ratio <= 2 x baseline
    # 0.1% absolute: below it the error ratios are too small to compare meaningfully.
    error_ratio_floor: float = 0.001
    min_valid_events: int = 100
    failure_limit: int = 2

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> Criteria:
        data = dict(data or {})
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass(frozen=True)
class SloWindow:
    """Good and valid events of one SLO in the window, for one group of gateways."""

    name: str
    objective: float  # ratio, e.g. 0.995
    good: float
    valid: float


@dataclass(frozen=True)
class GroupStats:
    """One group's numbers over the window. `p95_ms` None: no latency samples."""

    slos: Sequence[SloWindow] = ()
    requests: float = 0.0
    errors: float = 0.0
    p95_ms: float | None = None


@dataclass
class Check:
    name: str
    outcome: str
    value: float | None = None
    threshold: float | None = None
    detail: str = ""


@dataclass
class Measurement:
    verdict: str
    checks: list[Check] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "checks": [asdict(c) for c in self.checks]}


def burn_rate(good: float, valid: float, objective: float) -> float | None:
    """Bad over valid, over the allowed bad ratio; None without events (no data is not good data)."""
    if valid <= 0 or not 0 < objective < 1:
        return None
    bad = max(0.0, valid - min(good, valid))
    return (bad / valid) / (1 - objective)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def measure(canary: GroupStats, baseline: GroupStats | None, criteria: Criteria) -> Measurement:
    """Compare one window. Fail if any check fails; else inconclusive if any is; else pass."""
    checks: list[Check] = []
    canary_valid = max((s.valid for s in canary.slos), default=0.0)
    canary_events = max(canary_valid, canary.requests)
    if canary_events < criteria.min_valid_events:
        checks.append(
            Check(
                "canary_traffic",
                INCONCLUSIVE,
                canary_events,
                criteria.min_valid_events,
                "too little canary traffic to judge",
            )
        )
        return Measurement(INCONCLUSIVE, checks)
    checks.append(Check("canary_traffic", PASS, canary_events, criteria.min_valid_events))

    for slo in canary.slos:
        rate = burn_rate(slo.good, slo.valid, slo.objective)
        if rate is None or slo.valid < criteria.min_valid_events:
            checks.append(
                Check(
                    f"burn_rate:{slo.name}",
                    INCONCLUSIVE,
                    rate,
                    criteria.max_burn_rate,
                    f"{slo.valid:g} valid events",
                )
            )
        else:
            checks.append(
                Check(
                    f"burn_rate:{slo.name}",
                    FAIL if rate > criteria.max_burn_rate else PASS,
                    round(rate, 4),
                    criteria.max_burn_rate,
                )
            )

    base_events = (
        0.0
        if baseline is None
        else max(max((s.valid for s in baseline.slos), default=0.0), baseline.requests)
    )
    if baseline is None or base_events < criteria.min_valid_events:
        # Absolute criteria still decide; say plainly that the comparison could not be made.
        detail = "no baseline gateways" if baseline is None else "too little baseline traffic"
        checks.append(Check("relative", "skipped", base_events, criteria.min_valid_events, detail))
    else:
        if canary.p95_ms is None or baseline.p95_ms is None:
            checks.append(Check("p95_latency", INCONCLUSIVE, canary.p95_ms, None, "no latency samples"))
        else:
            limit = baseline.p95_ms * (1 + criteria.max_p95_increase)
            checks.append(
                Check(
                    "p95_latency",
                    FAIL if canary.p95_ms > limit else PASS,
                    round(canary.p95_ms, 3),
                    round(limit, 3),
                    f"baseline p95 {baseline.p95_ms:.1f} ms",
                )
            )
        canary_ratio = _ratio(canary.errors, canary.requests)
        base_ratio = _ratio(baseline.errors, baseline.requests)
        if canary_ratio is None or base_ratio is None:
            checks.append(Check("error_ratio", INCONCLUSIVE, canary_ratio, None, "no request counts"))
        else:
            limit = max(base_ratio, criteria.error_ratio_floor) * criteria.max_error_ratio_factor
            checks.append(
                Check(
                    "error_ratio",
                    FAIL if canary_ratio > limit else PASS,
                    round(canary_ratio, 6),
                    round(limit, 6),
                    f"baseline {base_ratio:.4%}",
                )
            )
    outcomes = {c.outcome for c in checks}
    verdict = FAIL if FAIL in outcomes else INCONCLUSIVE if INCONCLUSIVE in outcomes else PASS
    return Measurement(verdict, checks)


def overall(verdicts: Sequence[str], criteria: Criteria) -> str:
    """The analysis verdict so far: fail after `failure_limit` consecutive failures; inconclusive
    when the newest measurement is; else pass (keep baking)."""
    streak = 0
    for verdict in reversed(verdicts):
        if verdict != FAIL:
            break
        streak += 1
    if streak >= criteria.failure_limit:
        return FAIL
    if verdicts and verdicts[-1] == INCONCLUSIVE:
        return INCONCLUSIVE
    return PASS


def histogram_p95(buckets: Mapping[float, float]) -> float | None:
    """p95 in the bucket unit from cumulative bucket counts (`le` -> count); None without samples."""
    return histogram_quantile(0.95, buckets)
