"""Cache alert checks, pure: hit-rate drops, stale hits, model-version skew.

Each check returns a verdict (True fire, False clear, None unknown: too little traffic to say) and
its evidence. The Django side (`slo.budget.services.cache_alerts_apply`) turns verdicts into alert
transitions. Model-version skew takes plain `(service, tier, model_version)` rows so that routing,
which knows the gateways, can feed it without slo importing routing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CacheWindow:
    """Cache lookups of one service in a window: hits (fresh + semantic), stale hits, misses."""

    hits: float
    stale_hits: float
    misses: float

    @property
    def lookups(self) -> float:
        return self.hits + self.stale_hits + self.misses

    @property
    def hit_rate(self) -> float | None:
        return (self.hits + self.stale_hits) / self.lookups if self.lookups > 0 else None

    @property
    def stale_rate(self) -> float | None:
        answered = self.hits + self.stale_hits
        return self.stale_hits / answered if answered > 0 else None


def hit_rate_drop(
    current: CacheWindow, baseline: CacheWindow, *, max_relative_drop: float = 0.3, min_lookups: float = 100
) -> tuple[bool | None, dict[str, Any]]:
    """Fire when the current hit rate fell more than `max_relative_drop` (0.3 = 30%) below the
    trailing baseline's. Unknown below `min_lookups` in either window (low traffic is noise)."""
    evidence = {
        "current_hit_rate": current.hit_rate,
        "baseline_hit_rate": baseline.hit_rate,
        "current_lookups": current.lookups,
        "baseline_lookups": baseline.lookups,
        "max_relative_drop": max_relative_drop,
    }
    if current.lookups < min_lookups or baseline.lookups < min_lookups or not baseline.hit_rate:
        return None, evidence
    drop = 1 - (current.hit_rate or 0.0) / baseline.hit_rate
    evidence["relative_drop"] = drop
    return drop > max_relative_drop, evidence


def stale_rate_over(
    current: CacheWindow, *, max_stale_rate: float = 0.05, min_hits: float = 100
) -> tuple[bool | None, dict[str, Any]]:
    """Fire when stale hits are more than `max_stale_rate` of the cache's answers."""
    evidence = {
        "stale_rate": current.stale_rate,
        "max_stale_rate": max_stale_rate,
        "hits": current.hits + current.stale_hits,
    }
    if current.hits + current.stale_hits < min_hits or current.stale_rate is None:
        return None, evidence
    return current.stale_rate > max_stale_rate, evidence


def model_version_skew(rows: Iterable[tuple[str, str, str]]) -> dict[str, tuple[bool, dict[str, Any]]]:
    """Per service: skew when its gateways (edge and cloud) report more than one model version.

    `rows` are `(service, tier, model_version)`, one per gateway; empty versions are ignored.
    """
    versions: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for service, tier, version in rows:
        if version:
            versions[service][tier].add(version)
    out = {}
    for service, by_tier in versions.items():
        every = set().union(*by_tier.values())
        out[service] = (
            len(every) > 1,
            {"versions_by_tier": {tier: sorted(v) for tier, v in sorted(by_tier.items())}},
        )
    return out
