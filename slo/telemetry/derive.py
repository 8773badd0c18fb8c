"""Good and valid events per SLO and minute from pushed contract series (pure: no Django).

The same definitions as `slo.contract.sli_queries` (docs/telemetry.md, "SLIs from the contract"),
applied to per-minute increases instead of PromQL selectors:

| kind | good | valid |
|---|---|---|
| latency | `_bucket{outcome="ok", le = threshold}` | `_count{outcome in ok, timeout}` |
| availability | requests `outcome="ok"` | requests `outcome in ok, error, timeout` |
| fallback_success | fallbacks `outcome="ok"` | all fallbacks |
| freshness | data-age `_bucket{le = max_age_s}` | data-age `_count` |
| correctness | hits - stale hits | cache lookups `result in hit, stale_hit, semantic_hit` |

Series are filtered by `service` and, when the SLO names one, `tier`. `le` is compared as a number,
so "0.15", "0.150" and "1.5e-01" are one boundary. A listed minute is complete: no matching series
means 0 events. A histogram series that has traffic but no bucket at the threshold cannot give the
SLI (the threshold is no boundary it exposes): that minute is missing, like a PromQL selector that
matches nothing. Custom SLIs (arbitrary PromQL) cannot be derived from pushed series.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from slo import contract as c
from slo.telemetry.batch import PushBatch, Sample

DERIVABLE_KINDS = ("latency", "availability", "fallback_success", "freshness", "correctness")
_VALID = frozenset(c.VALID_OUTCOMES)
_LATENCY_VALID = frozenset({"ok", "timeout"})
_HITS = frozenset({"hit", "stale_hit", "semantic_hit"})


@dataclass(frozen=True)
class SliTarget:
    """What an SLO needs from pushed series. `threshold_s`: latency threshold or max data age."""

    slo_id: int
    kind: str
    service: str
    tier: str | None
    threshold_s: float | None = None

    def matches(self, service: str, tier: str) -> bool:
        return service == self.service and (self.tier is None or tier == self.tier)


class SliRow(NamedTuple):
    slo_id: int
    minute: int
    good: int
    valid: int
    present: bool


def sli_target(slo_id: int, spec: dict[str, Any]) -> SliTarget | None:
    """The target of an SLO document (as stored in `Slo.spec`), or None if pushes cannot feed it."""
    sli = spec.get("sli") or {}
    kind = sli.get("kind")
    if kind not in DERIVABLE_KINDS:
        return None
    threshold_s = None
    if kind == "latency":
        # exact decimal: 150 ms -> 0.15, the float a "0.15" bucket parses to
        threshold_s = float(Decimal(repr(float(sli["threshold_ms"]))) / 1000)
    elif kind == "freshness":
        threshold_s = float(sli["max_age_s"])
    return SliTarget(slo_id, kind, spec["service"], spec.get("tier") or None, threshold_s)


def derive_sli_rows(batch: PushBatch, targets: Iterable[SliTarget]) -> list[SliRow]:
    """One row per target and listed minute of the batch."""
    by_key: dict[tuple[int, str, str], list[Sample]] = defaultdict(list)
    for s in batch.samples:
        if s.service:
            by_key[(s.minute, s.service, s.name)].append(s)
    rows: list[SliRow] = []
    for target in targets:
        derive = _DERIVERS[target.kind]
        for minute in batch.minutes:
            good, valid, present = derive(target, minute, by_key)
            rows.append(SliRow(target.slo_id, minute, int(good), int(valid), present))
    return rows


_Index = dict[tuple[int, str, str], list[Sample]]


def _matching(target: SliTarget, minute: int, name: str, index: _Index) -> list[Sample]:
    return [s for s in index.get((minute, target.service, name), ()) if target.tier is None or s.tier == target.tier]


def _ratio_of(name: str, good_label: str, good_value: str, valid: frozenset[str] | None) -> Any:
    def derive(target: SliTarget, minute: int, index: _Index) -> tuple[float, float, bool]:
        good = valid_sum = 0.0
        for s in _matching(target, minute, name, index):
            if valid is None or s.labels[good_label] in valid:
                valid_sum += s.value
                if s.labels[good_label] == good_value:
                    good += s.value
        return good, valid_sum, True

    return derive


def _bucket_ratio(base: str, outcome_filter: bool) -> Any:
    def derive(target: SliTarget, minute: int, index: _Index) -> tuple[float, float, bool]:
        valid_sum = 0.0
        answered: dict[tuple[str, str], float] = {}  # series -> _count of the good outcome
        for s in _matching(target, minute, f"{base}_count", index):
            outcome = s.labels.get("outcome", "ok") if outcome_filter else "ok"
            if outcome_filter and outcome not in _LATENCY_VALID:
                continue
            valid_sum += s.value
            if outcome == "ok":
                answered[(s.tier, s.series)] = s.value
        good = 0.0
        with_buckets: set[tuple[str, str]] = set()
        found: set[tuple[str, str]] = set()
        for s in _matching(target, minute, f"{base}_bucket", index):
            if outcome_filter and s.labels.get("outcome") != "ok":
                continue
            key = (s.tier, s.series)
            with_buckets.add(key)
            if s.le == target.threshold_s:
                good += s.value
                found.add(key)
        # a series with answers (or buckets) but no bucket at the threshold: unknown, not 0
        for key in with_buckets | {k for k, v in answered.items() if v > 0}:
            if key not in found:
                return 0.0, 0.0, False
        return good, valid_sum, True

    return derive


def _correctness(target: SliTarget, minute: int, index: _Index) -> tuple[float, float, bool]:
    hits = stale = 0.0
    for s in _matching(target, minute, c.CACHE_LOOKUPS_TOTAL, index):
        result = s.labels["result"]
        if result in _HITS:
            hits += s.value
            if result == "stale_hit":
                stale += s.value
    return hits - stale, hits, True


_DERIVERS = {
    "latency": _bucket_ratio(c.REQUEST_DURATION, outcome_filter=True),
    "availability": _ratio_of(c.REQUESTS_TOTAL, "outcome", "ok", _VALID),
    "fallback_success": _ratio_of(c.FALLBACKS_TOTAL, "outcome", "ok", None),
    "freshness": _bucket_ratio(c.ANSWER_DATA_AGE, outcome_filter=False),
    "correctness": _correctness,
}
