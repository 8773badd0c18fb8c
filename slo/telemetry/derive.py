"""Good and valid events per SLO and minute from pushed contract series (pure: no Django).

The same definitions as `slo.contract.sli_queries` (docs/telemetry.md, "SLIs from the contract"),
applied to per-minute increases instead of PromQL selectors:

| kind | good | valid |
|---|---|---|
| latency | `_bucket{outcome="ok", le = threshold}` | `_count{outcome in ok, timeout}` |
| ttft | time-to-first-token `_bucket{outcome="ok", le = threshold}` | its `_count{outcome in ok, timeout}` |
| tpot | time-per-output-token `_bucket{le = threshold}` | its `_count` |
| availability | requests `outcome="ok"` | requests `outcome in ok, error, timeout` |
| fallback_success | fallbacks `outcome="ok"` | all fallbacks |
| freshness | data-age `_bucket{le = max_age_s}` | data-age `_count` |
| correctness | hits - stale hits | cache lookups `result in hit, stale_hit, semantic_hit` |

Series are filtered by `service` and, when the SLO names them, `tier` and `service_class`. `le` is compared as a number,
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
from slo.telemetry.batch_format import PushBatch, SeriesRef

DERIVABLE_KINDS = ("latency", "ttft", "tpot", "availability", "fallback_success", "freshness", "correctness")
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
    service_class: str | None = None

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
    if kind in c.LATENCY_HISTOGRAMS:
        # exact decimal: 150 ms -> 0.15, the float a "0.15" bucket parses to
        threshold_s = float(Decimal(repr(float(sli["threshold_ms"]))) / 1000)
    elif kind == "freshness":
        threshold_s = float(sli["max_age_s"])
    return SliTarget(
        slo_id,
        kind,
        spec["service"],
        spec.get("tier") or None,
        threshold_s,
        spec.get("service_class") or None,
    )


def derive_sli_rows(batch: PushBatch, targets: Iterable[SliTarget]) -> list[SliRow]:
    """One row per target and listed minute of the batch."""
    # Group the points by series once; each target then looks only at its own series (a series'
    # role in an SLI depends on its labels, not on the minute).
    by_series: dict[SeriesRef, list[tuple[int, float]]] = {}  # SeriesRef hashes by identity
    for minute, ref, value in batch.points:
        points = by_series.get(ref)
        if points is None:
            by_series[ref] = [(minute, value)]
        else:
            points.append((minute, value))
    groups = list(by_series.items())
    rows: list[SliRow] = []
    for target in targets:
        mine = [
            g
            for g in groups
            if g[0].service == target.service
            and (target.tier is None or g[0].tier == target.tier)
            and (target.service_class is None or g[0].labels.get(c.CLASS_LABEL) == target.service_class)
        ]
        derived = _DERIVERS[target.kind](target, mine)
        for minute in batch.minutes:
            good, valid, present = derived.get(minute, _NO_EVENTS)
            rows.append(SliRow(target.slo_id, minute, int(good), int(valid), present))
    return rows


_NO_EVENTS = (0.0, 0.0, True)  # a listed minute without matching series: 0 events, present
_Groups = list[tuple[SeriesRef, list[tuple[int, float]]]]
_Derived = dict[int, tuple[float, float, bool]]


def _ratio_of(name: str, good_label: str, good_value: str, valid: frozenset[str] | None) -> Any:
    def derive(target: SliTarget, groups: _Groups) -> _Derived:
        good: dict[int, float] = defaultdict(float)
        valid_sum: dict[int, float] = defaultdict(float)
        for ref, points in groups:
            if ref.name != name or (valid is not None and ref.labels[good_label] not in valid):
                continue
            is_good = ref.labels[good_label] == good_value
            for minute, value in points:
                valid_sum[minute] += value
                if is_good:
                    good[minute] += value
        return {minute: (good.get(minute, 0.0), total, True) for minute, total in valid_sum.items()}

    return derive


def _bucket_ratio(base: str, outcome_filter: bool) -> Any:
    count_name, bucket_name = f"{base}_count", f"{base}_bucket"

    def derive(target: SliTarget, groups: _Groups) -> _Derived:
        valid_sum: dict[int, float] = defaultdict(float)
        good: dict[int, float] = defaultdict(float)
        # series (tier, series) that need a bucket at the threshold in a minute, and those that have one
        needed: dict[int, set[tuple[str, str]]] = defaultdict(set)
        found: dict[int, set[tuple[str, str]]] = defaultdict(set)
        for ref, points in groups:
            if ref.name == count_name:
                outcome = ref.labels.get("outcome", "ok") if outcome_filter else "ok"
                if outcome_filter and outcome not in _LATENCY_VALID:
                    continue
                answered = outcome == "ok"
                for minute, value in points:
                    valid_sum[minute] += value
                    if answered and value > 0:
                        needed[minute].add((ref.tier, ref.series))
            elif ref.name == bucket_name:
                if outcome_filter and ref.labels.get("outcome") != "ok":
                    continue
                at_threshold = ref.le == target.threshold_s
                for minute, value in points:
                    needed[minute].add((ref.tier, ref.series))
                    if at_threshold:
                        good[minute] += value
                        found[minute].add((ref.tier, ref.series))
        derived: _Derived = {
            minute: (good.get(minute, 0.0), total, True) for minute, total in valid_sum.items()
        }
        for minute, series in needed.items():
            # a series with answers (or buckets) but no bucket at the threshold: unknown, not 0
            if not series <= found.get(minute, set()):
                derived[minute] = (0.0, 0.0, False)
            elif minute not in derived:
                derived[minute] = (good.get(minute, 0.0), 0.0, True)
        return derived

    return derive


def _correctness(target: SliTarget, groups: _Groups) -> _Derived:
    hits: dict[int, float] = defaultdict(float)
    stale: dict[int, float] = defaultdict(float)
    for ref, points in groups:
        if ref.name != c.CACHE_LOOKUPS_TOTAL:
            continue
        result = ref.labels["result"]
        if result not in _HITS:
            continue
        is_stale = result == "stale_hit"
        for minute, value in points:
            hits[minute] += value
            if is_stale:
                stale[minute] += value
    return {minute: (total - stale.get(minute, 0.0), total, True) for minute, total in hits.items()}


_DERIVERS = {
    "latency": _bucket_ratio(c.REQUEST_DURATION, outcome_filter=True),
    "ttft": _bucket_ratio(c.TIME_TO_FIRST_TOKEN, outcome_filter=True),
    "tpot": _bucket_ratio(c.TIME_PER_OUTPUT_TOKEN, outcome_filter=False),
    "availability": _ratio_of(c.REQUESTS_TOTAL, "outcome", "ok", _VALID),
    "fallback_success": _ratio_of(c.FALLBACKS_TOTAL, "outcome", "ok", None),
    "freshness": _bucket_ratio(c.ANSWER_DATA_AGE, outcome_filter=False),
    "correctness": _correctness,
}
